//! Guards' phones: the single-use sign-in links operators issue from the console, and the
//! phone sessions those links open. Both tokens are kept as hashes only. A link is taken once,
//! before it expires (`UPDATE … WHERE taken_at IS NULL`, so two phones opening the same link
//! at once get one session); a session lasts a shift at most. Revoking a guard's sign-in
//! deletes every link and session of theirs and bumps the revocation counter in the same
//! transaction, so an open phone page's stream ends within a second or two.

use super::dispatch::{GUARD_SELECT, GuardRow};
use super::history::{Audit, record};
use super::{Store, Tx, on, revoke};
use crate::error::Error;
use crate::store::Guard;
use eyeward::{GuardCenter, UnixMillis};
use serde_json::json;
use std::time::Duration;

/// How long a phone stays signed in: a shift. The guard signs in again from a new link.
pub const GUARD_SESSION_FOR: Duration = Duration::from_secs(12 * 3600);

/// A phone's session: its guard, and when it ends.
#[derive(Debug, Clone)]
pub struct GuardSession {
    pub guard: Guard,
    pub ends_at: UnixMillis,
}

/// Whether guard `guard` is one of `center`'s.
async fn of_center(tx: &mut Tx, center: GuardCenter, guard: i64) -> Result<bool, Error> {
    Ok(on!(tx, c => sqlx::query_as::<_, (i64,)>(
        "SELECT id FROM guards WHERE id = $1 AND guard_center = $2",
    )
    .bind(guard)
    .bind(center.as_str())
    .fetch_optional(c)
    .await)?
    .is_some())
}

