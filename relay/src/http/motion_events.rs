//! Motion events over HTTP: the agents' uploads (`POST /agent/v1/events`), the owner's lists
//! (one camera's, every camera's), one event with its neighbours, its snapshot, and the live
//! stream of a camera's new events. The events themselves are [`crate::events`]'.

use super::AppState;
use super::agent_link::AgentCaller;
use super::extract::{ApiQuery, HouseholdCaller, IdPath, JpegBody};
use super::streams::{self, Live};
use crate::error::{Error, ErrorKind};
use crate::events::{Stored, accept};
use crate::store::{Camera, Event, EventPage};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use eyeward::api::{ListedEvent, MailDelivery, OneEvent};
use eyeward::household::Right;
use eyeward::upload::UploadQuery;
use eyeward::{CameraId, UnixMillis};
use serde::Deserialize;

/// `POST /agent/v1/events?key=…&captured_at=…&score=…&bbox=x,y,w,h` with the JPEG as the
/// body (or `&snapshot=dropped` and no body; or `kind=gap&…` and no body): `201` with the
/// event once it is stored, `200` with the same event for a repeated key.
pub async fn upload(
    State(st): State<AppState>,
    agent: AgentCaller,
    ApiQuery(upload): ApiQuery<UploadQuery>,
    JpegBody(jpeg): JpegBody,
) -> Result<Response, Error> {
    let camera = agent.camera.id;
    st.events.admit(&agent.camera)?;
    // Decoding the JPEG to check it takes CPU and memory: off the async workers, a few at once.
    let max_pixels = st.events.max_pixels();
    let now = st.clock.now();
    let (event, jpeg) = st
        .events
        .decoding(move || accept(camera, &upload, jpeg, max_pixels, now))
        .await??;
    let alerts = st.mailer.policy();
    let (stored, what) = st.events.record(&st.store, event, jpeg, &alerts).await?;
    if what == Stored::Created {
        // Its alert mail, if any, is queued: send it now.
        st.mailer.wake.notify_one();
    }
    if what != Stored::Same {
        st.events.publish(&stored);
    }
    if what == Stored::Created {
        st.metrics.events_stored.inc();
        tracing::info!(
            camera = stored.camera_id,
            event = stored.id,
            kind = stored.kind,
            "event stored"
        );
    }
    let status = if what == Stored::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(st.events.view(&stored))).into_response())
}

/// Paging of an event list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// At most this many (1 to 200; default 50).
    limit: Option<u32>,
    /// Only events captured before this instant (Unix milliseconds), for the next page.
    before: Option<i64>,
    /// With `before`: also the events taken at that very instant whose id is below this (the
    /// last event of the previous page), so that none is skipped.
    before_id: Option<i64>,
    /// For `GET /api/events`: only this camera's.
    camera: Option<i64>,
}

impl ListQuery {
    fn page(&self) -> Result<(EventPage, u32), Error> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(Error::bad_request("limit must be 1 to 200"));
        }
        if self.before_id.is_some() && self.before.is_none() {
            return Err(Error::bad_request("before_id goes with before"));
        }
        let page = EventPage {
            before: self.before.map(|at| (UnixMillis(at), self.before_id)),
        };
        Ok((page, limit))
    }
}

