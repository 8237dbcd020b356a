-- Event clips (issue 24): the seconds before and after an event, uploaded by the agent after
-- its snapshot. An event's clip columns are set once the clip is stored whole and checked;
-- clip_bytes 0 is no clip (none yet, none made, or gone with the clip retention).
ALTER TABLE events ADD COLUMN clip_bytes BIGINT NOT NULL DEFAULT 0 CHECK (clip_bytes >= 0);
-- From its first frame to its last, and when the motion was first seen from its start.
ALTER TABLE events ADD COLUMN clip_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN clip_event_at_ms BIGINT NOT NULL DEFAULT 0;
-- 'h264' or 'h265' (the camera's own coding), and the picture's size.
ALTER TABLE events ADD COLUMN clip_codec TEXT;
ALTER TABLE events ADD COLUMN clip_width BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN clip_height BIGINT NOT NULL DEFAULT 0;
-- The agent said it records a clip of the event (its alert mail links to it).
ALTER TABLE events ADD COLUMN clip_coming BOOLEAN NOT NULL DEFAULT FALSE;
-- For a gap: clips the agent had to drop (their events came on).
ALTER TABLE events ADD COLUMN lost_clips BIGINT NOT NULL DEFAULT 0;
-- The bytes of clips a camera's events hold (its clip quota), kept like snapshot_bytes.
ALTER TABLE cameras ADD COLUMN clip_bytes BIGINT NOT NULL DEFAULT 0 CHECK (clip_bytes >= 0);
-- The event whose clip a dispatch request shares with the guard center (while it is open).
-- No foreign key: the event may expire first, and the request keeps its history.
ALTER TABLE dispatch_requests ADD COLUMN clip_event_id BIGINT;
