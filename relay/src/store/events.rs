//! Events: one row per event, keyed per camera by the agent's idempotency key. Most are
//! motion; a gap tells of snapshots or events an agent's full queue had to drop. The snapshot
//! file is the `events` module's business; this holds the rows.

use super::arming::{alerts_now, by_hand};
use super::backend::Pool;
use super::mail::{MailKind, NewMail, queue, recipients_in};
use super::{Store, Tx, conflict_on_unique, on};
use crate::error::{Error, ErrorKind};
use eyeward::alert::{alert_due, recipients};
use eyeward::arming::CameraAlerts;
use eyeward::{CameraId, CustomerId, UnixMillis};
use std::time::Duration;

/// What [`Store::arrival`] reads of an upload's camera and owner: the owner, the camera's
/// alert switches (away, home), its last alert, the owner's mode and since when it was set by
/// hand, whether the owner has a schedule, the id of the event stored under the key.
type ArrivalRow = (
    i64,
    bool,
    bool,
    Option<i64>,
    String,
    Option<i64>,
    bool,
    Option<i64>,
);

/// What the store knows of an upload's event before storing it: read when the upload
/// arrives, before its snapshot is stored.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// The id of the event already stored under the upload's key: a repeated upload.
    pub stored: Option<i64>,
    /// Whether the household is armed for the camera.
    armed: bool,
    /// When the camera's last alert mail was queued, as read then: a hint; an alert is
    /// decided again under the camera's row lock.
    last_alert: Option<UnixMillis>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Event {
    pub id: i64,
    pub camera_id: i64,
    pub idempotency_key: String,
    pub captured_at: i64,
    pub received_at: i64,
    pub score: f64,
    /// `[x, y, w, h]` as JSON.
    pub bbox: String,
    pub width: i64,
    pub height: i64,
    /// 0: no snapshot (a gap, or a motion event whose picture the agent had to drop).
    pub snapshot_bytes: i64,
    /// `motion` or `gap`.
    pub kind: String,
    /// For a gap: the snapshots dropped (their events came on) and the events dropped whole.
    pub lost_snapshots: i64,
    pub lost_events: i64,
    /// For a gap: the capture time of the last dropped event.
    pub until_at: Option<i64>,
    /// Whether the household was armed for the camera when the event came: only then is it
    /// mailed.
    pub armed: bool,
    /// For a gap: the clips dropped (their events came on).
    pub lost_clips: i64,
    /// The agent said it records a clip of the event.
    pub clip_coming: bool,
    /// The event's clip, once stored: 0 when it has none (yet).
    pub clip_bytes: i64,
    /// From the clip's first frame to its last; when the motion was first seen from its
    /// start (milliseconds).
    pub clip_ms: i64,
    pub clip_event_at_ms: i64,
    /// `h264` or `h265`.
    pub clip_codec: Option<String>,
    pub clip_width: i64,
    pub clip_height: i64,
}

/// Where a page of an event list starts: before this capture time (and, among events taken
/// at that very millisecond, before this id); the newest when `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventPage {
    pub before: Option<(UnixMillis, Option<i64>)>,
}

/// What an agent's queue dropped, for a gap event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gap {
    pub lost_snapshots: u64,
    pub lost_events: u64,
    pub lost_clips: u64,
    pub until: UnixMillis,
}

/// A clip, checked and stored, as its event's row names it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredClip {
    pub bytes: u64,
    pub length_ms: u64,
    pub event_at_ms: u64,
    pub codec: String,
    pub width: u32,
    pub height: u32,
}

/// What an agent reported, checked.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub camera: CameraId,
    pub idempotency_key: String,
    pub captured_at: UnixMillis,
    pub received_at: UnixMillis,
    pub score: f64,
    pub bbox: [u32; 4],
    pub width: u32,
    pub height: u32,
    pub snapshot_bytes: usize,
    /// `Some` for a gap event.
    pub gap: Option<Gap>,
    /// The agent records a clip of it.
    pub clip_coming: bool,
}

const COLUMNS: &str = "id, camera_id, idempotency_key, captured_at, received_at, score, bbox, \
                       width, height, snapshot_bytes, kind, lost_snapshots, lost_events, until_at, armed, \
                       lost_clips, clip_coming, clip_bytes, clip_ms, clip_event_at_ms, clip_codec, clip_width, clip_height";

/// The columns a new event sets, and their values as [`bind_new_event!`] binds them.
const NEW_COLUMNS: &str = "camera_id, idempotency_key, captured_at, received_at, score, bbox, \
                           width, height, snapshot_bytes, kind, lost_snapshots, lost_events, until_at, armed, \
                           lost_clips, clip_coming";
const NEW_VALUES: &str = "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16";

/// The 409 of an upload whose key a concurrent upload took.
const TAKEN: &str = "this event is being stored already";

