//! The agent's pan-tilt: carries out the relay's commands on the camera through ONVIF
//! ([`crate::onvif::client`]), stops a continuous move when the viewer's commands stop (the
//! dead-man timeout, kept here as well as by the camera, since not every camera honours
//! ONVIF's `Timeout`), watches the camera's status (its own patrols too), and tells the motion
//! detector when the view moves and which preset it shows.

use crate::error::Error;
use crate::onvif::client::{Position, Preset, Ptz, Status};
use eyeward::clock::Clock;
use eyeward::link::AgentMessage;
use eyeward::ptz::{HOME, MAX_PRESETS, PtzCommand, PtzFailure, PtzState};
use serde::Deserialize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use std::time::Instant;
use tokio::sync::mpsc;

/// `[ptz]`: the pan-tilt driver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PtzConfig {
    /// How far the camera turns, in ONVIF's generic translation space, to move the view by
    /// one picture width and one picture height: click-to-centre uses it. The default fits
    /// the simulator; for a real camera, step it by 0.1 and watch how far the picture moves.
    pub picture_span: [f64; 2],
    /// How long the camera has to answer one ONVIF request.
    #[serde(with = "humantime_serde")]
    pub answer_timeout: Duration,
    /// How often the agent asks a still camera for its status (a moving one: 5 times a
    /// second), to notice moves it did not command, such as the camera's own patrol.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How long detection stays paused after the view stops moving: the decoded picture
    /// lags the camera by about this much.
    #[serde(with = "humantime_serde")]
    pub settle: Duration,
}

impl Default for PtzConfig {
    fn default() -> Self {
        PtzConfig {
            picture_span: [1.0, 2.0],
            answer_timeout: Duration::from_secs(3),
            poll_interval: Duration::from_secs(1),
            settle: Duration::from_millis(600),
        }
    }
}

impl PtzConfig {
    pub fn check(&self) -> Result<(), String> {
        if !self
            .picture_span
            .iter()
            .all(|s| s.is_finite() && *s > 0.0 && *s <= 2.0)
        {
            return Err("picture_span: each between 0 and 2".into());
        }
        if self.answer_timeout.is_zero() || self.poll_interval < Duration::from_millis(100) {
            return Err("answer_timeout must be above 0 and poll_interval at least 100ms".into());
        }
        Ok(())
    }
}

/// What the detector needs to know of the head, shared with its thread.
#[derive(Debug, Default)]
pub struct HeadWatch {
    paused: AtomicBool,
    preset: Mutex<Option<String>>,
    preset_changes: AtomicU64,
}

impl HeadWatch {
    /// Whether the view is moving (or has just stopped and the picture may still lag).
    pub fn view_moving(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// How many times the preset changed, and the one the camera shows now (none between
    /// presets): the detector uses that preset's masks.
    pub fn preset(&self) -> (u64, Option<String>) {
        let preset = self
            .preset
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        (self.preset_changes.load(Ordering::Acquire), preset)
    }

    fn set_preset(&self, preset: Option<String>) {
        let mut current = self.preset.lock().unwrap_or_else(|p| p.into_inner());
        if *current != preset {
            *current = preset;
            self.preset_changes.fetch_add(1, Ordering::Release);
        }
    }
}

/// Whether detection pauses: from the moment the agent commands a move or sees the camera
/// moving, until `settle` after it last saw it moving. Plain code: time is passed in.
#[derive(Debug)]
struct Stillness {
    settle: Duration,
    /// The camera is (or may be) moving: a command was sent, or the status said so.
    moving: bool,
    last_moving: Option<Duration>,
}

impl Stillness {
    fn new(settle: Duration) -> Stillness {
        Stillness {
            settle,
            moving: false,
            last_moving: None,
        }
    }

    /// Notes whether the camera moves at `now`.
    fn observe(&mut self, moving: bool, now: Duration) {
        if moving || self.moving {
            self.last_moving = Some(now);
        }
        self.moving = moving;
    }

