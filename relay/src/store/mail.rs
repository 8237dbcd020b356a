//! Alert addresses and the mail outbox. Mail is queued in the same transaction as what it is
//! about (a new address, an event), so nothing acknowledged can lose its mail; the `mail`
//! module sends it.

use super::history::{Actor, Audit, Channel, record};
use super::household::household_of;
use super::{Store, Tx, conflict_on_unique, on};
use crate::error::{Error, ErrorKind};
use eyeward::alert::{Recipient, recipients};
use eyeward::{CustomerId, Email, UnixMillis};
use serde_json::json;

/// How long the unsubscribe link of a mail works: long enough for the mails people keep.
pub const UNSUBSCRIBE_FOR: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);

/// The most confirmation mails a customer's additions may send in a day: adding and removing
/// an address in a loop must not make the relay mail anyone at all without end.
pub const MAX_CONFIRMATIONS_PER_DAY: i64 = 10;

/// The most alert addresses a customer may have.
pub const MAX_ALERT_ADDRESSES: i64 = 5;

/// One of a customer's alert addresses.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AlertAddress {
    pub id: i64,
    pub customer_id: i64,
    pub email: String,
    pub confirmed_at: Option<i64>,
    pub confirm_expires: Option<i64>,
    pub created_at: i64,
}

/// A confirmed alert address as the recipient rule sees it, for one camera's alerts or for the
/// holder's notices: its household, its person, and whether that person receives it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AlertRecipient {
    pub id: i64,
    pub household: i64,
    /// The account whose address it is: the holder, or one of their household's members.
    pub person: i64,
    pub email: String,
    pub confirmed_at: Option<i64>,
    pub receives: bool,
}

impl Recipient for AlertRecipient {
    fn owner(&self) -> CustomerId {
        CustomerId(self.household)
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

/// Whether person `p` receives what is sent; `$2`: the camera whose alerts are sent (NULL for
/// the holder's notices, which members never receive); `$3`: now. A member receives a
/// camera's alerts when given `alerts` on it, while their access lasts.
macro_rules! receives {
    () => {
        "(p.role = 'customer' OR (p.role = 'member' AND $2 IS NOT NULL \
         AND (p.access_until IS NULL OR p.access_until > $3) \
         AND EXISTS (SELECT 1 FROM member_rights r WHERE r.member_id = p.id AND r.camera_id = $2 \
                     AND ',' || r.rights || ',' LIKE '%,alerts,%')))"
    };
}
pub(super) use receives;

/// The confirmed addresses of household `$1`'s people; `$2`: the camera whose alerts are sent
/// (NULL for the holder's notices, which members never receive); `$3`: now. A member
/// receives a camera's alerts when given `alerts` on it, while their access lasts.
const RECIPIENTS: &str = concat!(
    "SELECT a.id, COALESCE(p.household_id, p.id) AS household, p.id AS person, \
     a.email, a.confirmed_at, ",
    receives!(),
    " AS receives FROM alert_addresses a JOIN accounts p ON p.id = a.customer_id \
     WHERE a.confirmed_at IS NOT NULL AND (p.id = $1 OR p.household_id = $1)"
);

const ADDRESS_COLUMNS: &str = "id, customer_id, email, confirmed_at, confirm_expires, created_at";

/// What a mail is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// A motion alert with its snapshot, to a confirmed address.
    Alert,
    /// The link that confirms a new address, to that address.
    Confirm,
    /// Something the owner is told of (an operation, a camera offline or back), to the
    /// confirmed addresses.
    Notice,
    /// An invitation into a household, to the invited address.
    Invitation,
    /// Not a mail: a motion alert as a notification on a device (Web Push), sent from the same
    /// outbox with the same claims and retries; `recipient` names the push service.
    Push,
}

/// Which switch governs a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A camera offline for more than 5 minutes, and back.
    Offline,
    /// Operations on the account.
    Operations,
    /// A pan-tilt camera turned.
    PanTilt,
    /// The steps of a dispatch request and the company's reset of the identity-check
    /// password: no switch, always sent.
    Always,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Alert => "alert",
            MailKind::Confirm => "confirm",
            MailKind::Notice => "notice",
            MailKind::Invitation => "invitation",
            MailKind::Push => "push",
        }
    }
}

/// Which of the other mails (beside alerts and dispatch steps) a customer receives.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, sqlx::FromRow,
)]
pub struct NoticesWanted {
    /// A camera offline for more than `mail.offline_after`, and back.
    pub offline: bool,
    /// Operations on the account: logins from a new browser, alert addresses changed,
    /// cameras renamed...
    pub operations: bool,
    /// Every turn of a pan-tilt camera (off by default).
    pub ptz: bool,
}

