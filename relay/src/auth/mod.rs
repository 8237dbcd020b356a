//! Authentication: password hashes, random tokens, session lifetimes and login throttling.
//! Decisions here take `now` as an argument; the HTTP layer supplies the clock.

mod limiter;
mod password;
mod session;
mod token;

pub use limiter::{LoginLimiter, LoginLimits};
pub use password::{hash_password, verify_password};
pub use session::{SessionCheck, SessionPolicy};
pub use token::{Token, hash_token};
