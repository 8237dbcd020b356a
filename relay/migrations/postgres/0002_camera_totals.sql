-- What an upload reads of its camera, kept beside the camera rather than worked out from its
-- events on every upload (a cost that grew with retention; as sqlite/0013):
-- - snapshot_bytes: the bytes of snapshots its events hold (its quota), raised by each stored
--   event and lowered by retention;
-- - last_alert_at: when its last alert mail was queued (its cooldown).
ALTER TABLE cameras ADD COLUMN snapshot_bytes BIGINT NOT NULL DEFAULT 0 CHECK (snapshot_bytes >= 0);
ALTER TABLE cameras ADD COLUMN last_alert_at BIGINT;
UPDATE cameras SET
    snapshot_bytes = (SELECT COALESCE(SUM(snapshot_bytes), 0) FROM events WHERE events.camera_id = cameras.id),
    last_alert_at = (SELECT MAX(o.created_at) FROM outbox o JOIN events e ON e.id = o.event_id
                     WHERE o.kind = 'alert' AND e.camera_id = cameras.id);
