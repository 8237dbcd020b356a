//! When a session ends: after a spell of inactivity, or at an absolute age, whichever is first.

use eyeward::UnixMillis;
use std::time::Duration;

/// How long sessions live.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle_timeout: Duration,
    pub max_age: Duration,
}

/// What to do with a session presented at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCheck {
    /// Valid; `touch` says whether to write the new last-seen time (at most once a minute,
    /// so that reading pages does not write to the database on every request).
    Valid { touch: bool },
    /// Over; delete it.
    Expired,
}

const TOUCH_EVERY: Duration = Duration::from_secs(60);

impl SessionPolicy {
    /// When a session created at `created` and last seen at `last_seen` ends, unless it is
    /// seen again first.
    pub fn ends_at(&self, created: UnixMillis, last_seen: UnixMillis) -> UnixMillis {
        created
            .plus(self.max_age)
            .min(last_seen.plus(self.idle_timeout))
    }

    pub fn check(
        &self,
        created: UnixMillis,
        last_seen: UnixMillis,
        now: UnixMillis,
    ) -> SessionCheck {
        if now.since(created) >= self.max_age || now.since(last_seen) >= self.idle_timeout {
            SessionCheck::Expired
        } else {
            SessionCheck::Valid {
                touch: now.since(last_seen) >= TOUCH_EVERY,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_when_idle_or_old() {
        let p = SessionPolicy {
            idle_timeout: Duration::from_secs(3600),
            max_age: Duration::from_secs(86400),
        };
        let t0 = UnixMillis(1_000_000);
        let at = |s: u64| t0.plus(Duration::from_secs(s));
        assert_eq!(
            p.check(t0, t0, at(10)),
            SessionCheck::Valid { touch: false }
        );
        assert_eq!(p.check(t0, t0, at(61)), SessionCheck::Valid { touch: true });
        assert_eq!(
            p.check(t0, t0, at(3600)),
            SessionCheck::Expired,
            "idle an hour"
        );
        // Active all day long still ends at the maximum age.
        assert_eq!(
            p.check(t0, at(86_000), at(86_399)),
            SessionCheck::Valid { touch: true }
        );
        assert_eq!(p.check(t0, at(86_000), at(86_400)), SessionCheck::Expired);
    }
}
