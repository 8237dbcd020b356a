-- Arming (eyeward::arming): the household's mode set by hand and when (NULL: never, so the
-- schedule or the default, Away, holds), its weekly schedule, and each camera's alert
-- switches. Events are recorded whatever the mode; `armed` says whether one could alert.
ALTER TABLE accounts ADD COLUMN arming_mode TEXT NOT NULL DEFAULT 'away'
    CHECK (arming_mode IN ('away', 'home', 'off'));
ALTER TABLE accounts ADD COLUMN arming_set_at BIGINT;
-- The latest scheduled switch already written to the history (each is written once).
ALTER TABLE accounts ADD COLUMN arming_schedule_seen BIGINT;
CREATE TABLE arming_switches (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- Bit 0 Monday … bit 6 Sunday.
    days        INTEGER NOT NULL CHECK (days BETWEEN 1 AND 127),
    -- Minutes past midnight, home time.
    minute      INTEGER NOT NULL CHECK (minute BETWEEN 0 AND 1439),
    mode        TEXT    NOT NULL CHECK (mode IN ('away', 'home', 'off')),
    created_at  BIGINT  NOT NULL
);
CREATE INDEX arming_switches_by_customer ON arming_switches (customer_id);
ALTER TABLE cameras ADD COLUMN alert_when_away BOOLEAN NOT NULL DEFAULT 1;
ALTER TABLE cameras ADD COLUMN alert_when_home BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN armed BOOLEAN NOT NULL DEFAULT 1;
