//! Dispatch requests, their transitions and charges, and the guards who answer them.
//!
//! The rules live in [`eyeward::dispatch`]; this module stores what they allowed. A
//! transition is written with a guard on the state it was decided from, so two operators
//! accepting at once cannot both succeed.

use super::history::{Actor, Audit, record, rfc3339};
use super::{Store, conflict_on_unique, on, parse_column};
use crate::error::{Error, ErrorKind};
use eyeward::dispatch::{
    DispatchActor, DispatchRequest, DispatchState, GeoPoint, GuardSighting, Note, Transition,
};
use eyeward::{CustomerId, GuardCenter, UnixMillis};
use serde::Serialize;
use serde_json::json;

/// A request as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Dispatch {
    pub id: i64,
    pub customer_id: CustomerId,
    pub camera_id: Option<i64>,
    pub camera_name: String,
    pub guard_center: GuardCenter,
    pub state: DispatchState,
    pub note: Option<String>,
    pub fee_yen: i64,
    pub share_snapshot: bool,
    pub share_live: bool,
    /// Whether a shared picture was uploaded.
    pub has_snapshot: bool,
    /// The event whose clip is shared, if one is.
    pub clip_event_id: Option<i64>,
    pub guard_id: Option<i64>,
    pub guard_name: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: i64,
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: i64,
    /// The fee owed for this request: charged when it was accepted (0 before, or if it was
    /// cancelled before that).
    pub fee_due_yen: i64,
    /// While a guard is on the way: when the guard is expected.
    #[serde(rename = "eta", serialize_with = "rfc3339_opt")]
    pub eta_at: Option<i64>,
    /// The operator's short report, from completion.
    pub report: Option<String>,
}

impl Dispatch {
    /// The parts the rules look at.
    pub fn rules(&self) -> DispatchRequest {
        DispatchRequest {
            customer: self.customer_id,
            center: self.guard_center,
            state: self.state,
            guard: self.guard_id,
        }
    }
}

#[derive(sqlx::FromRow)]
struct DispatchRow {
    id: i64,
    customer_id: i64,
    camera_id: Option<i64>,
    camera_name: String,
    guard_center: String,
    state: String,
    note: Option<String>,
    fee_yen: i64,
    share_snapshot: bool,
    share_live: bool,
    snapshot_bytes: i64,
    clip_event_id: Option<i64>,
    guard_id: Option<i64>,
    guard_name: Option<String>,
    created_at: i64,
    updated_at: i64,
    fee_due_yen: Option<i64>,
    eta_at: Option<i64>,
    report: Option<String>,
}

impl TryFrom<DispatchRow> for Dispatch {
    type Error = Error;

    fn try_from(r: DispatchRow) -> Result<Dispatch, Error> {
        Ok(Dispatch {
            id: r.id,
            customer_id: CustomerId(r.customer_id),
            camera_id: r.camera_id,
            camera_name: r.camera_name,
            guard_center: parse_column("guard center", &r.guard_center)?,
            state: parse_column("dispatch state", &r.state)?,
            note: r.note,
            fee_yen: r.fee_yen,
            share_snapshot: r.share_snapshot,
            share_live: r.share_live,
            has_snapshot: r.snapshot_bytes > 0,
            clip_event_id: r.clip_event_id,
            guard_id: r.guard_id,
            guard_name: r.guard_name,
            created_at: r.created_at,
            updated_at: r.updated_at,
            fee_due_yen: r.fee_due_yen.unwrap_or(0),
            eta_at: r.eta_at,
            report: r.report,
        })
    }
}

const COLUMNS: &str = "id, customer_id, camera_id, camera_name, guard_center, state, note, \
     fee_yen, share_snapshot, share_live, snapshot_bytes, clip_event_id, guard_id, guard_name, created_at, \
     updated_at, (SELECT amount_yen FROM charges c WHERE c.request_id = dispatch_requests.id) \
     AS fee_due_yen, eta_at, report";

fn rows(rows: Vec<DispatchRow>) -> Result<Vec<Dispatch>, Error> {
    rows.into_iter().map(Dispatch::try_from).collect()
}

