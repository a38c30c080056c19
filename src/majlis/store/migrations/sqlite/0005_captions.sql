-- Live captions, sqlite dialect. Keep in step with the other dialect.
-- The host can turn a space's live captions off (1: on, the default; 0: off).

ALTER TABLE spaces ADD COLUMN captions INTEGER NOT NULL DEFAULT 1 CHECK (captions IN (0, 1));
