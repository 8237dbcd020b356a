//! Dispatch requests over HTTP: the customer's side (`/api/dispatch-requests`, [`customer`]),
//! the guard-center console's (`/api/ops/...`, [`ops`]) and the guards' phones
//! (`/guard/v1/...`, [`guard`]). Every step is decided by
//! [`eyeward::dispatch`], stored, then announced by [`crate::dispatch::Dispatcher`].

pub mod customer;
pub mod guard;
pub mod ops;

use super::AppState;
use super::streams::{self, Live};
use crate::error::{Error, ErrorKind};
use crate::store::{Audit, Dispatch, Guard, StepDetails};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use eyeward::dispatch::{DispatchAction, DispatchActor, Note, Refusal};
use serde::Deserialize;
use serde_json::{Value, json};

/// The picture shared with `d`, if one was uploaded. Never cached: the share may end.
async fn jpeg_response(st: &AppState, d: &Dispatch) -> Result<Response, Error> {
    if !d.has_snapshot {
        return Err(Error::not_found("shared picture"));
    }
    let jpeg = st.dispatcher.read_snapshot(d.id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        jpeg,
    )
        .into_response())
}

/// The error for a step the rules refuse.
fn refused(refusal: Refusal, d: &Dispatch, action: DispatchAction) -> Error {
    match refusal {
        Refusal::NotFound => Error::not_found("dispatch request"),
        Refusal::Forbidden => Error::forbidden(match action {
            DispatchAction::Cancel => "only the customer who asked may cancel a request",
            DispatchAction::Depart => "only the guard given the request says they are on the way",
            DispatchAction::Accept | DispatchAction::Assign => {
                "only an operator of the customer's guard center may do this"
            }
            DispatchAction::Arrive | DispatchAction::Complete => {
                "only the guard center or the guard given the request may do this"
            }
        }),
        Refusal::Conflict => {
            let done = match action {
                DispatchAction::Accept => "accepted",
                DispatchAction::Assign => "given a guard",
                DispatchAction::Depart => "marked as on the way",
                DispatchAction::Arrive => "marked as arrived",
                DispatchAction::Complete => "completed",
                DispatchAction::Cancel => "cancelled",
            };
            Error::new(
                ErrorKind::FailedPrecondition,
                format!("this request is {}: it cannot be {done} now", d.state),
            )
            .with_code("request_changed")
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StepBody {
    /// On `complete`: what the guard found and did, for the customer (shown and mailed).
    #[serde(default)]
    report: String,
}

/// A step sent by path (`/{id}/{action}`, one of `allowed`) with no body, or on `complete`
/// `{"report": "…"}` (at most 1000 characters): the request's id, the action and the report.
fn step_of(
    id: &str,
    action: &str,
    allowed: &[DispatchAction],
    body: &[u8],
) -> Result<(i64, DispatchAction, Option<Note>), Error> {
    let id = id
        .parse::<i64>()
        .map_err(|_| Error::not_found("dispatch request"))?;
    let action = allowed
        .iter()
        .copied()
        .find(|a| a.as_str() == action)
        .ok_or_else(|| Error::not_found("action"))?;
    let body: StepBody = if body.is_empty() {
        StepBody::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| Error::bad_request(format!("request body: {e}")))?
    };
    let report = Note::parse(&body.report)?;
    if report.is_some() && action != DispatchAction::Complete {
        return Err(Error::bad_request("a report comes with completion only"));
    }
    Ok((id, action, report))
}

/// Request `id` if `actor` may see it; 404 otherwise (another customer's, another center's,
/// or none: never told apart).
async fn visible(st: &AppState, actor: DispatchActor, id: i64) -> Result<Dispatch, Error> {
    st.store
        .dispatch(id)
        .await?
        .filter(|d| d.rules().visible_to(actor))
        .ok_or_else(|| Error::not_found("dispatch request"))
}

/// Takes `action` on request `id` for `actor`: decided by the rules, stored with its history
/// entry (and mail), then announced. A closed request's live share ends at once.
async fn act(
    st: &AppState,
    actor: DispatchActor,
    audit: &Audit,
    id: i64,
    action: DispatchAction,
    guard: Option<&Guard>,
    report: Option<&Note>,
) -> Result<Dispatch, Error> {
    let d = visible(st, actor, id).await?;
    let t = d
        .rules()
        .apply(actor, action, audit.at)
        .map_err(|r| refused(r, &d, action))?;
    let eta = match guard {
        Some(g) => expected_arrival(st, &d, g).await?,
        None => None,
    };
    let step = StepDetails { guard, eta, report };
    let mut updated = st.store.apply_dispatch(&d, &t, &step, audit).await?;
    if !updated.state.is_open() {
        st.whep.end_shared(id).await;
        // The share ended: its picture is no one's to see any more, so it is not kept.
        if updated.has_snapshot {
            st.store.set_dispatch_snapshot(id, 0).await?;
            st.dispatcher.forget_snapshot(id).await;
            updated.has_snapshot = false;
        }
    }
    tracing::info!(request = id, state = %updated.state, "dispatch request changed");
    st.dispatcher.announce(updated.clone());
    Ok(updated)
}

/// Who watches a request's shared live view: the viewer, the path the session is answered
/// at, what ends it, and who is written to the customer's history.
struct Watcher {
    viewer: crate::whep::Viewer,
    path: String,
    grant: crate::revocation::Grant,
    audit: Audit,
}

/// The live view request `d` shares, for `watcher` (WHEP). The request may close while the
/// session is set up, after `end_shared` looked for sessions to end: `still_shared` asks
/// again once the session is registered, so one of the two sees the other. Each look goes to
/// the customer's history.
async fn watch_shared(
    st: &AppState,
    d: &Dispatch,
    offer: &str,
    watcher: Watcher,
    still_shared: impl std::future::Future<Output = Result<Dispatch, Error>>,
) -> Result<Response, Error> {
    let camera = match d.camera_id {
        Some(camera) => {
            st.store
                .camera_of(d.customer_id, eyeward::CameraId(camera))
                .await?
        }
        None => None,
    }
    .ok_or_else(|| Error::not_found("camera"))?;
    let Watcher {
        viewer,
        path,
        grant,
        audit,
    } = watcher;
    let (session, resp) =
        crate::http::live_video::answer(st, viewer, &camera, offer, &path, grant).await?;
    if let Err(e) = still_shared.await {
        st.whep.end(&session).await;
        return Err(e);
    }
    st.store
        .record(
            &audit,
            Some(d.customer_id),
            "dispatch.live_viewed",
            json!({ "request_id": d.id, "camera": d.camera_name }),
        )
        .await?;
    Ok(resp)
}

/// When `guard` reaches the home of request `d`'s customer, from the guard's last reported
/// position; none without a fresh position or a home location.
async fn expected_arrival(
    st: &AppState,
    d: &Dispatch,
    guard: &Guard,
) -> Result<Option<eyeward::UnixMillis>, Error> {
    let (Some(from), Some(seen_at)) = (guard.position, guard.seen_at) else {
        return Ok(None);
    };
    let Some(home) = st.store.home_of(d.customer_id).await?.location else {
        return Ok(None);
    };
    Ok(eyeward::dispatch::expected_arrival(
        from,
        eyeward::UnixMillis(seen_at),
        home,
        st.dispatcher.config().guard_speed_kmh,
        st.clock.now(),
    ))
}

/// The guard's phone reported a new position: the request the guard is on the way to is
/// expected anew, and its customer's page and the console are told.
pub(crate) async fn guard_moved(st: &AppState, guard: &Guard) -> Result<(), Error> {
    for d in st.store.dispatches_assigned_to(guard.id).await? {
        let eta = expected_arrival(st, &d, guard).await?;
        if let Some(updated) = st.store.set_dispatch_eta(d.id, eta).await? {
            st.dispatcher.announce(updated);
        }
    }
    Ok(())
}

/// A server-sent event stream of the changes `render` picks (and renders) for one page, each
/// a message called `name`; `resync` when the page fell behind and must reload.
fn live_stream(
    st: &AppState,
    holder: streams::StreamHolder,
    grant: crate::revocation::Grant,
    name: &'static str,
    render: impl Fn(&Dispatch) -> Option<Value> + Send + 'static,
) -> Result<Response, Error> {
    let source = streams::from_broadcast(st.dispatcher.subscribe(), move |d| {
        render(&d).map(|v| Live::Message {
            name,
            data: v.to_string(),
        })
    });
    streams::live_stream(st, holder, grant, source)
}
