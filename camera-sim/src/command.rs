//! The `simulate` command, as `eyeward-agent simulate` offers it: its arguments and the
//! serving of one simulated camera until the process is told to stop.

use crate::scene::MotionScript;
use crate::{Error, Simulator, SimulatorConfig, onvif};
use clap::Args;
use eyeward::CameraModel;
use eyeward::clock::Clock;
use eyeward::telemetry;
use std::net::SocketAddr;
use std::time::Duration;

/// `simulate`'s arguments.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// fixed or pan-tilt.
    #[arg(long, value_parser = parse_model)]
    model: CameraModel,
    /// Address to serve RTSP on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8554")]
    listen: SocketAddr,
    #[arg(long, default_value_t = 1280)]
    width: u32,
    #[arg(long, default_value_t = 720)]
    height: u32,
    #[arg(long, default_value_t = 15)]
    fps: u32,
    /// Time between keyframes, e.g. 4s.
    #[arg(long, default_value = "4s", value_parser = humantime::parse_duration)]
    keyframe_interval: Duration,
    /// Keyframes only on the encoder's schedule, as many real cameras: a new session waits
    /// for the next one (up to --keyframe-interval) instead of starting with one.
    #[arg(long)]
    keyframes_on_schedule: bool,
    #[arg(long, default_value_t = 2000)]
    bitrate_kbps: u32,
    /// Sensor grain in luma levels, 0 to 64 (0: a clean picture); grain makes the encoder
    /// spend its whole bitrate.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=64))]
    grain: u8,
    /// RTSP user name clients must give; the password comes from the environment variable
    /// EYEWARD_SIM_PASSWORD (never from the command line, where `ps` would show it).
    #[arg(long)]
    username: Option<String>,
    /// When the intruder first crosses the picture, after start.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    motion_offset: Duration,
    /// How often the intruder crosses; 0s: never.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    motion_every: Duration,
    /// How long one crossing takes.
    #[arg(long, default_value = "4s", value_parser = humantime::parse_duration)]
    motion_crossing: Duration,
    /// Address of the camera's ONVIF service (port 0: any free port); printed on a second
    /// line, `eyeward-agent onvif at http://…/onvif/device_service`. The RTSP credentials
    /// guard it too.
    #[arg(long, default_value = "127.0.0.1:0")]
    onvif_listen: std::net::SocketAddr,
    /// Sound with the video, as a second stream: a tone in pcmu, pcma (G.711), aac, or
    /// speex (which the relay cannot decode).
    #[arg(long)]
    audio: Option<crate::AudioCodec>,
    /// Marks to measure sound against pictures by: every 2 s, for 200 ms, a white square in
    /// the picture's top-left corner and the tone together (black and silence between).
    #[arg(long)]
    sync_marks: bool,
    /// A speaker: an ONVIF back-channel (Profile T) taking pcmu or pcma, which logs the pitch
    /// and level of what it hears (`back-channel heard hz=… dbfs=… began_unix_ms=…`).
    #[arg(long)]
    backchannel: Option<crate::backchannel::SpeakerCodec>,
    /// The video's codec: h264 (constrained baseline) or h265 (main).
    #[arg(long, default_value = "h264")]
    video: crate::VideoCodec,
}

/// `fixed` or `pan-tilt`, as a command line says it.
pub fn parse_model(s: &str) -> Result<CameraModel, String> {
    s.parse().map_err(|e: eyeward::Error| e.to_string())
}

impl SimulateArgs {
    /// The simulator these arguments describe.
    pub fn config(self) -> Result<SimulatorConfig, Error> {
        let credentials = match self.username {
            None => None,
            Some(user) => {
                let password = std::env::var("EYEWARD_SIM_PASSWORD").map_err(|_| {
                    Error::Config("--username needs the password in EYEWARD_SIM_PASSWORD".into())
                })?;
                Some((user, password))
            }
        };
        Ok(SimulatorConfig {
            listen: self.listen,
            width: self.width,
            height: self.height,
            fps: self.fps,
            keyframe_interval: self.keyframe_interval,
            keyframes_on_schedule: self.keyframes_on_schedule,
            bitrate_kbps: self.bitrate_kbps,
            grain: self.grain,
            credentials,
            script: MotionScript {
                offset: self.motion_offset,
                every: (!self.motion_every.is_zero()).then_some(self.motion_every),
                crossing: self.motion_crossing,
            },
            audio: self.audio,
            sync_marks: self.sync_marks,
            backchannel: self.backchannel,
            video: self.video,
            ..SimulatorConfig::new(self.model)
        })
    }
}

/// Serves the simulated camera and its ONVIF service until SIGTERM or Ctrl-C, after
/// printing where (the lines tests and scripts wait for).
pub async fn simulate(args: SimulateArgs) -> Result<(), Error> {
    let onvif_listen = args.onvif_listen;
    let config = args.config()?;
    let model = config.model;
    let credentials = config.credentials.clone();
    let sim = Simulator::start(config)?;
    // When the scene's clock started, on the wall clock: tests and benchmarks date the
    // scripted crossings from it.
    let started = Clock::real().now().0 - sim.scene_time().as_millis() as i64;
    tracing::info!(scene_started_unix_ms = started, "the scene's clock runs");
    // Its ONVIF service, as a real camera has (with PTZ on the pan-tilt model only).
    let onvif = onvif::serve(&sim, credentials, onvif_listen).await?;
    println!("eyeward-agent simulating a {model} camera at {}", sim.url());
    println!("eyeward-agent onvif at http://{onvif}/onvif/device_service");
    telemetry::shutdown_signal().await;
    drop(sim);
    Ok(())
}