/// What a step brings beside the transition: the guard sent and when expected (`assign`),
/// the operator's report (`complete`).
#[derive(Default)]
pub struct StepDetails<'a> {
    pub guard: Option<&'a Guard>,
    pub eta: Option<UnixMillis>,
    pub report: Option<&'a Note>,
}

/// What a customer asks for.
pub struct NewDispatch<'a> {
    pub customer: CustomerId,
    pub center: GuardCenter,
    pub camera_id: i64,
    pub camera_name: &'a str,
    pub note: Option<Note>,
    pub fee_yen: i64,
    pub share_snapshot: bool,
    pub share_live: bool,
    /// The event whose clip is shared (checked to be the customer's, of this camera).
    pub clip_event_id: Option<i64>,
}

/// One step of a request, as the customer and the console show it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DispatchStep {
    pub action: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub actor_kind: String,
    pub actor_name: String,
    #[serde(serialize_with = "rfc3339")]
    pub at: i64,
}

/// A fee owed.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Charge {
    pub id: i64,
    pub request_id: i64,
    pub amount_yen: i64,
    #[serde(serialize_with = "rfc3339")]
    pub charged_at: i64,
}

/// A guard of a guard center.
#[derive(Debug, Clone, Serialize)]
pub struct Guard {
    pub id: i64,
    pub guard_center: GuardCenter,
    pub name: String,
    pub position: Option<GeoPoint>,
    /// When the position was reported.
    #[serde(serialize_with = "rfc3339_opt")]
    pub seen_at: Option<i64>,
    /// The open request the guard is assigned to, if any.
    pub busy_with: Option<i64>,
    /// Whether a phone is signed in as the guard (from a link the console issued).
    pub signed_in: bool,
}

impl Guard {
    pub fn sighting(&self) -> GuardSighting {
        GuardSighting {
            guard: self.id,
            position: self.position,
            seen_at: self.seen_at.map(UnixMillis),
            busy: self.busy_with.is_some(),
        }
    }
}

fn rfc3339_opt<S: serde::Serializer>(at: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339(at, s),
        None => s.serialize_none(),
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct GuardRow {
    id: i64,
    guard_center: String,
    name: String,
    lat: Option<f64>,
    lon: Option<f64>,
    seen_at: Option<i64>,
    busy_with: Option<i64>,
    signed_in: bool,
}

impl TryFrom<GuardRow> for Guard {
    type Error = Error;

    fn try_from(r: GuardRow) -> Result<Guard, Error> {
        Ok(Guard {
            id: r.id,
            guard_center: parse_column("guard center", &r.guard_center)?,
            name: r.name,
            position: r.lat.zip(r.lon).map(|(lat, lon)| GeoPoint { lat, lon }),
            seen_at: r.seen_at,
            busy_with: r.busy_with,
            signed_in: r.signed_in,
        })
    }
}

pub(super) const GUARD_SELECT: &str = "SELECT g.id, g.guard_center, g.name, g.lat, g.lon, \
     g.seen_at, (SELECT MIN(r.id) FROM dispatch_requests r WHERE r.guard_id = g.id \
        AND r.state IN ('assigned', 'en_route', 'arrived')) AS busy_with, \
     EXISTS (SELECT 1 FROM guard_sign_ins s WHERE s.guard_id = g.id \
        AND s.session_hash IS NOT NULL) AS signed_in \
     FROM guards g";

/// Where a customer's home is.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Home {
    pub address: Option<String>,
    pub location: Option<GeoPoint>,
    pub notes: HomeNotes,
}

/// What the customer tells the guards beside the address; each empty when not given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeNotes {
    /// A number to call on the way.
    pub phone: Option<String>,
    /// How to get in (gate code, which door).
    pub entry: Option<String>,
    /// Who holds a key, and how to reach them.
    pub key_holder: Option<String>,
}

/// Who took a step: a household member under their own id, else the rules' actor.
fn step_actor(actor: DispatchActor, audit: &Audit) -> (&'static str, i64) {
    match (&audit.actor, actor) {
        (Actor::Member { id, .. }, DispatchActor::Customer(_)) => ("member", *id),
        (_, DispatchActor::Customer(c)) => ("customer", c.0),
        (_, DispatchActor::Operator { id, .. }) => ("operator", id.0),
        (_, DispatchActor::Guard { id, .. }) => ("guard", id),
    }
}

