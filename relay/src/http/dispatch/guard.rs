//! The guards' phones (`/guard/v1/...`). A guard signs in with the single-use link an
//! operator issued from the console ([`sign_in`]); the phone page then reads the guard's
//! current assignment, moves it on ("on my way", "arrived", "done") through the same rules
//! as the console, looks at what the customer shares while the request is open, and reports
//! where the phone is. Only the guard's own open assignment is served: another guard's, or
//! one that closed, is 404. A step sent again is answered as done, so a phone on a flaky
//! connection can send until it hears back. Devices keep reporting positions with the
//! guard's long-lived token ([`report_position`]).

use super::{act, live_stream, visible};
use crate::auth::{Token, hash_token};
use crate::error::{Error, ErrorKind};
use crate::http::AppState;
use crate::http::extract::{ApiJson, IdPath, SdpBody, bearer_token, cookie, session_set_cookie};
use crate::http::streams::StreamHolder;
use crate::revocation::Grant;
use crate::store::{Actor, Audit, Channel, Dispatch, GUARD_SESSION_FOR, Guard};
use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use eyeward::UnixMillis;
use eyeward::dispatch::{DispatchAction, DispatchActor, already_through};
use serde::Deserialize;
use serde_json::{Value, json};

/// The phone's session cookie; over https `__Host-` (Secure, this host, path `/`).
const GUARD_COOKIE: &str = "eyeward_guard";
const SECURE_GUARD_COOKIE: &str = "__Host-eyeward_guard";

fn cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_GUARD_COOKIE
    } else {
        GUARD_COOKIE
    }
}

/// A signed-in guard's phone: the guard, and the hash of the session's token.
pub struct GuardPhone {
    guard: Guard,
    token_hash: String,
}

impl GuardPhone {
    fn actor(&self) -> DispatchActor {
        DispatchActor::Guard {
            id: self.guard.id,
            center: self.guard.guard_center,
        }
    }

    fn audit(&self, at: UnixMillis) -> Audit {
        Audit {
            actor: Actor::Guard {
                id: self.guard.id,
                name: self.guard.name.clone(),
            },
            channel: Channel::Web,
            at,
        }
    }
}

impl FromRequestParts<AppState> for GuardPhone {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Error> {
        let token_hash = cookie(&parts.headers, cookie_name(st.secure_cookies)).map(hash_token);
        let session = match &token_hash {
            Some(hash) => st.store.guard_session(hash, st.clock.now()).await?,
            None => None,
        };
        match (session, token_hash) {
            (Some(s), Some(token_hash)) => Ok(GuardPhone {
                guard: s.guard,
                token_hash,
            }),
            _ => Err(Error::new(
                ErrorKind::Unauthenticated,
                "sign in on this phone with a new link from the guard center",
            )),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    token: String,
}

/// The phone's session cookie with `value`, kept for `max_age_secs`.
fn session_cookie(st: &AppState, value: &str, max_age_secs: u64) -> HeaderValue {
    let name = cookie_name(st.secure_cookies);
    session_set_cookie(name, value, max_age_secs, st.secure_cookies)
}

/// `POST /guard/v1/sign-in` `{"token"}`: takes the single-use link (404 for one unknown,
/// used or expired: never told apart) and signs this phone in for a shift.
pub async fn sign_in(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<SignIn>,
) -> Result<Response, Error> {
    if req.token.len() > 200 {
        return Err(Error::bad_request("a sign-in token is shorter"));
    }
    let session = Token::generate("");
    let now = st.clock.now();
    let guard = st
        .store
        .take_guard_link(&hash_token(&req.token), &session.hash, now)
        .await?
        .ok_or_else(|| {
            Error::not_found("sign-in link (it may be used or expired: ask for a new one)")
                .with_code("link_used")
        })?;
    tracing::info!(guard, "a guard signed in on a phone");
    let cookie = session_cookie(&st, session.secret(), GUARD_SESSION_FOR.as_secs());
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(resp)
}

/// `POST /guard/v1/sign-out`: ends this phone's session.
pub async fn sign_out(State(st): State<AppState>, phone: GuardPhone) -> Result<Response, Error> {
    st.store.end_guard_session(&phone.token_hash).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, session_cookie(&st, "", 0));
    Ok(resp)
}

/// Never kept by the phone's browser or a proxy: it names a customer.
fn private(body: Value) -> Response {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(body),
    )
        .into_response()
}

