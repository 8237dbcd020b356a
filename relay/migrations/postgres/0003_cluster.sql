-- Several relay nodes as one service (issue 21; docs/cluster.md).

-- A relay node: an identity never reused, how the other nodes reach it, and its lease, which
-- it renews every few seconds. A node whose lease ran out is dead to the others.
CREATE TABLE nodes (
    id           BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    internal_url TEXT        NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    lease_until  TIMESTAMPTZ NOT NULL,
    draining     BOOLEAN     NOT NULL DEFAULT FALSE
);

-- Which node holds each agent camera's link. The generation rises with every new owner and
-- never falls: a released camera keeps its row with no node, so a node that lost a camera
-- can always tell (fencing).
CREATE TABLE camera_owners (
    camera_id  BIGINT PRIMARY KEY REFERENCES cameras (id) ON DELETE CASCADE,
    node_id    BIGINT REFERENCES nodes (id) ON DELETE SET NULL,
    generation BIGINT NOT NULL CHECK (generation > 0)
);

CREATE INDEX camera_owners_by_node ON camera_owners (node_id);

-- The node that claimed a queued mail (its claim runs until next_attempt_at).
ALTER TABLE outbox ADD COLUMN claimed_by BIGINT;

-- Every node's live streams follow changes made on any node: a notice on commit (never for a
-- rolled-back change) names the row; each node reads it and tells its own streams.
CREATE FUNCTION eyeward_tell_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('eyeward_change', TG_ARGV[0] || ':' || NEW.id);
    RETURN NULL;
END $$;

CREATE TRIGGER events_told AFTER INSERT OR UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION eyeward_tell_change('event');

CREATE TRIGGER dispatch_requests_told AFTER INSERT OR UPDATE ON dispatch_requests
    FOR EACH ROW EXECUTE FUNCTION eyeward_tell_change('dispatch');

-- A camera's new owner: the node that held it closes its link at once.
CREATE FUNCTION eyeward_tell_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('eyeward_change',
        'owner:' || NEW.camera_id || ':' || NEW.generation || ':' || COALESCE(NEW.node_id, 0));
    RETURN NULL;
END $$;

CREATE TRIGGER camera_owners_told AFTER INSERT OR UPDATE ON camera_owners
    FOR EACH ROW EXECUTE FUNCTION eyeward_tell_owner();