impl Store {
    /// Stores a new request with its first step and history entry.
    pub async fn create_dispatch(
        &self,
        new: NewDispatch<'_>,
        audit: &Audit,
    ) -> Result<Dispatch, Error> {
        let at = audit.at.0;
        let mut tx = self.begin().await?;
        let row: DispatchRow = on!(tx, c => sqlx::query_as(&format!(
            "INSERT INTO dispatch_requests (customer_id, camera_id, camera_name, guard_center, \
             state, note, fee_yen, share_snapshot, share_live, created_at, updated_at, clip_event_id) \
             VALUES ($1, $2, $3, $4, 'requested', $5, $6, $7, $8, $9, $9, $10) RETURNING {COLUMNS}"
        ))
        .bind(new.customer.0)
        .bind(new.camera_id)
        .bind(new.camera_name)
        .bind(new.center.as_str())
        .bind(new.note.as_ref().map(Note::as_str))
        .bind(new.fee_yen)
        .bind(new.share_snapshot)
        .bind(new.share_live)
        .bind(at)
        .bind(new.clip_event_id)
        .fetch_one(c)
        .await)
        // One open request per camera, kept by the schema: a double click (two requests at
        // once) does not ask, and charge, twice.
        .map_err(|e| conflict_on_unique(e, "a guard is already requested for this camera"))?;
        let (_, _, actor_name) = audit.actor.parts();
        let (kind, actor_id) = step_actor(DispatchActor::Customer(new.customer), audit);
        on!(tx, c => sqlx::query(
            "INSERT INTO dispatch_transitions (request_id, action, from_state, to_state, \
             actor_kind, actor_id, actor_name, at) VALUES ($1, 'request', NULL, 'requested', \
             $2, $3, $4, $5)",
        )
        .bind(row.id)
        .bind(kind)
        .bind(actor_id)
        .bind(actor_name)
        .bind(at)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        record(
            &mut tx,
            audit,
            Some(new.customer),
            "dispatch.requested",
            json!({
                "request_id": row.id, "camera": new.camera_name, "fee_yen": new.fee_yen,
                "share_snapshot": new.share_snapshot, "share_live": new.share_live,
                "share_clip": new.clip_event_id.is_some(),
            }),
        )
        .await?;
        tx.commit().await?;
        row.try_into()
    }

    /// Stores a transition the rules allowed, if the request is still in the state it was
    /// decided from (409 otherwise); charges the fee when the transition does; assigns
    /// `step.guard` on `assign` (expected at `step.eta`), and keeps `step.report` on
    /// `complete`. The expected arrival holds only while a guard is on the way.
    pub async fn apply_dispatch(
        &self,
        request: &Dispatch,
        t: &Transition,
        step: &StepDetails<'_>,
        audit: &Audit,
    ) -> Result<Dispatch, Error> {
        let guard = step.guard;
        let mut tx = self.begin().await?;
        let updated = on!(tx, c => sqlx::query(
            "UPDATE dispatch_requests SET state = $1, updated_at = $2, \
             guard_id = COALESCE($3, guard_id), guard_name = COALESCE($4, guard_name), \
             eta_at = CASE WHEN $1 IN ('assigned', 'en_route') THEN COALESCE($7, eta_at) END, \
             report = COALESCE($8, report) \
             WHERE id = $5 AND state = $6",
        )
        .bind(t.to.as_str())
        .bind(t.at.0)
        .bind(guard.map(|g| g.id))
        .bind(guard.map(|g| g.name.as_str()))
        .bind(request.id)
        .bind(t.from.as_str())
        .bind(step.eta.map(|e| e.0))
        .bind(step.report.map(Note::as_str))
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        if updated == 0 {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                "the request changed meanwhile; reload it",
            )
            .with_code("request_changed"));
        }
        let (kind, actor_id) = step_actor(t.actor, audit);
        let (_, _, actor_name) = audit.actor.parts();
        on!(tx, c => sqlx::query(
            "INSERT INTO dispatch_transitions (request_id, action, from_state, to_state, \
             actor_kind, actor_id, actor_name, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(request.id)
        .bind(t.action.as_str())
        .bind(t.from.as_str())
        .bind(t.to.as_str())
        .bind(kind)
        .bind(actor_id)
        .bind(&actor_name)
        .bind(t.at.0)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        if t.charges_fee {
            on!(tx, c => sqlx::query(
                "INSERT INTO charges (customer_id, request_id, amount_yen, charged_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(request.customer_id.0)
            .bind(request.id)
            .bind(request.fee_yen)
            .bind(t.at.0)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        }
        let updated: DispatchRow = on!(tx, c => sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM dispatch_requests WHERE id = $1"
        ))
        .bind(request.id)
        .fetch_one(c)
        .await)?;
        let mut detail = json!({
            "request_id": request.id, "camera": request.camera_name, "state": t.to,
            "fee_due_yen": updated.fee_due_yen.unwrap_or(0),
        });
        // The request's guard, named in every later step too (arrived, completed).
        if let Some(name) = &updated.guard_name {
            detail["guard"] = json!(name);
        }
        if let Some(report) = &updated.report {
            detail["report"] = json!(report);
        }
        record(
            &mut tx,
            audit,
            Some(request.customer_id),
            &format!("dispatch.{}", t.to),
            detail,
        )
        .await?;
        tx.commit().await?;
        updated.try_into()
    }

    /// Request `id`, whoever's it is: the caller checks it is theirs to see.
    pub async fn dispatch(&self, id: i64) -> Result<Option<Dispatch>, Error> {
        let row: Option<DispatchRow> = on!(self.pool, c => sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM dispatch_requests WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(c)
        .await)?;
        row.map(Dispatch::try_from).transpose()
    }

    /// A customer's requests, newest first.
    pub async fn dispatches_of(
        &self,
        customer: CustomerId,
        limit: u32,
    ) -> Result<Vec<Dispatch>, Error> {
        rows(on!(self.pool, c => sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM dispatch_requests WHERE customer_id = $1 \
                 ORDER BY id DESC LIMIT $2"
            ))
            .bind(customer.0)
            .bind(i64::from(limit))
            .fetch_all(c)
            .await)?)
    }