/// What the phone shows of an open request the guard is given.
async fn assignment(st: &AppState, d: &Dispatch) -> Result<Value, Error> {
    let customer = st.store.account(d.customer_id.0).await?;
    let home = st.store.home_of(d.customer_id).await?;
    let base = format!("/guard/v1/assignments/{}", d.id);
    Ok(json!({
        "id": d.id,
        "state": d.state,
        "created_at": UnixMillis(d.created_at).to_rfc3339(),
        "camera_name": d.camera_name,
        "note": d.note,
        "eta": d.eta_at.map(|t| UnixMillis(t).to_rfc3339()),
        "customer": {
            "name": customer.map(|a| a.name),
            "address": home.address,
            "location": home.location,
            "phone": home.notes.phone,
            "entry": home.notes.entry,
            "key_holder": home.notes.key_holder,
        },
        "snapshot": (d.share_snapshot && d.has_snapshot).then(|| format!("{base}/snapshot")),
        "live": d.share_live.then(|| format!("{base}/whep")),
    }))
}

/// Request `id` if it is this guard's and open; 404 otherwise (another guard's, another
/// center's, a closed one, none: never told apart).
async fn open_assignment(st: &AppState, phone: &GuardPhone, id: i64) -> Result<Dispatch, Error> {
    let d = visible(st, phone.actor(), id).await?;
    if !d.state.is_open() {
        return Err(Error::not_found("dispatch request"));
    }
    Ok(d)
}

/// `GET /guard/v1/assignment`: `{"guard": {"name", "guard_center"}, "assignment"}`, the open
/// request the guard is given (or `null`).
pub async fn current(State(st): State<AppState>, phone: GuardPhone) -> Result<Response, Error> {
    let body = match phone.guard.busy_with {
        Some(id) => match open_assignment(&st, &phone, id).await {
            Ok(d) => assignment(&st, &d).await?,
            Err(e) if e.kind() == ErrorKind::NotFound => Value::Null,
            Err(e) => return Err(e),
        },
        None => Value::Null,
    };
    Ok(private(json!({
        "guard": { "name": phone.guard.name, "guard_center": phone.guard.guard_center },
        "assignment": body,
    })))
}

/// `GET /guard/v1/assignments/{id}`: that request, while it is the guard's and open.
pub async fn one(
    State(st): State<AppState>,
    phone: GuardPhone,
    IdPath(id): IdPath,
) -> Result<Response, Error> {
    let d = open_assignment(&st, &phone, id).await?;
    Ok(private(assignment(&st, &d).await?))
}

/// The steps a guard takes from the phone.
const GUARD_STEPS: [DispatchAction; 3] = [
    DispatchAction::Depart,
    DispatchAction::Arrive,
    DispatchAction::Complete,
];