/// Binds a new event's values to `$query`, in [`NEW_VALUES`]' order.
macro_rules! bind_new_event {
    ($query:expr, $e:expr, $bbox:expr, $armed:expr) => {
        $query
            .bind($e.camera.0)
            .bind(&$e.idempotency_key)
            .bind($e.captured_at.0)
            .bind($e.received_at.0)
            .bind($e.score)
            .bind(&$bbox)
            .bind(i64::from($e.width))
            .bind(i64::from($e.height))
            .bind($e.snapshot_bytes as i64)
            .bind(if $e.gap.is_some() { "gap" } else { "motion" })
            .bind($e.gap.map_or(0, |g| g.lost_snapshots as i64))
            .bind($e.gap.map_or(0, |g| g.lost_events as i64))
            .bind($e.gap.map(|g| g.until.0))
            .bind($armed)
            .bind($e.gap.map_or(0, |g| g.lost_clips as i64))
            .bind($e.clip_coming)
    };
}

impl Store {
    /// The camera's event with this idempotency key, if it was stored already.
    pub async fn event_by_key(&self, camera: CameraId, key: &str) -> Result<Option<Event>, Error> {
        Ok(on!(self.pool, c => sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM events WHERE camera_id = $1 AND idempotency_key = $2"
        ))
        .bind(camera.0)
        .bind(key)
        .fetch_optional(c)
        .await)?)
    }

    /// What an upload's event needs before it is stored (see [`Arrival`]), for `camera` and
    /// `key` at `now`: one round trip, and one more for an owner with a schedule.
    pub async fn arrival(
        &self,
        camera: CameraId,
        key: &str,
        now: UnixMillis,
    ) -> Result<Arrival, Error> {
        let mut conn = self.pool.acquire().await?;
        let (owner, away, home, last_alert, mode, set_at, scheduled, stored): ArrivalRow = on!(conn, c => sqlx::query_as(
            "SELECT c.customer_id, c.alert_when_away, c.alert_when_home, c.last_alert_at, \
             a.arming_mode, a.arming_set_at, \
             EXISTS (SELECT 1 FROM arming_switches s WHERE s.customer_id = c.customer_id), \
             (SELECT e.id FROM events e WHERE e.camera_id = c.id AND e.idempotency_key = $2) \
             FROM cameras c JOIN accounts a ON a.id = c.customer_id WHERE c.id = $1",
        )
        .bind(camera.0)
        .bind(key)
        .fetch_one(c)
        .await)?;
        let by_hand = by_hand(&mode, set_at)?;
        let alerts = CameraAlerts { away, home };
        Ok(Arrival {
            stored,
            armed: alerts_now(&mut conn, owner, by_hand, scheduled, alerts, now).await?,
            last_alert: last_alert.map(UnixMillis),
        })
    }

    /// Stores the event (its snapshot is stored already), as [`Store::insert_arrived`] does,
    /// reading its [`Arrival`] first: for tests, which have no upload that read it already
    /// (`Events::record` does).
    #[cfg(test)]
    pub(crate) async fn insert_event(
        &self,
        e: &NewEvent,
        alerts: &AlertPolicy<'_>,
    ) -> Result<Event, Error> {
        let arrival = self
            .arrival(e.camera, &e.idempotency_key, e.received_at)
            .await?;
        self.insert_arrived(e, &arrival, alerts).await
    }

    /// Stores the event (its snapshot is stored already), its bytes added to its camera's
    /// running total, and, for motion while the household is armed for the camera, its alert
    /// mail to each confirmed address of the camera's owner, all at once: unless `alerts` says
    /// the camera was mailed about too recently (the next mail will count this event). A 409
    /// when its key was taken meanwhile.
    pub async fn insert_arrived(
        &self,
        e: &NewEvent,
        arrival: &Arrival,
        alerts: &AlertPolicy<'_>,
    ) -> Result<Event, Error> {
        let bbox = serde_json::to_string(&e.bbox).map_err(|e| Error::internal(e.to_string()))?;
        // A gap mails nothing, and no mode silences it: armed, as the column's default.
        let armed = e.gap.is_some() || arrival.armed;
        let mailed = e.gap.is_none()
            && arrival.armed
            && alert_due(arrival.last_alert, e.received_at, alerts.cooldown);
        if !mailed {
            // No alert to decide: the event and its camera's total, nothing else. PostgreSQL
            // takes both in one statement (no BEGIN and COMMIT round trips, the upload's
            // commonest case); SQLite, in the process, in a transaction.
            let stored = match &self.pool {
                Pool::Postgres(pool) => {
                    let sql = format!(
                        "WITH counted AS (UPDATE cameras SET snapshot_bytes = snapshot_bytes + $9 \
                         WHERE id = $1 RETURNING id) \
                         INSERT INTO events ({NEW_COLUMNS}) SELECT {NEW_VALUES} FROM counted \
                         RETURNING {COLUMNS}"
                    );
                    bind_new_event!(sqlx::query_as(&sql), e, bbox, armed)
                        .fetch_one(pool)
                        .await
                }
                Pool::Sqlite(_) => {
                    let mut tx = self.begin().await?;
                    add_snapshot_bytes(&mut tx, e).await?;
                    let event = insert_row(&mut tx, e, bbox, armed).await;
                    if event.is_ok() {
                        tx.commit().await?;
                    }
                    event
                }
            };
            return stored.map_err(|err| conflict_on_unique(err, TAKEN));
        }
        // An alert is due, as read on arrival: decided again under the camera's row lock,
        // which a concurrent event of the camera waits for, so one of them mails.
        let mut tx = self.begin().await?;
        let last_alert = add_snapshot_bytes(&mut tx, e).await?;
        let event = insert_row(&mut tx, e, bbox, armed)
            .await
            .map_err(|err| conflict_on_unique(err, TAKEN))?;
        if alert_due(last_alert.map(UnixMillis), e.received_at, alerts.cooldown) {
            queue_alert_mail(
                &mut tx,
                event.camera_id,
                event.id,
                alerts.domain,
                e.received_at,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(event)
    }

    /// Raises a stored gap's counts to what the agent reports now (they only grow: a late
    /// retry of an older report changes nothing). `None` when nothing changed.
    pub async fn grow_gap(&self, id: i64, gap: Gap) -> Result<Option<Event>, Error> {
        Ok(on!(self.pool, c => sqlx::query_as(&format!(
            "UPDATE events SET lost_snapshots = $2, lost_events = $3, until_at = $4, lost_clips = $5 \
             WHERE id = $1 AND kind = 'gap' AND lost_snapshots <= $2 AND lost_events <= $3 \
             AND lost_clips <= $5 \
             AND (lost_snapshots < $2 OR lost_events < $3 OR lost_clips < $5) RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(gap.lost_snapshots as i64)
        .bind(gap.lost_events as i64)
        .bind(gap.until.0)
        .bind(gap.lost_clips as i64)
        .fetch_optional(c)
        .await)?)
    }

    /// The owner's events, newest first: of one camera or of all, at most `limit`, older than
    /// `page.before` when given (capture time, then id: no event is skipped between pages,
    /// even two taken in the same millisecond).
    pub async fn events_of(
        &self,
        customer: CustomerId,
        camera: Option<CameraId>,
        member: Option<i64>,
        page: EventPage,
        limit: u32,
    ) -> Result<Vec<Event>, Error> {
        // Without an id, strictly before the instant.
        let (before, before_id) = page.before.map_or((i64::MAX, i64::MIN), |(at, id)| {
            (at.0, id.unwrap_or(i64::MIN))
        });
        // One camera's page is read in order straight off its (camera, time) index, and stops
        // at the limit; all cameras' pages are merged by time.
        let camera_filter = if camera.is_some() {
            "camera_id = $2"
        } else {
            "$2 IS NULL"
        };
        // A member sees the events of the cameras they were given `events` on.
        let member_filter = if member.is_some() {
            "camera_id IN (SELECT camera_id FROM member_rights WHERE member_id = $6 \
             AND ',' || rights || ',' LIKE '%,events,%')"
        } else {
            "$6 IS NULL"
        };
        Ok(on!(self.pool, c => sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM events WHERE {camera_filter} AND {member_filter} \
             AND camera_id IN (SELECT id FROM cameras WHERE customer_id = $1) \
             AND (captured_at < $3 OR (captured_at = $3 AND id < $4)) \
             ORDER BY captured_at DESC, id DESC LIMIT $5"
        ))
        .bind(customer.0)
        .bind(camera.map(|c| c.0))
        .bind(before)
        .bind(before_id)
        .bind(i64::from(limit))
        .bind(member)
        .fetch_all(c)
        .await)?)
    }

    /// The events of `event`'s camera just before and just after it (older, newer): where
    /// the viewer's previous and next go.
    pub async fn event_neighbours(
        &self,
        event: &Event,
    ) -> Result<(Option<i64>, Option<i64>), Error> {
        let older: Option<(i64,)> = on!(self.pool, c => sqlx::query_as(
            "SELECT id FROM events WHERE camera_id = $1 \
             AND (captured_at < $2 OR (captured_at = $2 AND id < $3)) \
             ORDER BY captured_at DESC, id DESC LIMIT 1",
        )
        .bind(event.camera_id)
        .bind(event.captured_at)
        .bind(event.id)
        .fetch_optional(c)
        .await)?;
        let newer: Option<(i64,)> = on!(self.pool, c => sqlx::query_as(
            "SELECT id FROM events WHERE camera_id = $1 \
             AND (captured_at > $2 OR (captured_at = $2 AND id > $3)) \
             ORDER BY captured_at ASC, id ASC LIMIT 1",
        )
        .bind(event.camera_id)
        .bind(event.captured_at)
        .bind(event.id)
        .fetch_optional(c)
        .await)?;
        Ok((older.map(|r| r.0), newer.map(|r| r.0)))
    }

    /// One of the owner's events; `None` when it is not theirs.
    pub async fn event_of(&self, customer: CustomerId, id: i64) -> Result<Option<Event>, Error> {
        Ok(on!(self.pool, c => sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM events WHERE id = $1 \
             AND camera_id IN (SELECT id FROM cameras WHERE customer_id = $2)"
        ))
        .bind(id)
        .bind(customer.0)
        .fetch_optional(c)
        .await)?)
    }

    /// Event `id`, whoever owns it: for telling every node's live streams of a change another
    /// node made (the streams check their own viewers' ownership).
    pub async fn event(&self, id: i64) -> Result<Option<Event>, Error> {
        Ok(
            on!(self.pool, c => sqlx::query_as(&format!("SELECT {COLUMNS} FROM events WHERE id = $1"))
            .bind(id)
            .fetch_optional(c)
            .await)?,
        )
    }

    /// The idempotency keys of `camera`'s events that have a snapshot.
    pub async fn snapshot_keys_of(
        &self,
        camera: CameraId,
    ) -> Result<std::collections::HashSet<String>, Error> {
        let keys: Vec<(String,)> = on!(self.pool, c => sqlx::query_as(
            "SELECT idempotency_key FROM events WHERE camera_id = $1 AND snapshot_bytes > 0",
        )
        .bind(camera.0)
        .fetch_all(c)
        .await)?;
        Ok(keys.into_iter().map(|(k,)| k).collect())
    }

    /// Deletes the events captured before `cutoff`, their bytes off their cameras' running
    /// totals in the same transaction; returns them (their snapshots go next).
    pub async fn delete_events_before(&self, cutoff: UnixMillis) -> Result<Vec<Event>, Error> {
        let mut tx = self.begin().await?;
        let gone: Vec<Event> = on!(tx, c => sqlx::query_as(&format!(
            "DELETE FROM events WHERE captured_at < $1 RETURNING {COLUMNS}"
        ))
        .bind(cutoff.0)
        .fetch_all(c)
        .await)?;
        let mut freed = std::collections::BTreeMap::<i64, (i64, i64)>::new();
        for e in &gone {
            let camera = freed.entry(e.camera_id).or_default();
            camera.0 += e.snapshot_bytes;
            camera.1 += e.clip_bytes;
        }
        for (camera, (snapshots, clips)) in freed {
            if snapshots > 0 || clips > 0 {
                on!(tx, c => sqlx::query(
                    "UPDATE cameras SET snapshot_bytes = snapshot_bytes - $2, clip_bytes = clip_bytes - $3 WHERE id = $1")
                    .bind(camera)
                    .bind(snapshots)
                    .bind(clips)
                    .execute(c)
                    .await.map(|r| r.rows_affected()))?;
            }
        }
        tx.commit().await?;
        Ok(gone)
    }

    /// Names `event`'s clip, stored, on its row, its bytes on its camera's running total;
    /// `None` when the event had a clip already (a repeated upload) or is gone.
    pub async fn set_clip(&self, event: &Event, clip: &StoredClip) -> Result<Option<Event>, Error> {
        let mut tx = self.begin().await?;
        let stored: Option<Event> = on!(tx, c => sqlx::query_as(&format!(
            "UPDATE events SET clip_bytes = $2, clip_ms = $3, clip_event_at_ms = $4, clip_codec = $5, \
             clip_width = $6, clip_height = $7 WHERE id = $1 AND clip_bytes = 0 RETURNING {COLUMNS}"
        ))
        .bind(event.id)
        .bind(clip.bytes as i64)
        .bind(clip.length_ms as i64)
        .bind(clip.event_at_ms as i64)
        .bind(&clip.codec)
        .bind(i64::from(clip.width))
        .bind(i64::from(clip.height))
        .fetch_optional(c)
        .await)?;
        if stored.is_some() {
            on!(tx, c => sqlx::query("UPDATE cameras SET clip_bytes = clip_bytes + $2 WHERE id = $1")
                .bind(event.camera_id)
                .bind(clip.bytes as i64)
                .execute(c)
                .await.map(|r| r.rows_affected()))?;
        }
        tx.commit().await?;
        Ok(stored)
    }

    /// The bytes of clips `camera`'s events hold.
    pub async fn clip_bytes_of(&self, camera: CameraId) -> Result<u64, Error> {
        let (bytes,): (i64,) = on!(self.pool, c => sqlx::query_as("SELECT clip_bytes FROM cameras WHERE id = $1")
            .bind(camera.0)
            .fetch_one(c)
            .await)?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }

    /// Forgets the clips of events captured before `cutoff` (the events stay), their bytes
    /// off their cameras' totals in the same transaction; returns the events as they were
    /// (their clips' objects go next).
    pub async fn drop_clips_before(&self, cutoff: UnixMillis) -> Result<Vec<Event>, Error> {
        let mut tx = self.begin().await?;
        let gone: Vec<Event> = on!(tx, c => sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM events WHERE captured_at < $1 AND clip_bytes > 0"
        ))
        .bind(cutoff.0)
        .fetch_all(c)
        .await)?;
        for e in &gone {
            let dropped = on!(tx, c => sqlx::query(
                "UPDATE events SET clip_bytes = 0 WHERE id = $1 AND clip_bytes = $2")
                .bind(e.id)
                .bind(e.clip_bytes)
                .execute(c)
                .await.map(|r| r.rows_affected()))?;
            if dropped == 1 {
                on!(tx, c => sqlx::query("UPDATE cameras SET clip_bytes = clip_bytes - $2 WHERE id = $1")
                    .bind(e.camera_id)
                    .bind(e.clip_bytes)
                    .execute(c)
                    .await.map(|r| r.rows_affected()))?;
            }
        }
        tx.commit().await?;
        Ok(gone)
    }

    /// The idempotency keys of `camera`'s events that have a clip.
    pub async fn clip_keys_of(
        &self,
        camera: CameraId,
    ) -> Result<std::collections::HashSet<String>, Error> {
        let keys: Vec<(String,)> = on!(self.pool, c => sqlx::query_as(
            "SELECT idempotency_key FROM events WHERE camera_id = $1 AND clip_bytes > 0",
        )
        .bind(camera.0)
        .fetch_all(c)
        .await)?;
        Ok(keys.into_iter().map(|(k,)| k).collect())
    }
}

