//! Who gets an alert, and when: the one recipient rule and the cooldown, as plain code over
//! core types. The relay's store queues alert mail by these and its sender checks the rule
//! once more before a mail leaves.

use crate::{CustomerId, UnixMillis};
use std::time::Duration;

/// An entry of a household's alert address book, as the rule sees it: the holder's own
/// addresses, and those of the people they let in (`crate::household`).
pub trait Recipient {
    /// The customer whose household's address book it is in.
    fn owner(&self) -> CustomerId;
    fn email(&self) -> &str;
    /// Whether its person proved it is theirs (the link in the confirmation mail).
    fn confirmed(&self) -> bool;
    /// Whether its person receives what is being sent: the holder everything, a member the
    /// alerts of the cameras they were given `alerts` on while their access lasts, and none
    /// of the holder's notices.
    fn receives(&self) -> bool;
}

/// The one recipient rule: an alert about `owner`'s camera goes to the confirmed alert
/// addresses of `owner`'s household whose person receives it, and to nothing else — no
/// operator, admin or system address, no other household, no copies — once each. Every
/// alert's recipients come from here.
pub fn recipients<R: Recipient>(owner: CustomerId, addresses: &[R]) -> Vec<&R> {
    let mut out: Vec<&R> = Vec::new();
    for a in addresses {
        let theirs = a.owner() == owner && a.confirmed() && a.receives();
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

/// A device that takes alerts as notifications (a Web Push subscription), as the rule sees it.
/// Its person subscribed it from a session of theirs: that is its proof, as the confirmation
/// link is an address's.
pub trait Device {
    /// The customer whose household its person is in.
    fn owner(&self) -> CustomerId;
    /// Whether its person receives this alert (as [`Recipient::receives`]).
    fn receives(&self) -> bool;
}

/// The one recipient rule for devices: an alert about `owner`'s camera goes to the devices of
/// the people of `owner`'s household who receive it, and to no other.
pub fn devices<D: Device>(owner: CustomerId, devices: &[D]) -> Vec<&D> {
    devices
        .iter()
        .filter(|d| d.owner() == owner && d.receives())
        .collect()
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
        receives: bool,
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
        fn receives(&self) -> bool {
            self.receives
        }
    }

    fn address(id: i64, customer: i64, email: &str, confirmed: bool) -> AlertAddress {
        AlertAddress {
            id,
            customer_id: customer,
            email: email.into(),
            confirmed_at: confirmed.then_some(1),
            receives: true,
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

    #[test]
    fn a_household_members_address_receives_only_what_they_were_given() {
        let mut member = address(5, 7, "m@example.jp", true);
        member.receives = false;
        let all = [address(1, 7, "a@example.jp", true), member];
        let got: Vec<_> = recipients(CustomerId(7), &all)
            .iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(
            got,
            [1],
            "not given alerts on this camera, or their access ended"
        );
        let given = [address(5, 7, "m@example.jp", true)];
        assert_eq!(recipients(CustomerId(7), &given).len(), 1);
    }

    struct Phone {
        household: i64,
        receives: bool,
    }

    impl Device for Phone {
        fn owner(&self) -> CustomerId {
            CustomerId(self.household)
        }
        fn receives(&self) -> bool {
            self.receives
        }
    }

    #[test]
    fn only_the_devices_of_the_owners_people_who_receive_it_get_an_alert() {
        let phone = |household, receives| Phone {
            household,
            receives,
        };
        let all = [phone(7, true), phone(8, true), phone(7, false)];
        let got = devices(CustomerId(7), &all);
        assert_eq!(got.len(), 1);
        assert!(got[0].household == 7 && got[0].receives);
        assert!(devices(CustomerId(9), &all).is_empty());
    }

    /// Random address books: whatever they hold, every recipient is one of the owner's
    /// household's confirmed addresses whose person receives it, each address at most once,
    /// and every such address is there.
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
                    let mut a = address(i as i64, next(3) as i64, &email, next(2) == 1);
                    a.receives = next(4) != 0;
                    a
                })
                .collect();
            let owner = next(3) as i64;
            let got = recipients(CustomerId(owner), &book);
            for r in &got {
                assert!(
                    r.customer_id == owner && r.confirmed_at.is_some() && r.receives,
                    "{r:?}"
                );
            }
            let mut emails: Vec<_> = got.iter().map(|r| r.email.to_lowercase()).collect();
            emails.sort();
            emails.dedup();
            assert_eq!(emails.len(), got.len(), "one message per recipient");
            for a in &book {
                if a.customer_id == owner && a.confirmed_at.is_some() && a.receives {
                    assert!(emails.contains(&a.email.to_lowercase()), "{a:?} left out");
                }
            }
        }
    }
}