    fn paused(&self, now: Duration) -> bool {
        self.moving
            || self
                .last_moving
                .is_some_and(|t| now.saturating_sub(t) < self.settle)
    }
}

/// A command from the relay: its id, the command and the move's dead-man timeout.
#[derive(Debug)]
pub struct PtzRequest {
    pub id: u64,
    pub command: PtzCommand,
    pub deadman: Duration,
}

/// How the link reaches the driver: commands in, answers and state changes out.
pub struct PtzLink {
    pub commands: mpsc::Sender<PtzRequest>,
    pub reports: mpsc::Receiver<AgentMessage>,
    resend: std::sync::Arc<AtomicBool>,
}

impl PtzLink {
    /// A new link session is up: the relay (perhaps restarted) hears the camera's state at
    /// the next status reading, changed or not.
    pub fn link_up(&self) {
        self.resend.store(true, Ordering::Relaxed);
    }
}

/// Where the camera's ONVIF service is.
#[derive(Clone)]
pub struct OnvifAddr {
    pub device_url: String,
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for OnvifAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.device_url)?;
        if self.credentials.is_some() {
            f.write_str(" (with credentials)")?;
        }
        Ok(())
    }
}

/// Starts the driver; it runs until the link's side of the channels is dropped.
pub fn spawn(
    addr: OnvifAddr,
    config: PtzConfig,
    head: std::sync::Arc<HeadWatch>,
    clock: Clock,
) -> PtzLink {
    let (commands_tx, commands_rx) = mpsc::channel(32);
    let (reports_tx, reports_rx) = mpsc::channel(64);
    let resend = std::sync::Arc::new(AtomicBool::new(false));
    let driver = Driver {
        resend: resend.clone(),
        stillness: Stillness::new(config.settle),
        addr,
        config,
        head,
        ptz: None,
        presets: Vec::new(),
        reports: reports_tx,
        reported: None,
        started: clock.instant(),
        retry_connect_at: None,
        clock,
    };
    tokio::spawn(driver.run(commands_rx));
    PtzLink {
        commands: commands_tx,
        reports: reports_rx,
        resend,
    }
}

/// How long after a command the status is polled often, to follow the move it started.
const FOLLOW_FOR: Duration = Duration::from_secs(3);
const FOLLOW_POLL: Duration = Duration::from_millis(200);

struct Driver {
    addr: OnvifAddr,
    config: PtzConfig,
    head: std::sync::Arc<HeadWatch>,
    ptz: Option<Ptz>,
    /// The camera's presets, as last read.
    presets: Vec<Preset>,
    reports: mpsc::Sender<AgentMessage>,
    /// The state last told to the relay.
    reported: Option<PtzState>,
    stillness: Stillness,
    started: Instant,
    clock: Clock,
    /// After a failed connection, the poller waits until then before trying again.
    retry_connect_at: Option<Instant>,
    /// Set by [`PtzLink::link_up`]: report the next state even if unchanged.
    resend: std::sync::Arc<AtomicBool>,
}

