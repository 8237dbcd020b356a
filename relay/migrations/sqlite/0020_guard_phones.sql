-- The guard's phone (issue 28): the single-use sign-in links an operator issues from the
-- console, and the phone sessions they open, both tokens kept as SHA-256 hashes. A request
-- gets a state between `assigned` and `arrived`, `en_route` (the guard's "on my way"), and
-- guards act on requests and in the history: those checks are widened when the tables are
-- rebuilt at start (store::schema), as SQLite cannot alter a check. The one open request per
-- camera counts `en_route` as open. Kept parallel to PostgreSQL's 0009_guard_phones.sql.
CREATE TABLE guard_sign_ins (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
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

DROP INDEX dispatch_open_per_camera;
CREATE UNIQUE INDEX dispatch_open_per_camera ON dispatch_requests (camera_id)
    WHERE state IN ('requested', 'accepted', 'assigned', 'en_route', 'arrived');
