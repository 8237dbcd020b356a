//! Pan-tilt, the service: a command passes the camera's [`Gate`] (rate limit), goes to the
//! camera's agent over the link, and is answered once the agent reports the camera's new
//! position, or refused when the agent does not answer within `[ptz] answer_timeout`. The last
//! known state of each camera is a `watch` channel every viewer follows. Its HTTP side is
//! `http::pan_tilt`.

use crate::config::PtzConfig;
use crate::error::{Error, ErrorKind};
use crate::link::Links;
use eyeward::link::RelayMessage;
use eyeward::ptz::{Admission, Gate, GateLimits, PtzCommand, PtzFailure, PtzState};
use eyeward::{CameraId, UnixMillis};
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