/// `on_camera!(self, |p| p.stop())`: runs requests on the connected camera (see
/// [`Driver::camera`], [`Driver::seen`]).
macro_rules! on_camera {
    ($driver:ident, |$p:ident| $requests:expr) => {{
        let result = match $driver.camera().await {
            Ok($p) => $requests.await,
            Err(e) => Err(e),
        };
        $driver.seen(result)
    }};
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::Receiver<PtzRequest>) {
        let mut deadman: Option<Instant> = None;
        let mut last_command = None::<Instant>;
        loop {
            let following = last_command.is_some_and(|t| self.clock.instant() - t < FOLLOW_FOR)
                || self.stillness.moving
                || self.head.view_moving();
            let poll = if following {
                FOLLOW_POLL
            } else {
                self.config.poll_interval
            };
            tokio::select! {
                request = commands.recv() => {
                    let Some(request) = request else { break };
                    let now = self.clock.instant();
                    last_command = Some(now);
                    deadman = match request.command {
                        PtzCommand::Move { .. } => Some(now + request.deadman),
                        _ => None,
                    };
                    let answer = self.carry_out(&request).await;
                    self.answer(request.id, answer).await;
                }
                () = self.clock.sleep_until(deadman) => {
                    deadman = None;
                    tracing::info!("pan-tilt: no command within the dead-man timeout; stopping");
                    if let Err(e) = on_camera!(self, |p| p.stop()) {
                        tracing::warn!(error = %e, "pan-tilt: cannot stop the camera");
                    }
                    self.poll().await;
                }
                () = tokio::time::sleep(poll) => self.poll().await,
            }
        }
        // The link is gone for good (the agent stops): leave the camera still.
        if self.stillness.moving {
            let _ = on_camera!(self, |p| p.stop());
        }
    }

    fn now(&self) -> Duration {
        self.clock.instant() - self.started
    }

    /// The camera's PTZ service, connecting first if needed.
    async fn camera(&mut self) -> Result<&Ptz, Error> {
        if self.ptz.is_none() {
            let ptz = Ptz::connect(
                &self.addr.device_url,
                self.addr.credentials.clone(),
                self.config.answer_timeout,
                self.clock,
            )
            .await?;
            self.presets = ptz.presets().await?;
            tracing::info!(camera = ?self.addr, "pan-tilt: connected to the camera's ONVIF service");
            self.ptz = Some(ptz);
        }
        Ok(self.ptz.as_ref().expect("connected above"))
    }

    /// Passes on a request's result; a camera that stopped answering is connected afresh
    /// next time.
    fn seen<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(Error::Camera(_)) = &result {
            self.ptz = None;
        }
        result
    }

    async fn carry_out(&mut self, request: &PtzRequest) -> Result<PtzState, (PtzFailure, String)> {
        let command = &request.command;
        if let Err(e) = command.check() {
            return Err((PtzFailure::Refused, e.to_string()));
        }
        if command.moves() {
            // Pause detection before the picture starts to slide, not when the status says so.
            let now = self.now();
            self.stillness.observe(true, now);
            self.publish_stillness();
        }
        let span = self.config.picture_span;
        let result = match command.clone() {
            PtzCommand::Move { pan, tilt } => {
                let deadman = request.deadman;
                on_camera!(self, |p| p.continuous(Position { pan, tilt }, deadman))
            }
            PtzCommand::Stop(_) => on_camera!(self, |p| p.stop()),
            PtzCommand::Step { pan, tilt } => {
                on_camera!(self, |p| p.relative(Position { pan, tilt }))
            }
            PtzCommand::GoTo { pan, tilt } => {
                on_camera!(self, |p| p.absolute(Position { pan, tilt }))
            }
            PtzCommand::Centre { x, y } => {
                // Up in the picture is up for the camera: y grows downwards, tilt upwards.
                let step = Position {
                    pan: ((x - 0.5) * span[0]).clamp(-1.0, 1.0),
                    tilt: ((0.5 - y) * span[1]).clamp(-1.0, 1.0),
                };
                on_camera!(self, |p| p.relative(step))
            }
            PtzCommand::Preset { name } if name == HOME => {
                on_camera!(self, |p| p.goto_home())
            }
            PtzCommand::Preset { name } => match self.preset_token(&name).await? {
                Some(token) => {
                    on_camera!(self, |p| p.goto_preset(&token))
                }
                None => return Err(no_preset(&name)),
            },
            PtzCommand::SavePreset { name } if name == HOME => {
                on_camera!(self, |p| p.set_home())
            }
            PtzCommand::SavePreset { name } => {
                let old = self.preset_token(&name).await?;
                if old.is_none() && self.presets.len() >= MAX_PRESETS {
                    return Err((
                        PtzFailure::Full,
                        format!("this camera keeps at most {MAX_PRESETS} presets besides home"),
                    ));
                }
                on_camera!(self, |p| async {
                    // Saving under a name that exists moves that preset here.
                    if let Some(token) = old {
                        p.remove_preset(&token).await?;
                    }
                    p.set_preset(&name).await.map(drop)
                })
            }
            PtzCommand::RemovePreset { name } => match self.preset_token(&name).await? {
                Some(token) => {
                    on_camera!(self, |p| p.remove_preset(&token))
                }
                None => return Err(no_preset(&name)),
            },
        };
        result.map_err(failure)?;
        match command {
            PtzCommand::Preset { name } => self.head.set_preset(Some(name.clone())),
            PtzCommand::SavePreset { .. } | PtzCommand::RemovePreset { .. } => {
                self.presets = on_camera!(self, |p| p.presets()).map_err(failure)?;
            }
            PtzCommand::Stop(_) => {}
            _ => self.head.set_preset(None),
        }
        let status = on_camera!(self, |p| p.status()).map_err(failure)?;
        Ok(self.observe(status))
    }

    /// The token of the preset called `name`, reading the camera's list again if the name
    /// is not in the one held (someone may have set it on the camera itself).
    async fn preset_token(&mut self, name: &str) -> Result<Option<String>, (PtzFailure, String)> {
        let find = |presets: &[Preset]| {
            presets
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.token.clone())
        };
        if let Some(t) = find(&self.presets) {
            return Ok(Some(t));
        }
        self.presets = on_camera!(self, |p| p.presets()).map_err(failure)?;
        Ok(find(&self.presets))
    }

    async fn answer(&mut self, id: u64, answer: Result<PtzState, (PtzFailure, String)>) {
        let message = match answer {
            Ok(state) => {
                self.reported = Some(state.clone());
                AgentMessage::PtzDone { id, state }
            }
            Err((failure, reason)) => {
                tracing::warn!(id, %reason, "pan-tilt command failed");
                AgentMessage::PtzFailed {
                    id,
                    failure,
                    reason,
                }
            }
        };
        // The relay waits for this answer; a link too backed up to take it is failing anyway.
        let _ = self.reports.try_send(message);
    }

    /// Reads the status; tells the detector and, if it changed, the relay.
    async fn poll(&mut self) {
        if self.ptz.is_none()
            && self
                .retry_connect_at
                .is_some_and(|t| self.clock.instant() < t)
        {
            return;
        }
        match on_camera!(self, |p| p.status()) {
            Ok(status) => {
                self.retry_connect_at = None;
                let state = self.observe(status);
                let resend = self.resend.swap(false, Ordering::Relaxed);
                if resend || self.reported.as_ref().is_none_or(|r| differs(r, &state)) {
                    self.reported = Some(state.clone());
                    let _ = self.reports.try_send(AgentMessage::PtzState { state });
                }
            }
            Err(e) => {
                if self.retry_connect_at.is_none() {
                    tracing::warn!(error = %e, "pan-tilt: cannot read the camera's status");
                }
                self.retry_connect_at = Some(self.clock.instant() + Duration::from_secs(10));
            }
        }
    }

    /// Takes a status: the detector learns whether the view moves (a move the camera makes
    /// by itself leaves any preset), and the state to report.
    fn observe(&mut self, status: Status) -> PtzState {
        let now = self.now();
        if status.moving && !self.stillness.moving && !self.head.view_moving() {
            self.head.set_preset(None);
        }
        self.stillness.observe(status.moving, now);
        self.publish_stillness();
        let mut presets: Vec<String> = self.presets.iter().map(|p| p.name.clone()).collect();
        presets.sort();
        PtzState {
            pan: round(status.position.pan),
            tilt: round(status.position.tilt),
            moving: status.moving,
            presets,
        }
    }

    fn publish_stillness(&self) {
        let paused = self.stillness.paused(self.now());
        self.head.paused.store(paused, Ordering::Relaxed);
    }
}

