-- Private spaces and spaces without a recording, sqlite dialect. Keep in step with the
-- other dialect.
-- A private space keeps visibility 'unlisted' (never listed; the CHECK of 0001 cannot
-- change without rebuilding spaces, which every other table references) and private = 1.

ALTER TABLE spaces ADD COLUMN private INTEGER NOT NULL DEFAULT 0 CHECK (private IN (0, 1));
ALTER TABLE spaces ADD COLUMN recording INTEGER NOT NULL DEFAULT 1 CHECK (recording IN (0, 1));

-- Who may listen to a private space, besides its host and whoever is on its stage.
CREATE TABLE guests (
    space_id TEXT NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    at       REAL NOT NULL,
    PRIMARY KEY (space_id, user_id)
);
