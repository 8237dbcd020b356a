-- Events of another kind: a gap, when an agent's full upload queue dropped snapshots (their
-- events come on without a picture: snapshot_bytes 0) or whole events. The gap's counts grow
-- while the agent keeps dropping; captured_at .. until_at spans the dropped events.
ALTER TABLE events ADD COLUMN kind TEXT NOT NULL DEFAULT 'motion';
ALTER TABLE events ADD COLUMN lost_snapshots BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN lost_events BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN until_at BIGINT;