/// How a new event's alert mail is queued.
pub struct AlertPolicy<'a> {
    /// At most one alert mail per camera in this span; the events in between are counted in
    /// the next one.
    pub cooldown: Duration,
    /// The domain of Message-IDs (the sender's).
    pub domain: &'a str,
}

/// Queues the alert mail about `event`, one per confirmed address of the camera's household
/// whose person receives its alerts (the one recipient rule: [`eyeward::alert::recipients`]),
/// and its push to each of their devices; the camera's cooldown starts with them.
async fn queue_alert_mail(
    tx: &mut Tx,
    camera: i64,
    event: i64,
    domain: &str,
    now: UnixMillis,
) -> Result<(), Error> {
    let (owner,): (i64,) = on!(tx, c => sqlx::query_as("SELECT customer_id FROM cameras WHERE id = $1")
        .bind(camera)
        .fetch_one(c)
        .await)?;
    let addresses = recipients_in(tx, owner, Some(camera), now).await?;
    let to_all = recipients(CustomerId(owner), &addresses);
    for to in &to_all {
        let message_id = format!(
            "<alert.{event}.{}.{:016x}@{domain}>",
            to.id,
            rand::random::<u64>(),
        );
        queue(
            tx,
            &NewMail {
                kind: MailKind::Alert,
                customer: CustomerId(owner),
                address: Some(to.id),
                recipient: &to.email,
                event: Some(event),
                history: None,
                message_id: &message_id,
                body: None,
                push_subscription: None,
            },
            now,
        )
        .await?;
    }
    let pushed = super::push::queue_alert_pushes(tx, owner, camera, event, domain, now).await?;
    if !to_all.is_empty() || pushed > 0 {
        on!(tx, c => sqlx::query("UPDATE cameras SET last_alert_at = $2 WHERE id = $1")
            .bind(camera)
            .bind(now.0)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Adds the event's snapshot bytes to its camera's running total (its quota reads it), which
/// locks the camera's row until the transaction ends; returns when its last alert was queued.
async fn add_snapshot_bytes(tx: &mut Tx, e: &NewEvent) -> Result<Option<i64>, Error> {
    let (last_alert,): (Option<i64>,) = on!(tx, c => sqlx::query_as(
        "UPDATE cameras SET snapshot_bytes = snapshot_bytes + $2 WHERE id = $1 RETURNING last_alert_at",
    )
    .bind(e.camera.0)
    .bind(e.snapshot_bytes as i64)
    .fetch_one(c)
    .await)?;
    Ok(last_alert)
}

/// Inserts the event's row.
async fn insert_row(
    tx: &mut Tx,
    e: &NewEvent,
    bbox: String,
    armed: bool,
) -> Result<Event, sqlx::Error> {
    let sql =
        format!("INSERT INTO events ({NEW_COLUMNS}) VALUES ({NEW_VALUES}) RETURNING {COLUMNS}");
    on!(tx, c => bind_new_event!(sqlx::query_as(&sql), e, bbox, armed).fetch_one(c).await)
}

impl Store {
    /// Ends alert storms: a camera whose cooldown is over and that had events since its last
    /// alert mail (held back by the cooldown) gets one mail now, about the newest of them,
    /// counting the others. Cameras last mailed more than a day ago are left alone (their
    /// owner has no confirmed address any more). Returns how many cameras got one.
    pub async fn flush_held_alerts(
        &self,
        policy: &AlertPolicy<'_>,
        now: UnixMillis,
    ) -> Result<usize, Error> {
        let over = now.0 - policy.cooldown.as_millis() as i64;
        let mut tx = self.begin().await?;
        let held: Vec<(i64, i64)> = on!(tx, c => sqlx::query_as(
            "SELECT e.camera_id, MAX(e.id) FROM events e JOIN \
             (SELECT ev.camera_id, MAX(o.event_id) AS last_event, MAX(o.created_at) AS last_at \
              FROM outbox o JOIN events ev ON ev.id = o.event_id \
              WHERE o.kind IN ('alert', 'push') AND o.created_at > $2 GROUP BY ev.camera_id) l \
             ON l.camera_id = e.camera_id \
             WHERE e.kind = 'motion' AND e.armed AND e.id > l.last_event AND l.last_at <= $1 \
             GROUP BY e.camera_id",
        )
        .bind(over)
        .bind(now.0 - 24 * 3600 * 1000)
        .fetch_all(c)
        .await)?;
        for (camera, event) in &held {
            queue_alert_mail(&mut tx, *camera, *event, policy.domain, now).await?;
        }
        tx.commit().await?;
        Ok(held.len())
    }
}

/// A 409 from [`Store::insert_event`]: the key was stored by a concurrent upload.
pub fn is_taken_key(e: &Error) -> bool {
    e.kind() == ErrorKind::FailedPrecondition
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Audit;
    use crate::store::testing::{confirmed_address, motion, porch, store};

    /// Events at 0, 10, 20 s with a minute's cooldown: the first is mailed at once, the other
    /// two are held; when the minute is over one mail goes about the newest, counting one more.
    #[tokio::test]
    async fn an_alert_storm_is_one_mail_per_cooldown_and_the_rest_are_counted() {
        let (s, _dir) = store().await;
        let t0 = UnixMillis(1_800_000_000_000);
        let audit = Audit::admin(t0);
        let (owner, camera) = porch(&s, &audit).await;
        confirmed_address(&s, owner, t0).await;
        let policy = AlertPolicy {
            cooldown: Duration::from_secs(60),
            domain: "test",
        };
        let mut ids = Vec::new();
        for (i, secs) in [0u64, 10, 20].into_iter().enumerate() {
            let at = t0.plus(Duration::from_secs(secs));
            let e = s
                .insert_event(&motion(camera, &format!("event-{i:04}"), at), &policy)
                .await
                .unwrap();
            ids.push(e.id);
        }
        let alerts = |rows: Vec<OutboxMailRef>| {
            rows.into_iter()
                .filter(|m| m.0 == "alert")
                .map(|m| m.1)
                .collect::<Vec<_>>()
        };
        let queued = alerts(outbox(&s).await);
        assert_eq!(queued, [Some(ids[0])], "held in the cooldown");
        let at = |secs| t0.plus(Duration::from_secs(secs));
        assert_eq!(
            s.flush_held_alerts(&policy, at(30)).await.unwrap(),
            0,
            "cooldown not over"
        );
        assert_eq!(s.flush_held_alerts(&policy, at(61)).await.unwrap(), 1);
        assert_eq!(alerts(outbox(&s).await), [Some(ids[0]), Some(ids[2])]);
        assert_eq!(
            s.events_held_before(camera.0, ids[2]).await.unwrap(),
            1,
            "and 1 more"
        );
        assert_eq!(
            s.flush_held_alerts(&policy, at(200)).await.unwrap(),
            0,
            "nothing held"
        );
        // After the flush, a new event waits for the flush's own cooldown.
        s.insert_event(&motion(camera, "event-0009", at(100)), &policy)
            .await
            .unwrap();
        assert_eq!(alerts(outbox(&s).await).len(), 2);
    }

    /// Events stored before any address was confirmed were never mailed: the camera's first
    /// alert counts none of them as "more since the last alert".
    #[tokio::test]
    async fn the_first_alert_counts_no_earlier_events() {
        let (s, _dir) = store().await;
        let t0 = UnixMillis(1_800_000_000_000);
        let audit = Audit::admin(t0);
        let (owner, camera) = porch(&s, &audit).await;
        let policy = AlertPolicy {
            cooldown: Duration::from_secs(60),
            domain: "test",
        };
        for i in 0..12u64 {
            let at = t0.plus(Duration::from_secs(i));
            s.insert_event(&motion(camera, &format!("early-{i:04}"), at), &policy)
                .await
                .unwrap();
        }
        confirmed_address(&s, owner, t0).await;
        let first = s
            .insert_event(
                &motion(camera, "first-alert", t0.plus(Duration::from_secs(20))),
                &policy,
            )
            .await
            .unwrap();
        assert_eq!(
            outbox(&s)
                .await
                .into_iter()
                .filter(|m| m.0 == "alert")
                .count(),
            1
        );
        assert_eq!(s.events_held_before(camera.0, first.id).await.unwrap(), 0);
    }

    /// Away, the camera alerts; Home, only if set to; Off, never. Every event is stored,
    /// with whether it was armed; a storm's flush and count leave the disarmed ones out.
    #[tokio::test]
    async fn only_events_while_armed_for_the_camera_are_mailed_and_all_are_stored() {
        use eyeward::arming::{CameraAlerts, Mode};
        let (s, _dir) = store().await;
        let t0 = UnixMillis(1_800_000_000_000);
        let at = |secs| t0.plus(Duration::from_secs(secs));
        let audit = |secs| Audit::admin(at(secs));
        let (owner, camera) = porch(&s, &audit(0)).await;
        let owner = CustomerId(owner);
        confirmed_address(&s, owner.0, t0).await;
        let policy = AlertPolicy {
            cooldown: Duration::from_secs(60),
            domain: "test",
        };
        let alerted = |rows: Vec<OutboxMailRef>| {
            rows.into_iter()
                .filter(|m| m.0 == "alert")
                .filter_map(|m| m.1)
                .collect::<Vec<_>>()
        };
        let (s, policy) = (&s, &policy);
        let event = |key: &'static str, secs| async move {
            s.insert_event(&motion(camera, key, at(secs)), policy)
                .await
                .unwrap()
        };
        s.set_arming(owner, Mode::Home, &audit(1)).await.unwrap();
        let home = event("event-home", 2).await;
        assert!(!home.armed, "a camera quiet while home");
        s.set_camera_alerts(
            owner,
            camera,
            CameraAlerts {
                away: true,
                home: true,
            },
            &audit(3),
        )
        .await
        .unwrap();
        let outdoor = event("event-home-on", 4).await;
        assert!(outdoor.armed);
        assert_eq!(alerted(outbox(s).await), [outdoor.id]);

        s.set_arming(owner, Mode::Off, &audit(100)).await.unwrap();
        let off = event("event-off", 200).await;
        assert!(!off.armed, "off: nothing alerts");
        assert_eq!(
            s.flush_held_alerts(policy, at(300)).await.unwrap(),
            0,
            "a disarmed event is not held"
        );
        s.set_arming(owner, Mode::Away, &audit(400)).await.unwrap();
        let away = event("event-away", 401).await;
        assert!(away.armed);
        assert_eq!(alerted(outbox(s).await), [outdoor.id, away.id]);
        assert_eq!(
            s.events_held_before(camera.0, away.id).await.unwrap(),
            0,
            "the disarmed one is not counted"
        );
        let all = s
            .events_of(owner, Some(camera), None, EventPage::default(), 10)
            .await
            .unwrap();
        assert_eq!(all.len(), 4, "every event is stored");
    }

    /// Three events taken in the same millisecond, paged two at a time: the second page
    /// starts after the first page's last (time, then id), so none is skipped or repeated.
    #[tokio::test]
    async fn pages_skip_no_event_taken_in_the_same_millisecond() {
        let (s, _dir) = store().await;
        let t0 = UnixMillis(1_800_000_000_000);
        let (owner, camera) = porch(&s, &Audit::admin(t0)).await;
        let policy = AlertPolicy {
            cooldown: Duration::from_secs(60),
            domain: "test",
        };
        for key in ["same-ms-0001", "same-ms-0002", "same-ms-0003"] {
            s.insert_event(&motion(camera, key, t0), &policy)
                .await
                .unwrap();
        }
        let owner = CustomerId(owner);
        let first = s
            .events_of(owner, None, None, EventPage::default(), 2)
            .await
            .unwrap();
        let last = first.last().unwrap();
        let page = EventPage {
            before: Some((UnixMillis(last.captured_at), Some(last.id))),
        };
        let second = s
            .events_of(owner, Some(camera), None, page, 2)
            .await
            .unwrap();
        let ids: Vec<i64> = first.iter().chain(&second).map(|e| e.id).collect();
        assert_eq!(ids.len(), 3);
        assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
        // Without an id, strictly before the instant.
        let strictly = EventPage {
            before: Some((t0, None)),
        };
        assert!(
            s.events_of(owner, None, None, strictly, 9)
                .await
                .unwrap()
                .is_empty()
        );
    }

    type OutboxMailRef = (String, Option<i64>);

    async fn outbox(s: &Store) -> Vec<OutboxMailRef> {
        on!(s.pool, c => sqlx::query_as("SELECT kind, event_id FROM outbox ORDER BY id")
            .fetch_all(c)
            .await)
        .unwrap()
    }
    /// The camera's running total of snapshot bytes, which its upload quota reads, rises with
    /// each stored snapshot (a gap adds nothing) and falls as retention deletes them; another
    /// camera's is its own.
    #[tokio::test]
    async fn a_cameras_snapshot_bytes_rise_with_its_events_and_fall_with_retention() {
        let (s, _dir) = store().await;
        let t0 = UnixMillis(1_800_000_000_000);
        let audit = Audit::admin(t0);
        let (owner, camera) = porch(&s, &audit).await;
        let other = s
            .add_camera(
                super::super::NewCamera {
                    customer_id: CustomerId(owner),
                    name: eyeward::DisplayName::parse("Garden").unwrap(),
                    model: eyeward::CameraModel::Fixed,
                    plan: eyeward::Plan::Dispatch,
                    source: eyeward::CameraSource::Agent,
                    agent_token_hash: Some("u".into()),
                },
                &audit,
            )
            .await
            .unwrap();
        let policy = AlertPolicy {
            cooldown: Duration::from_secs(60),
            domain: "test",
        };
        let at = |secs| t0.plus(Duration::from_secs(secs));
        for (i, secs) in [0u64, 10, 20].into_iter().enumerate() {
            s.insert_event(&motion(camera, &format!("event-{i:04}"), at(secs)), &policy)
                .await
                .unwrap();
        }
        let gap = NewEvent {
            snapshot_bytes: 0,
            gap: Some(Gap {
                lost_snapshots: 2,
                lost_events: 0,
                lost_clips: 0,
                until: at(5),
            }),
            ..motion(camera, "gap-0000", at(5))
        };
        s.insert_event(&gap, &policy).await.unwrap();
        s.insert_event(&motion(other, "event-0000", at(0)), &policy)
            .await
            .unwrap();
        let bytes = async |id| {
            s.camera_of(CustomerId(owner), id)
                .await
                .unwrap()
                .unwrap()
                .snapshot_bytes
        };
        assert_eq!((bytes(camera).await, bytes(other).await), (300, 100));

        let gone = s.delete_events_before(at(15)).await.unwrap();
        assert_eq!(
            gone.len(),
            4,
            "two motion events and the gap of the porch, one of the garden"
        );
        assert_eq!((bytes(camera).await, bytes(other).await), (100, 0));
    }
    /// An event is armed as the household's mode says when it comes: the default (away), a
    /// switch by hand (home: not armed), then the schedule's next switch (away again).
    #[tokio::test]
    async fn an_event_is_armed_as_the_households_mode_at_that_moment_says() {
        use eyeward::arming::{Mode, Switch};
        let (s, _dir) = store().await;
        // 17:00 home time (UTC+9).
        let t0 = UnixMillis(1_800_000_000_000);
        let at = |minutes: u64| t0.plus(Duration::from_secs(60 * minutes));
        let (owner, camera) = porch(&s, &Audit::admin(t0)).await;
        let policy = AlertPolicy {
            cooldown: Duration::from_secs(60),
            domain: "test",
        };
        let armed = async |key: &str, minutes| {
            s.insert_event(&motion(camera, key, at(minutes)), &policy)
                .await
                .unwrap()
                .armed
        };
        assert!(armed("default", 0).await, "never switched: away");
        s.set_arming(CustomerId(owner), Mode::Home, &Audit::admin(at(1)))
            .await
            .unwrap();
        assert!(!armed("by-hand", 2).await, "home by hand");
        let away_at_17_03 = Switch {
            days: 0x7f,
            minute: 17 * 60 + 3,
            mode: Mode::Away,
        };
        s.add_arming_switch(CustomerId(owner), away_at_17_03, &Audit::admin(at(2)))
            .await
            .unwrap()
            .unwrap();
        assert!(!armed("before-switch", 2).await, "by hand until the switch");
        assert!(armed("scheduled", 4).await, "away by the schedule");
    }
    /// Two events of one camera arrive together, each reading that an alert is due: the
    /// camera's row lock decides, and one alert mail is queued, about the first stored.
    #[tokio::test]
    async fn two_events_arriving_together_when_an_alert_is_due_queue_one_mail() {
        let (s, _dir) = store().await;
        let t0 = UnixMillis(1_800_000_000_000);
        let (owner, camera) = porch(&s, &Audit::admin(t0)).await;
        confirmed_address(&s, owner, t0).await;
        let policy = AlertPolicy {
            cooldown: Duration::from_secs(60),
            domain: "test",
        };
        let (a, b) = (motion(camera, "a", t0), motion(camera, "b", t0));
        let arrived_a = s.arrival(camera, "a", t0).await.unwrap();
        let arrived_b = s.arrival(camera, "b", t0).await.unwrap();
        let (stored_a, stored_b) = tokio::join!(
            s.insert_arrived(&a, &arrived_a, &policy),
            s.insert_arrived(&b, &arrived_b, &policy)
        );
        let first = stored_a.unwrap().id.min(stored_b.unwrap().id);
        let alerts: Vec<Option<i64>> = outbox(&s)
            .await
            .into_iter()
            .filter(|m| m.0 == "alert")
            .map(|m| m.1)
            .collect();
        assert_eq!(alerts, [Some(first)]);
    }
}
