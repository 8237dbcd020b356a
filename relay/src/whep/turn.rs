//! Time-limited TURN credentials: the TURN REST API scheme (draft-uberti-behave-turn-rest)
//! that coturn checks with `use-auth-secret`. The relay and the TURN server share a secret;
//! each viewer is handed a username `<expiry unix time>:<viewer>` and, as its password, the
//! base64 HMAC-SHA1 of that username under the secret. The TURN server recomputes the password
//! and refuses a username whose time has passed, so a credential copied out of one viewer's
//! page is no use to anyone after it expires, and no two viewers share one.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use eyeward::UnixMillis;
use ring::hmac;

/// One viewer's TURN username and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnCredential {
    pub username: String,
    pub password: String,
}

/// The credential for `viewer` (a short name, e.g. `c42`) valid until `expires`.
pub fn credential(secret: &str, viewer: &str, expires: UnixMillis) -> TurnCredential {
    let username = format!("{}:{viewer}", expires.0.div_euclid(1000));
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let password = STANDARD.encode(hmac::sign(&key, username.as_bytes()));
    TurnCredential { username, password }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_password_is_the_base64_hmac_sha1_of_the_username_under_the_secret() {
        // Worked out independently: printf '1764288000:c7' | openssl dgst -sha1 -hmac
        // 'north-gate-secret' -binary | base64
        let c = credential("north-gate-secret", "c7", UnixMillis(1_764_288_000_000));
        assert_eq!(c.username, "1764288000:c7");
        assert_eq!(c.password, "8rWeyMoh1O9BGRTSE+1qEK0RqpU=");
    }

    #[test]
    fn viewers_and_expiries_get_different_passwords() {
        let at = UnixMillis(1_764_288_000_000);
        let a = credential("s", "c1", at);
        let b = credential("s", "c2", at);
        let later = credential("s", "c1", at.plus(Duration::from_secs(3600)));
        assert_ne!(a.password, b.password);
        assert_ne!(a.password, later.password);
    }
}
