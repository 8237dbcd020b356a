-- The identity-check password (issue 28): a word the customer chose, separate from the login,
-- by which the guard center checks on the phone that a caller is the customer; hashed like a
-- password, never shown. The checks are counted here for their limit per hour, so that every
-- node counts the same. Kept parallel to SQLite's 0019_identity_checks.sql.
CREATE TABLE identity_passwords (
    customer_id       BIGINT NOT NULL PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    -- Argon2id of the word in its spoken form (eyeward::identity::spoken_form).
    hash              TEXT   NOT NULL,
    set_at            BIGINT NOT NULL,
    -- The checks counted for the limit: since when, and how many (eyeward::identity::admit).
    window_started_at BIGINT NOT NULL DEFAULT 0,
    checks_in_window  BIGINT NOT NULL DEFAULT 0
);