/// `POST /guard/v1/assignments/{id}/{depart|arrive|complete}`, `complete` with `{"report"}`:
/// the step by the guard's rules; `{"id", "state"}` after it. A step the request already
/// went through is answered the same (the phone did not hear the first answer).
pub async fn step(
    State(st): State<AppState>,
    phone: GuardPhone,
    Path((id, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, Error> {
    let (id, action, report) = super::step_of(&id, &action, &GUARD_STEPS, &body)?;
    let now = st.clock.now();
    let d = visible(&st, phone.actor(), id).await?;
    if already_through(d.state, action) {
        return Ok(Json(json!({ "id": d.id, "state": d.state })).into_response());
    }
    let done = act(
        &st,
        phone.actor(),
        &phone.audit(now),
        id,
        action,
        None,
        report.as_ref(),
    )
    .await;
    let d = match done {
        Ok(d) => d,
        // Sent twice at once: the other one took the step.
        Err(e) if e.given_code() == Some("request_changed") => {
            let d = visible(&st, phone.actor(), id).await?;
            if !already_through(d.state, action) {
                return Err(e);
            }
            d
        }
        Err(e) => return Err(e),
    };
    Ok(Json(json!({ "id": d.id, "state": d.state })).into_response())
}

/// `GET /guard/v1/assignments/{id}/snapshot`: the picture the customer shared, while the
/// request is open; each look is in the customer's history.
pub async fn snapshot(
    State(st): State<AppState>,
    phone: GuardPhone,
    IdPath(id): IdPath,
) -> Result<Response, Error> {
    let d = open_assignment(&st, &phone, id).await?;
    if !(d.share_snapshot && d.has_snapshot) {
        return Err(Error::not_found("shared picture for this request"));
    }
    let resp = super::jpeg_response(&st, &d).await?;
    st.store
        .record(
            &phone.audit(st.clock.now()),
            Some(d.customer_id),
            "dispatch.snapshot_viewed",
            json!({ "request_id": id, "camera": d.camera_name }),
        )
        .await?;
    Ok(resp)
}

/// `POST /guard/v1/assignments/{id}/whep`: the shared live view, while the request shares it
/// and is open; it ends when the request closes or the phone's sign-in is revoked.
pub async fn watch(
    State(st): State<AppState>,
    phone: GuardPhone,
    IdPath(id): IdPath,
    SdpBody(offer): SdpBody,
) -> Result<Response, Error> {
    let d = open_assignment(&st, &phone, id).await?;
    if !d.share_live {
        return Err(Error::not_found("shared live view for this request"));
    }
    let viewer = crate::whep::Viewer::Guard {
        id: phone.guard.id,
        request: id,
    };
    let watcher = super::Watcher {
        viewer,
        path: format!("/guard/v1/assignments/{id}/whep"),
        grant: grant(&phone),
        audit: phone.audit(st.clock.now()),
    };
    let still_shared = open_assignment(&st, &phone, id);
    super::watch_shared(&st, &d, &offer, watcher, still_shared).await
}

/// `DELETE /guard/v1/assignments/{id}/whep/{session}`: the guard stops watching.
pub async fn unwatch(
    State(st): State<AppState>,
    phone: GuardPhone,
    Path((id, session)): Path<(String, String)>,
) -> Result<StatusCode, Error> {
    let id = id.parse::<i64>().map_err(|_| Error::not_found("session"))?;
    let viewer = crate::whep::Viewer::Guard {
        id: phone.guard.id,
        request: id,
    };
    st.whep.stop(viewer, None, &session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What authorises what a phone opens: its session.
fn grant(phone: &GuardPhone) -> Grant {
    Grant::Guard {
        token_hash: phone.token_hash.clone(),
    }
}

/// `GET /guard/v1/live`: server-sent `assignment` events, `{"id", "state"}` only, on every
/// change of a request the guard is given; the page reads the assignment again. Ends when
/// the phone's sign-in is revoked or its shift is over.
pub async fn live(State(st): State<AppState>, phone: GuardPhone) -> Result<Response, Error> {
    let guard = phone.guard.id;
    live_stream(
        &st,
        StreamHolder::Guard(guard),
        grant(&phone),
        "assignment",
        move |d| (d.guard_id == Some(guard)).then(|| json!({ "id": d.id, "state": d.state })),
    )
}

/// Who reports a position: a device with the guard's token, or a signed-in phone.
pub struct PositionReporter(Guard);

impl FromRequestParts<AppState> for PositionReporter {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Error> {
        if let Some(token) = bearer_token(parts) {
            return match st.store.guard_by_token(&hash_token(token)).await? {
                Some(guard) => Ok(PositionReporter(guard)),
                None => Err(Error::new(
                    ErrorKind::Unauthenticated,
                    "unknown or revoked guard token",
                )),
            };
        }
        let phone = GuardPhone::from_request_parts(parts, st).await?;
        Ok(PositionReporter(phone.guard))
    }
}

/// `POST /guard/v1/position` `{"lat": .., "lon": ..}`: a guard's GPS fix, from a device with
/// the guard's token or from the signed-in phone page; one a second at most (429
/// `too_many_positions`).
pub async fn report_position(
    State(st): State<AppState>,
    PositionReporter(guard): PositionReporter,
    ApiJson(p): ApiJson<super::ops::Position>,
) -> Result<StatusCode, Error> {
    let now = st.clock.now();
    let at = p.point()?;
    if !st.dispatcher.position_due(guard.id, now) {
        return Err(Error::new(
            ErrorKind::ResourceExhausted,
            "one position a second at most; send the newest one",
        )
        .with_code("too_many_positions")
        .retry_after(crate::dispatch::POSITION_EVERY));
    }
    st.store.set_guard_position(guard.id, at, now).await?;
    let moved = Guard {
        position: Some(at),
        seen_at: Some(now.0),
        ..guard
    };
    // The customer whose home the guard drives to sees the new estimate.
    super::guard_moved(&st, &moved).await?;
    Ok(StatusCode::NO_CONTENT)
}
