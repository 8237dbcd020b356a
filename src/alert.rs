//! Who gets an alert, and when: the one recipient rule and the cooldown, as plain code over
//! core types. The relay's store queues alert mail by these and its sender checks the rule
//! once more before a mail leaves.

use crate::{CustomerId, UnixMillis};
use std::time::Duration;

/// An entry of a customer's alert address book, as the rule sees it.
pub trait Recipient {
    /// The customer whose address book it is in.
    fn owner(&self) -> CustomerId;
    fn email(&self) -> &str;
    /// Whether its owner proved it is theirs (the link in the confirmation mail).
    fn confirmed(&self) -> bool;
}

/// The one recipient rule: an alert about `owner`'s camera goes to `owner`'s confirmed alert
/// addresses and to nothing else — no operator, admin or system address, no copies — once
/// each. Every alert's recipients come from here.
pub fn recipients<R: Recipient>(owner: CustomerId, addresses: &[R]) -> Vec<&R> {
    let mut out: Vec<&R> = Vec::new();
    for a in addresses {
        let theirs = a.owner() == owner && a.confirmed();
        if theirs
            && !out
                .iter()
                .any(|o| o.email().eq_ignore_ascii_case(a.email()))
        {
            out.push(a);
        }
    }
    out
}

/// Whether a camera whose last alert mail was queued at `last` may have another at `now`:
/// at most one per `cooldown`, the events in between counted in the next.
pub fn alert_due(last: Option<UnixMillis>, now: UnixMillis, cooldown: Duration) -> bool {
    last.is_none_or(|last| now.since(last) >= cooldown)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An address book entry as a store might keep one.
    #[derive(Debug)]
    struct AlertAddress {
        id: i64,
        customer_id: i64,
        email: String,
        confirmed_at: Option<i64>,
    }

    impl Recipient for AlertAddress {
        fn owner(&self) -> CustomerId {
            CustomerId(self.customer_id)
        }
        fn email(&self) -> &str {
            &self.email
        }
        fn confirmed(&self) -> bool {
            self.confirmed_at.is_some()
        }
    }

    fn address(id: i64, customer: i64, email: &str, confirmed: bool) -> AlertAddress {
        AlertAddress {
            id,
            customer_id: customer,
            email: email.into(),
            confirmed_at: confirmed.then_some(1),
        }
    }

    #[test]
    fn a_camera_may_alert_again_once_its_cooldown_is_over() {
        let t0 = UnixMillis(1_800_000_000_000);
        let minute = Duration::from_secs(60);
        assert!(
            alert_due(None, t0, minute),
            "the first alert is due at once"
        );
        assert!(!alert_due(
            Some(t0),
            t0.plus(Duration::from_secs(59)),
            minute
        ));
        assert!(alert_due(Some(t0), t0.plus(minute), minute));
        assert!(
            !alert_due(Some(t0.plus(minute)), t0, minute),
            "a last alert ahead of the clock holds the next"
        );
    }

    #[test]
    fn only_the_owners_confirmed_addresses_receive_alerts_once_each() {
        let all = [
            address(1, 7, "a@example.jp", true),
            address(2, 7, "b@example.jp", false),
            address(3, 8, "c@example.jp", true),
            address(4, 7, "A@example.jp", true),
        ];
        let got: Vec<_> = recipients(CustomerId(7), &all)
            .iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(got, [1]);
        assert!(recipients(CustomerId(9), &all).is_empty());
    }

    /// Random address books: whatever they hold, every recipient is one of the owner's
    /// confirmed addresses, each address at most once, and every such address is there.
    #[test]
    fn the_recipient_rule_holds_for_any_address_book() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..2000 {
            let book: Vec<AlertAddress> = (0..next(12))
                .map(|i| {
                    let email = format!(
                        "{}@example.jp",
                        ["a", "b", "c", "ops", "admin"][next(5) as usize]
                    );
                    address(i as i64, next(3) as i64, &email, next(2) == 1)
                })
                .collect();
            let owner = next(3) as i64;
            let got = recipients(CustomerId(owner), &book);
            for r in &got {
                assert!(r.customer_id == owner && r.confirmed_at.is_some(), "{r:?}");
            }
            let mut emails: Vec<_> = got.iter().map(|r| r.email.to_lowercase()).collect();
            emails.sort();
            emails.dedup();
            assert_eq!(emails.len(), got.len(), "one message per recipient");
            for a in &book {
                if a.customer_id == owner && a.confirmed_at.is_some() {
                    assert!(emails.contains(&a.email.to_lowercase()), "{a:?} left out");
                }
            }
        }
    }
}
