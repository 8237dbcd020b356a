//! Live video over HTTP (WHEP, the WebRTC-HTTP Egress Protocol): a viewer POSTs an SDP offer
//! to `/api/cameras/{id}/whep`, gets `201 Created` with the answer, a `Location` and the ICE
//! servers in `Link` headers, and DELETEs that location to stop; it POSTs `{"listen": true}`
//! to the location's `/sound` to hear the camera (every view starts silent), and
//! `{"talk": true}` to its `/talk` to speak through the camera's speaker while the owner holds
//! "speak" (`false` when they let go). The sessions themselves are [`crate::whep`]'s.

use super::AppState;
use super::extract::{ApiJson, HouseholdCaller, IdPath, SdpBody};
use crate::error::Error;
use crate::store::Camera;
use crate::whep::Viewer;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use eyeward::CameraId;
use eyeward::household::Right;

/// `POST /api/cameras/{id}/whep`: an SDP offer in, `201 Created` with the answer out. The
/// household's holder, or a member given `watch` on the camera (the view ends when it is
/// taken away).
pub async fn offer(
    State(st): State<AppState>,
    c: HouseholdCaller,
    IdPath(id): IdPath,
    SdpBody(offer): SdpBody,
) -> Result<Response, Error> {
    let camera = c.camera(&st, CameraId(id), Right::Watch).await?;
    answer(
        &st,
        c.viewer(),
        &camera,
        &offer,
        &format!("/api/cameras/{id}/whep"),
        c.grant_on(CameraId(id), Right::Watch),
    )
    .await
    .map(|(_, resp)| resp)
}

/// Starts a session for `viewer` and answers with the SDP, its `Location` (under `base`)
/// and the ICE servers in `Link` headers; returns the session's id too. The session ends when
/// `grant` is taken away (a logout, the camera removed...) or after `webrtc.max_session`.
pub async fn answer(
    st: &AppState,
    viewer: Viewer,
    camera: &Camera,
    offer: &str,
    base: &str,
    grant: crate::revocation::Grant,
) -> Result<(String, Response), Error> {
    // An agent camera without its link cannot send video: the viewer is told so at once
    // rather than given a session that stays black.
    if matches!(camera.source, eyeward::CameraSource::Agent)
        && !st
            .cluster
            .online(&st.links, &[camera.id])
            .await?
            .contains(&camera.id)
    {
        return Err(crate::link::camera_offline());
    }
    let ended = st.revocations.ended(grant, st.max_live_session);
    let (session, answer) = st
        .whep
        .start(viewer, camera, offer, st.clock.now(), ended)
        .await?;
    let location = format!("{base}/{session}");
    let mut resp = (
        StatusCode::CREATED,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/sdp"),
            ),
            (
                header::LOCATION,
                HeaderValue::from_str(&location).map_err(|_| Error::internal("location"))?,
            ),
            (
                header::ETAG,
                HeaderValue::from_str(&format!("\"{session}\""))
                    .map_err(|_| Error::internal("etag"))?,
            ),
        ],
        answer,
    )
        .into_response();
    for link in st.whep.link_headers(viewer, st.clock.now()) {
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().append(header::LINK, v);
        }
    }
    Ok((session, resp))
}

/// `DELETE /api/cameras/{id}/whep/{session}`: the viewer leaves.
pub async fn delete(
    State(st): State<AppState>,
    c: HouseholdCaller,
    Path((id, session)): Path<(String, String)>,
) -> Result<StatusCode, Error> {
    let id = id.parse::<i64>().map_err(|_| Error::not_found("session"))?;
    st.whep
        .stop(c.viewer(), Some(CameraId(id)), &session)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The household's camera `id` of a session's path, for a use that needs `right`; 404 (for
/// the session) when it is not the caller's to see, 403 for a right a member lacks.
async fn session_camera(
    st: &AppState,
    c: &HouseholdCaller,
    id: &str,
    right: Right,
) -> Result<Camera, Error> {
    let id = id.parse::<i64>().map_err(|_| Error::not_found("session"))?;
    c.camera(st, CameraId(id), right).await.map_err(|e| {
        if e.kind() == crate::error::ErrorKind::NotFound {
            Error::not_found("session")
        } else {
            e
        }
    })
}

/// What a viewer asks of the camera's sound.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sound {
    listen: bool,
}

/// `POST /api/cameras/{id}/whep/{session}/sound`: the viewer starts or stops hearing the
/// camera; the answer says whether it listens, and in which format.
pub async fn sound(
    State(st): State<AppState>,
    c: HouseholdCaller,
    Path((id, session)): Path<(String, String)>,
    ApiJson(req): ApiJson<Sound>,
) -> Result<Response, Error> {
    let camera = session_camera(&st, &c, &id, Right::Watch).await?;
    listened(&st, c.viewer(), &camera, &session, req.listen).await
}

/// Starts or stops the sound of `viewer`'s session on `camera`, and says how it is now.
pub async fn listened(
    st: &AppState,
    viewer: Viewer,
    camera: &Camera,
    session: &str,
    listen: bool,
) -> Result<Response, Error> {
    let codec = st.whep.listen(viewer, camera, session, listen).await?;
    Ok(Json(serde_json::json!({
        "listening": codec.is_some(),
        "codec": codec.map(|c| c.rtpmap().0),
    }))
    .into_response())
}

/// What the camera's owner asks of its speaker.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Talk {
    talk: bool,
}

/// `POST /api/cameras/{id}/whep/{session}/talk`: the owner (or a member given `speak`) starts
/// or stops speaking through the camera; the answer says whether they speak, and in which
/// codec the camera hears them. Each talk is in the household's history, with who spoke,
/// when it began and how long it lasted.
pub async fn talk(
    State(st): State<AppState>,
    c: HouseholdCaller,
    Path((id, session)): Path<(String, String)>,
    ApiJson(req): ApiJson<Talk>,
) -> Result<Response, Error> {
    // Letting go is always allowed: a right taken away mid-talk must not hold the speaker.
    let right = if req.talk { Right::Speak } else { Right::Watch };
    let camera = session_camera(&st, &c, &id, right).await?;
    let started = st
        .whep
        .talk(c.viewer(), &camera, &session, req.talk)
        .await?;
    let Some((codec, ended)) = started else {
        return Ok(Json(serde_json::json!({ "talking": req.talk })).into_response());
    };
    let detail = serde_json::json!({ "camera": camera.name, "camera_id": camera.id.0 });
    let audit = c.caller.audit(st.clock.now());
    st.store
        .record(
            &audit,
            Some(c.household),
            "camera.talk_started",
            detail.clone(),
        )
        .await?;
    let (store, clock) = (st.store.clone(), st.clock);
    tokio::spawn(async move {
        let Ok(lasted) = ended.await else {
            return;
        };
        let mut detail = detail;
        detail["seconds"] = serde_json::json!((lasted.as_secs_f64() * 10.0).round() / 10.0);
        let audit = crate::store::Audit {
            at: clock.now(),
            ..audit
        };
        if let Err(e) = store
            .record(
                &audit,
                Some(camera.customer_id),
                "camera.talk_ended",
                detail,
            )
            .await
        {
            tracing::warn!(error = %e.chain(), "could not record the end of a talk");
        }
    });
    Ok(Json(serde_json::json!({ "talking": true, "codec": codec })).into_response())
}
