-- Site moderation, sqlite dialect. Keep in step with the other dialect.
-- Site-wide entries (suspensions, moderator grants) have no space, so the audit log's
-- space_id becomes nullable; SQLite needs the table rebuilt for that. Rows keep their seq,
-- so every cursor a client holds stays valid.

CREATE TABLE audit_log_new (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    space_id  TEXT REFERENCES spaces (id) ON DELETE CASCADE,  -- NULL: site-wide
    actor_id  TEXT REFERENCES users (id) ON DELETE CASCADE,   -- NULL: Majlis or an operator
    target_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    action    TEXT NOT NULL,
    reason    TEXT NOT NULL DEFAULT '',
    at        REAL NOT NULL
);
INSERT INTO audit_log_new (seq, space_id, actor_id, target_id, action, reason, at)
    SELECT seq, space_id, actor_id, target_id, action, reason, at FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_new RENAME TO audit_log;
CREATE INDEX audit_log_space ON audit_log (space_id, seq);

-- Who imposed a restriction: an appeal must go to someone else. Not shown to the person.
ALTER TABLE notices ADD COLUMN actor_id TEXT REFERENCES users (id) ON DELETE SET NULL;

CREATE TABLE moderators (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    granted_at REAL NOT NULL
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
    created_at  REAL NOT NULL,
    decision    TEXT,                        -- NULL while open
    decided_by  TEXT REFERENCES users (id) ON DELETE SET NULL,
    decided_at  REAL,
    reason      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX reports_open ON reports (decision, created_at);
CREATE INDEX reports_reporter ON reports (reporter_id, created_at);

CREATE TABLE suspensions (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    until   REAL NOT NULL,
    at      REAL NOT NULL
);

CREATE TABLE appeals (
    id          TEXT PRIMARY KEY,
    notice_id   TEXT NOT NULL UNIQUE REFERENCES notices (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    text        TEXT NOT NULL,
    created_at  REAL NOT NULL,
    outcome     TEXT,                        -- NULL while open: upheld | reversed
    decided_by  TEXT REFERENCES users (id) ON DELETE SET NULL,
    decided_at  REAL,
    reason      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX appeals_open ON appeals (outcome, created_at);
