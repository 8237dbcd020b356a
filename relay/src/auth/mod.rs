//! Authentication: password hashes, passkeys, random tokens, session lifetimes and login
//! throttling.
//! Decisions here take `now` as an argument; the HTTP layer supplies the clock.

mod limiter;
mod passkey;
mod password;
mod session;
mod token;

pub use limiter::{Attempt, LoginLimiter, LoginLimits, Outcome, address_group};
pub use passkey::{
    CEREMONY_TIMEOUT, Ceremony, CeremonyKind, MAX_PASSKEYS, PasskeyUser, RelyingParty,
    credential_key, passkey_refused,
};
pub use password::{
    hash_identity_password, hash_password, password_checks_at_once, verify_password,
};
pub use session::{SessionCheck, SessionPolicy};
pub use token::{Token, hash_token};
