//! Pan-tilt, the service: a command passes the camera's [`Gate`] (rate limit), goes to the
//! camera's agent over the link, and is answered once the agent reports the camera's new
//! position, or refused when the agent does not answer within `[ptz] answer_timeout`. The last
//! known state of each camera is a `watch` channel every viewer follows. Its HTTP side is
//! `http::pan_tilt`.

use crate::config::PtzConfig;
use crate::error::{Error, ErrorKind};
use crate::link::{Links, PtzReports};
use eyeward::CameraId;
use eyeward::clock::Clock;
use eyeward::link::{PtzReport, RelayMessage};
use eyeward::ptz::{Admission, Gate, GateLimits, PtzCommand, PtzFailure, PtzState};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{broadcast, oneshot, watch};

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
    clock: Clock,
    /// Every state this node's agents report, for the other nodes (see `crate::cluster`).
    reported: broadcast::Sender<(CameraId, PtzState)>,
}

/// A command carried out.
pub struct Done {
    pub state: PtzState,
    /// Whether it goes into the owner's history (see [`Gate::admit`]).
    pub record: bool,
}

impl PanTilt {
    pub fn new(config: PtzConfig, clock: Clock) -> PanTilt {
        PanTilt {
            clock,
            config,
            cameras: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            reported: broadcast::channel(64).0,
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
                self.clock.now(),
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
        let record =
            self.with_camera(camera, |c| match c.gate.admit(&command, self.clock.now()) {
                Admission::Wait(wait) => Err(Error::new(
                    ErrorKind::ResourceExhausted,
                    "too many pan-tilt commands for this camera; wait a moment",
                )
                .retry_after(wait)),
                Admission::Send { record } => {
                    c.pending.insert(id, answer_tx);
                    Ok(record)
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
    fn answered(&self, camera: CameraId, id: u64, answer: Answer) {
        if let Ok(state) = &answer {
            self.reported(camera, state.clone());
        }
        self.with_camera(camera, |c| {
            if let Some(waiting) = c.pending.remove(&id) {
                let _ = waiting.send(answer);
            }
        });
    }

    /// A state the camera's agent reported here: this node's viewers see it, and so do the
    /// other nodes' (through [`PanTilt::reports`]).
    fn reported(&self, camera: CameraId, state: PtzState) {
        if self.reported.receiver_count() > 0 {
            let _ = self.reported.send((camera, state.clone()));
        }
        self.set_state(camera, state);
    }

    /// The camera's state as its agent reported it on another node.
    pub fn set_state(&self, camera: CameraId, state: PtzState) {
        self.with_camera(camera, |c| c.state.send_replace(Some(state)));
    }

    /// Every state this node's agents report from now on.
    pub fn reports(&self) -> broadcast::Receiver<(CameraId, PtzState)> {
        self.reported.subscribe()
    }

    /// The camera's last known state, and its changes from now on.
    pub fn watch(&self, camera: CameraId) -> watch::Receiver<Option<PtzState>> {
        self.with_camera(camera, |c| c.state.subscribe())
    }
}

impl PtzReports for PanTilt {
    fn report(&self, camera: CameraId, report: PtzReport) {
        match report {
            PtzReport::Done { id, state } => self.answered(camera, id, Ok(state)),
            PtzReport::Failed {
                id,
                failure,
                reason,
            } => self.answered(camera, id, Err((failure, reason))),
            // A change nobody asked about (a move continuing, a patrol).
            PtzReport::Changed { state } => self.reported(camera, state),
        }
    }

    /// Commands in flight fail at once.
    fn offline(&self, camera: CameraId) {
        self.with_camera(camera, |c| c.pending.clear());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eyeward::UnixMillis;
    use std::sync::Arc;

    const CAMERA: CameraId = CameraId(7);

    fn pan_tilt(burst: u32, per_second: f64) -> (Arc<PanTilt>, Arc<Links>) {
        let config = PtzConfig {
            burst,
            per_second,
            ..PtzConfig::default()
        };
        let ptz = Arc::new(PanTilt::new(
            config,
            Clock::simulated(UnixMillis(1_800_000_000_000)),
        ));
        (ptz, Arc::new(Links::default()))
    }

    fn step() -> PtzCommand {
        PtzCommand::Step {
            pan: 0.1,
            tilt: 0.0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_command_the_agent_never_answers_fails_after_the_answer_timeout_without_waiting() {
        let (ptz, links) = pan_tilt(20, 10.0);
        let mut agent = links.register(CAMERA, "/live".into());
        let started = ptz.clock.now();
        let err = ptz.command(&links, CAMERA, step()).await.err().unwrap();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        // Five simulated seconds passed, and no real ones (the test runs in a moment).
        assert_eq!(
            ptz.clock.now().since(started),
            PtzConfig::default().answer_timeout
        );
        assert!(matches!(
            agent.to_agent.try_recv(),
            Ok(RelayMessage::Ptz { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_limit_opens_again_as_simulated_time_passes() {
        let (ptz, links) = pan_tilt(1, 1.0);
        let mut agent = links.register(CAMERA, "/live".into());
        // The agent answers every command at once.
        let answering = ptz.clone();
        tokio::spawn(async move {
            while let Some(message) = agent.to_agent.recv().await {
                if let RelayMessage::Ptz { id, .. } = message {
                    let state = PtzState {
                        pan: 0.1,
                        tilt: 0.0,
                        moving: false,
                        presets: Vec::new(),
                    };
                    answering.report(CAMERA, PtzReport::Done { id, state });
                }
            }
        });
        assert!(ptz.command(&links, CAMERA, step()).await.is_ok());
        let refused = ptz.command(&links, CAMERA, step()).await.err().unwrap();
        assert_eq!(refused.kind(), ErrorKind::ResourceExhausted, "{refused}");
        assert!(refused.retry_delay().is_some());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(ptz.command(&links, CAMERA, step()).await.is_ok());
    }
}
