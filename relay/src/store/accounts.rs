//! Customer and operator accounts. Both live in one table so that an email address names
//! exactly one account, whatever its role.

use super::history::{Audit, record};
use super::household::household_of;
use super::{Store, Tx, conflict_on_unique, on, parse_column};
use crate::error::Error;
use eyeward::{CustomerId, DisplayName, Email, GuardCenter, Language, Role, UnixMillis};
use serde::Serialize;
use serde_json::json;

/// An account as the rest of the relay sees it (no password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: i64,
    pub role: Role,
    pub email: Email,
    pub name: String,
    pub guard_center: GuardCenter,
    pub lang: Language,
    /// A member's household: its holder.
    pub household: Option<CustomerId>,
    /// When a guest's rights end.
    pub access_until: Option<UnixMillis>,
}

/// An account with its password hash, for login only.
pub struct AccountWithHash {
    pub account: Account,
    pub password_hash: String,
}

/// What the admin gives to create an account.
pub struct NewAccount {
    pub role: Role,
    pub email: Email,
    pub name: DisplayName,
    pub guard_center: GuardCenter,
    pub lang: Language,
    pub password_hash: String,
}

#[derive(sqlx::FromRow)]
pub(super) struct AccountRow {
    id: i64,
    role: String,
    email: String,
    name: String,
    guard_center: String,
    lang: String,
    password_hash: String,
    household_id: Option<i64>,
    access_until: Option<i64>,
}

impl AccountRow {
    pub(super) fn into_account(self) -> Result<AccountWithHash, Error> {
        Ok(AccountWithHash {
            account: Account {
                id: self.id,
                role: parse_column("role", &self.role)?,
                email: Email::parse(&self.email)
                    .map_err(|_| Error::internal("database holds a malformed email"))?,
                name: self.name,
                guard_center: parse_column("guard center", &self.guard_center)?,
                lang: parse_column("language", &self.lang)?,
                household: self.household_id.map(CustomerId),
                access_until: self.access_until.map(UnixMillis),
            },
            password_hash: self.password_hash,
        })
    }
}

const COLUMNS: &str =
    "id, role, email, name, guard_center, lang, password_hash, household_id, access_until";

