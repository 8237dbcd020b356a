-- Accounts, cameras, agent tokens, sessions and the operation history.
-- Portable SQL: times are BIGINT milliseconds since the Unix epoch, enums are checked TEXT,
-- so the PostgreSQL migrations can follow this file line for line.

CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY,
    role          TEXT    NOT NULL CHECK (role IN ('customer', 'operator')),
    email         TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    guard_center  TEXT    NOT NULL CHECK (guard_center IN ('east', 'tokyo', 'west')),
    lang          TEXT    NOT NULL CHECK (lang IN ('ja', 'en')),
    password_hash TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE cameras (
    id              INTEGER PRIMARY KEY,
    customer_id     BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    model           TEXT    NOT NULL CHECK (model IN ('fixed', 'pan-tilt')),
    plan            TEXT    NOT NULL CHECK (plan IN ('camera-only', 'dispatch')),
    source_kind     TEXT    NOT NULL CHECK (source_kind IN ('agent', 'rtsp')),
    -- For 'rtsp': the URL without credentials, which are kept apart.
    source_url      TEXT,
    source_username TEXT,
    source_password TEXT,
    created_at      BIGINT  NOT NULL,
    CHECK ((source_kind = 'rtsp') = (source_url IS NOT NULL))
);
CREATE INDEX cameras_by_customer ON cameras (customer_id);

-- A camera bought without the dispatch service can never get it later: the plan is fixed
-- at provisioning, whatever code runs.
CREATE TRIGGER cameras_plan_is_fixed BEFORE UPDATE OF plan ON cameras
WHEN NEW.plan IS NOT OLD.plan
BEGIN
    SELECT RAISE(ABORT, 'a camera''s plan is fixed when it is provisioned');
END;

-- One agent token per agent-sourced camera, stored only as a SHA-256 hash.
CREATE TABLE agent_tokens (
    camera_id  BIGINT PRIMARY KEY REFERENCES cameras (id) ON DELETE CASCADE,
    token_hash TEXT   NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- Login sessions, stored only as a SHA-256 hash of the cookie's token.
CREATE TABLE sessions (
    token_hash   TEXT   PRIMARY KEY,
    account_id   BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_account ON sessions (account_id);

-- The operation history: when, who, what, through what. `customer_id` is whose history it
-- belongs to (NULL for entries about operators only).
CREATE TABLE history (
    id          INTEGER PRIMARY KEY,
    at          BIGINT NOT NULL,
    customer_id BIGINT REFERENCES accounts (id) ON DELETE CASCADE,
    actor_kind  TEXT   NOT NULL CHECK (actor_kind IN ('customer', 'operator', 'admin', 'agent', 'system')),
    actor_id    BIGINT,
    actor_name  TEXT   NOT NULL,
    channel     TEXT   NOT NULL CHECK (channel IN ('web', 'agent', 'admin-cli', 'system')),
    action      TEXT   NOT NULL,
    detail      TEXT   NOT NULL
);
CREATE INDEX history_by_customer ON history (customer_id, id);
