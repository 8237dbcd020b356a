-- A customer's alert addresses: the only recipients of their alert mail. An address receives
-- alerts once confirmed through the single-use link mailed to it.
CREATE TABLE alert_addresses (
    id               INTEGER PRIMARY KEY,
    customer_id      BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    email            TEXT   NOT NULL,
    -- SHA-256 of the confirmation link's token, until it is used.
    confirm_hash     TEXT   UNIQUE,
    confirm_expires  BIGINT,
    confirmed_at     BIGINT,
    -- The one-click unsubscribe token in every mail to this address. Kept as it is (each mail
    -- carries it): it can only remove this address.
    unsubscribe      TEXT   NOT NULL UNIQUE,
    created_at       BIGINT NOT NULL,
    UNIQUE (customer_id, email)
);

-- Mail to send, written in the same transaction as what it is about, and kept once sent.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    -- alert | confirm
    kind            TEXT   NOT NULL,
    customer_id     BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    address_id      BIGINT REFERENCES alert_addresses (id) ON DELETE SET NULL,
    recipient       TEXT   NOT NULL,
    event_id        BIGINT REFERENCES events (id) ON DELETE SET NULL,
    -- The same on every attempt, so a mail sent twice after a crash is one to the reader.
    message_id      TEXT   NOT NULL UNIQUE,
    -- A confirmation mail as rendered (it holds the link's token); cleared once sent.
    body            BLOB,
    -- queued | sent | failed | cancelled
    state           TEXT   NOT NULL DEFAULT 'queued',
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_by_event ON outbox (event_id);

-- The history learns who acts through a mailed link (the holder of a mail to an address).
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt, rows and ids kept.
CREATE TABLE history_new (
    id          INTEGER PRIMARY KEY,
    at          BIGINT NOT NULL,
    customer_id BIGINT REFERENCES accounts (id) ON DELETE CASCADE,
    actor_kind  TEXT   NOT NULL CHECK (actor_kind IN ('customer', 'operator', 'admin', 'agent', 'recipient', 'system')),
    actor_id    BIGINT,
    actor_name  TEXT   NOT NULL,
    channel     TEXT   NOT NULL CHECK (channel IN ('web', 'agent', 'admin-cli', 'mail-link', 'system')),
    action      TEXT   NOT NULL,
    detail      TEXT   NOT NULL
);
INSERT INTO history_new SELECT id, at, customer_id, actor_kind, actor_id, actor_name, channel, action, detail FROM history;
DROP TABLE history;
ALTER TABLE history_new RENAME TO history;
CREATE INDEX history_by_customer ON history (customer_id, id);