fn no_preset(name: &str) -> (PtzFailure, String) {
    (
        PtzFailure::Refused,
        format!("this camera has no preset named {name:?}"),
    )
}

fn failure(e: Error) -> (PtzFailure, String) {
    match e {
        Error::CameraRefused(_) => (PtzFailure::Refused, e.to_string()),
        other => (PtzFailure::Unavailable, other.to_string()),
    }
}

fn round(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

fn differs(a: &PtzState, b: &PtzState) -> bool {
    a.moving != b.moving
        || a.presets != b.presets
        || (a.pan - b.pan).abs() > 0.002
        || (a.tilt - b.tilt).abs() > 0.002
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_pauses_from_the_command_until_the_view_has_settled() {
        let ms = Duration::from_millis;
        let mut s = Stillness::new(ms(600));
        assert!(!s.paused(ms(0)));
        s.observe(true, ms(100));
        assert!(s.paused(ms(100)));
        s.observe(true, ms(900));
        s.observe(false, ms(1000));
        assert!(s.paused(ms(1500)), "the picture still lags");
        assert!(!s.paused(ms(1600)));
        // A patrol seen only in the status pauses it the same way.
        s.observe(true, ms(5000));
        assert!(s.paused(ms(5000)));
        s.observe(false, ms(5200));
        assert!(s.paused(ms(5700)));
        assert!(!s.paused(ms(5800)));
    }
}
