//! Login sessions, keyed by the SHA-256 of the cookie's token.

use super::accounts::{Account, AccountRow, AccountWithHash};
use super::{Store, on};
use crate::error::Error;
use eyeward::UnixMillis;

/// A live session and its account.
pub struct SessionRow {
    pub account: Account,
    pub created_at: UnixMillis,
    pub last_seen_at: UnixMillis,
    /// The passkey it was signed in or checked with, if any.
    pub passkey: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct Row {
    created_at: i64,
    last_seen_at: i64,
    passkey_id: Option<i64>,
    #[sqlx(flatten)]
    account: AccountRow,
}

/// The browsers an account keeps as known: the newest this many.
const KNOWN_BROWSERS: i64 = 20;

impl Store {
    /// Whether the browser whose cookie hashes to `token_hash` logged in to `account` before;
    /// if so, it is seen again now.
    pub async fn browser_known(
        &self,
        account_id: i64,
        token_hash: &str,
        now: UnixMillis,
    ) -> Result<bool, Error> {
        let seen = on!(self.pool, c => sqlx::query(
            "UPDATE known_browsers SET last_seen_at = $3 WHERE account_id = $1 AND token_hash = $2",
        )
        .bind(account_id)
        .bind(token_hash)
        .bind(now.0)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        Ok(seen > 0)
    }

    /// Remembers a browser that logged in to `account`, forgetting the account's oldest
    /// beyond the newest [`KNOWN_BROWSERS`].
    pub async fn remember_browser(
        &self,
        account_id: i64,
        token_hash: &str,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        on!(tx, c => sqlx::query(
            "INSERT INTO known_browsers (account_id, token_hash, first_seen_at, last_seen_at) \
             VALUES ($1, $2, $3, $3)",
        )
        .bind(account_id)
        .bind(token_hash)
        .bind(now.0)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        on!(tx, c => sqlx::query(
            "DELETE FROM known_browsers WHERE account_id = $1 AND id NOT IN \
             (SELECT id FROM known_browsers WHERE account_id = $1 \
              ORDER BY last_seen_at DESC, id DESC LIMIT $2)",
        )
        .bind(account_id)
        .bind(KNOWN_BROWSERS)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_session(
        &self,
        token_hash: &str,
        account_id: i64,
        passkey: Option<i64>,
        now: UnixMillis,
    ) -> Result<(), Error> {
        on!(self.pool, c => sqlx::query(
            "INSERT INTO sessions (token_hash, account_id, created_at, last_seen_at, passkey_id)
             VALUES ($1, $2, $3, $3, $4)",
        )
        .bind(token_hash)
        .bind(account_id)
        .bind(now.0)
        .bind(passkey)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, Error> {
        let row: Option<Row> = on!(self.pool, c => sqlx::query_as(
            "SELECT s.created_at, s.last_seen_at, s.passkey_id, a.id, a.role, a.email, a.name,
                    a.guard_center, a.lang, a.password_hash, a.household_id, a.access_until
             FROM sessions s JOIN accounts a ON a.id = s.account_id
             WHERE s.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(c)
        .await)?;
        row.map(|r| {
            let AccountWithHash { account, .. } = r.account.into_account()?;
            Ok(SessionRow {
                account,
                created_at: UnixMillis(r.created_at),
                last_seen_at: UnixMillis(r.last_seen_at),
                passkey: r.passkey_id,
            })
        })
        .transpose()
    }

    pub async fn touch_session(&self, token_hash: &str, now: UnixMillis) -> Result<(), Error> {
        on!(self.pool, c => sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
            .bind(now.0)
            .bind(token_hash)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Ends a session; what it opened (live views, event streams) ends with it.
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        on!(tx, c => sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        super::revoke(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes sessions idle since before `idle_before` or created before `created_before`.
    pub async fn delete_expired_sessions(
        &self,
        idle_before: UnixMillis,
        created_before: UnixMillis,
    ) -> Result<u64, Error> {
        Ok(
            on!(self.pool, c => sqlx::query("DELETE FROM sessions WHERE last_seen_at < $1 OR created_at < $2")
                .bind(idle_before.0)
                .bind(created_before.0)
                .execute(c)
                .await.map(|r| r.rows_affected()))?,
        )
    }
}
