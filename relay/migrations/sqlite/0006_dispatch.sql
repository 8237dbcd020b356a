-- Dispatch requests: a customer asks for a guard; the customer's guard center works it.

-- Where the customer's home is: the operator sees the address of an open request, and the
-- console measures guards' distances from the location.
ALTER TABLE accounts ADD COLUMN address TEXT;
ALTER TABLE accounts ADD COLUMN home_lat DOUBLE PRECISION;
ALTER TABLE accounts ADD COLUMN home_lon DOUBLE PRECISION;

-- Guards of a guard center, with their last reported position. A guard's phone reports it
-- with its token (stored only as a SHA-256 hash); an operator may set it too.
CREATE TABLE guards (
    id           INTEGER PRIMARY KEY,
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
    id             INTEGER PRIMARY KEY,
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
    -- Bytes of the shared picture in data_dir/dispatch/<id>.jpg (0: none yet).
    snapshot_bytes BIGINT  NOT NULL DEFAULT 0,
    guard_id       BIGINT  REFERENCES guards (id) ON DELETE SET NULL,
    guard_name     TEXT,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);
CREATE INDEX dispatch_by_customer ON dispatch_requests (customer_id, id);
CREATE INDEX dispatch_by_center ON dispatch_requests (guard_center, state, id);
-- At most one open request per camera: a second one while the first is open is refused.
CREATE UNIQUE INDEX dispatch_open_per_camera ON dispatch_requests (camera_id)
    WHERE state IN ('requested', 'accepted', 'assigned', 'arrived');

-- Every transition, with its actor and time.
CREATE TABLE dispatch_transitions (
    id          INTEGER PRIMARY KEY,
    request_id  BIGINT NOT NULL REFERENCES dispatch_requests (id) ON DELETE CASCADE,
    action      TEXT   NOT NULL,
    from_state  TEXT,
    to_state    TEXT   NOT NULL,
    actor_kind  TEXT   NOT NULL CHECK (actor_kind IN ('customer', 'operator')),
    actor_id    BIGINT NOT NULL,
    actor_name  TEXT   NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX dispatch_transitions_by_request ON dispatch_transitions (request_id, id);

-- A fee owed: one per accepted request, kept whatever happens to the request afterwards.
CREATE TABLE charges (
    id          INTEGER PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    request_id  BIGINT NOT NULL UNIQUE REFERENCES dispatch_requests (id) ON DELETE CASCADE,
    amount_yen  BIGINT NOT NULL,
    charged_at  BIGINT NOT NULL
);
CREATE INDEX charges_by_customer ON charges (customer_id, id);
