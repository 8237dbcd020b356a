-- The household (issue 25): the account holder (a customer) lets people in. A member is an
-- account of its own (role 'member': SQLite cannot widen a CHECK in place, so store::schema
-- rebuilds accounts, history and dispatch_transitions with 'member' added to their checks)
-- that belongs to one customer's household, with rights per camera; a guest's end at
-- access_until.
ALTER TABLE accounts ADD COLUMN household_id BIGINT REFERENCES accounts (id) ON DELETE CASCADE;
ALTER TABLE accounts ADD COLUMN access_until BIGINT;
CREATE INDEX accounts_by_household ON accounts (household_id);

-- What a member may do with each camera: eyeward::household::Rights, names joined by commas.
CREATE TABLE member_rights (
    member_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    camera_id BIGINT NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    rights    TEXT   NOT NULL,
    PRIMARY KEY (member_id, camera_id)
);
CREATE INDEX member_rights_by_camera ON member_rights (camera_id);

-- An invitation by mail: single use, until expires_at. The rights it gives (a JSON
-- eyeward::household::Membership) become the member's when it is taken.
CREATE TABLE invitations (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    household_id BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    email        TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    lang         TEXT    NOT NULL CHECK (lang IN ('ja', 'en')),
    membership   TEXT    NOT NULL,
    -- SHA-256 of the link's token; NULL once taken or withdrawn.
    token_hash   TEXT    UNIQUE,
    expires_at   BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,
    accepted_at  BIGINT,
    -- The member it made (NULL again once they are removed).
    accepted_by  BIGINT  REFERENCES accounts (id) ON DELETE SET NULL,
    withdrawn_at BIGINT
);
CREATE INDEX invitations_by_household ON invitations (household_id, id);
