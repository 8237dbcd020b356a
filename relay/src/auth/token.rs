//! Random bearer secrets (session cookies, agent tokens): 256 bits from the OS's CSPRNG,
//! shown once, stored only as a SHA-256 hash. A fast hash suffices: the secret has full
//! entropy, so there is nothing to guess.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::fmt;

/// A freshly made secret with its stored hash.
pub struct Token {
    secret: String,
    pub hash: String,
}

impl Token {
    /// A new secret, with `prefix` so that leaked tokens are easy to recognise and scan for.
    pub fn generate(prefix: &str) -> Token {
        let secret = format!(
            "{prefix}{}",
            URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
        );
        let hash = hash_token(&secret);
        Token { secret, hash }
    }

    /// The secret itself: give it to its owner once, never log it.
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// The stored form of a secret: lower-case hex SHA-256.
pub fn hash_token(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let a = Token::generate("ewa_");
        let b = Token::generate("ewa_");
        assert_ne!(a.secret(), b.secret());
        assert!(a.secret().starts_with("ewa_"));
        assert_eq!(a.secret().len(), 4 + 43, "256 bits in unpadded base64url");
        assert_eq!(a.hash, hash_token(a.secret()));
        assert_eq!(a.hash.len(), 64);
        assert!(!format!("{a:?}").contains(a.secret()));
    }
}
