-- eyeward's schema for PostgreSQL: the same tables, columns and rules as the SQLite schema
-- (relay/migrations/sqlite, as its twelve migrations left it), in one migration, for there is
-- no earlier PostgreSQL installation to upgrade.
--
-- Where the dialects differ: ids are identities that a sequence hands out once (SQLite's
-- AUTOINCREMENT: never reused); every integer is BIGINT (the store reads i64); booleans are
-- BOOLEAN; bytes are BYTEA; the plan's fixedness is a PL/pgSQL trigger. CHECKs are SQLite's,
-- and a few of its TEXT columns with a known set of values get one too.

CREATE TABLE accounts (
    id                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    role                 TEXT    NOT NULL CHECK (role IN ('customer', 'operator')),
    email                TEXT    NOT NULL UNIQUE,
    name                 TEXT    NOT NULL,
    guard_center         TEXT    NOT NULL CHECK (guard_center IN ('east', 'tokyo', 'west')),
    lang                 TEXT    NOT NULL CHECK (lang IN ('ja', 'en')),
    password_hash        TEXT    NOT NULL,
    created_at           BIGINT  NOT NULL,
    notify_offline       BOOLEAN NOT NULL DEFAULT TRUE,
    notify_operations    BOOLEAN NOT NULL DEFAULT TRUE,
    address              TEXT,
    home_lat             DOUBLE PRECISION,
    home_lon             DOUBLE PRECISION,
    notify_ptz           BOOLEAN NOT NULL DEFAULT FALSE,
    arming_mode          TEXT    NOT NULL DEFAULT 'away' CHECK (arming_mode IN ('away', 'home', 'off')),
    arming_set_at        BIGINT,
    arming_schedule_seen BIGINT,
    phone                TEXT,
    entry_notes          TEXT,
    key_holder           TEXT
);

CREATE TABLE cameras (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id        BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name               TEXT    NOT NULL,
    model              TEXT    NOT NULL CHECK (model IN ('fixed', 'pan-tilt')),
    plan               TEXT    NOT NULL CHECK (plan IN ('camera-only', 'dispatch')),
    source_kind        TEXT    NOT NULL CHECK (source_kind IN ('agent', 'rtsp')),
    -- For 'rtsp': the URL without credentials, which are kept apart.
    source_url         TEXT,
    source_username    TEXT,
    source_password    TEXT,
    created_at         BIGINT  NOT NULL,
    offline_history_id BIGINT,
    offline_since      BIGINT,
    offline_mailed     BOOLEAN NOT NULL DEFAULT FALSE,
    alert_when_away    BOOLEAN NOT NULL DEFAULT TRUE,
    alert_when_home    BOOLEAN NOT NULL DEFAULT FALSE,
    CHECK ((source_kind = 'rtsp') = (source_url IS NOT NULL))
);

CREATE INDEX cameras_by_customer ON cameras (customer_id);

-- A camera's plan is set when it is provisioned; no code path changes it, and this refuses it
-- anyway.
CREATE FUNCTION cameras_plan_is_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.plan IS DISTINCT FROM OLD.plan THEN
        RAISE EXCEPTION 'a camera''s plan is fixed when it is provisioned';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER cameras_plan_is_fixed BEFORE UPDATE OF plan ON cameras
    FOR EACH ROW EXECUTE FUNCTION cameras_plan_is_fixed();

CREATE TABLE agent_tokens (
    camera_id  BIGINT PRIMARY KEY REFERENCES cameras (id) ON DELETE CASCADE,
    token_hash TEXT   NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash   TEXT   PRIMARY KEY,
    account_id   BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);

CREATE INDEX sessions_by_account ON sessions (account_id);

CREATE TABLE known_browsers (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    token_hash    TEXT   NOT NULL UNIQUE,
    first_seen_at BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL
);

CREATE INDEX known_browsers_by_account ON known_browsers (account_id, last_seen_at);

CREATE TABLE events (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    camera_id       BIGINT  NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    -- The agent's idempotency key: a repeated upload is the same event.
    idempotency_key TEXT    NOT NULL,
    captured_at     BIGINT  NOT NULL,
    received_at     BIGINT  NOT NULL,
    score           DOUBLE PRECISION NOT NULL,
    -- [x, y, w, h] in the snapshot's pixels, as JSON.
    bbox            TEXT    NOT NULL,
    width           BIGINT  NOT NULL,
    height          BIGINT  NOT NULL,
    snapshot_bytes  BIGINT  NOT NULL,
    kind            TEXT    NOT NULL DEFAULT 'motion' CHECK (kind IN ('motion', 'gap')),
    lost_snapshots  BIGINT  NOT NULL DEFAULT 0,
    lost_events     BIGINT  NOT NULL DEFAULT 0,
    until_at        BIGINT,
    armed           BOOLEAN NOT NULL DEFAULT TRUE,
    UNIQUE (camera_id, idempotency_key)
);

CREATE INDEX events_by_camera ON events (camera_id, captured_at);

CREATE INDEX events_by_age ON events (captured_at);

CREATE TABLE alert_addresses (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id     BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    email           TEXT   NOT NULL,
    -- SHA-256 of the confirmation link's token, until it is used.
    confirm_hash    TEXT   UNIQUE,
    confirm_expires BIGINT,
    confirmed_at    BIGINT,
    -- What stands in the address row for its unsubscribe tokens (kept hashed in
    -- unsubscribe_tokens); unique, as in SQLite.
    unsubscribe     TEXT   NOT NULL UNIQUE,
    created_at      BIGINT NOT NULL,
    UNIQUE (customer_id, email)
);

