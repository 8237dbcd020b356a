//! The customer's side: ask for a guard from a dispatch-plan camera, follow the request live,
//! cancel it, share a picture with the guard center, see the fees owed. A household member
//! given `dispatch` on a camera does the same for that camera's requests, under their own
//! name; the fee is always the holder's, and only the holder sees the charges.

use super::{act, live_stream};
use crate::error::{Error, ErrorKind};
use crate::events::check_jpeg;
use crate::http::AppState;
use crate::http::extract::{
    ApiJson, CustomerCaller, HouseholdCaller, IdPath, JpegBody, follows_dispatch,
};
use crate::store::NewDispatch;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use eyeward::dispatch::{DispatchAction, DispatchActor, Note};
use eyeward::household::{Access, Right};
use eyeward::{CameraId, Plan};
use serde::Deserialize;
use serde_json::{Value, json};

/// `GET /api/dispatch-terms`: what a request costs and when, for the confirmation (to a
/// member given `dispatch` on a camera, too).
pub async fn terms(State(st): State<AppState>, c: HouseholdCaller) -> Result<Json<Value>, Error> {
    c.given_on_some_camera(Right::Dispatch, st.clock.now())?;
    let home = st.store.home_of(c.household).await?;
    Ok(Json(json!({
        "fee_yen": st.dispatcher.config().fee_yen,
        "tax_included": true,
        "free_cancellation_until": "accepted",
        // Where the guard goes: the address on the customer's contract.
        "address": home.address,
    })))
}

/// `GET /api/dispatch-requests`: the household's requests, newest first (a member's: those of
/// the cameras they were given `dispatch` on).
pub async fn list(State(st): State<AppState>, c: HouseholdCaller) -> Result<Response, Error> {
    let now = st.clock.now();
    let mut requests = st.store.dispatches_of(c.household, 100).await?;
    requests.retain(|d| c.follows_dispatch(d.camera_id, now));
    Ok(Json(requests).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// The camera whose live view the request comes from.
    camera_id: i64,
    #[serde(default)]
    note: String,
    /// Share a picture with the guard center, for this request only.
    #[serde(default)]
    share_snapshot: bool,
    /// Let the guard center watch this camera live, for this request only.
    #[serde(default)]
    share_live: bool,
    /// Let the guard center play the clip of this event of the camera (one with a clip, or
    /// one on its way), for this request only.
    share_clip_of: Option<i64>,
    /// The fee the page showed; if given, it must still be the fee.
    fee_yen: Option<u32>,
}

/// `POST /api/dispatch-requests`: asks for a guard (the holder, or a member given `dispatch`
/// on the camera; sharing a clip needs `events` too). `201` with the request.
pub async fn create(
    State(st): State<AppState>,
    c: HouseholdCaller,
    ApiJson(req): ApiJson<NewRequest>,
) -> Result<Response, Error> {
    let note = Note::parse(&req.note)?;
    let camera = st
        .store
        .camera_of(c.household, CameraId(req.camera_id))
        .await?
        .ok_or_else(|| Error::not_found("camera"))?;
    if camera.plan == Plan::Dispatch {
        c.camera(&st, camera.id, Right::Dispatch).await?;
    } else if c.access(&camera, Right::Watch, st.clock.now()) == Access::NoCamera {
        return Err(Error::not_found("camera"));
    }
    if camera.plan != Plan::Dispatch {
        return Err(Error::forbidden(
            "this camera's plan has no guard dispatch; it cannot request one",
        ));
    }
    if let Some(event) = req.share_clip_of {
        let (event, _) = c.event(&st, event).await?;
        if event.camera_id != camera.id.0 {
            return Err(Error::bad_request(
                "the clip shared must be of the camera the guard is requested from",
            ));
        }
        if event.clip_bytes == 0 && !event.clip_coming {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                "this event has no clip to share",
            ));
        }
    }
    let fee_yen = st.dispatcher.config().fee_yen;
    if req.fee_yen.is_some_and(|shown| shown != fee_yen) {
        return Err(Error::new(
            ErrorKind::FailedPrecondition,
            format!("the fee is now {fee_yen} yen; please confirm again"),
        )
        .with_code("fee_changed"));
    }
    let d = st
        .store
        .create_dispatch(
            NewDispatch {
                customer: c.household,
                center: c.caller.account.guard_center,
                camera_id: camera.id.0,
                camera_name: &camera.name,
                note,
                fee_yen: i64::from(fee_yen),
                share_snapshot: req.share_snapshot,
                share_live: req.share_live,
                clip_event_id: req.share_clip_of,
            },
            &c.caller.audit(st.clock.now()),
        )
        .await?;
    st.metrics.dispatch_requests.inc();
    tracing::info!(request = d.id, camera = camera.id.0, center = %d.guard_center, "dispatch requested");
    st.dispatcher.announce(d.clone());
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            HeaderValue::from_str(&format!("/api/dispatch-requests/{}", d.id))
                .map_err(|_| Error::internal("location"))?,
        )],
        Json(d),
    )
        .into_response())
}

/// `GET /api/dispatch-requests/{id}`: one request with its steps.
pub async fn one(
    State(st): State<AppState>,
    c: HouseholdCaller,
    IdPath(id): IdPath,
) -> Result<Json<Value>, Error> {
    let d = c.dispatch_request(&st, id).await?;
    let steps = st.store.dispatch_steps(id).await?;
    Ok(Json(json!({ "request": d, "steps": steps })))
}

