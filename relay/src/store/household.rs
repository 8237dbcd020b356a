//! The household: the account holder's invitations, the members they let in and each
//! member's rights per camera (`eyeward::household`). Every change is in the holder's history
//! in the transaction that makes it, and a change that takes anything away bumps the
//! revocation counter, so what a member has open is checked again at once.

use super::history::{Audit, record};
use super::mail::{MailKind, NewMail, queue};
use super::{Account, Store, Tx, conflict_on_unique, on};
use crate::error::{Error, ErrorKind};
use eyeward::household::{Membership, Rights};
use eyeward::{CameraId, CustomerId, DisplayName, Email, Language, Role, UnixMillis};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;

/// People in one household besides its holder, invited or in.
pub const MAX_MEMBERS: i64 = 10;
/// Invitation mails one household may send in a day.
pub const MAX_INVITATIONS_PER_DAY: i64 = 20;

/// An invitation as its household sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invitation {
    pub id: i64,
    #[serde(skip)]
    pub household: CustomerId,
    pub email: Email,
    pub name: String,
    pub lang: Language,
    #[serde(flatten)]
    pub membership: Membership,
    pub expires_at: UnixMillis,
    pub created_at: UnixMillis,
    /// `pending`, `accepted`, `withdrawn` or `expired`.
    pub state: &'static str,
}

/// What the holder gives when inviting someone.
pub struct NewInvitation {
    pub email: Email,
    pub name: DisplayName,
    pub lang: Language,
    pub membership: Membership,
}

/// A member of a household, with what they were given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub account: Account,
    pub membership: Membership,
}

#[derive(sqlx::FromRow)]
struct InvitationRow {
    id: i64,
    household_id: i64,
    email: String,
    name: String,
    lang: String,
    membership: String,
    token_hash: Option<String>,
    expires_at: i64,
    created_at: i64,
    accepted_at: Option<i64>,
}

const INVITATION_COLUMNS: &str = "id, household_id, email, name, lang, membership, token_hash, \
                                  expires_at, created_at, accepted_at";

impl InvitationRow {
    fn into_invitation(self, now: UnixMillis) -> Result<Invitation, Error> {
        let state = match (self.token_hash.is_some(), self.accepted_at) {
            (true, _) if self.expires_at > now.0 => "pending",
            (true, _) => "expired",
            (false, Some(_)) => "accepted",
            (false, None) => "withdrawn",
        };
        Ok(Invitation {
            id: self.id,
            household: CustomerId(self.household_id),
            email: Email::parse(&self.email)
                .map_err(|_| Error::internal("database holds a malformed email"))?,
            name: self.name,
            lang: super::parse_column("language", &self.lang)?,
            membership: serde_json::from_str(&self.membership).map_err(|e| {
                Error::internal("database holds a malformed membership").with_source(e)
            })?,
            expires_at: UnixMillis(self.expires_at),
            created_at: UnixMillis(self.created_at),
            state,
        })
    }
}

/// The cameras of `membership` must be the holder's, with rights that make sense on each.
async fn check_cameras(
    tx: &mut Tx,
    holder: CustomerId,
    membership: &Membership,
) -> Result<(), Error> {
    for (camera, rights) in &membership.cameras {
        let plan: Option<(String,)> = on!(tx, c => sqlx::query_as(
            "SELECT plan FROM cameras WHERE id = $1 AND customer_id = $2",
        )
        .bind(camera.0)
        .bind(holder.0)
        .fetch_optional(c)
        .await)?;
        let Some((plan,)) = plan else {
            return Err(Error::not_found("camera"));
        };
        rights
            .check_for(super::parse_column("plan", &plan)?)
            .map_err(|e| Error::bad_request(e.to_string()).with_code("rights_not_allowed"))?;
    }
    Ok(())
}

