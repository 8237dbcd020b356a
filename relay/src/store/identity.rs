//! The identity-check password: its hash, when it was set, and the checks counted for its
//! hourly limit. The rules (the spoken form, the limit) are [`eyeward::identity`]; the count
//! is stored with `UPDATE … WHERE` the count it was decided from, so two checks at once on two
//! nodes cannot both take the last turn.

use super::history::{Audit, record};
use super::{Store, on};
use crate::error::{Error, ErrorKind};
use eyeward::identity::{CheckWindow, admit};
use eyeward::{CustomerId, GuardCenter, UnixMillis};
use serde_json::json;

/// Where an operator's check of a customer's identity-check password stands before the
/// word is compared.
#[derive(Debug)]
pub enum IdentityCheckTurn {
    /// The customer has none: nothing to compare (and nothing counted).
    NotSet,
    /// The hour's checks are used up: the next one may be made at this time.
    Exhausted { next_at: UnixMillis },
    /// This check is counted: compare the word with this hash.
    Counted { hash: String },
}

/// How many times a check retries the count when another check changed it meanwhile.
const COUNT_ATTEMPTS: usize = 5;

impl Store {
    /// Sets customer `customer`'s identity-check password to `hash` (by the customer, or by
    /// the company's desk: `action` says which, in the history, which mails the customer);
    /// false if there is no such customer. The count of checks is kept: a new word does not
    /// buy new guesses.
    pub async fn set_identity_password(
        &self,
        customer: CustomerId,
        hash: &str,
        audit: &Audit,
        action: &str,
    ) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        let exists = on!(tx, c => sqlx::query_as::<_, (i64,)>(
            "SELECT id FROM accounts WHERE id = $1 AND role = 'customer'",
        )
        .bind(customer.0)
        .fetch_optional(c)
        .await)?
        .is_some();
        if !exists {
            return Ok(false);
        }
        on!(tx, c => sqlx::query(
            "INSERT INTO identity_passwords (customer_id, hash, set_at) VALUES ($1, $2, $3) \
             ON CONFLICT (customer_id) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
        )
        .bind(customer.0)
        .bind(hash)
        .bind(audit.at.0)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        record(&mut tx, audit, Some(customer), action, json!({})).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// When customer `customer` last set an identity-check password, if they have one.
    pub async fn identity_password_set_at(
        &self,
        customer: CustomerId,
    ) -> Result<Option<UnixMillis>, Error> {
        let row: Option<(i64,)> = on!(self.pool, c => sqlx::query_as(
            "SELECT set_at FROM identity_passwords WHERE customer_id = $1",
        )
        .bind(customer.0)
        .fetch_optional(c)
        .await)?;
        Ok(row.map(|(at,)| UnixMillis(at)))
    }

    /// Takes a turn at checking the identity-check password of customer `customer` of
    /// `center` at `now`: `None` if there is no such customer at that center (another
    /// center's customer is told apart from none by nobody).
    pub async fn begin_identity_check(
        &self,
        center: GuardCenter,
        customer: CustomerId,
        now: UnixMillis,
    ) -> Result<Option<IdentityCheckTurn>, Error> {
        type Row = (Option<String>, Option<i64>, Option<i64>);
        for _ in 0..COUNT_ATTEMPTS {
            let row: Option<Row> = on!(self.pool, c => sqlx::query_as(
                "SELECT p.hash, p.window_started_at, p.checks_in_window FROM accounts a \
                 LEFT JOIN identity_passwords p ON p.customer_id = a.id \
                 WHERE a.id = $1 AND a.role = 'customer' AND a.guard_center = $2",
            )
            .bind(customer.0)
            .bind(center.as_str())
            .fetch_optional(c)
            .await)?;
            let Some((hash, started_at, checks)) = row else {
                return Ok(None);
            };
            let (Some(hash), Some(started_at), Some(checks)) = (hash, started_at, checks) else {
                return Ok(Some(IdentityCheckTurn::NotSet));
            };
            let window = CheckWindow {
                started_at: UnixMillis(started_at),
                checks,
            };
            let next = match admit(window, now) {
                Ok(next) => next,
                Err(next_at) => return Ok(Some(IdentityCheckTurn::Exhausted { next_at })),
            };
            let counted = on!(self.pool, c => sqlx::query(
                "UPDATE identity_passwords SET window_started_at = $2, checks_in_window = $3 \
                 WHERE customer_id = $1 AND window_started_at = $4 AND checks_in_window = $5",
            )
            .bind(customer.0)
            .bind(next.started_at.0)
            .bind(next.checks)
            .bind(window.started_at.0)
            .bind(window.checks)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
            if counted == 1 {
                return Ok(Some(IdentityCheckTurn::Counted { hash }));
            }
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            "the customer's identity is being checked from elsewhere; try again",
        )
        .retry_after(std::time::Duration::from_secs(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Audit;
    use crate::store::testing::{customer, customer_audit, store};
    use eyeward::identity::{CHECK_WINDOW_MS, CHECKS_PER_WINDOW};

    const AT: UnixMillis = UnixMillis(1_000_000);
    const SET: &str = "identity.password_set";

    async fn turn(s: &Store, center: GuardCenter, c: CustomerId) -> Option<IdentityCheckTurn> {
        s.begin_identity_check(center, c, AT).await.unwrap()
    }

    #[tokio::test]
    async fn checks_count_per_customer_and_stop_at_the_limit_until_the_hour_ends() {
        let (s, _dir) = store().await;
        let c = customer(&s, "a@example.jp").await;
        let other = customer(&s, "b@example.jp").await;
        let tokyo = GuardCenter::Tokyo;
        assert!(matches!(
            turn(&s, tokyo, c).await,
            Some(IdentityCheckTurn::NotSet)
        ));
        for who in [c, other] {
            let audit = customer_audit(who.0, AT);
            assert!(
                s.set_identity_password(who, "hash", &audit, SET)
                    .await
                    .unwrap()
            );
        }
        for _ in 0..CHECKS_PER_WINDOW {
            let t = turn(&s, tokyo, c).await;
            assert!(matches!(t, Some(IdentityCheckTurn::Counted { hash }) if hash == "hash"));
        }
        let ends = UnixMillis(AT.0 + CHECK_WINDOW_MS);
        assert!(matches!(
            turn(&s, tokyo, c).await,
            Some(IdentityCheckTurn::Exhausted { next_at }) if next_at == ends
        ));
        // A new word does not buy new guesses; another customer's count is their own.
        let audit = customer_audit(c.0, AT);
        s.set_identity_password(c, "other", &audit, SET)
            .await
            .unwrap();
        assert!(matches!(
            turn(&s, tokyo, c).await,
            Some(IdentityCheckTurn::Exhausted { .. })
        ));
        assert!(matches!(
            turn(&s, tokyo, other).await,
            Some(IdentityCheckTurn::Counted { .. })
        ));
        let next_hour = s.begin_identity_check(tokyo, c, ends).await.unwrap();
        assert!(matches!(next_hour, Some(IdentityCheckTurn::Counted { hash }) if hash == "other"));
    }

    #[tokio::test]
    async fn another_centers_customer_and_a_missing_one_are_no_one_to_check() {
        let (s, _dir) = store().await;
        let c = customer(&s, "a@example.jp").await;
        let audit = customer_audit(c.0, AT);
        s.set_identity_password(c, "hash", &audit, SET)
            .await
            .unwrap();
        assert!(turn(&s, GuardCenter::West, c).await.is_none());
        let nobody = CustomerId(c.0 + 100);
        assert!(turn(&s, GuardCenter::Tokyo, nobody).await.is_none());
        let reset = "identity.password_reset";
        assert!(
            !s.set_identity_password(nobody, "h", &Audit::admin(AT), reset)
                .await
                .unwrap()
        );
        let history = s.history_of(c, None, 10).await.unwrap();
        assert_eq!(history[0].action, SET);
        assert_eq!(
            history[0].detail, "{}",
            "the history names the change, never the word"
        );
    }
}
