-- The customer's other mails, each switchable: a camera offline for more than 5 minutes (and
-- back), and operations on the account. Alert mail is governed by the addresses alone.
ALTER TABLE accounts ADD COLUMN notify_offline BOOLEAN NOT NULL DEFAULT 1;
ALTER TABLE accounts ADD COLUMN notify_operations BOOLEAN NOT NULL DEFAULT 1;
-- Since when a camera's link is down (the history entry that says so), and whether its owner
-- was told.
ALTER TABLE cameras ADD COLUMN offline_history_id BIGINT;
ALTER TABLE cameras ADD COLUMN offline_since BIGINT;
ALTER TABLE cameras ADD COLUMN offline_mailed BOOLEAN NOT NULL DEFAULT 0;
-- A notice mail is about one history entry.
ALTER TABLE outbox ADD COLUMN history_id BIGINT REFERENCES history (id) ON DELETE SET NULL;
-- The sender looks at the last day's alerts every few seconds (storms to summarise).
CREATE INDEX outbox_by_age ON outbox (kind, created_at);
