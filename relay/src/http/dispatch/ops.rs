//! The guard-center console's API (`/api/ops/...`, operators only), with the sign-in links
//! by which guards' phones sign in (see [`super::guard`]).
//!
//! An operator sees only their own center's requests. The queue shows no personal data; an
//! operator opens a request to see the customer's name, address and camera, and that opening
//! (like looking at a shared picture or the shared live view) is written to the customer's
//! history. Shared pictures and live video are served only while the request is open.

use super::{act, live_stream, visible};
use crate::auth::Token;
use crate::error::{Error, ErrorKind};
use crate::http::AppState;
use crate::http::extract::{ApiJson, ApiQuery, IdPath, OperatorCaller, SdpBody};
use crate::store::{Dispatch, Event, Guard};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use eyeward::UnixMillis;
use eyeward::dispatch::{DispatchAction, DispatchActor, GeoPoint, propose};
use serde::Deserialize;
use serde_json::{Value, json};

impl OperatorCaller {
    fn actor(&self) -> DispatchActor {
        DispatchActor::Operator {
            id: self.id,
            center: self.center,
        }
    }
}

/// A request as the queue shows it: state and times, no personal data.
fn queue_item(d: &Dispatch) -> Value {
    json!({
        "id": d.id,
        "state": d.state,
        "created_at": UnixMillis(d.created_at).to_rfc3339(),
        "updated_at": UnixMillis(d.updated_at).to_rfc3339(),
        "guard_name": d.guard_name,
        "share_snapshot": d.share_snapshot,
        "share_live": d.share_live,
        "has_snapshot": d.has_snapshot,
        "shares_clip": d.clip_event_id.is_some(),
        "fee_due_yen": d.fee_due_yen,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueQuery {
    /// Also the latest closed requests.
    #[serde(default)]
    closed: bool,
}

/// How many requests the queue answers with at most.
const QUEUE_LIMIT: u32 = 500;

/// `GET /api/ops/dispatch-requests[?closed=true]`: the center's open requests, oldest first
/// (with `closed`, then the latest closed ones), and the server's time for ages.
pub async fn queue(
    State(st): State<AppState>,
    op: OperatorCaller,
    ApiQuery(q): ApiQuery<QueueQuery>,
) -> Result<Json<Value>, Error> {
    let requests = st
        .store
        .dispatch_queue(op.center, q.closed, QUEUE_LIMIT)
        .await?;
    Ok(Json(json!({
        "now": st.clock.now().to_rfc3339(),
        "guard_center": op.center,
        "requests": requests.iter().map(queue_item).collect::<Vec<_>>(),
    })))
}

/// `GET /api/ops/dispatch-requests/live`: server-sent `request` events (queue items), one per
/// change of any of the center's requests.
pub async fn live(State(st): State<AppState>, op: OperatorCaller) -> Result<Response, Error> {
    let center = op.center;
    live_stream(
        &st,
        op.caller.holder(),
        op.caller.grant(),
        "request",
        move |d| (d.guard_center == center).then(|| queue_item(d)),
    )
}

/// `GET /api/ops/dispatch-requests/{id}`: the request; while it is open also the customer's
/// name, address and camera, the note, and the guards proposed (recorded in the customer's
/// history as a view).
pub async fn open(
    State(st): State<AppState>,
    op: OperatorCaller,
    IdPath(id): IdPath,
) -> Result<Json<Value>, Error> {
    let d = visible(&st, op.actor(), id).await?;
    let mut steps = st.store.dispatch_steps(id).await?;
    if !d.state.is_open() {
        // A closed request no longer names its customer to the center, not even as the
        // actor of its steps.
        for step in steps.iter_mut().filter(|s| s.actor_kind == "customer") {
            step.actor_name.clear();
        }
    }
    let mut body = json!({
        "request": queue_item(&d),
        "steps": steps,
        "fee_due_yen": d.fee_due_yen,
    });
    if !d.state.is_open() {
        return Ok(Json(body));
    }
    let customer = st.store.account(d.customer_id.0).await?;
    let home = st.store.home_of(d.customer_id).await?;
    let guards = st.store.guards(Some(op.center)).await?;
    body["customer"] = json!({
        "number": d.customer_id.0,
        "name": customer.map(|a| a.name),
        "address": home.address,
        "location": home.location,
        "phone": home.notes.phone,
        "entry": home.notes.entry,
        "key_holder": home.notes.key_holder,
    });
    body["camera_name"] = json!(d.camera_name);
    body["note"] = json!(d.note);
    body["guards"] = json!(guards);
    body["proposals"] = json!(proposals(&st, home.location, &guards));
    body["guard_speed_kmh"] = json!(st.dispatcher.config().guard_speed_kmh);
    if let Some(event) = shared_clip_event(&st, &d).await? {
        if event.clip_bytes > 0 {
            body["clip"] = json!({
                "url": format!("/api/ops/dispatch-requests/{id}/clip"),
                "length_ms": event.clip_ms,
                "event_at_ms": event.clip_event_at_ms,
                "width": event.clip_width,
                "height": event.clip_height,
            });
        } else {
            body["clip_coming"] = json!(event.clip_coming);
        }
    }
    body["estimate"] = json!(format!(
        "straight-line distance at {} km/h; roads are not taken into account",
        st.dispatcher.config().guard_speed_kmh
    ));
    st.store
        .record(
            &op.caller.audit(st.clock.now()),
            Some(d.customer_id),
            "dispatch.viewed",
            json!({ "request_id": id, "camera": d.camera_name }),
        )
        .await?;
    Ok(Json(body))
}

/// The free guards, the first to arrive first, with their names.
fn proposals(st: &AppState, home: Option<GeoPoint>, guards: &[Guard]) -> Vec<Value> {
    let Some(home) = home else {
        return Vec::new();
    };
    let sightings: Vec<_> = guards.iter().map(Guard::sighting).collect();
    propose(
        home,
        &sightings,
        st.dispatcher.config().guard_speed_kmh,
        st.clock.now(),
    )
    .into_iter()
    .map(|p| {
        let name = guards.iter().find(|g| g.id == p.guard).map(|g| &g.name);
        json!({
            "guard_id": p.guard, "name": name,
            "distance_km": (p.distance_km * 10.0).round() / 10.0,
            "eta_minutes": p.eta_minutes.ceil(),
        })
    })
    .collect()
}

/// The steps an operator takes by path (assigning takes a guard: `assign`).
const OPERATOR_STEPS: [DispatchAction; 3] = [
    DispatchAction::Accept,
    DispatchAction::Arrive,
    DispatchAction::Complete,
];

/// `POST /api/ops/dispatch-requests/{id}/{accept|arrive|complete}`, with no body, or on
/// `complete` `{"report": "…"}` (at most 1000 characters).
pub async fn step(
    State(st): State<AppState>,
    op: OperatorCaller,
    Path((id, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, Error> {
    let (id, action, report) = super::step_of(&id, &action, &OPERATOR_STEPS, &body)?;
    let d = act(
        &st,
        op.actor(),
        &op.caller.audit(st.clock.now()),
        id,
        action,
        None,
        report.as_ref(),
    )
    .await?;
    Ok(Json(queue_item(&d)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    guard_id: i64,
}

/// `POST /api/ops/dispatch-requests/{id}/assign` `{"guard_id": N}`: a free guard of the
/// center goes.
pub async fn assign(
    State(st): State<AppState>,
    op: OperatorCaller,
    IdPath(id): IdPath,
    ApiJson(req): ApiJson<Assign>,
) -> Result<Response, Error> {
    let guard = st
        .store
        .guard_of(op.center, req.guard_id)
        .await?
        .ok_or_else(|| Error::not_found("guard"))?;
    if guard.busy_with.is_some_and(|other| other != id) {
        return Err(Error::new(
            ErrorKind::FailedPrecondition,
            format!("{} is on another request", guard.name),
        ));
    }
    let d = act(
        &st,
        op.actor(),
        &op.caller.audit(st.clock.now()),
        id,
        DispatchAction::Assign,
        Some(&guard),
        None,
    )
    .await?;
    Ok(Json(queue_item(&d)).into_response())
}

/// Request `id` of the operator's center if it is open and shares `what`; 404 otherwise.
async fn shared(
    st: &AppState,
    op: &OperatorCaller,
    id: i64,
    what: fn(&Dispatch) -> bool,
) -> Result<Dispatch, Error> {
    let d = visible(st, op.actor(), id).await?;
    if !d.state.is_open() || !what(&d) {
        return Err(Error::not_found("shared picture or video for this request"));
    }
    Ok(d)
}

/// `GET /api/ops/dispatch-requests/{id}/snapshot`: the picture the customer shared.
pub async fn snapshot(
    State(st): State<AppState>,
    op: OperatorCaller,
    IdPath(id): IdPath,
) -> Result<Response, Error> {
    let d = shared(&st, &op, id, |d| d.share_snapshot && d.has_snapshot).await?;
    let resp = super::jpeg_response(&st, &d).await?;
    st.store
        .record(
            &op.caller.audit(st.clock.now()),
            Some(d.customer_id),
            "dispatch.snapshot_viewed",
            json!({ "request_id": id, "camera": d.camera_name }),
        )
        .await?;
    Ok(resp)
}

/// The event whose clip request `d` shares, if it still is (it may have expired).
async fn shared_clip_event(st: &AppState, d: &Dispatch) -> Result<Option<Event>, Error> {
    match d.clip_event_id {
        Some(event) => st.store.event_of(d.customer_id, event).await,
        None => Ok(None),
    }
}

/// `GET /api/ops/dispatch-requests/{id}/clip`: the clip the customer shared, with range
/// requests, while the request is open; each look (a request from the clip's first byte) is
/// written to the customer's history. Never cached, so that every look asks.
pub async fn clip(
    State(st): State<AppState>,
    op: OperatorCaller,
    IdPath(id): IdPath,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let d = shared(&st, &op, id, |d| d.clip_event_id.is_some()).await?;
    let event = shared_clip_event(&st, &d)
        .await?
        .filter(|e| e.clip_bytes > 0)
        .ok_or_else(|| Error::not_found("shared clip for this request"))?;
    let (response, look) =
        crate::http::clips::serve(&st, &event, &headers, "no-store", None).await?;
    if look {
        st.store
            .record(
                &op.caller.audit(st.clock.now()),
                Some(d.customer_id),
                "dispatch.clip_viewed",
                json!({ "request_id": id, "camera": d.camera_name }),
            )
            .await?;
    }
    Ok(response)
}

/// `POST /api/ops/dispatch-requests/{id}/whep`: the shared live view (WHEP); it ends when
/// the request closes.
pub async fn watch(
    State(st): State<AppState>,
    op: OperatorCaller,
    IdPath(id): IdPath,
    SdpBody(offer): SdpBody,
) -> Result<Response, Error> {
    let d = shared(&st, &op, id, |d| d.share_live).await?;
    let viewer = crate::whep::Viewer::Operator {
        id: op.id,
        request: id,
    };
    let watcher = super::Watcher {
        viewer,
        path: format!("/api/ops/dispatch-requests/{id}/whep"),
        grant: op.caller.grant(),
        audit: op.caller.audit(st.clock.now()),
    };
    let still_shared = shared(&st, &op, id, |d| d.share_live);
    super::watch_shared(&st, &d, &offer, watcher, still_shared).await
}

/// `DELETE /api/ops/dispatch-requests/{id}/whep/{session}`: the operator stops watching.
pub async fn unwatch(
    State(st): State<AppState>,
    op: OperatorCaller,
    Path((id, session)): Path<(String, String)>,
) -> Result<StatusCode, Error> {
    let id = id.parse::<i64>().map_err(|_| Error::not_found("session"))?;
    let viewer = crate::whep::Viewer::Operator {
        id: op.id,
        request: id,
    };
    st.whep.stop(viewer, None, &session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/ops/guards`: the center's guards, where they were last seen and whether busy.
pub async fn guards(State(st): State<AppState>, op: OperatorCaller) -> Result<Response, Error> {
    Ok(Json(st.store.guards(Some(op.center)).await?).into_response())
}

/// `GET /api/ops/map`: where the console's map takes its tiles, and the credit to show.
pub async fn map(State(st): State<AppState>, _op: OperatorCaller) -> Response {
    let c = st.dispatcher.config();
    Json(json!({
        "tiles": c.map_tiles,
        "attribution": c.map_attribution,
    }))
    .into_response()
}

/// A place in a request's body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    lat: f64,
    lon: f64,
}

impl Position {
    pub(super) fn point(&self) -> Result<GeoPoint, Error> {
        Ok(GeoPoint::new(self.lat, self.lon)?)
    }
}

/// `PUT /api/ops/guards/{id}/position` `{"lat": .., "lon": ..}`: an operator sets where a
/// guard of their center is (a guard who called in, say).
pub async fn set_position(
    State(st): State<AppState>,
    op: OperatorCaller,
    IdPath(id): IdPath,
    ApiJson(p): ApiJson<Position>,
) -> Result<Response, Error> {
    let at = p.point()?;
    st.store
        .guard_of(op.center, id)
        .await?
        .ok_or_else(|| Error::not_found("guard"))?;
    st.store.set_guard_position(id, at, st.clock.now()).await?;
    let guard = st
        .store
        .guard_of(op.center, id)
        .await?
        .ok_or_else(|| Error::not_found("guard"))?;
    super::guard_moved(&st, &guard).await?;
    Ok(Json(guard).into_response())
}

/// How long a sign-in link waits to be opened on the guard's phone.
const SIGN_IN_LINK_FOR: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// `POST /api/ops/guards/{id}/sign-in-link`: a single-use link by which guard `{id}` signs
/// in on their phone, for 15 minutes, with its QR code (SVG) to show the phone; an unused
/// earlier link of theirs stops working. `{"url", "expires_at", "qr_svg"}`, never cached.
pub async fn sign_in_link(
    State(st): State<AppState>,
    op: OperatorCaller,
    IdPath(id): IdPath,
) -> Result<Response, Error> {
    let link = Token::generate("ewg_");
    let now = st.clock.now();
    let expires_at = now.plus(SIGN_IN_LINK_FOR);
    let audit = op.caller.audit(now);
    if !st
        .store
        .issue_guard_link(op.center, id, &link.hash, expires_at, &audit)
        .await?
    {
        return Err(Error::not_found("guard"));
    }
    // In the fragment: the browser never sends it, so no log or proxy on the way sees it.
    let url = format!("{}/guard.html#{}", st.origin, link.secret());
    let qr = qrcode::QrCode::new(url.as_bytes())
        .map_err(|e| Error::internal("the sign-in link's QR code").with_source(e))?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(240, 240)
        .build();
    Ok((
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(json!({
            "url": url,
            "expires_at": expires_at.to_rfc3339(),
            "qr_svg": qr,
        })),
    )
        .into_response())
}

/// `DELETE /api/ops/guards/{id}/sign-ins`: signs guard `{id}` out of every phone at once and
/// voids their unused link; their open pages end within seconds.
pub async fn revoke_sign_ins(
    State(st): State<AppState>,
    op: OperatorCaller,
    IdPath(id): IdPath,
) -> Result<StatusCode, Error> {
    let audit = op.caller.audit(st.clock.now());
    if !st
        .store
        .revoke_guard_sign_ins(op.center, id, &audit)
        .await?
    {
        return Err(Error::not_found("guard"));
    }
    tracing::info!(guard = id, "a guard's phones were signed out");
    Ok(StatusCode::NO_CONTENT)
}