    /// A guard center's queue: its open requests, oldest first, and with `closed` also the
    /// latest closed ones; at most `limit`.
    pub async fn dispatch_queue(
        &self,
        center: GuardCenter,
        closed: bool,
        limit: u32,
    ) -> Result<Vec<Dispatch>, Error> {
        let states = if closed {
            "'requested', 'accepted', 'assigned', 'en_route', 'arrived', 'completed', 'cancelled'"
        } else {
            "'requested', 'accepted', 'assigned', 'en_route', 'arrived'"
        };
        rows(on!(self.pool, c => sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM dispatch_requests \
                 WHERE guard_center = $1 AND state IN ({states}) \
                 ORDER BY state IN ('completed', 'cancelled'), \
                   CASE WHEN state IN ('completed', 'cancelled') THEN -id ELSE id END \
                 LIMIT $2"
            ))
            .bind(center.as_str())
            .bind(i64::from(limit))
            .fetch_all(c)
            .await)?)
    }

    /// The steps of request `id`, oldest first.
    pub async fn dispatch_steps(&self, id: i64) -> Result<Vec<DispatchStep>, Error> {
        Ok(on!(self.pool, c => sqlx::query_as(
            "SELECT action, from_state, to_state, actor_kind, actor_name, at \
             FROM dispatch_transitions WHERE request_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(c)
        .await)?)
    }

    /// The fees a customer owes, newest first.
    pub async fn charges_of(&self, customer: CustomerId) -> Result<Vec<Charge>, Error> {
        Ok(on!(self.pool, c => sqlx::query_as(
            "SELECT id, request_id, amount_yen, charged_at FROM charges \
             WHERE customer_id = $1 ORDER BY id DESC",
        )
        .bind(customer.0)
        .fetch_all(c)
        .await)?)
    }

    /// Notes that the shared picture of request `id` (already on disk) has `bytes` bytes.
    pub async fn set_dispatch_snapshot(&self, id: i64, bytes: usize) -> Result<(), Error> {
        on!(self.pool, c => sqlx::query("UPDATE dispatch_requests SET snapshot_bytes = $1 WHERE id = $2")
            .bind(bytes as i64)
            .bind(id)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// How many requests wait for acceptance, per guard center.
    /// The open requests that hold a shared picture.
    pub async fn dispatches_sharing_pictures(
        &self,
    ) -> Result<std::collections::HashSet<i64>, Error> {
        let ids: Vec<(i64,)> = on!(self.pool, c => sqlx::query_as(
            "SELECT id FROM dispatch_requests WHERE snapshot_bytes > 0 \
             AND state IN ('requested', 'accepted', 'assigned', 'en_route', 'arrived')",
        )
        .fetch_all(c)
        .await)?;
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }

    pub async fn waiting_dispatches(&self) -> Result<Vec<(GuardCenter, i64)>, Error> {
        let counts: Vec<(String, i64)> = on!(self.pool, c => sqlx::query_as(
            "SELECT guard_center, COUNT(*) FROM dispatch_requests \
             WHERE state = 'requested' GROUP BY guard_center",
        )
        .fetch_all(c)
        .await)?;
        counts
            .into_iter()
            .map(|(c, n)| Ok((parse_column("guard center", &c)?, n)))
            .collect()
    }

    /// Where a customer's home is.
    pub async fn home_of(&self, customer: CustomerId) -> Result<Home, Error> {
        type Row = (
            Option<String>,
            Option<f64>,
            Option<f64>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let row: Option<Row> = on!(self.pool, c => sqlx::query_as(
            "SELECT address, home_lat, home_lon, phone, entry_notes, key_holder FROM accounts \
             WHERE id = $1 AND role = 'customer'",
        )
        .bind(customer.0)
        .fetch_optional(c)
        .await)?;
        Ok(row.map_or_else(
            Home::default,
            |(address, lat, lon, phone, entry, key_holder)| Home {
                address,
                location: lat.zip(lon).map(|(lat, lon)| GeoPoint { lat, lon }),
                notes: HomeNotes {
                    phone,
                    entry,
                    key_holder,
                },
            },
        ))
    }

    /// Sets what a guard needs beside the address (the customer's own), with its history
    /// entry (which the customer is told of: how to get into the home is worth a mail).
    pub async fn set_home_notes(
        &self,
        customer: CustomerId,
        notes: &HomeNotes,
        audit: &Audit,
    ) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        on!(tx, c => sqlx::query(
            "UPDATE accounts SET phone = $2, entry_notes = $3, key_holder = $4 \
             WHERE id = $1 AND role = 'customer'",
        )
        .bind(customer.0)
        .bind(&notes.phone)
        .bind(&notes.entry)
        .bind(&notes.key_holder)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        // What changed is named, not what it says: the mail goes to alert addresses too.
        record(
            &mut tx,
            audit,
            Some(customer),
            "home.notes_changed",
            json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets a customer's address and home location (the contract's; the notes stay the
    /// customer's own); false if there is no such customer.
    pub async fn set_home(
        &self,
        customer: CustomerId,
        home: &Home,
        audit: &Audit,
    ) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        let done = on!(tx, c => sqlx::query(
            "UPDATE accounts SET address = $1, home_lat = $2, home_lon = $3 \
             WHERE id = $4 AND role = 'customer'",
        )
        .bind(home.address.as_deref())
        .bind(home.location.map(|p| p.lat))
        .bind(home.location.map(|p| p.lon))
        .bind(customer.0)
        .execute(c)
        .await.map(|r| r.rows_affected()))?
            > 0;
        if done {
            record(
                &mut tx,
                audit,
                Some(customer),
                "home.changed",
                json!({ "address": home.address }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Adds a guard; `token_hash` is the hash of the token their phone reports with.
    pub async fn add_guard(
        &self,
        center: GuardCenter,
        name: &str,
        token_hash: &str,
        position: Option<GeoPoint>,
        audit: &Audit,
    ) -> Result<i64, Error> {
        let mut tx = self.begin().await?;
        let (id,): (i64,) = on!(tx, c => sqlx::query_as(
            "INSERT INTO guards (guard_center, name, token_hash, lat, lon, seen_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(center.as_str())
        .bind(name)
        .bind(token_hash)
        .bind(position.map(|p| p.lat))
        .bind(position.map(|p| p.lon))
        .bind(position.map(|_| audit.at.0))
        .bind(audit.at.0)
        .fetch_one(c)
        .await)?;
        record(
            &mut tx,
            audit,
            None,
            "guard.added",
            json!({ "id": id, "guard_center": center }),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Removes a guard; false if there was none.
    pub async fn remove_guard(&self, id: i64, audit: &Audit) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        let done = on!(tx, c => sqlx::query("DELETE FROM guards WHERE id = $1")
            .bind(id)
            .execute(c)
            .await.map(|r| r.rows_affected()))?
            > 0;
        if done {
            record(&mut tx, audit, None, "guard.removed", json!({ "id": id })).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// The guards of `center` (all centers with `None`), by id.
    pub async fn guards(&self, center: Option<GuardCenter>) -> Result<Vec<Guard>, Error> {
        let rows: Vec<GuardRow> = on!(self.pool, c => sqlx::query_as(&format!(
            "{GUARD_SELECT} WHERE $1 IS NULL OR g.guard_center = $1 ORDER BY g.id"
        ))
        .bind(center.map(|c| c.as_str()))
        .fetch_all(c)
        .await)?;
        rows.into_iter().map(Guard::try_from).collect()
    }

    /// Guard `id` if they belong to `center`.
    pub async fn guard_of(&self, center: GuardCenter, id: i64) -> Result<Option<Guard>, Error> {
        let row: Option<GuardRow> = on!(self.pool, c => sqlx::query_as(&format!(
            "{GUARD_SELECT} WHERE g.id = $1 AND g.guard_center = $2"
        ))
        .bind(id)
        .bind(center.as_str())
        .fetch_optional(c)
        .await)?;
        row.map(Guard::try_from).transpose()
    }

    /// The guard whose phone holds the token with this hash.
    pub async fn guard_by_token(&self, token_hash: &str) -> Result<Option<Guard>, Error> {
        let row: Option<GuardRow> = on!(self.pool, c => sqlx::query_as(&format!("{GUARD_SELECT} WHERE g.token_hash = $1"))
                .bind(token_hash)
                .fetch_optional(c)
                .await)?;
        row.map(Guard::try_from).transpose()
    }

    /// The requests guard `id` is on the way to (assigned or en route, not yet arrived).
    pub async fn dispatches_assigned_to(&self, guard: i64) -> Result<Vec<Dispatch>, Error> {
        rows(on!(self.pool, c => sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM dispatch_requests WHERE guard_id = $1 \
                 AND state IN ('assigned', 'en_route')"
            ))
            .bind(guard)
            .fetch_all(c)
            .await)?)
    }

    /// Sets when the guard of request `id` is expected, if a guard is still on the way; the
    /// request as it is then.
    pub async fn set_dispatch_eta(
        &self,
        id: i64,
        eta: Option<UnixMillis>,
    ) -> Result<Option<Dispatch>, Error> {
        let set = on!(self.pool, c => sqlx::query(
            "UPDATE dispatch_requests SET eta_at = $2 WHERE id = $1 \
             AND state IN ('assigned', 'en_route')",
        )
        .bind(id)
        .bind(eta.map(|e| e.0))
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
        if set == 0 {
            return Ok(None);
        }
        self.dispatch(id).await
    }

    /// Records where guard `id` is now.
    pub async fn set_guard_position(
        &self,
        id: i64,
        at: GeoPoint,
        now: UnixMillis,
    ) -> Result<(), Error> {
        on!(self.pool, c => sqlx::query("UPDATE guards SET lat = $1, lon = $2, seen_at = $3 WHERE id = $4")
            .bind(at.lat)
            .bind(at.lon)
            .bind(now.0)
            .bind(id)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
