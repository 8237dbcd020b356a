//! Argon2id password hashes (the argon2 crate's defaults: 19 MiB, 2 passes, 1 lane, as OWASP
//! recommends), in the PHC string format so the parameters travel with each hash.

use crate::error::Error;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use eyeward::Password;
use eyeward::identity::IdentityPassword;
use std::sync::LazyLock;

/// A hash of no one's password, verified against when an email is unknown so that a login
/// for a missing account takes as long as one with a wrong password.
static DECOY_HASH: LazyLock<String> = LazyLock::new(|| {
    hash_password(&Password::new("decoy password, never used").expect("long enough"))
        .expect("hashing a fixed password works")
});

/// How many passwords the relay checks at once: two per core. Each check holds argon2id's
/// 19 MiB; more at once would only queue for the cores while holding memory, and a flood of
/// logins could take the relay's memory.
pub fn password_checks_at_once() -> usize {
    2 * std::thread::available_parallelism().map_or(1, usize::from)
}

/// Hashes a password with a fresh random salt. Slow by design: call off the async runtime.
pub fn hash_password(password: &Password) -> Result<String, Error> {
    hash_secret(password.expose())
}

/// Hashes a customer's identity-check password (its spoken form) as a password is hashed, off
/// the async runtime.
pub async fn hash_identity_password(word: IdentityPassword) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || hash_secret(word.expose()))
        .await
        .map_err(|e| Error::internal("identity-check password hash").with_source(e))?
}

fn hash_secret(secret: &str) -> Result<String, Error> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| Error::internal("password salt").with_source(e))?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal("password hash").with_source(e))
}

/// Checks `password` against `hash`, or against a decoy when there is no account, so both
/// cases cost the same. Slow by design: call off the async runtime.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let matches = |h: &str| {
        PasswordHash::new(h).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    };
    match hash {
        Some(h) => matches(h),
        None => {
            matches(&DECOY_HASH);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let p = Password::new("correct horse battery").unwrap();
        let h = hash_password(&p).unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", Some(&h)));
        assert!(!verify_password("correct horse batterY", Some(&h)));
        assert!(!verify_password("correct horse battery", None));
        assert!(!verify_password("x", Some("not a phc string")));
        assert_ne!(h, hash_password(&p).unwrap(), "salts must differ");
    }
}