/// A mail in the outbox.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OutboxMail {
    pub id: i64,
    pub kind: String,
    pub customer_id: i64,
    pub address_id: Option<i64>,
    pub recipient: String,
    pub event_id: Option<i64>,
    pub history_id: Option<i64>,
    pub message_id: String,
    pub body: Option<Vec<u8>>,
    pub attempts: i64,
    pub push_subscription_id: Option<i64>,
}

const OUTBOX_COLUMNS: &str = "id, kind, customer_id, address_id, recipient, event_id, history_id, \
                              message_id, body, attempts, push_subscription_id";

/// A new mail for the outbox.
pub struct NewMail<'a> {
    pub kind: MailKind,
    pub customer: CustomerId,
    pub address: Option<i64>,
    pub recipient: &'a str,
    pub event: Option<i64>,
    pub history: Option<i64>,
    pub message_id: &'a str,
    pub body: Option<&'a [u8]>,
    /// A push's device (kind [`MailKind::Push`]).
    pub push_subscription: Option<i64>,
}

/// Queues `mail` in the transaction of what it is about.
pub(super) async fn queue(tx: &mut Tx, mail: &NewMail<'_>, now: UnixMillis) -> Result<(), Error> {
    on!(tx, c => sqlx::query(
        "INSERT INTO outbox (kind, customer_id, address_id, recipient, event_id, history_id, \
         message_id, body, next_attempt_at, created_at, push_subscription_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)",
    )
    .bind(mail.kind.as_str())
    .bind(mail.customer.0)
    .bind(mail.address)
    .bind(mail.recipient)
    .bind(mail.event)
    .bind(mail.history)
    .bind(mail.message_id)
    .bind(mail.body)
    .bind(now.0)
    .bind(mail.push_subscription)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Queues a notice about history entry `history` to the customer's confirmed addresses, if
/// the customer wants that kind. Its Message-ID gets the relay's domain when it is sent.
pub(super) async fn queue_notice(
    tx: &mut Tx,
    customer: i64,
    history: i64,
    notice: Notice,
    now: UnixMillis,
) -> Result<(), Error> {
    let column = match notice {
        Notice::Offline => "notify_offline",
        Notice::Operations => "notify_operations",
        Notice::PanTilt => "notify_ptz",
        // Any true column: the customer exists and is a customer.
        Notice::Always => "TRUE",
    };
    let wanted: Option<(bool,)> = on!(tx, c => sqlx::query_as(&format!(
        "SELECT {column} FROM accounts WHERE id = $1 AND role = 'customer'"
    ))
    .bind(customer)
    .fetch_optional(c)
    .await)?;
    if wanted != Some((true,)) {
        return Ok(());
    }
    let addresses = recipients_in(tx, customer, None, now).await?;
    for to in recipients(CustomerId(customer), &addresses) {
        let message_id = format!("notice.{history}.{}", to.id);
        queue(
            tx,
            &NewMail {
                kind: MailKind::Notice,
                customer: CustomerId(customer),
                address: Some(to.id),
                recipient: &to.email,
                event: None,
                history: Some(history),
                message_id: &message_id,
                body: None,
                push_subscription: None,
            },
            now,
        )
        .await?;
    }
    Ok(())
}

/// The confirmed alert addresses of `household`'s people for `camera`'s alerts (`None`: for
/// the holder's notices) at `now`, in the transaction `tx`, for the recipient rule.
pub(super) async fn recipients_in(
    tx: &mut Tx,
    household: i64,
    camera: Option<i64>,
    now: UnixMillis,
) -> Result<Vec<AlertRecipient>, Error> {
    Ok(
        on!(tx, c => sqlx::query_as(&format!("{RECIPIENTS} ORDER BY a.id"))
        .bind(household)
        .bind(camera)
        .bind(now.0)
        .fetch_all(c)
        .await)?,
    )
}

impl Store {
    /// The customer's alert addresses, oldest first.
    pub async fn alert_addresses(&self, customer: CustomerId) -> Result<Vec<AlertAddress>, Error> {
        Ok(on!(self.pool, c => sqlx::query_as(&format!(
            "SELECT {ADDRESS_COLUMNS} FROM alert_addresses WHERE customer_id = $1 ORDER BY id"
        ))
        .bind(customer.0)
        .fetch_all(c)
        .await)?)
    }

    /// Adds an unconfirmed address with its confirmation mail (`body` renders the mail for
    /// the new address's id), in one transaction; 409 for an address the customer has, or a
    /// sixth one.
    #[allow(clippy::too_many_arguments)]
    pub async fn add_alert_address(
        &self,
        customer: CustomerId,
        email: &Email,
        confirm_hash: &str,
        confirm_expires: UnixMillis,
        message_id: &str,
        body: impl FnOnce(&AlertAddress) -> Result<Vec<u8>, Error>,
        audit: &Audit,
    ) -> Result<AlertAddress, Error> {
        let mut tx = self.begin().await?;
        // The limit is the household's: its holder's addresses and its members' together.
        let household = household_of(&mut tx, customer.0).await?;
        let (count,): (i64,) = on!(tx, c => sqlx::query_as(
            "SELECT COUNT(*) FROM alert_addresses WHERE customer_id IN \
             (SELECT id FROM accounts WHERE id = $1 OR household_id = $1)",
        )
        .bind(household.0)
        .fetch_one(c)
        .await)?;
        if count >= MAX_ALERT_ADDRESSES {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                format!("at most {MAX_ALERT_ADDRESSES} alert addresses in a household"),
            )
            .with_code("too_many_addresses"));
        }
        let day = std::time::Duration::from_secs(24 * 3600);
        let (recent,): (i64,) = on!(tx, c => sqlx::query_as(
            "SELECT COUNT(*) FROM outbox WHERE customer_id = $1 AND kind = 'confirm' \
             AND created_at > $2",
        )
        .bind(customer.0)
        .bind(audit.at.0 - day.as_millis() as i64)
        .fetch_one(c)
        .await)?;
        if recent >= MAX_CONFIRMATIONS_PER_DAY {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                format!(
                    "at most {MAX_CONFIRMATIONS_PER_DAY} confirmation mails a day; try again tomorrow"
                ),
            )
            .with_code("too_many_confirmations")
            .retry_after(day));
        }
        let address: AlertAddress = on!(tx, c => sqlx::query_as(&format!(
            "INSERT INTO alert_addresses (customer_id, email, confirm_hash, confirm_expires, \
             unsubscribe, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {ADDRESS_COLUMNS}"
        ))
        .bind(customer.0)
        .bind(email.as_str())
        .bind(confirm_hash)
        .bind(confirm_expires.0)
        // No longer read (see migration 0008): a value of its own for the column's constraint.
        .bind(format!("unused:{:032x}", rand::random::<u128>()))
        .bind(audit.at.0)
        .fetch_one(c)
        .await)
        .map_err(|e| conflict_on_unique(e, "this address is on the list already"))?;
        let body = body(&address)?;
        queue(
            &mut tx,
            &NewMail {
                kind: MailKind::Confirm,
                customer,
                address: Some(address.id),
                recipient: &address.email,
                event: None,
                history: None,
                message_id,
                body: Some(&body),
                push_subscription: None,
            },
            audit.at,
        )
        .await?;
        record(
            &mut tx,
            audit,
            Some(household),
            "alert_address.added",
            json!({"email": address.email}),
        )
        .await?;
        tx.commit().await?;
        Ok(address)
    }

    /// Confirms the address whose link carries the token with this hash, once, before it
    /// expires, recording it in the owner's history; `None` for an unknown, used or expired
    /// token.
    pub async fn confirm_alert_address(
        &self,
        confirm_hash: &str,
        now: UnixMillis,
    ) -> Result<Option<AlertAddress>, Error> {
        let mut tx = self.begin().await?;
        let confirmed: Option<AlertAddress> = on!(tx, c => sqlx::query_as(&format!(
            "UPDATE alert_addresses SET confirmed_at = $2, confirm_hash = NULL, \
             confirm_expires = NULL WHERE confirm_hash = $1 AND confirm_expires > $2 \
             RETURNING {ADDRESS_COLUMNS}"
        ))
        .bind(confirm_hash)
        .bind(now.0)
        .fetch_optional(c)
        .await)?;
        if let Some(a) = &confirmed {
            let household = household_of(&mut tx, a.customer_id).await?;
            record(
                &mut tx,
                &by_recipient(a, now),
                Some(household),
                "alert_address.confirmed",
                json!({"email": a.email}),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(confirmed)
    }

    /// Removes one of the customer's addresses at once (its queued mail goes with it);
    /// `false` when it is not theirs.
    pub async fn remove_alert_address(
        &self,
        customer: CustomerId,
        id: i64,
        audit: &Audit,
    ) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        let theirs: Option<(String,)> = on!(tx, c => sqlx::query_as(
            "SELECT email FROM alert_addresses WHERE id = $1 AND customer_id = $2",
        )
        .bind(id)
        .bind(customer.0)
        .fetch_optional(c)
        .await)?;
        let Some((email,)) = theirs else {
            return Ok(false);
        };
        remove_address_in(&mut tx, id).await?;
        let household = household_of(&mut tx, customer.0).await?;
        record(
            &mut tx,
            audit,
            Some(household),
            "alert_address.removed",
            json!({"email": email}),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Keeps the hash of an unsubscribe token put in a mail to `address`, valid until
    /// `expires`.
    pub async fn add_unsubscribe_token(
        &self,
        address: i64,
        token_hash: &str,
        expires: UnixMillis,
    ) -> Result<(), Error> {
        on!(self.pool, c => sqlx::query(
            "INSERT INTO unsubscribe_tokens (token_hash, address_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(token_hash)
        .bind(address)
        .bind(expires.0)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Forgets the unsubscribe tokens that expired before `now`; returns how many.
    pub async fn delete_expired_unsubscribe_tokens(&self, now: UnixMillis) -> Result<u64, Error> {
        Ok(
            on!(self.pool, c => sqlx::query("DELETE FROM unsubscribe_tokens WHERE expires_at <= $1")
                .bind(now.0)
                .execute(c)
                .await.map(|r| r.rows_affected()))?,
        )
    }

    /// Moves the clear unsubscribe tokens that addresses kept before migration 0008 to
    /// `unsubscribe_tokens`, hashed, valid until `expires`; the column keeps only their hash.
    /// Returns how many were moved (none after the first start).
    pub async fn hash_legacy_unsubscribe_tokens(&self, expires: UnixMillis) -> Result<u64, Error> {
        let mut tx = self.begin().await?;
        let legacy: Vec<(i64, String)> = on!(tx, c => sqlx::query_as(
            "SELECT id, unsubscribe FROM alert_addresses \
             WHERE unsubscribe NOT LIKE 'hashed:%' AND unsubscribe NOT LIKE 'unused:%'",
        )
        .fetch_all(c)
        .await)?;
        for (id, token) in &legacy {
            let hash = crate::auth::hash_token(token);
            on!(tx, c => sqlx::query(
                "INSERT INTO unsubscribe_tokens (token_hash, address_id, expires_at) \
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(&hash)
            .bind(id)
            .bind(expires.0)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
            on!(tx, c => sqlx::query("UPDATE alert_addresses SET unsubscribe = $2 WHERE id = $1")
                .bind(id)
                .bind(format!("hashed:{hash}"))
                .execute(c)
                .await.map(|r| r.rows_affected()))?;
        }
        tx.commit().await?;
        Ok(legacy.len() as u64)
    }

    /// Removes the address a mail's unsubscribe token was made for (RFC 8058 one-click), if
    /// the token has not expired, with its queued mail, recording it in the owner's history;
    /// returns it, `None` for an unknown or expired token.
    pub async fn unsubscribe(
        &self,
        token_hash: &str,
        now: UnixMillis,
    ) -> Result<Option<AlertAddress>, Error> {
        let mut tx = self.begin().await?;
        let removed: Option<AlertAddress> = on!(tx, c => sqlx::query_as(&format!(
            "SELECT {ADDRESS_COLUMNS} FROM alert_addresses WHERE id = (SELECT address_id \
             FROM unsubscribe_tokens WHERE token_hash = $1 AND expires_at > $2)"
        ))
        .bind(token_hash)
        .bind(now.0)
        .fetch_optional(c)
        .await)?;
        if let Some(a) = &removed {
            remove_address_in(&mut tx, a.id).await?;
            let household = household_of(&mut tx, a.customer_id).await?;
            record(
                &mut tx,
                &by_recipient(a, now),
                Some(household),
                "alert_address.unsubscribed",
                json!({"email": a.email}),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// Which notices the customer wants.
    pub async fn notices_wanted(&self, customer: CustomerId) -> Result<NoticesWanted, Error> {
        Ok(on!(self.pool, c => sqlx::query_as(
            "SELECT notify_offline AS offline, notify_operations AS operations, notify_ptz AS ptz \
             FROM accounts WHERE id = $1",
        )
        .bind(customer.0)
        .fetch_one(c)
        .await)?)
    }

    /// Switches the customer's notices, with its history entry.
    pub async fn set_notices_wanted(
        &self,
        customer: CustomerId,
        wanted: NoticesWanted,
        audit: &Audit,
    ) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        on!(tx, c => sqlx::query(
            "UPDATE accounts SET notify_offline = $2, notify_operations = $3, notify_ptz = $4 \
             WHERE id = $1",
        )
        .bind(customer.0)
        .bind(wanted.offline)
        .bind(wanted.operations)
        .bind(wanted.ptz)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        record(
            &mut tx,
            audit,
            Some(customer),
            "notices.changed",
            serde_json::to_value(wanted).expect("plain fields"),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Tells owners of cameras offline since `before` or earlier (once per outage). Returns
    /// how many cameras.
    pub async fn queue_offline_notices(
        &self,
        before: UnixMillis,
        now: UnixMillis,
    ) -> Result<usize, Error> {
        let mut tx = self.begin().await?;
        let down: Vec<(i64, i64, i64)> = on!(tx, c => sqlx::query_as(
            "UPDATE cameras SET offline_mailed = TRUE WHERE offline_mailed = FALSE \
             AND offline_since <= $1 AND offline_history_id IS NOT NULL \
             RETURNING id, customer_id, offline_history_id",
        )
        .bind(before.0)
        .fetch_all(c)
        .await)?;
        for (_, customer, history) in &down {
            queue_notice(&mut tx, *customer, *history, Notice::Offline, now).await?;
        }
        tx.commit().await?;
        Ok(down.len())
    }

    /// A history entry by id (for a notice mail).
    pub async fn history_entry(&self, id: i64) -> Result<Option<super::HistoryEntry>, Error> {
        Ok(on!(self.pool, c => sqlx::query_as(
            "SELECT id, at, actor_kind, actor_name, channel, action, detail FROM history WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(c)
        .await)?)
    }

    /// One alert address by id, if it still exists.
    /// Address `id` as the recipient rule sees it for `household`'s mail about `camera`
    /// (`None`: a notice) at `now`: the sender's check at the last moment.
    pub async fn alert_recipient(
        &self,
        id: i64,
        household: CustomerId,
        camera: Option<i64>,
        now: UnixMillis,
    ) -> Result<Option<AlertRecipient>, Error> {
        Ok(
            on!(self.pool, c => sqlx::query_as(&format!("{RECIPIENTS} AND a.id = $4"))
            .bind(household.0)
            .bind(camera)
            .bind(now.0)
            .bind(id)
            .fetch_optional(c)
            .await)?,
        )
    }

    /// The camera's events stored, while armed, since the one before `event` that was mailed,
    /// `event` excluded: what an alert mail summarises ("and N more"). None before the camera's first
    /// alert: what came before any address was confirmed was never "since the last alert".
    pub async fn events_held_before(&self, camera: i64, event: i64) -> Result<i64, Error> {
        let (n,): (i64,) = on!(self.pool, c => sqlx::query_as(
            "SELECT COUNT(*) FROM events WHERE camera_id = $1 AND kind = 'motion' AND armed AND id < $2 \
             AND id > COALESCE((SELECT MAX(o.event_id) FROM outbox o JOIN events e \
             ON e.id = o.event_id WHERE o.kind IN ('alert', 'push') AND e.camera_id = $1 \
             AND o.event_id < $2), $2)",
        )
        .bind(camera)
        .bind(event)
        .fetch_one(c)
        .await)?;
        Ok(n)
    }

    /// Claims up to `limit` mails due at `now`, oldest first, for node `node` until `until`:
    /// until then no other node takes them (PostgreSQL skips rows another node is claiming
    /// at this moment rather than waiting). A node that dies mid-send leaves its claim to run
    /// out; the mail is then due again, for any node, with the same Message-ID.
    pub async fn claim_due_mail(
        &self,
        now: UnixMillis,
        limit: u32,
        node: i64,
        until: UnixMillis,
    ) -> Result<Vec<OutboxMail>, Error> {
        let skip_locked = match self.pool {
            super::backend::Pool::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            // One writer at a time: the claim is already exclusive.
            super::backend::Pool::Sqlite(_) => "",
        };
        let mut claimed: Vec<OutboxMail> = on!(self.pool, c => sqlx::query_as(&format!(
            "UPDATE outbox SET next_attempt_at = $3, claimed_by = $4 WHERE id IN \
             (SELECT id FROM outbox WHERE state = 'queued' AND next_attempt_at <= $1 \
              ORDER BY id LIMIT $2{skip_locked}) \
             RETURNING {OUTBOX_COLUMNS}"
        ))
        .bind(now.0)
        .bind(i64::from(limit))
        .bind(until.0)
        .bind(node)
        .fetch_all(c)
        .await)?;
        claimed.sort_by_key(|m| m.id);
        Ok(claimed)
    }

    /// Mail due at `now`, oldest first, without claiming it (what tests look at).
    #[cfg(test)]
    pub async fn due_mail(&self, now: UnixMillis, limit: u32) -> Result<Vec<OutboxMail>, Error> {
        Ok(on!(self.pool, c => sqlx::query_as(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE state = 'queued' AND next_attempt_at <= $1 \
             ORDER BY id LIMIT $2"
        ))
        .bind(now.0)
        .bind(i64::from(limit))
        .fetch_all(c)
        .await)?)
    }

    /// Makes every queued mail due at `now` (at start). Among several nodes (`alone` false),
    /// not those another node has claimed: their claims run out by themselves. A relay that
    /// is the whole service takes its own claims back: a mail it was sending when it
    /// stopped goes at once.
    pub async fn all_mail_due(&self, now: UnixMillis, alone: bool) -> Result<(), Error> {
        on!(self.pool, c => sqlx::query("UPDATE outbox SET next_attempt_at = $1, claimed_by = NULL \
                 WHERE state = 'queued' AND next_attempt_at > $1 AND ($2 OR claimed_by IS NULL)")
            .bind(now.0)
            .bind(alone)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// When the next queued mail is due, if any.
    pub async fn next_mail_due(&self) -> Result<Option<UnixMillis>, Error> {
        let (at,): (Option<i64>,) = on!(self.pool, c => sqlx::query_as("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'queued'")
                .fetch_one(c)
                .await)?;
        Ok(at.map(UnixMillis))
    }

    /// The mail left: done (its rendered body, holding any token, is dropped).
    pub async fn mail_sent(&self, id: i64, now: UnixMillis) -> Result<(), Error> {
        on!(self.pool, c => sqlx::query(
            "UPDATE outbox SET state = 'sent', sent_at = $2, body = NULL, \
             attempts = attempts + 1, last_error = NULL, claimed_by = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(now.0)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// A temporary failure: try again at `retry_at`.
    pub async fn mail_retry(&self, id: i64, retry_at: UnixMillis, why: &str) -> Result<(), Error> {
        on!(self.pool, c => sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3, \
             claimed_by = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(retry_at.0)
        .bind(why)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// A permanent failure (the server refused the recipient), or nothing left to send
    /// (`cancelled`): the mail stays, with why, for the customer to see.
    pub async fn mail_ended(&self, id: i64, state: &str, why: &str) -> Result<(), Error> {
        on!(self.pool, c => sqlx::query(
            "UPDATE outbox SET state = $2, attempts = attempts + 1, last_error = $3, body = NULL, \
             claimed_by = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(state)
        .bind(why)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// How the alert mails of the camera's events captured in `from..=to` went:
    /// `(event, recipient, state)` each, for the event list.
    pub async fn alert_deliveries(
        &self,
        camera: i64,
        from: UnixMillis,
        to: UnixMillis,
    ) -> Result<Vec<(i64, String, String)>, Error> {
        Ok(on!(self.pool, c => sqlx::query_as(
            "SELECT o.event_id, o.recipient, o.state FROM outbox o JOIN events e ON e.id = o.event_id \
             WHERE e.camera_id = $1 AND e.captured_at >= $2 AND e.captured_at <= $3 \
             AND o.kind = 'alert' ORDER BY o.id",
        )
        .bind(camera)
        .bind(from.0)
        .bind(to.0)
        .fetch_all(c)
        .await)?)
    }
}

/// What a link in a mail to `address` did, for the history.
fn by_recipient(address: &AlertAddress, at: UnixMillis) -> Audit {
    Audit {
        actor: Actor::MailRecipient {
            email: address.email.clone(),
        },
        channel: Channel::MailLink,
        at,
    }
}

/// Removes address `address` with its queued mail, at once: every mail to it names it (its
/// confirmation, alerts and notices), and is cancelled before the row goes (which unlinks
/// them).
async fn remove_address_in(tx: &mut Tx, address: i64) -> Result<(), Error> {
    on!(tx, c => sqlx::query(
        "UPDATE outbox SET state = 'cancelled', last_error = 'the address was removed', \
         body = NULL WHERE state = 'queued' AND address_id = $1",
    )
    .bind(address)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    on!(tx, c => sqlx::query("DELETE FROM alert_addresses WHERE id = $1")
        .bind(address)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{customer, store};
    use std::time::Duration;

    async fn add(
        s: &Store,
        c: CustomerId,
        email: &str,
        hash: &str,
        at: UnixMillis,
    ) -> AlertAddress {
        s.add_alert_address(
            c,
            &Email::parse(email).unwrap(),
            hash,
            at.plus(Duration::from_secs(24 * 3600)),
            &format!("<{hash}@test>"),
            |_| Ok(b"mail".to_vec()),
            &Audit::admin(at),
        )
        .await
        .unwrap()
    }

    /// Several nodes send the one outbox: a claimed mail is no other node's until its claim
    /// runs out (the claimer died mid-send), and a node starting does not cut another's
    /// claim short.
    #[tokio::test]
    async fn a_claimed_mail_is_sent_by_one_node_until_its_claim_runs_out() {
        let (s, _dir) = store().await;
        let t0 = UnixMillis(1_800_000_000_000);
        let alice = customer(&s, "alice@example.jp").await;
        for i in 0..3 {
            add(&s, alice, &format!("r{i}@example.jp"), &format!("h{i}"), t0).await;
        }
        let claim_end = t0.plus(Duration::from_secs(180));
        let (a, b) = (1, 2);
        let first = s.claim_due_mail(t0, 2, a, claim_end).await.unwrap();
        assert_eq!(first.len(), 2, "a batch, oldest first");
        assert!(first[0].id < first[1].id);
        let rest = s.claim_due_mail(t0, 10, b, claim_end).await.unwrap();
        assert_eq!(rest.len(), 1, "the one a did not claim");
        assert!(
            s.claim_due_mail(t0, 10, b, claim_end)
                .await
                .unwrap()
                .is_empty()
        );
        s.all_mail_due(t0, false).await.unwrap();
        assert!(
            s.claim_due_mail(t0, 10, b, claim_end)
                .await
                .unwrap()
                .is_empty(),
            "a node starting leaves the others' claims"
        );
        s.mail_sent(first[0].id, t0).await.unwrap();
        // a died with the second mail: after its claim, b sends it, with the same Message-ID.
        let again = s.claim_due_mail(claim_end, 10, b, claim_end.plus(Duration::from_secs(180)));
        let again = again.await.unwrap();
        let ids: Vec<i64> = again.iter().map(|m| m.id).collect();
        assert_eq!(ids, [first[1].id, rest[0].id]);
        assert_eq!(again[0].message_id, first[1].message_id);
        // A relay that is the whole service, starting again, takes its claims back at once.
        s.all_mail_due(t0, true).await.unwrap();
        assert_eq!(
            s.claim_due_mail(t0, 10, 0, claim_end).await.unwrap().len(),
            2
        );
    }

    /// Addresses from before migration 0008 kept their token in clear: it is moved, hashed,
    /// so the links in mails already sent work until they expire, and nothing stays in clear.
    #[tokio::test]
    async fn clear_unsubscribe_tokens_from_before_are_kept_hashed_and_still_work() {
        let (s, _dir) = store().await;
        let t0 = UnixMillis(1_800_000_000_000);
        let c = customer(&s, "a@example.jp").await;
        let a = add(&s, c, "home@example.jp", "h", t0).await;
        on!(s.pool, c => sqlx::query("UPDATE alert_addresses SET unsubscribe = 'ewu_oldcleartoken' WHERE id = $1")
            .bind(a.id)
            .execute(c)
            .await.map(|r| r.rows_affected()))
            .unwrap();
        let until = t0.plus(Duration::from_secs(3600));
        assert_eq!(s.hash_legacy_unsubscribe_tokens(until).await.unwrap(), 1);
        assert_eq!(s.hash_legacy_unsubscribe_tokens(until).await.unwrap(), 0);
        let (kept,): (String,) =
            on!(s.pool, c => sqlx::query_as("SELECT unsubscribe FROM alert_addresses WHERE id = $1")
                .bind(a.id)
                .fetch_one(c)
                .await)
                .unwrap();
        assert!(!kept.contains("oldcleartoken"), "{kept}");
        let hash = crate::auth::hash_token("ewu_oldcleartoken");
        assert_eq!(s.unsubscribe(&hash, until).await.unwrap(), None, "expired");
        assert_eq!(s.unsubscribe(&hash, t0).await.unwrap().unwrap().id, a.id);
    }

    /// Adding and removing an address in a loop sends ten confirmation mails a day, then
    /// 429: the relay cannot be made to mail anyone without end.
    #[tokio::test]
    async fn confirmation_mails_are_limited_to_ten_a_day() {
        let (s, _dir) = store().await;
        let t0 = UnixMillis(1_800_000_000_000);
        let alice = customer(&s, "a@example.jp").await;
        for i in 0..10 {
            let a = add(
                &s,
                alice,
                &format!("loop{i}@example.jp"),
                &format!("l{i}"),
                t0,
            )
            .await;
            assert!(
                s.remove_alert_address(alice, a.id, &Audit::admin(t0))
                    .await
                    .unwrap()
            );
        }
        async fn try_add(
            s: &Store,
            alice: CustomerId,
            at: UnixMillis,
        ) -> Result<AlertAddress, Error> {
            let victim = Email::parse("victim@example.jp").unwrap();
            let audit = Audit::admin(at);
            let body = |_: &AlertAddress| Ok(b"mail".to_vec());
            s.add_alert_address(alice, &victim, "v", at, "<v@test>", body, &audit)
                .await
        }
        let eleventh = try_add(&s, alice, t0).await.unwrap_err();
        assert_eq!(eleventh.kind(), ErrorKind::ResourceExhausted);
        let tomorrow = t0.plus(Duration::from_secs(24 * 3600 + 1));
        assert!(try_add(&s, alice, tomorrow).await.is_ok());
    }

    /// A pan-tilt move is mailed only to a customer who switched those mails on; a login
    /// from a browser used before never is, one from a new browser is an operation.
    #[tokio::test]
    async fn pan_tilt_moves_and_known_logins_are_not_mailed_by_default() {
        let (s, _dir) = store().await;
        let t0 = UnixMillis(1_800_000_000_000);
        let c = customer(&s, "a@example.jp").await;
        add(&s, c, "home@example.jp", "h", t0).await;
        s.confirm_alert_address("h", t0).await.unwrap().unwrap();
        let notices = || async {
            let (n,): (i64,) = on!(s.pool, c => sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE kind = 'notice'")
                .fetch_one(c)
                .await)
                .unwrap();
            n
        };
        let before = notices().await;
        let audit = Audit::admin(t0);
        let moved = serde_json::json!({"camera": "Porch"});
        s.record(&audit, Some(c), "ptz.moved", moved.clone())
            .await
            .unwrap();
        s.record(&audit, Some(c), "login", serde_json::json!({}))
            .await
            .unwrap();
        assert_eq!(notices().await, before, "nothing mailed");
        s.record(&audit, Some(c), "login.new_browser", serde_json::json!({}))
            .await
            .unwrap();
        assert_eq!(notices().await, before + 1, "a new browser is news");
        let wanted = NoticesWanted {
            offline: true,
            operations: true,
            ptz: true,
        };
        s.set_notices_wanted(c, wanted, &audit).await.unwrap();
        assert_eq!(s.notices_wanted(c).await.unwrap(), wanted);
        s.record(&audit, Some(c), "ptz.moved", moved).await.unwrap();
        assert_eq!(notices().await, before + 2, "switched on");
    }

    #[tokio::test]
    async fn a_confirmation_link_works_once_within_a_day_for_its_own_address_only() {
        let (s, _dir) = store().await;
        let (alice, bob) = (
            customer(&s, "a@example.jp").await,
            customer(&s, "b@example.jp").await,
        );
        let t0 = UnixMillis(1_800_000_000_000);
        let mine = add(&s, alice, "home@example.jp", "hash-a", t0).await;
        // Bob adds the same address: his own entry, with his own link.
        let his = add(&s, bob, "home@example.jp", "hash-b", t0).await;
        let late = t0.plus(Duration::from_secs(25 * 3600));
        assert_eq!(
            s.confirm_alert_address("hash-a", late).await.unwrap(),
            None,
            "expired"
        );
        let soon = t0.plus(Duration::from_secs(3600));
        let confirmed = s
            .confirm_alert_address("hash-a", soon)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((confirmed.id, confirmed.customer_id), (mine.id, alice.0));
        assert_eq!(
            s.confirm_alert_address("hash-a", soon).await.unwrap(),
            None,
            "used"
        );
        let bobs = s.alert_addresses(bob).await.unwrap();
        assert_eq!((bobs[0].id, bobs[0].confirmed_at), (his.id, None));
        assert_eq!(
            s.confirm_alert_address("made-up", soon).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn at_most_five_addresses_and_removal_cancels_queued_mail() {
        let (s, _dir) = store().await;
        let alice = customer(&s, "a@example.jp").await;
        let t0 = UnixMillis(1_800_000_000_000);
        let mut added = Vec::new();
        for i in 0..5 {
            added.push(add(&s, alice, &format!("r{i}@example.jp"), &format!("h{i}"), t0).await);
        }
        let sixth = s
            .add_alert_address(
                alice,
                &Email::parse("r5@example.jp").unwrap(),
                "h5",
                t0,
                "<h5@test>",
                |_| Ok(b"mail".to_vec()),
                &Audit::admin(t0),
            )
            .await
            .unwrap_err();
        assert_eq!(sixth.kind(), ErrorKind::FailedPrecondition);
        assert_eq!(
            s.due_mail(t0, 20).await.unwrap().len(),
            5,
            "five confirmations"
        );
        assert!(
            s.remove_alert_address(alice, added[0].id, &Audit::admin(t0))
                .await
                .unwrap()
        );
        // A mail's unsubscribe token works until it expires, for its own address only.
        let expires = t0.plus(Duration::from_secs(60));
        s.add_unsubscribe_token(added[1].id, "u-h1", expires)
            .await
            .unwrap();
        s.add_unsubscribe_token(added[2].id, "u-h2", t0)
            .await
            .unwrap();
        assert_eq!(s.unsubscribe("u-h2", t0).await.unwrap(), None, "expired");
        assert_eq!(s.unsubscribe("u-unknown", t0).await.unwrap(), None);
        let gone = s.unsubscribe("u-h1", t0).await.unwrap().unwrap();
        assert_eq!(gone.id, added[1].id);
        assert_eq!(
            s.delete_expired_unsubscribe_tokens(expires).await.unwrap(),
            1
        );
        let due: Vec<_> = s
            .due_mail(t0, 20)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.recipient)
            .collect();
        assert_eq!(due, ["r2@example.jp", "r3@example.jp", "r4@example.jp"]);
        let left: Vec<_> = s
            .alert_addresses(alice)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(left, [added[2].id, added[3].id, added[4].id]);
        assert!(
            !s.remove_alert_address(CustomerId(999), added[2].id, &Audit::admin(t0))
                .await
                .unwrap()
        );
    }
}
