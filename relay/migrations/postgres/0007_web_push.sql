-- Web Push (issue 25): a person's browsers and phones that take alerts as notifications.
-- Kept parallel to SQLite's 0018_web_push.sql.
CREATE TABLE push_subscriptions (
    id           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The person (a customer or a household member) whose device it is.
    account_id   BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- The push service's URL for that device (RFC 8030): a capability, never shown or logged.
    endpoint     TEXT    NOT NULL UNIQUE,
    -- The device's P-256 key and auth secret (RFC 8291), unpadded base64url.
    p256dh       TEXT    NOT NULL,
    auth         TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    last_sent_at BIGINT
);
CREATE INDEX push_subscriptions_by_account ON push_subscriptions (account_id);

-- A push is a row of the outbox (kind 'push'), sent to this subscription: the same queue,
-- claims, retries and cooldown as alert mail.
ALTER TABLE outbox ADD COLUMN push_subscription_id BIGINT
    REFERENCES push_subscriptions (id) ON DELETE SET NULL;

-- The relay's VAPID key (RFC 8292), one for every node: made by the first that needs it.
CREATE TABLE push_keys (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    private_key TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

-- The picture link in a push: a token of its own per push, kept hashed, for one event's
-- snapshot, until expires_at.
CREATE TABLE push_pictures (
    token_hash      TEXT   PRIMARY KEY,
    event_id        BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    subscription_id BIGINT NOT NULL REFERENCES push_subscriptions (id) ON DELETE CASCADE,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX push_pictures_by_expiry ON push_pictures (expires_at);
