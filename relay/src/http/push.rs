//! Web Push at the HTTP edge: a person's devices that take alerts as notifications (the
//! holder's, and a member's given `alerts` on some camera), each listed, added from the
//! browser's subscription and removed; and the picture link a push carries
//! (`/push/picture/{token}`, no session: the token, made for that one push, is the authority).

use super::AppState;
use super::extract::{ApiJson, HouseholdCaller, IdPath};
use super::motion_events::snapshot_response;
use crate::auth::hash_token;
use crate::error::Error;
use crate::push::DeviceKeys;
use crate::store::{NewDevice, PushDevice};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use eyeward::household::Right;
use serde::{Deserialize, Serialize};

/// The caller's devices, and the key their browser subscribes with.
#[derive(Serialize)]
pub struct PushView {
    /// The relay's VAPID public key (`applicationServerKey`), unpadded base64url.
    public_key: String,
    devices: Vec<PushDevice>,
}

/// `GET /api/push`.
pub async fn get(State(st): State<AppState>, c: HouseholdCaller) -> Result<Json<PushView>, Error> {
    Ok(Json(PushView {
        public_key: st.mailer.push.public_key(&st.store).await?,
        devices: st.store.push_devices(c.caller.account.id).await?,
    }))
}

/// A browser's `PushSubscription` as its `toJSON()` gives it.
#[derive(Deserialize)]
pub struct Subscription {
    endpoint: String,
    keys: Keys,
    /// Given by some browsers; the relay does not use it.
    #[serde(default, rename = "expirationTime")]
    _expiration_time: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    p256dh: String,
    auth: String,
}

/// `POST /api/push/devices {"endpoint", "keys": {"p256dh", "auth"}}`: this browser takes
/// alerts as notifications; 201 with the device. 400 for an endpoint the relay does not push
/// to or keys that are not a device's; 403 for a member given `alerts` on no camera.
pub async fn add(
    State(st): State<AppState>,
    c: HouseholdCaller,
    ApiJson(sub): ApiJson<Subscription>,
) -> Result<Response, Error> {
    let now = st.clock.now();
    c.given_on_some_camera(Right::Alerts, now)?;
    st.mailer.push.check_endpoint(&sub.endpoint)?;
    DeviceKeys::parse(&sub.keys.p256dh, &sub.keys.auth)?;
    let a = &c.caller.account;
    let device = st
        .store
        .add_push_device(
            a.id,
            a.role,
            &NewDevice {
                endpoint: &sub.endpoint,
                p256dh: &sub.keys.p256dh,
                auth: &sub.keys.auth,
            },
            &c.caller.audit(now),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(device)).into_response())
}

/// `DELETE /api/push/devices/{id}`: one of the caller's devices takes notifications no
/// more; 404 for anyone else's.
pub async fn remove(
    State(st): State<AppState>,
    c: HouseholdCaller,
    IdPath(id): IdPath,
) -> Result<StatusCode, Error> {
    let a = &c.caller.account;
    let audit = c.caller.audit(st.clock.now());
    if st
        .store
        .remove_push_device(a.id, a.role, id, &audit)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::not_found("device"))
    }
}

/// `GET /push/picture/{token}`: the snapshot a push links to, while its link lasts (24 h) and
/// its device is still there; 404 otherwise, whatever the reason.
pub async fn picture(
    State(st): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, Error> {
    let gone = || Error::not_found("picture");
    if token.len() > 100 {
        return Err(gone());
    }
    let Some((household, event)) = st
        .store
        .push_picture(&hash_token(&token), st.clock.now())
        .await?
    else {
        return Err(gone());
    };
    let event = st
        .store
        .event_of(household, event)
        .await?
        .ok_or_else(gone)?;
    snapshot_response(&st, &event).await
}
