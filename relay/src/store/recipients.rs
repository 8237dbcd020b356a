//! The one recipient rule, over the address book as the store keeps it: the queue of alert
//! mail (`store::mail`, `store::events`) and the sender (`mail`) both take it from here.

use super::AlertAddress;

/// The one recipient rule: an alert about `owner`'s camera goes to `owner`'s confirmed alert
/// addresses and to nothing else — no operator, admin or system address, no copies — once
/// each. Every alert's recipients come from here.
pub fn recipients(owner: i64, addresses: &[AlertAddress]) -> Vec<&AlertAddress> {
    let mut out: Vec<&AlertAddress> = Vec::new();
    for a in addresses {
        let theirs = a.customer_id == owner && a.confirmed_at.is_some();
        if theirs && !out.iter().any(|o| o.email.eq_ignore_ascii_case(&a.email)) {
            out.push(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(id: i64, customer: i64, email: &str, confirmed: bool) -> AlertAddress {
        AlertAddress {
            id,
            customer_id: customer,
            email: email.into(),
            confirmed_at: confirmed.then_some(1),
            confirm_expires: None,
            created_at: 0,
        }
    }

    #[test]
    fn only_the_owners_confirmed_addresses_receive_alerts_once_each() {
        let all = [
            address(1, 7, "a@example.jp", true),
            address(2, 7, "b@example.jp", false),
            address(3, 8, "c@example.jp", true),
            address(4, 7, "A@example.jp", true),
        ];
        let got: Vec<_> = recipients(7, &all).iter().map(|a| a.id).collect();
        assert_eq!(got, [1]);
        assert!(recipients(9, &all).is_empty());
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
            let got = recipients(owner, &book);
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
