-- Logged-out sessions, sqlite dialect. Keep in step with the other dialect.
-- A token id stays here until the token would have expired anyway; the bus holds the
-- same set for the request path and is rebuilt from this table after a restart.

CREATE TABLE revocations (
    token_id   TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
CREATE INDEX revocations_expires_at ON revocations (expires_at);
