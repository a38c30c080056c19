-- Site moderation, postgres dialect. Keep in step with the other dialect.
-- Site-wide entries (suspensions, moderator grants) have no space.
ALTER TABLE audit_log ALTER COLUMN space_id DROP NOT NULL;

-- Who imposed a restriction: an appeal must go to someone else. Not shown to the person.
ALTER TABLE notices ADD COLUMN actor_id TEXT REFERENCES users (id) ON DELETE SET NULL;

CREATE TABLE moderators (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    granted_at double precision NOT NULL
);

CREATE TABLE reports (
    id          TEXT PRIMARY KEY,
    subject     TEXT NOT NULL,               -- space | speaker | clip (typed in Python)
    space_id    TEXT REFERENCES spaces (id) ON DELETE CASCADE,
    user_id     TEXT REFERENCES users (id) ON DELETE CASCADE,
    clip_id     TEXT,                        -- kept if the clip goes: the report is evidence
    category    TEXT NOT NULL,
    text        TEXT NOT NULL DEFAULT '',
    reporter_id TEXT REFERENCES users (id) ON DELETE SET NULL,  -- NULL: anonymous
    created_at  double precision NOT NULL,
    decision    TEXT,                        -- NULL while open
    decided_by  TEXT REFERENCES users (id) ON DELETE SET NULL,
    decided_at  double precision,
    reason      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX reports_open ON reports (decision, created_at);
CREATE INDEX reports_reporter ON reports (reporter_id, created_at);

CREATE TABLE suspensions (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    until   double precision NOT NULL,
    at      double precision NOT NULL
);

CREATE TABLE appeals (
    id          TEXT PRIMARY KEY,
    notice_id   TEXT NOT NULL UNIQUE REFERENCES notices (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    text        TEXT NOT NULL,
    created_at  double precision NOT NULL,
    outcome     TEXT,                        -- NULL while open: upheld | reversed
    decided_by  TEXT REFERENCES users (id) ON DELETE SET NULL,
    decided_at  double precision,
    reason      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX appeals_open ON appeals (outcome, created_at);