CREATE TABLE unsubscribe_tokens (
    token_hash TEXT   PRIMARY KEY,
    address_id BIGINT NOT NULL REFERENCES alert_addresses (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);

CREATE INDEX unsubscribe_tokens_by_expiry ON unsubscribe_tokens (expires_at);

CREATE INDEX unsubscribe_tokens_by_address ON unsubscribe_tokens (address_id);

CREATE TABLE history (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    customer_id BIGINT REFERENCES accounts (id) ON DELETE CASCADE,
    actor_kind  TEXT   NOT NULL CHECK (actor_kind IN ('customer', 'operator', 'admin', 'agent', 'recipient', 'system')),
    actor_id    BIGINT,
    actor_name  TEXT   NOT NULL,
    channel     TEXT   NOT NULL CHECK (channel IN ('web', 'agent', 'admin-cli', 'mail-link', 'system')),
    action      TEXT   NOT NULL,
    detail      TEXT   NOT NULL
);

CREATE INDEX history_by_customer ON history (customer_id, id);

CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            TEXT   NOT NULL,
    customer_id     BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    address_id      BIGINT REFERENCES alert_addresses (id) ON DELETE SET NULL,
    recipient       TEXT   NOT NULL,
    event_id        BIGINT REFERENCES events (id) ON DELETE SET NULL,
    -- The same on every attempt, so a mail sent twice after a crash is one to the reader.
    message_id      TEXT   NOT NULL UNIQUE,
    -- A confirmation mail as rendered (it holds the link's token); cleared once sent.
    body            BYTEA,
    state           TEXT   NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed', 'cancelled')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT,
    history_id      BIGINT REFERENCES history (id) ON DELETE SET NULL
);

CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

CREATE INDEX outbox_by_event ON outbox (event_id);

CREATE INDEX outbox_by_age ON outbox (kind, created_at);

-- One row: the counter long-lived things watch to learn that a grant was taken away.
CREATE TABLE revocations (
    generation BIGINT NOT NULL
);

INSERT INTO revocations (generation) VALUES (0);

CREATE TABLE arming_switches (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- Bit 0 Monday … bit 6 Sunday.
    days        BIGINT NOT NULL CHECK (days BETWEEN 1 AND 127),
    -- Minutes past midnight, home time.
    minute      BIGINT NOT NULL CHECK (minute BETWEEN 0 AND 1439),
    mode        TEXT   NOT NULL CHECK (mode IN ('away', 'home', 'off')),
    created_at  BIGINT NOT NULL
);

CREATE INDEX arming_switches_by_customer ON arming_switches (customer_id);

CREATE TABLE guards (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guard_center TEXT   NOT NULL CHECK (guard_center IN ('east', 'tokyo', 'west')),
    name         TEXT   NOT NULL,
    token_hash   TEXT   NOT NULL UNIQUE,
    lat          DOUBLE PRECISION,
    lon          DOUBLE PRECISION,
    seen_at      BIGINT,
    created_at   BIGINT NOT NULL
);

CREATE INDEX guards_by_center ON guards (guard_center);

CREATE TABLE dispatch_requests (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id    BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    camera_id      BIGINT  REFERENCES cameras (id) ON DELETE SET NULL,
    -- The camera's name when the request was made (it stays meaningful if renamed).
    camera_name    TEXT    NOT NULL,
    -- The customer's guard center when the request was made: the only one that sees it.
    guard_center   TEXT    NOT NULL CHECK (guard_center IN ('east', 'tokyo', 'west')),
    state          TEXT    NOT NULL CHECK (state IN ('requested', 'accepted', 'assigned', 'arrived', 'completed', 'cancelled')),
    note           TEXT,
    -- The fee the customer agreed to when asking; charged at acceptance.
    fee_yen        BIGINT  NOT NULL,
    -- What the customer shares with the guard center, for this request only, while it is open.
    share_snapshot BOOLEAN NOT NULL,
    share_live     BOOLEAN NOT NULL,
    -- Bytes of the shared picture (0: none yet).
    snapshot_bytes BIGINT  NOT NULL DEFAULT 0,
    guard_id       BIGINT  REFERENCES guards (id) ON DELETE SET NULL,
    guard_name     TEXT,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    eta_at         BIGINT,
    report         TEXT
);

CREATE INDEX dispatch_by_customer ON dispatch_requests (customer_id, id);

CREATE INDEX dispatch_by_center ON dispatch_requests (guard_center, state, id);

-- One open request per camera: the race between two asking at once is decided here.
CREATE UNIQUE INDEX dispatch_open_per_camera ON dispatch_requests (camera_id)
    WHERE state IN ('requested', 'accepted', 'assigned', 'arrived');

CREATE TABLE dispatch_transitions (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id BIGINT NOT NULL REFERENCES dispatch_requests (id) ON DELETE CASCADE,
    action     TEXT   NOT NULL,
    from_state TEXT,
    to_state   TEXT   NOT NULL,
    actor_kind TEXT   NOT NULL CHECK (actor_kind IN ('customer', 'operator')),
    actor_id   BIGINT NOT NULL,
    actor_name TEXT   NOT NULL,
    at         BIGINT NOT NULL
);

CREATE INDEX dispatch_transitions_by_request ON dispatch_transitions (request_id, id);

CREATE TABLE charges (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    request_id  BIGINT NOT NULL UNIQUE REFERENCES dispatch_requests (id) ON DELETE CASCADE,
    amount_yen  BIGINT NOT NULL,
    charged_at  BIGINT NOT NULL
);

CREATE INDEX charges_by_customer ON charges (customer_id, id);
