//! Web Push in the store: each person's devices (their push subscriptions), the relay's one
//! VAPID key, the pushes queued with an alert (rows of the outbox, kind `push`, under the same
//! recipient rule and cooldown as alert mail), what a push needs as it leaves, and the
//! picture links pushes carry.

use super::history::{Audit, record};
use super::mail::{MailKind, NewMail, queue, receives};
use super::{Store, Tx, on, parse_column};
use crate::error::{Error, ErrorKind};
use eyeward::alert::{Device, devices};
use eyeward::{CameraId, CustomerId, Language, Role, UnixMillis};
use serde::Serialize;
use serde_json::json;

/// Devices one person may have.
pub const MAX_DEVICES: i64 = 10;

/// A device as its person sees it in their list: the push service's name, never the endpoint
/// (a capability).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushDevice {
    pub id: i64,
    /// The push service's host (`fcm.googleapis.com`, `updates.push.services.mozilla.com`).
    pub service: String,
    pub created_at: UnixMillis,
    pub last_sent_at: Option<UnixMillis>,
}

/// A subscription as the browser gives it.
pub struct NewDevice<'a> {
    pub endpoint: &'a str,
    /// The device's P-256 public key and auth secret, unpadded base64url.
    pub p256dh: &'a str,
    pub auth: &'a str,
}

/// What a push needs as it leaves.
#[derive(Debug, Clone)]
pub struct PushTarget {
    pub subscription: i64,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    /// The language of the device's person.
    pub lang: Language,
}

/// A device as the recipient rule sees it for one camera's alert.
#[derive(sqlx::FromRow)]
struct DeviceRow {
    id: i64,
    household: i64,
    endpoint: String,
    p256dh: String,
    auth: String,
    lang: String,
    receives: bool,
}

impl Device for DeviceRow {
    fn owner(&self) -> CustomerId {
        CustomerId(self.household)
    }
    fn receives(&self) -> bool {
        self.receives
    }
}

/// The devices of household `$1`'s people (`$4`: one device, or NULL for all), with whether
/// each person receives camera `$2`'s alerts at `$3`.
const DEVICES: &str = concat!(
    "SELECT s.id, COALESCE(p.household_id, p.id) AS household, s.endpoint, s.p256dh, s.auth, \
     p.lang, ",
    receives!(),
    " AS receives FROM push_subscriptions s JOIN accounts p ON p.id = s.account_id \
     WHERE (p.id = $1 OR p.household_id = $1) AND ($4 IS NULL OR s.id = $4) ORDER BY s.id"
);

async fn devices_in(
    tx: &mut Tx,
    household: i64,
    camera: i64,
    device: Option<i64>,
    now: UnixMillis,
) -> Result<Vec<DeviceRow>, Error> {
    Ok(on!(tx, c => sqlx::query_as(DEVICES)
        .bind(household)
        .bind(camera)
        .bind(now.0)
        .bind(device)
        .fetch_all(c)
        .await)?)
}

/// The push service's name in an endpoint: its host.
pub fn service_of(endpoint: &str) -> String {
    url::Url::parse(endpoint)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "push service".to_owned())
}

/// Queues the push about `event` on `camera` of household `owner` to each device whose person
/// receives its alerts (the one recipient rule: [`eyeward::alert::devices`]); how many.
pub(super) async fn queue_alert_pushes(
    tx: &mut Tx,
    owner: i64,
    camera: i64,
    event: i64,
    domain: &str,
    now: UnixMillis,
) -> Result<usize, Error> {
    let all = devices_in(tx, owner, camera, None, now).await?;
    let to = devices(CustomerId(owner), &all);
    for d in &to {
        let message_id = format!(
            "<push.{event}.{}.{:016x}@{domain}>",
            d.id,
            rand::random::<u64>()
        );
        queue(
            tx,
            &NewMail {
                kind: MailKind::Push,
                customer: CustomerId(owner),
                address: None,
                recipient: &service_of(&d.endpoint),
                event: Some(event),
                history: None,
                message_id: &message_id,
                body: None,
                push_subscription: Some(d.id),
            },
            now,
        )
        .await?;
    }
    Ok(to.len())
}

#[derive(sqlx::FromRow)]
struct ListRow {
    id: i64,
    endpoint: String,
    created_at: i64,
    last_sent_at: Option<i64>,
}

impl From<ListRow> for PushDevice {
    fn from(r: ListRow) -> PushDevice {
        PushDevice {
            id: r.id,
            service: service_of(&r.endpoint),
            created_at: UnixMillis(r.created_at),
            last_sent_at: r.last_sent_at.map(UnixMillis),
        }
    }
}

