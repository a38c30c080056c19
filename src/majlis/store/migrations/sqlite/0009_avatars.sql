-- Users' pictures, sqlite dialect. Keep in step with the other dialect.
-- In the database, not on a disk: every worker of a scaled deployment serves them, and
-- they are small (the API takes at most 64 KiB, checked as an image).

CREATE TABLE avatars (
    user_id      TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    content_type TEXT NOT NULL,
    data         BLOB NOT NULL,
    updated_at   REAL NOT NULL
);
