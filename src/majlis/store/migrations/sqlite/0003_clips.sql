-- Clips, sqlite dialect. Keep in step with the other dialect.
-- A clip is a range of a space's recording on the replay's clock; its audio is cut from
-- the recording when asked for, so a row is all it takes.

CREATE TABLE clips (
    id          TEXT PRIMARY KEY,
    space_id    TEXT NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    created_by  TEXT NOT NULL,
    start_s     REAL NOT NULL,
    duration_s  REAL NOT NULL,
    title       TEXT NOT NULL,
    created_at  REAL NOT NULL
);
CREATE INDEX clips_space ON clips (space_id, created_at);
