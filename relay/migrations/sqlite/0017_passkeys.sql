-- Passkeys (issue 25): WebAuthn credentials people sign in with instead of a password, and
-- that an operator needs before the console opens. Kept parallel to PostgreSQL's
-- 0006_passkeys.sql.
CREATE TABLE passkeys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- The authenticator's credential id, base64url: unique across every account.
    credential_id TEXT    NOT NULL UNIQUE,
    -- The WebAuthn user handle (a UUID) the authenticator keeps with it: one per account.
    user_handle   TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    -- webauthn-rs's Passkey as JSON: the public key and the signature counter.
    credential    TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX passkeys_by_account ON passkeys (account_id);

-- A registration, sign-in or check under way: the challenge's state, kept here so that any
-- node can finish it, taken once, gone at expires_at.
CREATE TABLE passkey_ceremonies (
    -- SHA-256 of the ceremony token the browser holds.
    token_hash   TEXT   PRIMARY KEY,
    kind         TEXT   NOT NULL CHECK (kind IN ('register', 'sign_in', 'check')),
    -- The session a registration or check is made for; NULL for a sign-in.
    session_hash TEXT,
    state        TEXT   NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX passkey_ceremonies_by_expiry ON passkey_ceremonies (expires_at);

-- The passkey a session was signed in or checked with: removing the passkey ends it, and an
-- operator's session needs one before the console opens.
ALTER TABLE sessions ADD COLUMN passkey_id BIGINT;
