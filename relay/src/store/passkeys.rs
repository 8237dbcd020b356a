//! Passkeys and their ceremonies: each account's WebAuthn credentials, the state of a
//! registration, sign-in or check between its two requests (taken once, gone when expired), and
//! the passkey a session was signed in or checked with. Adding and removing one is in the
//! account's history in the transaction that does it; removing one ends the sessions it opened.

use super::accounts::{history_owner, reset_by_admin};
use super::history::{Audit, record};
use super::{Store, conflict_on_unique, on};
use crate::auth::{Ceremony, CeremonyKind, MAX_PASSKEYS};
use crate::error::{Error, ErrorKind};
use eyeward::{Role, UnixMillis};
use serde::Serialize;
use serde_json::json;
use std::time::Duration;
use webauthn_rs::prelude::{Passkey, Uuid};

/// Ceremonies under way on the whole service at once; more is someone flooding the start.
const MAX_CEREMONIES: i64 = 10_000;

/// A passkey as its owner sees it in their list.
#[derive(Debug, Clone, Serialize)]
pub struct PasskeyEntry {
    pub id: i64,
    pub name: String,
    pub created_at: UnixMillis,
    pub last_used_at: Option<UnixMillis>,
}

/// A stored passkey, with what signing in with it needs.
pub struct StoredPasskey {
    pub entry: PasskeyEntry,
    pub account_id: i64,
    pub user_handle: Uuid,
    pub credential: Passkey,
}

/// A passkey about to be stored.
pub struct NewPasskey<'a> {
    pub account_id: i64,
    pub role: Role,
    pub name: &'a str,
    pub user_handle: Uuid,
    pub credential_id: &'a str,
    pub credential: &'a Passkey,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    account_id: i64,
    name: String,
    user_handle: String,
    credential: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

const COLUMNS: &str = "id, account_id, name, user_handle, credential, created_at, last_used_at";

impl Row {
    fn into_stored(self) -> Result<StoredPasskey, Error> {
        let bad = |what: &str| Error::internal(format!("passkey {} holds a bad {what}", self.id));
        Ok(StoredPasskey {
            user_handle: Uuid::parse_str(&self.user_handle).map_err(|_| bad("user handle"))?,
            credential: serde_json::from_str(&self.credential).map_err(|_| bad("credential"))?,
            account_id: self.account_id,
            entry: PasskeyEntry {
                id: self.id,
                name: self.name,
                created_at: UnixMillis(self.created_at),
                last_used_at: self.last_used_at.map(UnixMillis),
            },
        })
    }
}

fn credential_json(credential: &Passkey) -> Result<String, Error> {
    serde_json::to_string(credential).map_err(|e| Error::internal("passkey").with_source(e))
}

