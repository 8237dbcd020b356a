//! The operation history: when, who, what, through what.

use super::mail::{Notice, queue_notice};
use super::{Store, Tx, on};
use crate::error::Error;
use eyeward::{CustomerId, UnixMillis};
use serde::Serialize;

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A logged-in customer.
    Customer { id: i64, name: String },
    /// A logged-in operator.
    Operator { id: i64, name: String },
    /// A member of a customer's household (the history is the holder's).
    Member { id: i64, name: String },
    /// A guard, from their signed-in phone.
    Guard { id: i64, name: String },
    /// Someone at the relay's command line.
    Admin,
    /// A camera's agent.
    Agent { camera_id: i64 },
    /// Whoever holds a mail the relay sent to this address (a link in it was used).
    MailRecipient { email: String },
    /// The relay itself.
    System,
}

impl Actor {
    pub(super) fn parts(&self) -> (&'static str, Option<i64>, String) {
        match self {
            Actor::Customer { id, name } => ("customer", Some(*id), name.clone()),
            Actor::Operator { id, name } => ("operator", Some(*id), name.clone()),
            Actor::Member { id, name } => ("member", Some(*id), name.clone()),
            Actor::Guard { id, name } => ("guard", Some(*id), name.clone()),
            Actor::Admin => ("admin", None, "admin".to_owned()),
            Actor::Agent { camera_id } => {
                ("agent", Some(*camera_id), format!("camera {camera_id}"))
            }
            Actor::MailRecipient { email } => ("recipient", None, email.clone()),
            Actor::System => ("system", None, "eyeward".to_owned()),
        }
    }
}

/// Through what an operation came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Web,
    Agent,
    AdminCli,
    /// A link in a mail.
    MailLink,
    System,
}

impl Channel {
    fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Agent => "agent",
            Channel::AdminCli => "admin-cli",
            Channel::MailLink => "mail-link",
            Channel::System => "system",
        }
    }
}

/// Who is making a change, through what, and when: written to the history with the change.
#[derive(Debug, Clone)]
pub struct Audit {
    pub actor: Actor,
    pub channel: Channel,
    pub at: UnixMillis,
}

impl Audit {
    pub fn admin(at: UnixMillis) -> Audit {
        Audit {
            actor: Actor::Admin,
            channel: Channel::AdminCli,
            at,
        }
    }
}

/// One history entry as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct HistoryEntry {
    pub id: i64,
    /// Milliseconds in the database; RFC 3339 in the API.
    #[serde(serialize_with = "rfc3339")]
    pub at: i64,
    pub actor_kind: String,
    pub actor_name: String,
    pub channel: String,
    pub action: String,
    /// JSON text in the database; an object in the API.
    #[serde(serialize_with = "raw_json")]
    pub detail: String,
}

/// Serializes milliseconds as RFC 3339 text, as the API shows times.
pub(super) fn rfc3339<S: serde::Serializer>(at: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&UnixMillis(*at).to_rfc3339())
}

fn raw_json<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
    v.serialize(s)
}

/// Appends one entry inside the caller's transaction, and queues the owner's notice mail if it
/// is an operation they are told of; returns its id.
pub(super) async fn record(
    tx: &mut Tx,
    audit: &Audit,
    customer: Option<CustomerId>,
    action: &str,
    detail: serde_json::Value,
) -> Result<i64, Error> {
    let (kind, actor_id, actor_name) = audit.actor.parts();
    let (id,): (i64,) = on!(tx, c => sqlx::query_as(
        "INSERT INTO history (at, customer_id, actor_kind, actor_id, actor_name, channel, action, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(audit.at.0)
    .bind(customer.map(|c| c.0))
    .bind(kind)
    .bind(actor_id)
    .bind(actor_name)
    .bind(audit.channel.as_str())
    .bind(action)
    .bind(detail.to_string())
    .fetch_one(c)
    .await)?;
    if let Some(customer) = customer {
        if OPERATION_NOTICES.contains(&action) {
            queue_notice(tx, customer.0, id, Notice::Operations, audit.at).await?;
        } else if action == "ptz.moved" {
            queue_notice(tx, customer.0, id, Notice::PanTilt, audit.at).await?;
        } else if ALWAYS_NOTICES.contains(&action) {
            queue_notice(tx, customer.0, id, Notice::Always, audit.at).await?;
        }
    }
    Ok(id)
}

/// The operations on an account that its owner is told of by mail (when they want it). A
/// login from a browser used before is not one of them, nor a pan-tilt move (a switch of its
/// own, off by default: someone looking around would be mailed at every press).
const OPERATION_NOTICES: &[&str] = &[
    "login.new_browser",
    "password.reset",
    "passkey.added",
    "passkey.removed",
    "passkeys.reset",
    "camera.renamed",
    "alert_address.added",
    "alert_address.confirmed",
    "alert_address.removed",
    "alert_address.unsubscribed",
    // A device that now takes alerts with their pictures, like an address.
    "push.subscribed",
    "home.changed",
    "home.notes_changed",
    "arming.changed",
    "arming.schedule_added",
    "arming.schedule_removed",
    "camera.alerts_changed",
    // Who is let into the household, and what they may do.
    "member.invited",
    "member.joined",
    "member.rights_changed",
    "member.removed",
    "member.invitation_withdrawn",
    // The identity-check password set, and each check of it by the guard center with its
    // result (never the word).
    "identity.password_set",
    "identity.checked",
];

/// Mailed whatever the switches say: each step of a dispatch request, since the customer is
/// waiting for a guard; the company's reset of the identity-check password, which the
/// customer did not do themselves.
const ALWAYS_NOTICES: &[&str] = &[
    "identity.password_reset",
    "dispatch.requested",
    "dispatch.accepted",
    "dispatch.assigned",
    "dispatch.en_route",
    "dispatch.arrived",
    "dispatch.completed",
    "dispatch.cancelled",
];

impl Store {
    /// Records an operation that changes nothing else (a login, a logout...).
    pub async fn record(
        &self,
        audit: &Audit,
        customer: Option<CustomerId>,
        action: &str,
        detail: serde_json::Value,
    ) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        record(&mut tx, audit, customer, action, detail).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A customer's history, newest first: at most `limit` entries with ids below `before`.
    pub async fn history_of(
        &self,
        customer: CustomerId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, Error> {
        Ok(on!(self.pool, c => sqlx::query_as(
            "SELECT id, at, actor_kind, actor_name, channel, action, detail FROM history
             WHERE customer_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(customer.0)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(c)
        .await)?)
    }
}