impl Store {
    /// The relay's VAPID private key: the one stored, or `generated`, stored now if no node
    /// stored one first.
    pub async fn vapid_key(&self, generated: &str, now: UnixMillis) -> Result<String, Error> {
        on!(self.pool, c => sqlx::query(
            "INSERT INTO push_keys (id, private_key, created_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(generated)
        .bind(now.0)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        let (key,): (String,) = on!(self.pool, c => sqlx::query_as("SELECT private_key FROM push_keys WHERE id = 1")
            .fetch_one(c)
            .await)?;
        Ok(key)
    }

    /// The account's devices, oldest first.
    pub async fn push_devices(&self, account: i64) -> Result<Vec<PushDevice>, Error> {
        let rows: Vec<ListRow> = on!(self.pool, c => sqlx::query_as(
            "SELECT id, endpoint, created_at, last_sent_at FROM push_subscriptions \
             WHERE account_id = $1 ORDER BY id",
        )
        .bind(account)
        .fetch_all(c)
        .await)?;
        Ok(rows.into_iter().map(PushDevice::from).collect())
    }

    /// Adds the device, or gives it to this account if another subscribed it on the same
    /// browser before (an endpoint is one browser's); at most [`MAX_DEVICES`] a person.
    pub async fn add_push_device(
        &self,
        account: i64,
        role: Role,
        new: &NewDevice<'_>,
        audit: &Audit,
    ) -> Result<PushDevice, Error> {
        let mut tx = self.begin().await?;
        let (count,): (i64,) = on!(tx, c => sqlx::query_as(
            "SELECT COUNT(*) FROM push_subscriptions WHERE account_id = $1 AND endpoint <> $2",
        )
        .bind(account)
        .bind(new.endpoint)
        .fetch_one(c)
        .await)?;
        if count >= MAX_DEVICES {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                format!("at most {MAX_DEVICES} devices take notifications; remove one first"),
            )
            .with_code("too_many_devices"));
        }
        let row: ListRow = on!(tx, c => sqlx::query_as(
            "INSERT INTO push_subscriptions (account_id, endpoint, p256dh, auth, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (endpoint) DO UPDATE SET account_id = excluded.account_id, \
             p256dh = excluded.p256dh, auth = excluded.auth, created_at = excluded.created_at, \
             last_sent_at = NULL \
             RETURNING id, endpoint, created_at, last_sent_at",
        )
        .bind(account)
        .bind(new.endpoint)
        .bind(new.p256dh)
        .bind(new.auth)
        .bind(audit.at.0)
        .fetch_one(c)
        .await)?;
        let device = PushDevice::from(row);
        let owner = super::accounts::history_owner(&mut tx, role, account).await?;
        let detail = json!({ "service": device.service });
        record(&mut tx, audit, owner, "push.subscribed", detail).await?;
        tx.commit().await?;
        Ok(device)
    }

    /// Removes the account's device `id` (its queued pushes go with it); false if it has none
    /// such.
    pub async fn remove_push_device(
        &self,
        account: i64,
        role: Role,
        id: i64,
        audit: &Audit,
    ) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        let gone: Option<(String,)> = on!(tx, c => sqlx::query_as(
            "DELETE FROM push_subscriptions WHERE id = $1 AND account_id = $2 RETURNING endpoint",
        )
        .bind(id)
        .bind(account)
        .fetch_optional(c)
        .await)?;
        let Some((endpoint,)) = gone else {
            return Ok(false);
        };
        let owner = super::accounts::history_owner(&mut tx, role, account).await?;
        let detail = json!({ "service": service_of(&endpoint) });
        record(&mut tx, audit, owner, "push.unsubscribed", detail).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The push service said the device is gone (404, 410): it is removed.
    pub async fn push_device_gone(&self, id: i64) -> Result<(), Error> {
        on!(self.pool, c => sqlx::query("DELETE FROM push_subscriptions WHERE id = $1")
            .bind(id)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Device `id` as a push about `camera` of `household` at `now` needs it, if it still
    /// takes it: the rule once more as the push leaves (its person's rights may have changed).
    pub async fn push_target(
        &self,
        id: i64,
        household: CustomerId,
        camera: CameraId,
        now: UnixMillis,
    ) -> Result<Option<PushTarget>, Error> {
        let mut tx = self.begin().await?;
        let rows = devices_in(&mut tx, household.0, camera.0, Some(id), now).await?;
        tx.commit().await?;
        devices(household, &rows)
            .first()
            .map(|d| {
                Ok(PushTarget {
                    subscription: d.id,
                    endpoint: d.endpoint.clone(),
                    p256dh: d.p256dh.clone(),
                    auth: d.auth.clone(),
                    lang: parse_column("lang", &d.lang)?,
                })
            })
            .transpose()
    }

    /// A push left for device `id` at `now`.
    pub async fn push_sent(&self, id: i64, now: UnixMillis) -> Result<(), Error> {
        on!(self.pool, c => sqlx::query("UPDATE push_subscriptions SET last_sent_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now.0)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Keeps the picture link of a push to device `device` about `event` (its token's hash)
    /// until `expires`; links expired at `now` are dropped.
    pub async fn add_push_picture(
        &self,
        token_hash: &str,
        event: i64,
        device: i64,
        expires: UnixMillis,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        on!(tx, c => sqlx::query("DELETE FROM push_pictures WHERE expires_at <= $1")
            .bind(now.0)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        on!(tx, c => sqlx::query(
            "INSERT INTO push_pictures (token_hash, event_id, subscription_id, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(event)
        .bind(device)
        .bind(expires.0)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(())
    }

    /// The event (and its household) whose picture the link `token_hash` shows at `now`, if it
    /// has not expired and its device is still there.
    pub async fn push_picture(
        &self,
        token_hash: &str,
        now: UnixMillis,
    ) -> Result<Option<(CustomerId, i64)>, Error> {
        let row: Option<(i64, i64)> = on!(self.pool, c => sqlx::query_as(
            "SELECT c.customer_id, e.id FROM push_pictures pp JOIN events e ON e.id = pp.event_id \
             JOIN cameras c ON c.id = e.camera_id \
             WHERE pp.token_hash = $1 AND pp.expires_at > $2",
        )
        .bind(token_hash)
        .bind(now.0)
        .fetch_optional(c)
        .await)?;
        Ok(row.map(|(household, event)| (CustomerId(household), event)))
    }
}

#[cfg(test)]
mod tests;