impl Store {
    /// An account's passkeys, oldest first.
    pub async fn passkeys(&self, account_id: i64) -> Result<Vec<StoredPasskey>, Error> {
        let rows: Vec<Row> = on!(self.pool, c => sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM passkeys WHERE account_id = $1 ORDER BY id"
        ))
        .bind(account_id)
        .fetch_all(c)
        .await)?;
        rows.into_iter().map(Row::into_stored).collect()
    }

    /// The passkey with this credential id (unpadded base64url), whoever's it is.
    pub async fn passkey_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<StoredPasskey>, Error> {
        let row: Option<Row> = on!(self.pool, c => sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM passkeys WHERE credential_id = $1"
        ))
        .bind(credential_id)
        .fetch_optional(c)
        .await)?;
        row.map(Row::into_stored).transpose()
    }

    /// Stores a new passkey and marks the session `session_hash` (which just used it) as
    /// checked with it; its id. At most [`MAX_PASSKEYS`] an account; a credential already
    /// stored (for anyone) is refused.
    pub async fn add_passkey(
        &self,
        new: NewPasskey<'_>,
        session_hash: &str,
        audit: &Audit,
    ) -> Result<i64, Error> {
        let mut tx = self.begin().await?;
        let (count,): (i64,) = on!(tx, c => sqlx::query_as(
            "SELECT COUNT(*) FROM passkeys WHERE account_id = $1",
        )
        .bind(new.account_id)
        .fetch_one(c)
        .await)?;
        if count >= MAX_PASSKEYS as i64 {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                format!("an account has at most {MAX_PASSKEYS} passkeys; remove one first"),
            )
            .with_code("too_many_passkeys"));
        }
        let (id,): (i64,) = on!(tx, c => sqlx::query_as(
            "INSERT INTO passkeys (account_id, credential_id, user_handle, name, credential, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(new.account_id)
        .bind(new.credential_id)
        .bind(new.user_handle.to_string())
        .bind(new.name)
        .bind(credential_json(new.credential)?)
        .bind(audit.at.0)
        .fetch_one(c)
        .await)
        .map_err(|e| conflict_on_unique(e, "this passkey is registered already"))?;
        on!(tx, c => sqlx::query("UPDATE sessions SET passkey_id = $1 WHERE token_hash = $2 AND account_id = $3")
            .bind(id)
            .bind(session_hash)
            .bind(new.account_id)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        let owner = history_owner(&mut tx, new.role, new.account_id).await?;
        record(
            &mut tx,
            audit,
            owner,
            "passkey.added",
            json!({ "name": new.name }),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Notes that passkey `id` was used at `now`, with its new signature counter.
    pub async fn passkey_used(
        &self,
        id: i64,
        credential: &Passkey,
        now: UnixMillis,
    ) -> Result<(), Error> {
        on!(self.pool, c => sqlx::query("UPDATE passkeys SET credential = $1, last_used_at = $2 WHERE id = $3")
            .bind(credential_json(credential)?)
            .bind(now.0)
            .bind(id)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Marks a session as checked with passkey `passkey_id`.
    pub async fn check_session(&self, token_hash: &str, passkey_id: i64) -> Result<(), Error> {
        on!(self.pool, c => sqlx::query("UPDATE sessions SET passkey_id = $1 WHERE token_hash = $2")
            .bind(passkey_id)
            .bind(token_hash)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Removes the account's passkey `id`, and the sessions it opened or checked but the
    /// caller's own `keep_session`; false if it has no such passkey.
    pub async fn remove_passkey(
        &self,
        account_id: i64,
        role: Role,
        id: i64,
        keep_session: &str,
        audit: &Audit,
    ) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        let name: Option<(String,)> = on!(tx, c => sqlx::query_as(
            "DELETE FROM passkeys WHERE id = $1 AND account_id = $2 RETURNING name",
        )
        .bind(id)
        .bind(account_id)
        .fetch_optional(c)
        .await)?;
        let Some((name,)) = name else {
            return Ok(false);
        };
        on!(tx, c => sqlx::query("DELETE FROM sessions WHERE passkey_id = $1 AND token_hash <> $2")
            .bind(id)
            .bind(keep_session)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        super::revoke(&mut tx).await?;
        let owner = history_owner(&mut tx, role, account_id).await?;
        record(
            &mut tx,
            audit,
            owner,
            "passkey.removed",
            json!({ "name": name }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The administrator's reset, after an identity check, for someone who lost every passkey:
    /// removes them all and ends the account's sessions; false if there is no such account.
    pub async fn remove_all_passkeys(
        &self,
        role: Role,
        id: i64,
        audit: &Audit,
    ) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        let found: Option<(i64,)> = on!(tx, c => sqlx::query_as(
            "SELECT id FROM accounts WHERE id = $1 AND role = $2",
        )
        .bind(id)
        .bind(role.as_str())
        .fetch_optional(c)
        .await)?;
        if found.is_none() {
            return Ok(false);
        }
        let removed = on!(tx, c => sqlx::query("DELETE FROM passkeys WHERE account_id = $1")
            .bind(id)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        let detail = json!({ "removed": removed });
        reset_by_admin(&mut tx, role, id, audit, "passkeys.reset", detail).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Keeps a ceremony's state under `token_hash` until `now + timeout`, for the session
    /// `session_hash` if it is one's. Expired ones are cleared first; past
    /// [`MAX_CEREMONIES`] at once, 503.
    pub async fn begin_ceremony(
        &self,
        token_hash: &str,
        ceremony: &Ceremony,
        session_hash: Option<&str>,
        now: UnixMillis,
        timeout: Duration,
    ) -> Result<(), Error> {
        let state = serde_json::to_string(ceremony)
            .map_err(|e| Error::internal("passkey ceremony").with_source(e))?;
        let mut tx = self.begin().await?;
        on!(tx, c => sqlx::query("DELETE FROM passkey_ceremonies WHERE expires_at <= $1")
            .bind(now.0)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        let (count,): (i64,) = on!(tx, c => sqlx::query_as("SELECT COUNT(*) FROM passkey_ceremonies")
            .fetch_one(c)
            .await)?;
        if count >= MAX_CEREMONIES {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "too many passkey ceremonies at once; try again shortly",
            )
            .retry_after(Duration::from_secs(5)));
        }
        on!(tx, c => sqlx::query(
            "INSERT INTO passkey_ceremonies (token_hash, kind, session_hash, state, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(ceremony.kind().as_str())
        .bind(session_hash)
        .bind(state)
        .bind(now.plus(timeout).0)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes (once) the ceremony of `kind` kept under `token_hash` for `session_hash`, if it
    /// has not expired; none otherwise.
    pub async fn take_ceremony(
        &self,
        token_hash: &str,
        kind: CeremonyKind,
        session_hash: Option<&str>,
        now: UnixMillis,
    ) -> Result<Option<Ceremony>, Error> {
        let row: Option<(String, Option<String>, i64)> = on!(self.pool, c => sqlx::query_as(
            "DELETE FROM passkey_ceremonies WHERE token_hash = $1 AND kind = $2
             RETURNING state, session_hash, expires_at",
        )
        .bind(token_hash)
        .bind(kind.as_str())
        .fetch_optional(c)
        .await)?;
        let Some((state, for_session, expires_at)) = row else {
            return Ok(None);
        };
        if expires_at <= now.0 || for_session.as_deref() != session_hash {
            return Ok(None);
        }
        serde_json::from_str(&state)
            .map(Some)
            .map_err(|e| Error::internal("passkey ceremony").with_source(e))
    }
}

#[cfg(test)]
mod tests;
