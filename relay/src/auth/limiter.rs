//! Login throttling: failed attempts counted over a sliding window, per account *and* where
//! the attempt comes from. Plain state with `now` passed in; the HTTP layer holds it in a
//! mutex.
//!
//! An attempt is counted when it starts ([`LoginLimiter::begin`]), under the same lock as the
//! check, so parallel guesses cannot all pass a check that none of them has counted yet; a
//! correct password takes its count back ([`LoginLimiter::finish`]).
//!
//! Where an attempt comes from is the browser when it carries the account's known-browser
//! cookie, else the client's address (IPv6 by its /64, which one subscriber holds whole).
//! The limits:
//! - **per account and source**: one browser or address guessing one account;
//! - **per address**: one client trying many accounts;
//! - **per account from new browsers**: many addresses guessing one account together.
//!
//! A known browser is held to its own count alone. So anyone can throttle an account for new
//! browsers (a botnet guessing a guard-center operator's password during an incident), but not
//! lock out its owner logging in from the browser they used before: the device-cookie scheme
//! OWASP recommends against lockout attacks.

use eyeward::UnixMillis;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

/// The limits.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    /// Failures of one account from one known browser, or from one address.
    pub per_account: u32,
    /// Failures from one address, whatever the accounts (known browsers aside).
    pub per_address: u32,
    /// Failures of one account from browsers it does not know, whatever their addresses.
    pub per_account_new_browsers: u32,
    pub window: Duration,
}

/// Keys tracked before stale ones are swept, so a flood of made-up emails cannot grow memory
/// without bound.
const SWEEP_ABOVE: usize = 10_000;

/// Where an attempt comes from, as counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Source {
    /// A browser with the account's known-browser cookie (its hash).
    KnownBrowser(String),
    /// Anything else: the client's address group.
    Address(IpAddr),
}

/// An attempt counted by [`LoginLimiter::begin`], to be settled by [`LoginLimiter::finish`].
#[derive(Debug)]
#[must_use = "an attempt counts as a failure until it is finished"]
pub struct Attempt {
    account: String,
    source: Source,
    at: UnixMillis,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The right password: the source's failures on the account are forgiven.
    Succeeded,
    /// A wrong password (or no such account): it stays counted.
    Failed,
    /// Never checked (the relay was too busy): it does not count.
    Abandoned,
}

#[derive(Debug)]
pub struct LoginLimiter {
    limits: LoginLimits,
    pairs: HashMap<(String, Source), VecDeque<UnixMillis>>,
    addresses: HashMap<IpAddr, VecDeque<UnixMillis>>,
    new_browsers: HashMap<String, VecDeque<UnixMillis>>,
}

impl LoginLimiter {
    pub fn new(limits: LoginLimits) -> Self {
        LoginLimiter {
            limits,
            pairs: HashMap::new(),
            addresses: HashMap::new(),
            new_browsers: HashMap::new(),
        }
    }

    /// Counts an attempt on `account` from `address`, or from a browser the account knows
    /// (`known_browser`, its cookie's hash): `Err(wait)` when that must wait, and nothing is
    /// counted then.
    pub fn begin(
        &mut self,
        account: &str,
        address: IpAddr,
        known_browser: Option<&str>,
        now: UnixMillis,
    ) -> Result<Attempt, Duration> {
        let LoginLimits {
            per_account,
            per_address,
            per_account_new_browsers,
            window,
        } = self.limits;
        self.sweep(now);
        let group = address_group(address);
        let source = match known_browser {
            Some(hash) => Source::KnownBrowser(hash.to_owned()),
            None => Source::Address(group),
        };
        let pair = (account.to_owned(), source);
        let mut waits = vec![
            self.pairs
                .get(&pair)
                .and_then(|f| wait(f, per_account, window, now)),
        ];
        if known_browser.is_none() {
            waits.push(
                self.addresses
                    .get(&group)
                    .and_then(|f| wait(f, per_address, window, now)),
            );
            waits.push(
                self.new_browsers
                    .get(account)
                    .and_then(|f| wait(f, per_account_new_browsers, window, now)),
            );
        }
        if let Some(d) = waits.into_iter().flatten().max() {
            return Err(d);
        }
        push(
            self.pairs.entry(pair.clone()).or_default(),
            per_account,
            window,
            now,
        );
        if known_browser.is_none() {
            push(
                self.addresses.entry(group).or_default(),
                per_address,
                window,
                now,
            );
            push(
                self.new_browsers.entry(account.to_owned()).or_default(),
                per_account_new_browsers,
                window,
                now,
            );
        }
        Ok(Attempt {
            account: pair.0,
            source: pair.1,
            at: now,
        })
    }

