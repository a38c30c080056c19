-- Initial schema, PostgreSQL dialect. Keep in step with sqlite/0001_initial.sql.
-- Times are seconds since the epoch (double precision).

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL DEFAULT '',
    created_at    double precision NOT NULL
);
-- Usernames are unique regardless of case; lookups use the same lower() expression.
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));

CREATE TABLE spaces (
    id             TEXT PRIMARY KEY,
    host_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title          TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    state          TEXT NOT NULL CHECK (state IN ('scheduled', 'live', 'ended')),
    visibility     TEXT NOT NULL CHECK (visibility IN ('public', 'unlisted')),
    created_at     double precision NOT NULL,
    scheduled_for  double precision,
    started_at     double precision,
    ended_at       double precision,
    peak_listeners integer NOT NULL DEFAULT 0
);
-- One index per listing order, in the listing's own direction (live by started_at,
-- scheduled by scheduled_for, ended by ended_at). Title/host search is a substring match
-- over the rows of one state; a trigram index would need the pg_trgm extension.
CREATE INDEX spaces_state_started ON spaces (state, started_at DESC NULLS LAST);
CREATE INDEX spaces_state_scheduled ON spaces (state, scheduled_for);
CREATE INDEX spaces_state_ended ON spaces (state, ended_at DESC NULLS LAST);
CREATE INDEX spaces_host ON spaces (host_id, created_at);

CREATE TABLE participants (
    space_id  TEXT NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role      TEXT NOT NULL CHECK (role IN ('host', 'cohost', 'speaker')),
    muted     boolean NOT NULL DEFAULT FALSE,
    joined_at double precision NOT NULL,
    PRIMARY KEY (space_id, user_id)
);
CREATE INDEX participants_user ON participants (user_id);

CREATE TABLE speak_requests (
    space_id   TEXT NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at double precision NOT NULL,
    PRIMARY KEY (space_id, user_id)
);
CREATE INDEX speak_requests_queue ON speak_requests (space_id, created_at);
CREATE INDEX speak_requests_user ON speak_requests (user_id);

CREATE TABLE invites (
    space_id   TEXT NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    invited_by TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at double precision NOT NULL,
    PRIMARY KEY (space_id, user_id)
);
CREATE INDEX invites_user ON invites (user_id);
CREATE INDEX invites_invited_by ON invites (invited_by);

CREATE TABLE bans (
    space_id  TEXT NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    banned_by TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at        double precision NOT NULL,
    PRIMARY KEY (space_id, user_id)
);
CREATE INDEX bans_user ON bans (user_id);
CREATE INDEX bans_banned_by ON bans (banned_by);

CREATE TABLE reminders (
    space_id TEXT NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at       double precision NOT NULL,
    PRIMARY KEY (space_id, user_id)
);
CREATE INDEX reminders_user ON reminders (user_id);
