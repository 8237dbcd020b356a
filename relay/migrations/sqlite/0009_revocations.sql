-- A counter bumped, in the same transaction, by whatever takes away what authorised a
-- long-lived thing (a session ended, a password set, an account or camera removed, an agent
-- token replaced). The relay reads it every second, so it notices changes made by another
-- process (the admin command) too, and checks the grants of its live views, event streams and
-- agent links again.
CREATE TABLE revocations (
    generation BIGINT NOT NULL
);
INSERT INTO revocations (generation) VALUES (0);