/// Whose history an account's own operations go to: a customer's own, a member's holder's;
/// an operator's to none.
/// What follows the administrator's reset of `role` `id`'s password or passkeys: every session
/// of the account ends (and what they opened), and `action` goes to its history.
pub(super) async fn reset_by_admin(
    tx: &mut Tx,
    role: Role,
    id: i64,
    audit: &Audit,
    action: &str,
    detail: serde_json::Value,
) -> Result<(), Error> {
    on!(tx, c => sqlx::query("DELETE FROM sessions WHERE account_id = $1")
        .bind(id)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    super::revoke(tx).await?;
    let owner = history_owner(tx, role, id).await?;
    record(tx, audit, owner, action, detail).await?;
    Ok(())
}

pub(super) async fn history_owner(
    tx: &mut Tx,
    role: Role,
    id: i64,
) -> Result<Option<CustomerId>, Error> {
    match role {
        Role::Customer => Ok(Some(CustomerId(id))),
        Role::Member => household_of(tx, id).await.map(Some),
        Role::Operator => Ok(None),
    }
}

impl Store {
    pub async fn create_account(&self, new: NewAccount, audit: &Audit) -> Result<i64, Error> {
        let mut tx = self.begin().await?;
        let (id,): (i64,) = on!(tx, c => sqlx::query_as(
            "INSERT INTO accounts (role, email, name, guard_center, lang, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(new.role.as_str())
        .bind(new.email.as_str())
        .bind(new.name.as_str())
        .bind(new.guard_center.as_str())
        .bind(new.lang.as_str())
        .bind(&new.password_hash)
        .bind(audit.at.0)
        .fetch_one(c)
        .await)
        .map_err(|e| conflict_on_unique(e, "an account with this email address already exists"))?;
        let owner = history_owner(&mut tx, new.role, id).await?;
        record(
            &mut tx,
            audit,
            owner,
            &format!("{}.created", new.role),
            json!({ "id": id, "email": new.email, "guard_center": new.guard_center }),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The account with this email, with its hash, for login.
    pub async fn account_for_login(&self, email: &Email) -> Result<Option<AccountWithHash>, Error> {
        let row: Option<AccountRow> = on!(self.pool, c => sqlx::query_as(&format!("SELECT {COLUMNS} FROM accounts WHERE email = $1"))
                .bind(email.as_str())
                .fetch_optional(c)
                .await)?;
        row.map(AccountRow::into_account).transpose()
    }

    /// The account with this id, if any.
    pub async fn account(&self, id: i64) -> Result<Option<Account>, Error> {
        let row: Option<AccountRow> = on!(self.pool, c => sqlx::query_as(&format!("SELECT {COLUMNS} FROM accounts WHERE id = $1"))
                .bind(id)
                .fetch_optional(c)
                .await)?;
        Ok(row
            .map(AccountRow::into_account)
            .transpose()?
            .map(|a| a.account))
    }

    pub async fn accounts(&self, role: Role) -> Result<Vec<Account>, Error> {
        let rows: Vec<AccountRow> = on!(self.pool, c => sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM accounts WHERE role = $1 ORDER BY id"
        ))
        .bind(role.as_str())
        .fetch_all(c)
        .await)?;
        rows.into_iter()
            .map(|r| r.into_account().map(|a| a.account))
            .collect()
    }

    /// Removes an account of `role` with everything it owns; false if there was none.
    pub async fn remove_account(&self, role: Role, id: i64, audit: &Audit) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        let done = on!(tx, c => sqlx::query("DELETE FROM accounts WHERE id = $1 AND role = $2")
            .bind(id)
            .bind(role.as_str())
            .execute(c)
            .await.map(|r| r.rows_affected()))?
            > 0;
        if done {
            super::revoke(&mut tx).await?;
            // The customer's own history went with the account; this entry stays for the
            // relay's records.
            record(
                &mut tx,
                audit,
                None,
                &format!("{role}.removed"),
                json!({ "id": id }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Replaces the password hash and ends every session of the account.
    pub async fn set_password_hash(
        &self,
        role: Role,
        id: i64,
        hash: &str,
        audit: &Audit,
    ) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        let done = on!(tx, c => sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2 AND role = $3")
                .bind(hash)
                .bind(id)
                .bind(role.as_str())
                .execute(c)
                .await.map(|r| r.rows_affected()))?
            > 0;
        if done {
            reset_by_admin(&mut tx, role, id, audit, "password.reset", json!({})).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    pub async fn set_language(
        &self,
        id: i64,
        role: Role,
        lang: Language,
        audit: &Audit,
    ) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        on!(tx, c => sqlx::query("UPDATE accounts SET lang = $1 WHERE id = $2")
            .bind(lang.as_str())
            .bind(id)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        let owner = history_owner(&mut tx, role, id).await?;
        record(
            &mut tx,
            audit,
            owner,
            "language.changed",
            json!({ "lang": lang }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::store::testing::store;
    use eyeward::UnixMillis;

    fn customer(email: &str) -> NewAccount {
        NewAccount {
            role: Role::Customer,
            email: Email::parse(email).unwrap(),
            name: DisplayName::parse("Taro").unwrap(),
            guard_center: GuardCenter::Tokyo,
            lang: Language::Ja,
            password_hash: "h".into(),
        }
    }

    #[tokio::test]
    async fn one_email_names_one_account_whatever_the_role() {
        let (s, _dir) = store().await;
        let audit = Audit::admin(UnixMillis(1));
        s.create_account(customer("a@example.jp"), &audit)
            .await
            .unwrap();
        let mut op = customer("A@example.jp");
        op.role = Role::Operator;
        let err = s.create_account(op, &audit).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    }

    #[tokio::test]
    async fn password_reset_is_scoped_to_the_role_and_recorded() {
        let (s, _dir) = store().await;
        let audit = Audit::admin(UnixMillis(1));
        let id = s
            .create_account(customer("a@example.jp"), &audit)
            .await
            .unwrap();
        assert!(
            !s.set_password_hash(Role::Operator, id, "x", &audit)
                .await
                .unwrap()
        );
        assert!(
            s.set_password_hash(Role::Customer, id, "x", &audit)
                .await
                .unwrap()
        );
        let h = s.history_of(CustomerId(id), None, 10).await.unwrap();
        let actions: Vec<_> = h.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["password.reset", "customer.created"]);
        assert!(h.iter().all(|e| e.channel == "admin-cli"));
    }
}
