-- The node that claimed a queued mail (its claim runs until next_attempt_at); as
-- postgres/0003. One SQLite relay is always node 0.
ALTER TABLE outbox ADD COLUMN claimed_by INTEGER;
