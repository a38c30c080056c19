-- Transcripts, postgres dialect. Keep in step with the other dialect.
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
    not_before  double precision NOT NULL,
    updated_at  double precision NOT NULL
);
CREATE INDEX transcripts_queue ON transcripts (state, not_before);

CREATE TABLE transcript_lines (
    space_id  TEXT NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    start_s   double precision NOT NULL,
    end_s     double precision NOT NULL,
    speaker   TEXT NOT NULL DEFAULT '',
    text      TEXT NOT NULL,
    PRIMARY KEY (space_id, seq)
);

-- Full text: the 'simple' configuration (no stemming, no stop words) because a space may
-- be in any language; queries must use the same expression to reach this index.
CREATE INDEX transcript_lines_fts ON transcript_lines USING GIN (to_tsvector('simple', text));
