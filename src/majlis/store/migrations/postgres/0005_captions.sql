-- Live captions, postgres dialect. Keep in step with the other dialect.
-- The host can turn a space's live captions off (true: on, the default).

ALTER TABLE spaces ADD COLUMN captions BOOLEAN NOT NULL DEFAULT TRUE;
