-- The audience over time, postgres dialect. Keep in step with the other dialect.
-- (0007 is notifications.)

CREATE TABLE audience_samples (
    space_id  TEXT NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    at        double precision NOT NULL,
    listeners INTEGER NOT NULL,
    reactions INTEGER NOT NULL,  -- every reaction so far: a running total
    PRIMARY KEY (space_id, at)
);