/// Writes a member's rights: exactly `membership`'s cameras with any right.
async fn write_rights(tx: &mut Tx, member: i64, membership: &Membership) -> Result<(), Error> {
    on!(tx, c => sqlx::query("DELETE FROM member_rights WHERE member_id = $1")
        .bind(member)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    for (camera, rights) in membership.cameras.iter().filter(|(_, r)| !r.is_empty()) {
        on!(tx, c => sqlx::query(
            "INSERT INTO member_rights (member_id, camera_id, rights) VALUES ($1, $2, $3)",
        )
        .bind(member)
        .bind(camera.0)
        .bind(rights.to_string())
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    }
    on!(tx, c => sqlx::query("UPDATE accounts SET access_until = $2 WHERE id = $1")
        .bind(member)
        .bind(membership.until.map(|u| u.0))
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// What the history says of a membership: each camera's rights, and a guest's end.
fn described(membership: &Membership) -> serde_json::Value {
    let cameras: BTreeMap<String, Vec<&str>> = membership
        .cameras
        .iter()
        .map(|(c, r)| {
            (
                c.0.to_string(),
                r.list().iter().map(|r| r.as_str()).collect(),
            )
        })
        .collect();
    json!({"cameras": cameras, "until": membership.until.map(|u| u.to_rfc3339())})
}

impl Store {
    /// Invites `new` into `holder`'s household with its invitation mail (`body` renders it
    /// for the stored invitation), in one transaction. An earlier pending invitation to the
    /// same address is withdrawn. 409 for an address that has an account, or past
    /// [`MAX_MEMBERS`]; 429 past [`MAX_INVITATIONS_PER_DAY`]; 404 for a camera not the
    /// holder's; 400 for rights that make no sense on a camera.
    #[allow(clippy::too_many_arguments)]
    pub async fn invite(
        &self,
        holder: CustomerId,
        new: &NewInvitation,
        token_hash: &str,
        expires: UnixMillis,
        message_id: &str,
        body: impl FnOnce(&Invitation) -> Result<Vec<u8>, Error>,
        audit: &Audit,
    ) -> Result<Invitation, Error> {
        let mut tx = self.begin().await?;
        check_cameras(&mut tx, holder, &new.membership).await?;
        let (taken,): (i64,) = on!(tx, c => sqlx::query_as(
            "SELECT COUNT(*) FROM accounts WHERE email = $1",
        )
        .bind(new.email.as_str())
        .fetch_one(c)
        .await)?;
        if taken > 0 {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                "this address already has an eyeward account",
            )
            .with_code("email_taken"));
        }
        withdraw_pending_to(&mut tx, holder, &new.email, audit.at).await?;
        let (people,): (i64,) = on!(tx, c => sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM accounts WHERE household_id = $1) + \
             (SELECT COUNT(*) FROM invitations WHERE household_id = $1 \
              AND token_hash IS NOT NULL AND expires_at > $2)",
        )
        .bind(holder.0)
        .bind(audit.at.0)
        .fetch_one(c)
        .await)?;
        if people >= MAX_MEMBERS {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                format!("a household has at most {MAX_MEMBERS} members and pending invitations"),
            )
            .with_code("too_many_members"));
        }
        let day = std::time::Duration::from_secs(24 * 3600);
        let (recent,): (i64,) = on!(tx, c => sqlx::query_as(
            "SELECT COUNT(*) FROM invitations WHERE household_id = $1 AND created_at > $2",
        )
        .bind(holder.0)
        .bind(audit.at.0 - day.as_millis() as i64)
        .fetch_one(c)
        .await)?;
        if recent >= MAX_INVITATIONS_PER_DAY {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                format!("at most {MAX_INVITATIONS_PER_DAY} invitations a day; try again tomorrow"),
            )
            .with_code("too_many_invitations")
            .retry_after(day));
        }
        let membership = serde_json::to_string(&new.membership)
            .map_err(|e| Error::internal("membership").with_source(e))?;
        let row: InvitationRow = on!(tx, c => sqlx::query_as(&format!(
            "INSERT INTO invitations (household_id, email, name, lang, membership, token_hash, \
             expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             RETURNING {INVITATION_COLUMNS}"
        ))
        .bind(holder.0)
        .bind(new.email.as_str())
        .bind(new.name.as_str())
        .bind(new.lang.as_str())
        .bind(membership)
        .bind(token_hash)
        .bind(expires.0)
        .bind(audit.at.0)
        .fetch_one(c)
        .await)?;
        let invitation = row.into_invitation(audit.at)?;
        let body = body(&invitation)?;
        queue(
            &mut tx,
            &NewMail {
                kind: MailKind::Invitation,
                customer: holder,
                address: None,
                recipient: invitation.email.as_str(),
                event: None,
                history: None,
                message_id,
                body: Some(&body),
                push_subscription: None,
            },
            audit.at,
        )
        .await?;
        let mut detail = described(&invitation.membership);
        detail["email"] = json!(invitation.email);
        detail["name"] = json!(invitation.name);
        record(&mut tx, audit, Some(holder), "member.invited", detail).await?;
        tx.commit().await?;
        Ok(invitation)
    }

    /// The pending invitation whose link carries the token with this hash.
    pub async fn invitation_for(
        &self,
        token_hash: &str,
        now: UnixMillis,
    ) -> Result<Option<(Invitation, String)>, Error> {
        let row: Option<InvitationRow> = on!(self.pool, c => sqlx::query_as(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE token_hash = $1 AND expires_at > $2"
        ))
        .bind(token_hash)
        .bind(now.0)
        .fetch_optional(c)
        .await)?;
        let Some(row) = row else { return Ok(None) };
        let invitation = row.into_invitation(now)?;
        let holder = self
            .account(invitation.household.0)
            .await?
            .ok_or_else(|| Error::not_found("invitation"))?;
        Ok(Some((invitation, holder.name)))
    }

    /// Takes the invitation whose link carries the token with this hash, once, before it
    /// expires: the member's account (with `password_hash`) and their rights on the cameras
    /// still the holder's, in the holder's history. `None` for an unknown, used or expired
    /// token; 409 when the address has an account by now.
    pub async fn accept_invitation(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: UnixMillis,
    ) -> Result<Option<Account>, Error> {
        let mut tx = self.begin().await?;
        let row: Option<InvitationRow> = on!(tx, c => sqlx::query_as(&format!(
            "UPDATE invitations SET token_hash = NULL, accepted_at = $2 \
             WHERE token_hash = $1 AND expires_at > $2 RETURNING {INVITATION_COLUMNS}"
        ))
        .bind(token_hash)
        .bind(now.0)
        .fetch_optional(c)
        .await)?;
        let Some(row) = row else { return Ok(None) };
        let invitation = row.into_invitation(now)?;
        let holder = invitation.household;
        let (id,): (i64,) = on!(tx, c => sqlx::query_as(
            "INSERT INTO accounts (role, email, name, guard_center, lang, password_hash, \
             created_at, household_id, access_until) \
             SELECT $1, $2, $3, guard_center, $4, $5, $6, id, $7 FROM accounts \
             WHERE id = $8 AND role = 'customer' RETURNING id",
        )
        .bind(Role::Member.as_str())
        .bind(invitation.email.as_str())
        .bind(&invitation.name)
        .bind(invitation.lang.as_str())
        .bind(password_hash)
        .bind(now.0)
        .bind(invitation.membership.until.map(|u| u.0))
        .bind(holder.0)
        .fetch_one(c)
        .await)
        .map_err(|e| conflict_on_unique(e, "this address already has an eyeward account"))?;
        // Cameras removed since the invitation are left out.
        let mut membership = invitation.membership.clone();
        let mut kept = BTreeMap::new();
        for (camera, rights) in membership.cameras {
            let (still,): (i64,) = on!(tx, c => sqlx::query_as(
                "SELECT COUNT(*) FROM cameras WHERE id = $1 AND customer_id = $2",
            )
            .bind(camera.0)
            .bind(holder.0)
            .fetch_one(c)
            .await)?;
            if still > 0 {
                kept.insert(camera, rights);
            }
        }
        membership.cameras = kept;
        write_rights(&mut tx, id, &membership).await?;
        on!(tx, c => sqlx::query("UPDATE invitations SET accepted_by = $2 WHERE id = $1")
            .bind(invitation.id)
            .bind(id)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        let audit = Audit {
            actor: super::Actor::Member {
                id,
                name: invitation.name.clone(),
            },
            channel: super::Channel::MailLink,
            at: now,
        };
        let mut detail = described(&membership);
        detail["email"] = json!(invitation.email);
        record(&mut tx, &audit, Some(holder), "member.joined", detail).await?;
        tx.commit().await?;
        self.account(id)
            .await?
            .map(Some)
            .ok_or_else(|| Error::internal("the new member's account is gone"))
    }

    /// The household's invitations, newest first (the last 50).
    pub async fn invitations(
        &self,
        holder: CustomerId,
        now: UnixMillis,
    ) -> Result<Vec<Invitation>, Error> {
        let rows: Vec<InvitationRow> = on!(self.pool, c => sqlx::query_as(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE household_id = $1 \
             ORDER BY id DESC LIMIT 50"
        ))
        .bind(holder.0)
        .fetch_all(c)
        .await)?;
        rows.into_iter().map(|r| r.into_invitation(now)).collect()
    }

    /// Withdraws one of the household's pending invitations (its mail, if not sent yet, is
    /// not sent); `false` when there is none such.
    pub async fn withdraw_invitation(
        &self,
        holder: CustomerId,
        id: i64,
        audit: &Audit,
    ) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        let withdrawn: Option<(String,)> = on!(tx, c => sqlx::query_as(
            "UPDATE invitations SET token_hash = NULL, withdrawn_at = $3 \
             WHERE id = $1 AND household_id = $2 AND token_hash IS NOT NULL RETURNING email",
        )
        .bind(id)
        .bind(holder.0)
        .bind(audit.at.0)
        .fetch_optional(c)
        .await)?;
        let Some((email,)) = withdrawn else {
            return Ok(false);
        };
        cancel_invitation_mail(&mut tx, holder, &email).await?;
        record(
            &mut tx,
            audit,
            Some(holder),
            "member.invitation_withdrawn",
            json!({"email": email}),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The household's members, oldest first.
    pub async fn members(&self, holder: CustomerId) -> Result<Vec<Member>, Error> {
        let ids: Vec<(i64,)> = on!(self.pool, c => sqlx::query_as(
            "SELECT id FROM accounts WHERE household_id = $1 AND role = 'member' ORDER BY id",
        )
        .bind(holder.0)
        .fetch_all(c)
        .await)?;
        let mut members = Vec::with_capacity(ids.len());
        for (id,) in ids {
            if let (Some(account), Some(membership)) =
                (self.account(id).await?, self.membership(id).await?)
            {
                members.push(Member {
                    account,
                    membership,
                });
            }
        }
        Ok(members)
    }

    /// What member `member` was given; `None` for an account that is no member.
    pub async fn membership(&self, member: i64) -> Result<Option<Membership>, Error> {
        let until: Option<(Option<i64>,)> = on!(self.pool, c => sqlx::query_as(
            "SELECT access_until FROM accounts WHERE id = $1 AND role = 'member'",
        )
        .bind(member)
        .fetch_optional(c)
        .await)?;
        let Some((until,)) = until else {
            return Ok(None);
        };
        let rows: Vec<(i64, String)> = on!(self.pool, c => sqlx::query_as(
            "SELECT camera_id, rights FROM member_rights WHERE member_id = $1",
        )
        .bind(member)
        .fetch_all(c)
        .await)?;
        let mut cameras = BTreeMap::new();
        for (camera, rights) in rows {
            let rights: Rights = super::parse_column("rights", &rights)?;
            cameras.insert(CameraId(camera), rights);
        }
        Ok(Some(Membership {
            cameras,
            until: until.map(UnixMillis),
        }))
    }

    /// Gives member `member` of `holder`'s household exactly `membership`, at once: what it
    /// no longer allows ends. `false` for no such member; 404 for a camera not the holder's.
    pub async fn set_membership(
        &self,
        holder: CustomerId,
        member: i64,
        membership: &Membership,
        audit: &Audit,
    ) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        let name: Option<(String,)> = on!(tx, c => sqlx::query_as(
            "SELECT name FROM accounts WHERE id = $1 AND household_id = $2 AND role = 'member'",
        )
        .bind(member)
        .bind(holder.0)
        .fetch_optional(c)
        .await)?;
        let Some((name,)) = name else {
            return Ok(false);
        };
        check_cameras(&mut tx, holder, membership).await?;
        write_rights(&mut tx, member, membership).await?;
        super::revoke(&mut tx).await?;
        let mut detail = described(membership);
        detail["member"] = json!(name);
        record(
            &mut tx,
            audit,
            Some(holder),
            "member.rights_changed",
            detail,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Removes member `member` from `holder`'s household: their account, sessions and rights
    /// go, and what they had open ends. `false` for no such member.
    pub async fn remove_member(
        &self,
        holder: CustomerId,
        member: i64,
        audit: &Audit,
    ) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        let removed: Option<(String, String)> = on!(tx, c => sqlx::query_as(
            "DELETE FROM accounts WHERE id = $1 AND household_id = $2 AND role = 'member' \
             RETURNING name, email",
        )
        .bind(member)
        .bind(holder.0)
        .fetch_optional(c)
        .await)?;
        let Some((name, email)) = removed else {
            return Ok(false);
        };
        super::revoke(&mut tx).await?;
        record(
            &mut tx,
            audit,
            Some(holder),
            "member.removed",
            json!({"member": name, "email": email}),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// The household account `account` belongs to: its own, or a member's holder's.
pub(super) async fn household_of(tx: &mut Tx, account: i64) -> Result<CustomerId, Error> {
    let (household,): (i64,) = on!(tx, c => sqlx::query_as(
        "SELECT COALESCE(household_id, id) FROM accounts WHERE id = $1",
    )
    .bind(account)
    .fetch_one(c)
    .await)?;
    Ok(CustomerId(household))
}

/// Withdraws a pending invitation of the household to `email`, and its unsent mail.
async fn withdraw_pending_to(
    tx: &mut Tx,
    holder: CustomerId,
    email: &Email,
    now: UnixMillis,
) -> Result<(), Error> {
    on!(tx, c => sqlx::query(
        "UPDATE invitations SET token_hash = NULL, withdrawn_at = $3 \
         WHERE household_id = $1 AND email = $2 AND token_hash IS NOT NULL",
    )
    .bind(holder.0)
    .bind(email.as_str())
    .bind(now.0)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    cancel_invitation_mail(tx, holder, email.as_str()).await
}

async fn cancel_invitation_mail(tx: &mut Tx, holder: CustomerId, email: &str) -> Result<(), Error> {
    on!(tx, c => sqlx::query(
        "UPDATE outbox SET state = 'cancelled', last_error = 'the invitation was withdrawn', \
         body = NULL WHERE customer_id = $1 AND recipient = $2 AND kind = $3 AND state = 'queued'",
    )
    .bind(holder.0)
    .bind(email)
    .bind(MailKind::Invitation.as_str())
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

#[cfg(test)]
mod tests;
