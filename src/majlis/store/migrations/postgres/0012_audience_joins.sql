-- Arrivals in the audience over time, postgres dialect. Keep in step with the other dialect.
-- A running total per sample, like reactions; leaves follow from it and the listener
-- counts. Samples taken before this migration count no arrivals.

ALTER TABLE audience_samples ADD COLUMN joins INTEGER NOT NULL DEFAULT 0;