/// `GET /api/cameras/{id}/events`: the household's events of that camera, newest first (for
/// a member given `events` on it).
pub async fn list(
    State(st): State<AppState>,
    c: HouseholdCaller,
    IdPath(id): IdPath,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<ListedEvent>>, Error> {
    if q.camera.is_some() {
        return Err(Error::bad_request("the camera is in the path"));
    }
    let (page, limit) = q.page()?;
    let camera = c.camera(&st, CameraId(id), Right::Events).await?;
    let events = st
        .store
        .events_of(c.household, Some(camera.id), None, page, limit)
        .await?;
    Ok(Json(with_mail(&st, &events, &[camera]).await?))
}

/// `GET /api/events[?camera=ID]`: the household's events of all cameras (or of one), newest
/// first, each with its camera's name: the feed of everything that happened (a member's, of
/// the cameras they were given `events` on).
pub async fn feed(
    State(st): State<AppState>,
    c: HouseholdCaller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<ListedEvent>>, Error> {
    let (page, limit) = q.page()?;
    let now = st.clock.now();
    let cameras: Vec<Camera> = c
        .cameras(&st, now)
        .await?
        .into_iter()
        .filter(|cam| c.access(cam, Right::Events, now) == eyeward::household::Access::Allowed)
        .collect();
    let camera = match q.camera {
        Some(id) => Some(
            cameras
                .iter()
                .find(|cam| cam.id == CameraId(id))
                .ok_or_else(|| Error::not_found("camera"))?
                .id,
        ),
        None => None,
    };
    let events = st
        .store
        .events_of(c.household, camera, c.events_viewer(), page, limit)
        .await?;
    Ok(Json(with_mail(&st, &events, &cameras).await?))
}

/// `events` as the lists show them: each with its camera's name and how its alert mail
/// went (read in one query per camera on the page).
async fn with_mail(
    st: &AppState,
    events: &[Event],
    cameras: &[Camera],
) -> Result<Vec<ListedEvent>, Error> {
    let mut deliveries = Vec::new();
    for camera in cameras {
        let mine = events.iter().filter(|e| e.camera_id == camera.id.0);
        let (Some(oldest), Some(newest)) = (
            mine.clone().map(|e| e.captured_at).min(),
            mine.map(|e| e.captured_at).max(),
        ) else {
            continue;
        };
        deliveries.extend(
            st.store
                .alert_deliveries(camera.id.0, UnixMillis(oldest), UnixMillis(newest))
                .await?,
        );
    }
    Ok(events
        .iter()
        .map(|e| ListedEvent {
            event: st.events.view(e),
            camera_name: cameras
                .iter()
                .find(|cam| cam.id.0 == e.camera_id)
                .map(|cam| cam.name.clone()),
            mail: deliveries
                .iter()
                .filter(|(event, ..)| *event == e.id)
                .map(|(_, to, state)| MailDelivery {
                    to: to.clone(),
                    state: state.clone(),
                })
                .collect(),
        })
        .collect())
}

/// `GET /api/cameras/{id}/events/live`: server-sent events while the page is open, one
/// `event` message with the event (as in the list) for each new or grown one of that
/// camera, or `resync` when this viewer fell behind and should fetch the list again.
pub async fn live(
    State(st): State<AppState>,
    c: HouseholdCaller,
    IdPath(id): IdPath,
) -> Result<Response, Error> {
    c.camera(&st, CameraId(id), Right::Events).await?;
    let source = streams::from_broadcast(st.events.subscribe(), move |live| {
        (live.0 == id).then(|| Live::Message {
            name: "event",
            data: serde_json::to_string(&live.1).unwrap_or_default(),
        })
    });
    streams::live_stream(
        &st,
        c.caller.holder(),
        c.grant_on(CameraId(id), Right::Events),
        source,
    )
}

/// `GET /api/events/{id}`: one of the owner's events, as in the list, with its camera's name
/// (the page a mailed "See this event" link opens).
pub async fn one(
    State(st): State<AppState>,
    c: HouseholdCaller,
    IdPath(id): IdPath,
) -> Result<Json<OneEvent>, Error> {
    let (event, camera) = c.event(&st, id).await?;
    // The viewer's previous (older) and next (newer) of the same camera.
    let (older_id, newer_id) = st.store.event_neighbours(&event).await?;
    Ok(Json(OneEvent {
        event: st.events.view(&event),
        camera_name: camera.name,
        older_id,
        newer_id,
    }))
}

/// `GET /api/events/{id}/snapshot`: the picture of one of the owner's events.
pub async fn snapshot(
    State(st): State<AppState>,
    c: HouseholdCaller,
    IdPath(id): IdPath,
) -> Result<Response, Error> {
    let (event, _) = c.event(&st, id).await?;
    snapshot_response(&st, &event).await
}

/// An event's snapshot as the answer to whoever may see it: the JPEG, for private caches only.
pub(super) async fn snapshot_response(st: &AppState, event: &Event) -> Result<Response, Error> {
    if event.snapshot_bytes == 0 {
        return Err(Error::new(
            ErrorKind::NotFound,
            "this event has no snapshot: the camera had to drop it",
        ));
    }
    let jpeg = st.events.read_snapshot(event).await?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
            // Snapshots never change; they are the customer's own, so private caches only.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=86400, immutable"),
            ),
        ],
        jpeg,
    )
        .into_response())
}
