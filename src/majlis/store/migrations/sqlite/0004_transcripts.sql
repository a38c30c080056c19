-- Transcripts, sqlite dialect. Keep in step with the other dialect.
-- A space's language steers its transcript ('auto': the model detects it).

ALTER TABLE spaces ADD COLUMN language TEXT NOT NULL DEFAULT 'auto'
    CHECK (language IN ('en', 'ar', 'auto'));

-- One row per space whose replay is to be transcribed: the job and its outcome. `claim`
-- names the worker's attempt, so a worker that was presumed dead (its claim timed out and
-- another took the job) cannot overwrite the newer attempt's outcome.
CREATE TABLE transcripts (
    space_id    TEXT PRIMARY KEY REFERENCES spaces (id) ON DELETE CASCADE,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
    error       TEXT NOT NULL DEFAULT '',
    attempts    INTEGER NOT NULL DEFAULT 0,
    claim       TEXT NOT NULL DEFAULT '',
    not_before  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE INDEX transcripts_queue ON transcripts (state, not_before);

CREATE TABLE transcript_lines (
    space_id  TEXT NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    start_s   REAL NOT NULL,
    end_s     REAL NOT NULL,
    speaker   TEXT NOT NULL DEFAULT '',
    text      TEXT NOT NULL,
    PRIMARY KEY (space_id, seq)
);

-- Full text: FTS5 over the lines' text, kept in step by triggers (a cascade from a deleted
-- space fires them too). The rowid is the line's.
CREATE VIRTUAL TABLE transcript_fts USING fts5(
    text, space_id UNINDEXED, tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER transcript_lines_ai AFTER INSERT ON transcript_lines BEGIN
    INSERT INTO transcript_fts (rowid, text, space_id) VALUES (new.rowid, new.text, new.space_id);
END;
CREATE TRIGGER transcript_lines_ad AFTER DELETE ON transcript_lines BEGIN
    DELETE FROM transcript_fts WHERE rowid = old.rowid;
END;
