//! Pan-tilt: `POST /api/cameras/{id}/ptz` (a command), `GET /api/cameras/{id}/ptz` (where
//! the camera looks) and `GET /api/cameras/{id}/ptz/live` (server-sent events of every
//! change, so that all viewers of a camera see it move).
//!
//! A command passes the camera's [`Gate`] (rate limit), goes to the camera's agent over the
//! link, and is answered once the agent reports the camera's new position, or refused when
//! the agent does not answer within `[ptz] answer_timeout`.

use crate::config::PtzConfig;
use crate::error::{Error, ErrorKind};
use crate::http::AppState;
use crate::http::extract::{ApiJson, CustomerCaller, IdPath};
use crate::http::streams::{self, Live};
use crate::link::Links;
use crate::store::Camera;
use axum::Json;
use axum::extract::State;
use axum::response::Response;
use eyeward::link::RelayMessage;
use eyeward::ptz::{Admission, Gate, GateLimits, PtzCommand, PtzFailure, PtzState};
use eyeward::{CameraId, CameraModel, CameraSource, CustomerId, UnixMillis};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

type Answer = Result<PtzState, (PtzFailure, String)>;

struct CameraPtz {
    gate: Gate,
    state: watch::Sender<Option<PtzState>>,
    /// Commands sent to the agent, waiting for its answer.
    pending: HashMap<u64, oneshot::Sender<Answer>>,
}

/// Every pan-tilt camera's gate, last known state and commands in flight.
pub struct PanTilt {
    config: PtzConfig,
    cameras: Mutex<HashMap<CameraId, CameraPtz>>,
    next_id: AtomicU64,
}

/// A command carried out.
pub struct Done {
    pub state: PtzState,
    /// Whether it goes into the owner's history (see [`Gate::admit`]).
    pub record: bool,
}

