//! Pan-tilt over HTTP: `POST /api/cameras/{id}/ptz` (a command), `GET /api/cameras/{id}/ptz`
//! (where the camera looks) and `GET /api/cameras/{id}/ptz/live` (server-sent events of every
//! change, so that all viewers of a camera see it move). The service is [`crate::ptz`].

use super::AppState;
use super::extract::{ApiJson, HouseholdCaller, IdPath};
use super::streams::{self, Live};
use crate::error::{Error, ErrorKind};
use crate::ptz::Done;
use crate::store::Camera;
use axum::Json;
use axum::extract::State;
use axum::response::Response;
use eyeward::api::PtzStatus;
use eyeward::household::Right;
use eyeward::ptz::{PtzCommand, PtzState};
use eyeward::{CameraId, CameraModel, CameraSource};
use serde_json::json;

/// The household's camera `id`, for a use that needs `right`, if it can pan and tilt: another
/// customer's is 404 (as is one a member has no right on), a right a member lacks 403, a fixed
/// camera (or one the relay pulls directly, with no agent to drive it) 409.
async fn pan_tilt_camera(
    st: &AppState,
    c: &HouseholdCaller,
    id: i64,
    right: Right,
) -> Result<Camera, Error> {
    let camera = c.camera(st, CameraId(id), right).await?;
    if camera.model != CameraModel::PanTilt {
        return Err(Error::new(
            ErrorKind::FailedPrecondition,
            "this is a fixed camera: it cannot pan or tilt",
        )
        .with_code("fixed_camera"));
    }
    if !matches!(camera.source, CameraSource::Agent) {
        return Err(Error::new(
            ErrorKind::FailedPrecondition,
            "pan-tilt needs the camera's agent, and this camera is pulled directly",
        ));
    }
    Ok(camera)
}

async fn status(
    st: &AppState,
    camera: CameraId,
    state: Option<PtzState>,
) -> Result<PtzStatus, Error> {
    Ok(PtzStatus {
        online: st
            .cluster
            .online(&st.links, &[camera])
            .await?
            .contains(&camera),
        deadman_ms: st.ptz.deadman().as_millis() as u64,
        state,
    })
}

/// Carries `command` out through the camera's agent, on this node if the agent is linked
/// here, else through the node it is linked to.
async fn carry_out(st: &AppState, camera: CameraId, command: PtzCommand) -> Result<Done, Error> {
    if !st.links.is_online(camera) && st.cluster.is_clustered() {
        let (state, record) = st.cluster.ptz_elsewhere(camera, &command).await?;
        return Ok(Done { state, record });
    }
    // A node paused past its lease may have lost the camera without hearing yet: it sends
    // nothing until it has renewed and checked.
    if !st.cluster.may_act(camera) {
        return Err(Error::new(
            ErrorKind::Unavailable,
            "this relay node is checking that it still holds the camera; try again",
        )
        .retry_after(std::time::Duration::from_secs(1)));
    }
    st.ptz.command(&st.links, camera, command).await
}

/// `POST /api/cameras/{id}/ptz`: one command (see [`PtzCommand`]); answers where the camera
/// looks after it.
pub async fn command(
    State(st): State<AppState>,
    c: HouseholdCaller,
    IdPath(id): IdPath,
    ApiJson(command): ApiJson<PtzCommand>,
) -> Result<Json<PtzStatus>, Error> {
    command.check()?;
    let camera = pan_tilt_camera(&st, &c, id, Right::Move).await?;
    let action = command.action();
    let preset = match &command {
        PtzCommand::Preset { name }
        | PtzCommand::SavePreset { name }
        | PtzCommand::RemovePreset { name } => Some(name.clone()),
        _ => None,
    };
    let history = match &command {
        PtzCommand::SavePreset { .. } => "ptz.preset_saved",
        PtzCommand::RemovePreset { .. } => "ptz.preset_removed",
        _ => "ptz.moved",
    };
    let done = carry_out(&st, camera.id, command).await?;
    st.metrics.ptz_commands.inc();
    if done.record {
        let mut detail =
            json!({ "camera": camera.name, "camera_id": camera.id.0, "action": action });
        if let Some(p) = preset {
            detail["preset"] = json!(p);
        }
        st.store
            .record(
                &c.caller.audit(st.clock.now()),
                Some(c.household),
                history,
                detail,
            )
            .await?;
    }
    Ok(Json(status(&st, camera.id, Some(done.state)).await?))
}

/// `GET /api/cameras/{id}/ptz`: where the camera last looked, whether its agent is online,
/// and the dead-man timeout (a viewer repeats `move` well within it).
pub async fn state(
    State(st): State<AppState>,
    c: HouseholdCaller,
    IdPath(id): IdPath,
) -> Result<Json<PtzStatus>, Error> {
    let camera = pan_tilt_camera(&st, &c, id, Right::Watch).await?;
    let state = st.ptz.watch(camera.id).borrow().clone();
    Ok(Json(status(&st, camera.id, state).await?))
}

/// `GET /api/cameras/{id}/ptz/live`: server-sent `state` events, the current one first.
pub async fn live(
    State(st): State<AppState>,
    c: HouseholdCaller,
    IdPath(id): IdPath,
) -> Result<Response, Error> {
    let camera = pan_tilt_camera(&st, &c, id, Right::Watch).await?;
    let source = streams::from_watch(st.ptz.watch(camera.id), |state| Live::Message {
        name: "state",
        data: serde_json::to_string(state).unwrap_or_else(|_| "null".to_owned()),
    });
    streams::live_stream(
        &st,
        c.caller.holder(),
        c.grant_on(camera.id, Right::Watch),
        source,
    )
}