    /// Settles an attempt: a success forgives its source's failures on the account and takes
    /// its own count back elsewhere (one good password must not reset the count of a client
    /// that tries many accounts); an abandoned one takes its count back everywhere.
    pub fn finish(&mut self, attempt: Attempt, outcome: Outcome) {
        let pair = (attempt.account, attempt.source);
        match outcome {
            Outcome::Failed => return,
            Outcome::Succeeded => {
                self.pairs.remove(&pair);
            }
            Outcome::Abandoned => retract(self.pairs.get_mut(&pair), attempt.at),
        }
        let (account, source) = pair;
        if let Source::Address(group) = source {
            retract(self.addresses.get_mut(&group), attempt.at);
            retract(self.new_browsers.get_mut(&account), attempt.at);
        }
    }

    /// Drops stale keys once there are many, so memory stays bounded.
    fn sweep(&mut self, now: UnixMillis) {
        let window = self.limits.window;
        if self.pairs.len() + self.addresses.len() + self.new_browsers.len() > SWEEP_ABOVE {
            self.pairs.retain(|_, f| prune(f, window, now));
            self.addresses.retain(|_, f| prune(f, window, now));
            self.new_browsers.retain(|_, f| prune(f, window, now));
        }
    }
}

/// The addresses one client holds: an IPv4 address alone (an IPv4-mapped IPv6 one as that),
/// an IPv6 address by its /64, the least a subscriber is given.
pub fn address_group(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
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

/// Takes back one count made at `at`, if it is still there.
fn retract(failures: Option<&mut VecDeque<UnixMillis>>, at: UnixMillis) {
    if let Some(f) = failures
        && let Some(i) = f.iter().rposition(|t| *t == at)
    {
        f.remove(i);
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
        per_account_new_browsers: 6,
        window: Duration::from_secs(60),
    };

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    fn at(s: u64) -> UnixMillis {
        UnixMillis(0).plus(Duration::from_secs(s))
    }

    /// A failed attempt, as the handler makes one.
    fn fail(l: &mut LoginLimiter, account: &str, address: IpAddr, browser: Option<&str>, s: u64) {
        let a = l.begin(account, address, browser, at(s)).expect("allowed");
        l.finish(a, Outcome::Failed);
    }

    #[test]
    fn an_address_is_throttled_on_an_account_after_its_limit_until_the_window_passes() {
        let mut l = LoginLimiter::new(LIMITS);
        fail(&mut l, "a@x.jp", ip(1), None, 0);
        fail(&mut l, "a@x.jp", ip(1), None, 10);
        fail(&mut l, "a@x.jp", ip(1), None, 20);
        assert_eq!(
            l.begin("a@x.jp", ip(1), None, at(21)).unwrap_err(),
            Duration::from_secs(39)
        );
        assert!(
            l.begin("b@x.jp", ip(1), None, at(21)).is_ok(),
            "other accounts"
        );
        assert!(
            l.begin("a@x.jp", ip(2), None, at(21)).is_ok(),
            "other addresses"
        );
        // The first failure leaves the window: one more try is allowed.
        assert!(l.begin("a@x.jp", ip(1), None, at(60)).is_ok());
    }

    #[test]
    fn parallel_attempts_are_counted_before_any_finishes() {
        let mut l = LoginLimiter::new(LIMITS);
        let started: Vec<_> = (0..60)
            .filter_map(|_| l.begin("a@x.jp", ip(1), None, at(0)).ok())
            .collect();
        assert_eq!(started.len(), 3, "only the limit is let through");
    }

    #[test]
    fn an_abandoned_attempt_does_not_count_and_a_success_forgives_its_source() {
        let mut l = LoginLimiter::new(LIMITS);
        fail(&mut l, "a@x.jp", ip(1), None, 0);
        fail(&mut l, "a@x.jp", ip(1), None, 1);
        let a = l.begin("a@x.jp", ip(1), None, at(2)).unwrap();
        l.finish(a, Outcome::Abandoned);
        let a = l.begin("a@x.jp", ip(1), None, at(3)).unwrap();
        l.finish(a, Outcome::Succeeded);
        for s in 4..7 {
            fail(&mut l, "a@x.jp", ip(1), None, s);
        }
        assert!(l.begin("a@x.jp", ip(1), None, at(7)).is_err());
    }

    #[test]
    fn an_address_trying_many_accounts_is_throttled_and_a_success_does_not_reset_it() {
        let mut l = LoginLimiter::new(LIMITS);
        for i in 0..4 {
            fail(&mut l, &format!("u{i}@x.jp"), ip(1), None, i);
        }
        let ok = l.begin("mine@x.jp", ip(1), None, at(4)).unwrap();
        l.finish(ok, Outcome::Succeeded);
        fail(&mut l, "u9@x.jp", ip(1), None, 5);
        assert_eq!(
            l.begin("new@x.jp", ip(1), None, at(6)).unwrap_err(),
            Duration::from_secs(54)
        );
        assert!(l.begin("new@x.jp", ip(2), None, at(6)).is_ok());
    }

    #[test]
    fn guesses_from_many_addresses_throttle_new_browsers_but_not_the_owners_known_one() {
        let mut l = LoginLimiter::new(LIMITS);
        // A botnet: two guesses from each of three addresses.
        for (i, n) in [1u8, 1, 2, 2, 3, 3].into_iter().enumerate() {
            fail(&mut l, "op@x.jp", ip(n), None, i as u64);
        }
        assert!(
            l.begin("op@x.jp", ip(4), None, at(7)).is_err(),
            "a new browser waits"
        );
        // The operator's own browser, known to the account, still gets in, even from an
        // address the botnet used.
        let own = l
            .begin("op@x.jp", ip(3), Some("own-browser"), at(7))
            .unwrap();
        l.finish(own, Outcome::Succeeded);
        // A known browser is held to its own count.
        for s in 8..11 {
            fail(&mut l, "op@x.jp", ip(3), Some("own-browser"), s);
        }
        assert!(
            l.begin("op@x.jp", ip(3), Some("own-browser"), at(11))
                .is_err()
        );
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_group(a), address_group(b));
        assert_ne!(address_group(a), address_group(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_group(mapped), ip(7));
        let mut l = LoginLimiter::new(LIMITS);
        for s in 0..3 {
            fail(&mut l, "a@x.jp", if s % 2 == 0 { a } else { b }, None, s);
        }
        assert!(
            l.begin("a@x.jp", b, None, at(3)).is_err(),
            "one /64, one client"
        );
        assert!(l.begin("a@x.jp", other, None, at(3)).is_ok());
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_names() {
        let mut l = LoginLimiter::new(LIMITS);
        for i in 0..30_000u64 {
            fail(
                &mut l,
                &format!("u{i}@x.jp"),
                ip((i % 200) as u8),
                None,
                i * 61,
            );
        }
        assert!(l.pairs.len() + l.addresses.len() + l.new_browsers.len() <= SWEEP_ABOVE + 3);
    }
}