impl PanTilt {
    pub fn new(config: PtzConfig) -> PanTilt {
        PanTilt {
            config,
            cameras: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// How long a `move` lasts without a repeat.
    pub fn deadman(&self) -> Duration {
        self.config.deadman
    }

    fn with_camera<R>(&self, camera: CameraId, f: impl FnOnce(&mut CameraPtz) -> R) -> R {
        let mut cameras = self.cameras.lock().unwrap_or_else(|p| p.into_inner());
        let entry = cameras.entry(camera).or_insert_with(|| CameraPtz {
            gate: Gate::new(
                GateLimits {
                    burst: self.config.burst,
                    per_second: self.config.per_second,
                    deadman: self.config.deadman,
                },
                UnixMillis::now(),
            ),
            state: watch::channel(None).0,
            pending: HashMap::new(),
        });
        f(entry)
    }

    /// Sends `command` to the camera's agent and waits for its answer.
    pub async fn command(
        &self,
        links: &Links,
        camera: CameraId,
        command: PtzCommand,
    ) -> Result<Done, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (answer_tx, answer_rx) = oneshot::channel();
        let record = self.with_camera(camera, |c| {
            match c.gate.admit(&command, UnixMillis::now()) {
                Admission::Wait(wait) => Err(Error::new(
                    ErrorKind::ResourceExhausted,
                    "too many pan-tilt commands for this camera; wait a moment",
                )
                .retry_after(wait)),
                Admission::Send { record } => {
                    c.pending.insert(id, answer_tx);
                    Ok(record)
                }
            }
        })?;
        let message = RelayMessage::Ptz {
            id,
            command,
            deadman_ms: self.config.deadman.as_millis() as u64,
        };
        if let Err(e) = links.send(camera, message) {
            self.with_camera(camera, |c| c.pending.remove(&id));
            return Err(e);
        }
        let answer = tokio::time::timeout(self.config.answer_timeout, answer_rx).await;
        self.with_camera(camera, |c| c.pending.remove(&id));
        match answer {
            Ok(Ok(Ok(state))) => Ok(Done { state, record }),
            Ok(Ok(Err((failure, reason)))) => Err(match failure {
                PtzFailure::Refused => Error::new(ErrorKind::Rejected, reason),
                PtzFailure::Full => Error::new(ErrorKind::FailedPrecondition, reason),
                PtzFailure::Unavailable => Error::new(ErrorKind::Unavailable, reason),
            }),
            Ok(Err(_)) => Err(Error::new(
                ErrorKind::Unavailable,
                "the camera's agent went offline",
            )),
            Err(_) => Err(Error::new(
                ErrorKind::Unavailable,
                "the camera did not answer in time",
            )),
        }
    }

    /// The agent's answer to command `id`.
    pub fn answered(&self, camera: CameraId, id: u64, answer: Answer) {
        self.with_camera(camera, |c| {
            if let Ok(state) = &answer {
                c.state.send_replace(Some(state.clone()));
            }
            if let Some(waiting) = c.pending.remove(&id) {
                let _ = waiting.send(answer);
            }
        });
    }

    /// The agent reports a change nobody asked about (a move continuing, a patrol).
    pub fn changed(&self, camera: CameraId, state: PtzState) {
        self.with_camera(camera, |c| c.state.send_replace(Some(state)));
    }

    /// The camera's agent is gone: commands in flight fail at once.
    pub fn offline(&self, camera: CameraId) {
        self.with_camera(camera, |c| c.pending.clear());
    }

    /// The camera's last known state, and its changes from now on.
    pub fn watch(&self, camera: CameraId) -> watch::Receiver<Option<PtzState>> {
        self.with_camera(camera, |c| c.state.subscribe())
    }
}

/// The caller's camera `id` if it can pan and tilt: another customer's is 404, a fixed camera
/// (or one the relay pulls directly, with no agent to drive it) 409.
async fn pan_tilt_camera(st: &AppState, customer: CustomerId, id: i64) -> Result<Camera, Error> {
    let camera = st
        .store
        .camera_of(customer, CameraId(id))
        .await?
        .ok_or_else(|| Error::not_found("camera"))?;
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

fn state_json(st: &AppState, camera: CameraId, state: Option<&PtzState>) -> Value {
    json!({
        "online": st.links.is_online(camera),
        "deadman_ms": st.ptz.deadman().as_millis() as u64,
        "state": state,
    })
}

/// `POST /api/cameras/{id}/ptz`: one command (see [`PtzCommand`]); answers where the camera
/// looks after it.
pub async fn command(
    State(st): State<AppState>,
    c: CustomerCaller,
    IdPath(id): IdPath,
    ApiJson(command): ApiJson<PtzCommand>,
) -> Result<Json<Value>, Error> {
    command.check()?;
    let camera = pan_tilt_camera(&st, c.id, id).await?;
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
    let done = st.ptz.command(&st.links, camera.id, command).await?;
    st.metrics.ptz_commands.inc();
    if done.record {
        let mut detail =
            json!({ "camera": camera.name, "camera_id": camera.id.0, "action": action });
        if let Some(p) = preset {
            detail["preset"] = json!(p);
        }
        st.store
            .record(&c.caller.audit(), Some(c.id), history, detail)
            .await?;
    }
    Ok(Json(state_json(&st, camera.id, Some(&done.state))))
}

/// `GET /api/cameras/{id}/ptz`: where the camera last looked, whether its agent is online,
/// and the dead-man timeout (a viewer repeats `move` well within it).
pub async fn state(
    State(st): State<AppState>,
    c: CustomerCaller,
    IdPath(id): IdPath,
) -> Result<Json<Value>, Error> {
    let camera = pan_tilt_camera(&st, c.id, id).await?;
    let state = st.ptz.watch(camera.id).borrow().clone();
    Ok(Json(state_json(&st, camera.id, state.as_ref())))
}

/// `GET /api/cameras/{id}/ptz/live`: server-sent `state` events, the current one first.
pub async fn live(
    State(st): State<AppState>,
    c: CustomerCaller,
    IdPath(id): IdPath,
) -> Result<Response, Error> {
    let camera = pan_tilt_camera(&st, c.id, id).await?;
    let source = streams::from_watch(st.ptz.watch(camera.id), |state| Live::Message {
        name: "state",
        data: serde_json::to_value(state).unwrap_or_default().to_string(),
    });
    streams::live_stream(&st, &c.caller, c.grant_on(camera.id), source)
}
