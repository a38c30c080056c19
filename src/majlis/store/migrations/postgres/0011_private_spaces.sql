-- Private spaces and spaces without a recording, postgres dialect. Keep in step with the
-- other dialect.
-- A private space keeps visibility 'unlisted' (never listed), as in the sqlite dialect,
-- and private = true.

ALTER TABLE spaces ADD COLUMN private boolean NOT NULL DEFAULT false;
ALTER TABLE spaces ADD COLUMN recording boolean NOT NULL DEFAULT true;

-- Who may listen to a private space, besides its host and whoever is on its stage.
CREATE TABLE guests (
    space_id TEXT NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    at       double precision NOT NULL,
    PRIMARY KEY (space_id, user_id)
);
