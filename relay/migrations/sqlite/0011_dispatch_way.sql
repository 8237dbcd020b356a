-- What the customer sees of the guard's way: when the assigned guard is expected (updated as
-- the guard's phone reports positions; none before assignment and after arrival), and the
-- operator's short report at completion.
ALTER TABLE dispatch_requests ADD COLUMN eta_at BIGINT;
ALTER TABLE dispatch_requests ADD COLUMN report TEXT;