impl Store {
    /// Issues a sign-in link for guard `guard` of `center` (its token's hash), usable once
    /// until `expires_at`; a link of theirs not yet taken is replaced. False if the guard is
    /// not the center's.
    pub async fn issue_guard_link(
        &self,
        center: GuardCenter,
        guard: i64,
        link_hash: &str,
        expires_at: UnixMillis,
        audit: &Audit,
    ) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        if !of_center(&mut tx, center, guard).await? {
            return Ok(false);
        }
        on!(tx, c => sqlx::query(
            "DELETE FROM guard_sign_ins WHERE guard_id = $1 AND taken_at IS NULL",
        )
        .bind(guard)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        let (_, issued_by, _) = audit.actor.parts();
        on!(tx, c => sqlx::query(
            "INSERT INTO guard_sign_ins (guard_id, link_hash, link_expires_at, issued_by, \
             issued_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(guard)
        .bind(link_hash)
        .bind(expires_at.0)
        .bind(issued_by)
        .bind(audit.at.0)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        record(
            &mut tx,
            audit,
            None,
            "guard.link_issued",
            json!({ "id": guard }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Takes the link whose token hashes to `link_hash` at `now`, opening the phone session
    /// `session_hash`: the guard's id, or `None` for a link unknown, taken or expired.
    pub async fn take_guard_link(
        &self,
        link_hash: &str,
        session_hash: &str,
        now: UnixMillis,
    ) -> Result<Option<i64>, Error> {
        let taken: Option<(i64,)> = on!(self.pool, c => sqlx::query_as(
            "UPDATE guard_sign_ins SET session_hash = $2, taken_at = $3 \
             WHERE link_hash = $1 AND taken_at IS NULL AND link_expires_at > $3 \
             RETURNING guard_id",
        )
        .bind(link_hash)
        .bind(session_hash)
        .bind(now.0)
        .fetch_optional(c)
        .await)?;
        Ok(taken.map(|(guard,)| guard))
    }

    /// The phone session whose token hashes to `session_hash`, if it still holds at `now`.
    pub async fn guard_session(
        &self,
        session_hash: &str,
        now: UnixMillis,
    ) -> Result<Option<GuardSession>, Error> {
        let taken: Option<(i64, i64)> = on!(self.pool, c => sqlx::query_as(
            "SELECT guard_id, taken_at FROM guard_sign_ins WHERE session_hash = $1",
        )
        .bind(session_hash)
        .fetch_optional(c)
        .await)?;
        let Some((guard, taken_at)) = taken else {
            return Ok(None);
        };
        let ends_at = UnixMillis(taken_at).plus(GUARD_SESSION_FOR);
        if ends_at <= now {
            return Ok(None);
        }
        let row: Option<GuardRow> = on!(self.pool, c => sqlx::query_as(&format!(
            "{GUARD_SELECT} WHERE g.id = $1"
        ))
        .bind(guard)
        .fetch_optional(c)
        .await)?;
        Ok(match row {
            Some(row) => Some(GuardSession {
                guard: row.try_into()?,
                ends_at,
            }),
            None => None,
        })
    }

    /// Ends the phone session whose token hashes to `session_hash` (the guard signed out).
    pub async fn end_guard_session(&self, session_hash: &str) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        let ended = on!(tx, c => sqlx::query("DELETE FROM guard_sign_ins WHERE session_hash = $1")
            .bind(session_hash)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        if ended > 0 {
            revoke(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Revokes every sign-in of guard `guard` of `center`, links and sessions; false if the
    /// guard is not the center's.
    pub async fn revoke_guard_sign_ins(
        &self,
        center: GuardCenter,
        guard: i64,
        audit: &Audit,
    ) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        if !of_center(&mut tx, center, guard).await? {
            return Ok(false);
        }
        on!(tx, c => sqlx::query("DELETE FROM guard_sign_ins WHERE guard_id = $1")
            .bind(guard)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        revoke(&mut tx).await?;
        record(
            &mut tx,
            audit,
            None,
            "guard.sign_ins_revoked",
            json!({ "id": guard }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes links and sessions past their time at `now`; how many.
    pub async fn sweep_guard_sign_ins(&self, now: UnixMillis) -> Result<u64, Error> {
        let shift = GUARD_SESSION_FOR.as_millis() as i64;
        Ok(on!(self.pool, c => sqlx::query(
            "DELETE FROM guard_sign_ins WHERE (taken_at IS NULL AND link_expires_at <= $1) \
             OR (taken_at IS NOT NULL AND taken_at <= $2)",
        )
        .bind(now.0)
        .bind(now.0 - shift)
        .execute(c)
        .await.map(|r| r.rows_affected()))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::store;

    const T0: UnixMillis = UnixMillis(1_900_000_000_000);
    const MINUTE: Duration = Duration::from_secs(60);

    async fn guard(s: &Store, center: GuardCenter, name: &str) -> i64 {
        s.add_guard(
            center,
            name,
            &format!("token-of-{name}"),
            None,
            &Audit::admin(T0),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_link_opens_one_session_once_before_it_expires() {
        let (s, _dir) = store().await;
        let sato = guard(&s, GuardCenter::Tokyo, "Sato").await;
        let audit = Audit::admin(T0);
        let until = T0.plus(15 * MINUTE);
        assert!(
            !s.issue_guard_link(GuardCenter::West, sato, "l1", until, &audit)
                .await
                .unwrap()
        );
        assert!(
            s.issue_guard_link(GuardCenter::Tokyo, sato, "l1", until, &audit)
                .await
                .unwrap()
        );
        assert_eq!(s.take_guard_link("l1", "s1", T0).await.unwrap(), Some(sato));
        assert_eq!(
            s.take_guard_link("l1", "s2", T0).await.unwrap(),
            None,
            "used once"
        );
        let session = s.guard_session("s1", T0).await.unwrap().unwrap();
        assert_eq!(
            (session.guard.name.as_str(), session.guard.signed_in),
            ("Sato", true)
        );
        assert!(s.guard_session("s2", T0).await.unwrap().is_none());
        // A link past its time opens nothing; a new link replaces one not taken.
        s.issue_guard_link(GuardCenter::Tokyo, sato, "l2", until, &audit)
            .await
            .unwrap();
        assert_eq!(s.take_guard_link("l2", "s3", until).await.unwrap(), None);
        s.issue_guard_link(GuardCenter::Tokyo, sato, "l3", until, &audit)
            .await
            .unwrap();
        s.issue_guard_link(GuardCenter::Tokyo, sato, "l4", until, &audit)
            .await
            .unwrap();
        assert_eq!(
            s.take_guard_link("l3", "s4", T0).await.unwrap(),
            None,
            "replaced"
        );
        // A session lasts a shift.
        let end = T0.plus(GUARD_SESSION_FOR);
        assert!(
            s.guard_session("s1", UnixMillis(end.0 - 1))
                .await
                .unwrap()
                .is_some()
        );
        assert!(s.guard_session("s1", end).await.unwrap().is_none());
        assert_eq!(s.sweep_guard_sign_ins(end).await.unwrap(), 2, "s1 and l4");
    }

    #[tokio::test]
    async fn revoking_ends_every_phone_of_the_guard_and_no_one_elses() {
        let (s, _dir) = store().await;
        let sato = guard(&s, GuardCenter::Tokyo, "Sato").await;
        let kato = guard(&s, GuardCenter::Tokyo, "Kato").await;
        let audit = Audit::admin(T0);
        let until = T0.plus(15 * MINUTE);
        for (g, link, session) in [(sato, "l1", "s1"), (kato, "l2", "s2")] {
            s.issue_guard_link(GuardCenter::Tokyo, g, link, until, &audit)
                .await
                .unwrap();
            s.take_guard_link(link, session, T0).await.unwrap().unwrap();
        }
        let before = s.revocation_generation().await.unwrap();
        assert!(
            !s.revoke_guard_sign_ins(GuardCenter::East, sato, &audit)
                .await
                .unwrap()
        );
        assert!(
            s.revoke_guard_sign_ins(GuardCenter::Tokyo, sato, &audit)
                .await
                .unwrap()
        );
        assert!(
            s.revocation_generation().await.unwrap() > before,
            "open pages are told"
        );
        assert!(s.guard_session("s1", T0).await.unwrap().is_none());
        assert!(s.guard_session("s2", T0).await.unwrap().is_some());
        s.end_guard_session("s2").await.unwrap();
        assert!(s.guard_session("s2", T0).await.unwrap().is_none());
    }
}
