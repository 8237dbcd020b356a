-- One-click unsubscribe tokens: a new one in each mail, stored hashed (SHA-256), each for one
-- address and for a limited time. alert_addresses.unsubscribe held one token per address in
-- clear, forever; it is no longer read. Its NOT NULL UNIQUE constraint cannot be dropped in
-- SQLite, so the relay replaces each value by `hashed:` and the SHA-256 of the old token at
-- start (moving the old token here, so links in mails already sent keep working until they
-- expire), and new addresses get a random value there.
CREATE TABLE unsubscribe_tokens (
    token_hash  TEXT   PRIMARY KEY,
    address_id  BIGINT NOT NULL REFERENCES alert_addresses (id) ON DELETE CASCADE,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX unsubscribe_tokens_by_expiry ON unsubscribe_tokens (expires_at);
CREATE INDEX unsubscribe_tokens_by_address ON unsubscribe_tokens (address_id);
