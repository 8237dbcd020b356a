-- Motion events from agents. Each has its snapshot in `data_dir/snapshots/<camera>/<key>.jpg`,
-- written (and fsynced) before the row is committed; the row is what makes the event exist.
CREATE TABLE events (
    id              INTEGER PRIMARY KEY,
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
    UNIQUE (camera_id, idempotency_key)
);
CREATE INDEX events_by_camera ON events (camera_id, captured_at);
CREATE INDEX events_by_age ON events (captured_at);
