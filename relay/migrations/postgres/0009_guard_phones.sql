-- The guard's phone (issue 28): the single-use sign-in links an operator issues from the
-- console, and the phone sessions they open, both tokens kept as SHA-256 hashes. A request
-- gets a state between `assigned` and `arrived`, `en_route` (the guard's "on my way"), and
-- guards act on requests and in the history. The one open request per camera counts
-- `en_route` as open. Kept parallel to SQLite's 0020_guard_phones.sql.
CREATE TABLE guard_sign_ins (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guard_id        BIGINT  NOT NULL REFERENCES guards (id) ON DELETE CASCADE,
    -- The link's token: taken once, before link_expires_at.
    link_hash       TEXT    NOT NULL UNIQUE,
    link_expires_at BIGINT  NOT NULL,
    -- The operator who issued it.
    issued_by       BIGINT  REFERENCES accounts (id) ON DELETE SET NULL,
    issued_at       BIGINT  NOT NULL,
    -- Once taken: the phone's session token, and when (a session lasts a shift).
    session_hash    TEXT    UNIQUE,
    taken_at        BIGINT
);
CREATE INDEX guard_sign_ins_by_guard ON guard_sign_ins (guard_id);

ALTER TABLE dispatch_requests DROP CONSTRAINT dispatch_requests_state_check;
ALTER TABLE dispatch_requests ADD CONSTRAINT dispatch_requests_state_check
    CHECK (state IN ('requested', 'accepted', 'assigned', 'en_route', 'arrived', 'completed', 'cancelled'));
ALTER TABLE history DROP CONSTRAINT history_actor_kind_check;
ALTER TABLE history ADD CONSTRAINT history_actor_kind_check
    CHECK (actor_kind IN ('customer', 'operator', 'admin', 'agent', 'recipient', 'system', 'member', 'guard'));
ALTER TABLE dispatch_transitions DROP CONSTRAINT dispatch_transitions_actor_kind_check;
ALTER TABLE dispatch_transitions ADD CONSTRAINT dispatch_transitions_actor_kind_check
    CHECK (actor_kind IN ('customer', 'operator', 'member', 'guard'));

DROP INDEX dispatch_open_per_camera;
CREATE UNIQUE INDEX dispatch_open_per_camera ON dispatch_requests (camera_id)
    WHERE state IN ('requested', 'accepted', 'assigned', 'en_route', 'arrived');
