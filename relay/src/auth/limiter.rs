//! Login throttling: failed attempts counted per account and per client address over a
//! sliding window. Plain state with `now` passed in; the HTTP layer holds it in a mutex.
//!
//! Per account, so a password cannot be guessed from many addresses; per address, so one
//! client cannot try many accounts. A correct password does not get past a locked account:
//! otherwise the lock would only slow the guessing down.

use eyeward::UnixMillis;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

/// The limits.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub per_account: u32,
    pub per_address: u32,
    pub window: Duration,
}

/// Keys tracked before stale ones are swept, so a flood of made-up emails cannot grow memory
/// without bound.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug)]
pub struct LoginLimiter {
    limits: LoginLimits,
    accounts: HashMap<String, VecDeque<UnixMillis>>,
    addresses: HashMap<IpAddr, VecDeque<UnixMillis>>,
}

impl LoginLimiter {
    pub fn new(limits: LoginLimits) -> Self {
        LoginLimiter {
            limits,
            accounts: HashMap::new(),
            addresses: HashMap::new(),
        }
    }

    /// `Err(wait)` when this account or address must wait before trying again.
    pub fn check(&self, account: &str, address: IpAddr, now: UnixMillis) -> Result<(), Duration> {
        let window = self.limits.window;
        let account_wait = self
            .accounts
            .get(account)
            .and_then(|f| wait(f, self.limits.per_account, window, now));
        let address_wait = self
            .addresses
            .get(&address)
            .and_then(|f| wait(f, self.limits.per_address, window, now));
        match account_wait.max(address_wait) {
            Some(d) => Err(d),
            None => Ok(()),
        }
    }

    pub fn record_failure(&mut self, account: &str, address: IpAddr, now: UnixMillis) {
        let (window, per_account, per_address) = (
            self.limits.window,
            self.limits.per_account,
            self.limits.per_address,
        );
        if self.accounts.len() + self.addresses.len() > SWEEP_ABOVE {
            self.accounts.retain(|_, f| prune(f, window, now));
            self.addresses.retain(|_, f| prune(f, window, now));
        }
        push(
            self.accounts.entry(account.to_owned()).or_default(),
            per_account,
            window,
            now,
        );
        push(
            self.addresses.entry(address).or_default(),
            per_address,
            window,
            now,
        );
    }

    /// A successful login clears the account's failures (not the address's: one good
    /// password must not reset the count of a client that tries many accounts).
    pub fn record_success(&mut self, account: &str) {
        self.accounts.remove(account);
    }
}

/// Drops failures that left the window; false when none remain.
fn prune(failures: &mut VecDeque<UnixMillis>, window: Duration, now: UnixMillis) -> bool {
    while failures.front().is_some_and(|t| now.since(*t) >= window) {
        failures.pop_front();
    }
    !failures.is_empty()
}

fn push(failures: &mut VecDeque<UnixMillis>, limit: u32, window: Duration, now: UnixMillis) {
    prune(failures, window, now);
    failures.push_back(now);
    // Only the newest `limit` failures matter to `wait`.
    while failures.len() > limit as usize {
        failures.pop_front();
    }
}

/// How long until the oldest of the last `limit` failures leaves the window, if the limit is hit.
fn wait(
    failures: &VecDeque<UnixMillis>,
    limit: u32,
    window: Duration,
    now: UnixMillis,
) -> Option<Duration> {
    let recent: Vec<_> = failures
        .iter()
        .filter(|t| now.since(**t) < window)
        .collect();
    if recent.len() < limit as usize {
        return None;
    }
    let oldest = recent[recent.len() - limit as usize];
    Some(window.saturating_sub(now.since(*oldest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: LoginLimits = LoginLimits {
        per_account: 3,
        per_address: 5,
        window: Duration::from_secs(60),
    };

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    fn at(s: u64) -> UnixMillis {
        UnixMillis(0).plus(Duration::from_secs(s))
    }

    #[test]
    fn an_account_locks_after_its_limit_from_any_address_until_the_window_passes() {
        let mut l = LoginLimiter::new(LIMITS);
        l.record_failure("a@x.jp", ip(1), at(0));
        l.record_failure("a@x.jp", ip(2), at(10));
        assert_eq!(l.check("a@x.jp", ip(3), at(11)), Ok(()));
        l.record_failure("a@x.jp", ip(3), at(20));
        assert_eq!(
            l.check("a@x.jp", ip(4), at(21)),
            Err(Duration::from_secs(39))
        );
        assert_eq!(
            l.check("b@x.jp", ip(4), at(21)),
            Ok(()),
            "other accounts unaffected"
        );
        assert_eq!(
            l.check("a@x.jp", ip(4), at(59)),
            Err(Duration::from_secs(1))
        );
        // The first failure leaves the window: one more try is allowed.
        assert_eq!(l.check("a@x.jp", ip(4), at(60)), Ok(()));
    }

    #[test]
    fn an_address_locks_after_trying_many_accounts() {
        let mut l = LoginLimiter::new(LIMITS);
        for i in 0..5 {
            l.record_failure(&format!("u{i}@x.jp"), ip(1), at(i));
        }
        assert_eq!(
            l.check("new@x.jp", ip(1), at(5)),
            Err(Duration::from_secs(55))
        );
        assert_eq!(l.check("new@x.jp", ip(2), at(5)), Ok(()));
    }

    #[test]
    fn success_clears_the_account_but_not_the_address() {
        let mut l = LoginLimiter::new(LIMITS);
        for i in 0..3 {
            l.record_failure("a@x.jp", ip(1), at(i));
        }
        l.record_success("a@x.jp");
        assert_eq!(l.check("a@x.jp", ip(2), at(4)), Ok(()));
        l.record_failure("b@x.jp", ip(1), at(5));
        l.record_failure("c@x.jp", ip(1), at(6));
        assert!(
            l.check("z@x.jp", ip(1), at(7)).is_err(),
            "address still counts 5"
        );
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_names() {
        let mut l = LoginLimiter::new(LIMITS);
        for i in 0..30_000u64 {
            l.record_failure(&format!("u{i}@x.jp"), ip((i % 200) as u8), at(i * 61));
        }
        assert!(l.accounts.len() + l.addresses.len() <= SWEEP_ABOVE + 2);
    }
}