/// `POST /api/dispatch-requests/{id}/cancel`: free before acceptance, the fee stays after.
pub async fn cancel(
    State(st): State<AppState>,
    c: HouseholdCaller,
    IdPath(id): IdPath,
) -> Result<Response, Error> {
    c.dispatch_request(&st, id).await?;
    let audit = c.caller.audit(st.clock.now());
    let d = act(
        &st,
        DispatchActor::Customer(c.household),
        &audit,
        id,
        DispatchAction::Cancel,
        None,
        None,
    )
    .await?;
    Ok(Json(d).into_response())
}

/// `PUT /api/dispatch-requests/{id}/snapshot` (`image/jpeg`): the picture the customer shares
/// with the guard center, when they consented to sharing one and the request is open.
pub async fn put_snapshot(
    State(st): State<AppState>,
    c: HouseholdCaller,
    IdPath(id): IdPath,
    JpegBody(jpeg): JpegBody,
) -> Result<StatusCode, Error> {
    let d = c.dispatch_request(&st, id).await?;
    if !d.share_snapshot {
        return Err(Error::new(
            ErrorKind::FailedPrecondition,
            "this request does not share a picture",
        ));
    }
    if !d.state.is_open() {
        return Err(Error::new(
            ErrorKind::FailedPrecondition,
            "this request is closed: nothing more is shared",
        ));
    }
    let jpeg = jpeg.ok_or_else(|| Error::bad_request("expected a JPEG picture"))?;
    let max_pixels = st.events.max_pixels();
    let jpeg = st
        .events
        .decoding(move || check_jpeg(&jpeg, max_pixels).map(|_| jpeg))
        .await??;
    let bytes = jpeg.len();
    st.dispatcher.save_snapshot(id, jpeg).await?;
    st.store.set_dispatch_snapshot(id, bytes).await?;
    if let Some(d) = st.store.dispatch(id).await? {
        st.dispatcher.announce(d);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/dispatch-requests/{id}/snapshot`: the picture the customer shared.
pub async fn snapshot(
    State(st): State<AppState>,
    c: HouseholdCaller,
    IdPath(id): IdPath,
) -> Result<Response, Error> {
    let d = c.dispatch_request(&st, id).await?;
    super::jpeg_response(&st, &d).await
}

/// `GET /api/dispatch-requests/live`: server-sent `request` events, one per change of any of
/// the household's requests the caller follows (a member's stream ends when their rights
/// change, and the page opens it again).
pub async fn live(State(st): State<AppState>, c: HouseholdCaller) -> Result<Response, Error> {
    let (household, membership, clock) = (c.household, c.membership.clone(), st.clock);
    live_stream(&st, c.caller.holder(), c.grant(), "request", move |d| {
        let followed = follows_dispatch(membership.as_ref(), d.camera_id, clock.now());
        (d.customer_id == household && followed)
            .then(|| serde_json::to_value(d).unwrap_or(Value::Null))
    })
}

/// `GET /api/charges`: the dispatch fees the caller owes, newest first.
pub async fn charges(State(st): State<AppState>, c: CustomerCaller) -> Result<Response, Error> {
    Ok(Json(st.store.charges_of(c.id).await?).into_response())
}

/// `GET /api/home`: the caller's home as the guards see it: the contract's address (set by
/// the service) and the notes the caller keeps.
pub async fn home(State(st): State<AppState>, c: CustomerCaller) -> Result<Json<Value>, Error> {
    let home = st.store.home_of(c.id).await?;
    Ok(Json(json!({
        "address": home.address,
        "phone": home.notes.phone,
        "entry": home.notes.entry,
        "key_holder": home.notes.key_holder,
    })))
}

/// The longest note kept for the guards.
const HOME_NOTE_CHARS: usize = 500;

/// `PUT /api/home {"phone", "entry", "key_holder"}` (each a string, empty for none; the phone
/// at most 30 characters of digits, spaces, `+`, `-`, `(`, `)`; the others at most 500, no
/// control characters but line breaks): what a guard needs beside the address.
pub async fn set_home(
    State(st): State<AppState>,
    c: CustomerCaller,
    ApiJson(notes): ApiJson<crate::store::HomeNotes>,
) -> Result<Json<Value>, Error> {
    let blank_is_none = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    };
    let phone = blank_is_none(&notes.phone);
    if let Some(p) = &phone
        && (p.chars().count() > 30
            || !p
                .chars()
                .all(|ch| ch.is_ascii_digit() || " +-()".contains(ch)))
    {
        return Err(
            Error::bad_request("a phone number is digits, spaces and + - ( )")
                .with_code("bad_phone"),
        );
    }
    let note = |v: &Option<String>| -> Result<Option<String>, Error> {
        match blank_is_none(v) {
            Some(t) if t.chars().count() > HOME_NOTE_CHARS => Err(Error::bad_request(format!(
                "a note holds at most {HOME_NOTE_CHARS} characters"
            ))),
            Some(t) => Ok(Note::parse(&t)?.map(|n| n.as_str().to_owned())),
            None => Ok(None),
        }
    };
    let checked = crate::store::HomeNotes {
        phone,
        entry: note(&notes.entry)?,
        key_holder: note(&notes.key_holder)?,
    };
    st.store
        .set_home_notes(c.id, &checked, &c.caller.audit(st.clock.now()))
        .await?;
    home(State(st), c).await
}
