-- Reminders delivered, in-app notifications and users' email addresses, sqlite dialect.
-- Keep in step with the other dialect. (0006 is the audit log.)

-- Optional: a user without one gets reminders in the app only.
ALTER TABLE users ADD COLUMN email TEXT;

-- Set once, by the compare-and-set that claims the reminder for delivery: whichever
-- worker's UPDATE ... WHERE delivered_at IS NULL touches the row delivers it, once.
ALTER TABLE reminders ADD COLUMN delivered_at REAL;

CREATE TABLE notifications (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a cursor stays valid
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    space_id TEXT NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    kind     TEXT NOT NULL,  -- majlis.types.NotificationKind, checked in Python
    title    TEXT NOT NULL,  -- the space's title when it was sent
    at       REAL NOT NULL,
    read_at  REAL
);
CREATE INDEX notifications_user ON notifications (user_id, seq);
