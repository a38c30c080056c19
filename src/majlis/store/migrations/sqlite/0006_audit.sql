-- The audit log and statements of reasons, sqlite dialect. Keep in step with the other
-- dialect.
-- action, category and ground are typed in Python (majlis.types), not CHECKed here: the
-- next kinds (moderators' decisions, suspensions) must not need SQLite's table rebuild.

CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a cursor stays valid
    space_id  TEXT NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    actor_id  TEXT REFERENCES users (id) ON DELETE CASCADE,  -- NULL: Majlis itself
    target_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    action    TEXT NOT NULL,
    reason    TEXT NOT NULL DEFAULT '',
    at        REAL NOT NULL
);
CREATE INDEX audit_log_space ON audit_log (space_id, seq);

CREATE TABLE notices (
    id        TEXT PRIMARY KEY,
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    space_id  TEXT REFERENCES spaces (id) ON DELETE SET NULL,
    action    TEXT NOT NULL,
    category  TEXT NOT NULL,
    text      TEXT NOT NULL DEFAULT '',
    ground    TEXT NOT NULL,
    automated INTEGER NOT NULL CHECK (automated IN (0, 1)),
    appeal    TEXT NOT NULL,
    at        REAL NOT NULL
);
CREATE INDEX notices_user ON notices (user_id, at);
