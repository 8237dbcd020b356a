-- Fewer mails by default. A login is mailed only from a browser the account has not used
-- before (a cookie of its own, stored hashed); pan-tilt moves are mailed only when the
-- customer asks for them.
CREATE TABLE known_browsers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    first_seen_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX known_browsers_by_account ON known_browsers (account_id, last_seen_at);
ALTER TABLE accounts ADD COLUMN notify_ptz BOOLEAN NOT NULL DEFAULT 0;
