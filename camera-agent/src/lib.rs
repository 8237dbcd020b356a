//! # eyeward-agent
//!
//! The on-camera agent: it keeps the outbound link to the relay and carries RTSP through it
//! (`run`). Motion detection, snapshots and pan-tilt drivers build on this crate. Its default
//! build can also stand in for a camera (`simulate`, `sim://` cameras: feature `simulator`,
//! the `eyeward-camera-sim` crate); a build for a camera (`--no-default-features`) carries
//! no RTSP or HTTP server.

pub mod capture;
pub mod clips;
pub mod config;
pub mod error;
pub mod gop;
pub mod link;
pub mod motion;
pub mod onvif;
pub mod ptz;
pub mod queue;
pub mod restream;
pub mod rtsp_auth;
pub mod rtsp_framing;
pub mod snapshot;
pub mod tls;
pub mod watch;

use capture::Capture;
use clap::{Args, Parser, Subcommand};
use config::AgentConfig;
use error::Error;
use eyeward::clock::Clock;
use eyeward::telemetry::{self, LogFormat};
use link::{CameraAddr, LinkConfig};
use motion::{Decision, Detector, MotionEvent};
use queue::Queue;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// eyeward's on-camera agent: motion detection, snapshots, pan-tilt and the link to the relay.
#[derive(Debug, Parser)]
#[command(name = "eyeward-agent", version)]
pub struct Cli {
    /// Log line format on stderr: human or json. The level comes from RUST_LOG (default info).
    #[arg(long, global = true, default_value = "human")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

// Parsed once, at start: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Keeps the camera's link to the relay until SIGTERM or Ctrl-C, carrying its video to the
    /// relay when someone watches.
    Run(RunArgs),
    /// Serves a simulated camera at rtsp://LISTEN/live until SIGTERM or Ctrl-C. Prints
    /// `eyeward-agent simulating a MODEL camera at rtsp://…/live` on stdout once it serves.
    #[cfg(feature = "simulator")]
    Simulate(eyeward_camera_sim::command::SimulateArgs),
    /// Runs the agent's motion detector on a video file or rtsp:// URL: one JSON line per
    /// motion event on stdout, then a summary line, for tuning on one's own recordings.
    Detect(DetectArgs),
}

#[derive(Debug, Args)]
struct DetectArgs {
    /// A video file, or an rtsp:// URL (read until Ctrl-C).
    input: String,
    /// The agent's configuration file; its [motion] section tunes the detector, its [clips]
    /// section the clips `--clips` writes.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Writes each event's clip into this folder, as `event-<n>.mp4` (pre-roll, post-roll
    /// and longest clip from the [clips] section; `enabled` is not needed).
    #[arg(long)]
    clips: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The relay's URL, e.g. https://relay.example.jp (http:// only on a trusted network).
    /// Given more than once (the nodes of one service), the agent moves on to the next when
    /// one is down.
    #[arg(long, required = true)]
    relay: Vec<url::Url>,
    /// A file holding the camera's agent token (from `eyeward-relay admin camera add`).
    #[arg(long)]
    token_file: PathBuf,
    /// PEM certificates of a private certificate authority to trust for an https:// relay,
    /// besides the public ones. The relay's certificate is always checked.
    #[arg(long)]
    relay_ca: Option<PathBuf>,
    /// The camera: its rtsp:// URL on the home network, or (in the default build)
    /// sim://fixed or sim://pan-tilt for a built-in simulated camera.
    #[arg(long)]
    camera: String,
    /// The camera's ONVIF device service, for pan-tilt, e.g.
    /// http://192.168.1.20/onvif/device_service; user:password@ in it, or else the RTSP
    /// URL's, sign the requests. sim:// cameras serve their own.
    #[arg(long)]
    onvif: Option<url::Url>,
    /// The agent's configuration file (motion detection, the upload queue, pan-tilt).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where snapshots wait for the relay (default: the token file's path + `.queue`).
    #[arg(long)]
    queue_dir: Option<PathBuf>,
}

impl RunArgs {
    fn token(&self) -> Result<String, Error> {
        let text = std::fs::read_to_string(&self.token_file)
            .map_err(Error::io(format!("reading {}", self.token_file.display())))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(Error::Config(format!(
                "{} is empty",
                self.token_file.display()
            )));
        }
        Ok(token.to_owned())
    }
}

/// The camera `run` serves: a real one by URL, or a simulator started here.
enum RunCamera {
    Real(CameraAddr),
    #[cfg(feature = "simulator")]
    Simulated(eyeward_camera_sim::Simulator),
}

impl RunCamera {
    fn open(spec: &str) -> Result<RunCamera, Error> {
        if let Some(model) = spec.strip_prefix("sim://") {
            return simulated_camera(model);
        }
        let source = eyeward::RtspSource::parse(spec)?;
        let mut addr = camera_addr(source.url())?;
        addr.credentials = source.username().map(|u| {
            (
                u.to_owned(),
                source.password().unwrap_or_default().to_owned(),
            )
        });
        Ok(RunCamera::Real(addr))
    }

    fn addr(&self) -> Result<CameraAddr, Error> {
        match self {
            RunCamera::Real(a) => Ok(a.clone()),
            #[cfg(feature = "simulator")]
            RunCamera::Simulated(sim) => camera_addr(sim.url()),
        }
    }

    /// The stream's URL for the agent's own decoder, credentials included, and the password
    /// (to keep out of logs).
    fn capture_url(&self) -> Result<(String, Option<String>), Error> {
        let a = self.addr()?;
        let host = if a.host.contains(':') {
            format!("[{}]", a.host)
        } else {
            a.host.clone()
        };
        let mut url = url::Url::parse(&format!("rtsp://{host}:{}{}", a.port, a.path))
            .map_err(|e| Error::Config(format!("camera URL: {e}")))?;
        let mut secret = None;
        if let Some((user, password)) = &a.credentials {
            let bad = |_| Error::Config("camera URL cannot hold credentials".into());
            url.set_username(user).map_err(bad)?;
            url.set_password(Some(password)).map_err(bad)?;
            secret = url.password().map(str::to_owned);
        }
        Ok((url.to_string(), secret))
    }
}

/// The camera's ONVIF service: `--onvif` (its credentials, else the RTSP ones), or the
/// simulator's own, served here.
async fn onvif_addr(
    camera: &RunCamera,
    onvif: Option<&url::Url>,
) -> Result<Option<ptz::OnvifAddr>, Error> {
    let rtsp_credentials = match camera {
        RunCamera::Real(a) => a.credentials.clone(),
        #[cfg(feature = "simulator")]
        RunCamera::Simulated(_) => None,
    };
    if let Some(url) = onvif {
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::Config(
                "--onvif must be an http(s):// URL with a host".into(),
            ));
        }
        let mut device_url = url.clone();
        let credentials = eyeward::take_credentials(&mut device_url).or(rtsp_credentials);
        return Ok(Some(ptz::OnvifAddr {
            device_url: device_url.to_string(),
            credentials,
        }));
    }
    match camera {
        #[cfg(feature = "simulator")]
        RunCamera::Simulated(sim) if sim.head().is_some() => {
            let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            let at = eyeward_camera_sim::onvif::serve(sim, None, listen).await?;
            Ok(Some(ptz::OnvifAddr {
                device_url: format!("http://{at}/onvif/device_service"),
                credentials: None,
            }))
        }
        _ => Ok(None),
    }
}

/// A `sim://MODEL` camera: a simulator started here, on a free loopback port.
#[cfg(feature = "simulator")]
fn simulated_camera(model: &str) -> Result<RunCamera, Error> {
    use eyeward_camera_sim::{Simulator, SimulatorConfig, command::parse_model};
    let model = parse_model(model).map_err(Error::Config)?;
    let config = SimulatorConfig {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        ..SimulatorConfig::new(model)
    };
    Ok(RunCamera::Simulated(Simulator::start(config)?))
}

/// A build for a camera has no simulator: a `sim://` camera is a mistake that says so.
#[cfg(not(feature = "simulator"))]
fn simulated_camera(_model: &str) -> Result<RunCamera, Error> {
    Err(Error::Config(
        "sim:// cameras need the agent's default build (feature simulator)".into(),
    ))
}

/// Host, port (554 by default) and path of an rtsp:// URL without credentials.
fn camera_addr(url: &str) -> Result<CameraAddr, Error> {
    let url = url::Url::parse(url).map_err(|e| Error::Config(format!("camera URL: {e}")))?;
    let host = url
        .host_str()
        .ok_or_else(|| Error::Config("camera URL has no host".into()))?;
    let mut path = url.path().to_owned();
    if let Some(q) = url.query() {
        path = format!("{path}?{q}");
    }
    eyeward::link::check_rtsp_path(&path)?;
    Ok(CameraAddr {
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port: url.port().unwrap_or(554),
        path,
        credentials: None,
    })
}

/// Parses the arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("eyeward-agent: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run(args).await,
            #[cfg(feature = "simulator")]
            Command::Simulate(args) => eyeward_camera_sim::command::simulate(args)
                .await
                .map_err(Error::from),
            Command::Detect(args) => tokio::task::spawn_blocking(move || detect(args))
                .await
                .unwrap_or_else(|e| Err(Error::Media(format!("detector stopped: {e}")))),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "eyeward-agent stopped");
            eprintln!("eyeward-agent: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: RunArgs) -> Result<(), Error> {
    let token = args.token()?;
    let agent_config = AgentConfig::load(args.config.as_deref())?;
    let camera = RunCamera::open(&args.camera)?;
    let addr = camera.addr()?;
    #[cfg(feature = "simulator")]
    if let RunCamera::Simulated(sim) = &camera {
        tracing::info!(url = sim.url(), "simulated camera started");
    }
    let relays = link::Relays::new(args.relay)?;
    tracing::info!(relays = ?relays.all().iter().map(url::Url::as_str).collect::<Vec<_>>(), camera = ?addr, "agent starting");
    // The camera's current group of pictures, kept while the detector reads the stream.
    let gop = agent_config
        .motion
        .enabled
        .then(|| Arc::new(gop::GopRing::default()));
    let config = LinkConfig {
        relays,
        token,
        camera: addr,
        tls: tls::relay_client_config(args.relay_ca.as_deref())?,
        gop: gop.clone(),
    };
    config.check()?;
    // The one clock (see `eyeward::clock`): the detector, pan-tilt and the link read it.
    let clock = Clock::real();
    let head = Arc::new(ptz::HeadWatch::default());
    let ptz = match onvif_addr(&camera, args.onvif.as_ref()).await? {
        Some(addr) => {
            tracing::info!(onvif = ?addr, "pan-tilt through ONVIF");
            Some(ptz::spawn(
                addr,
                agent_config.ptz.clone(),
                head.clone(),
                clock,
            ))
        }
        None => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let watching = if agent_config.motion.enabled {
        // One queue per camera: beside its token file, named after it.
        let queue_dir = args.queue_dir.clone().unwrap_or_else(|| {
            let mut dir = args.token_file.clone().into_os_string();
            dir.push(".queue");
            PathBuf::from(dir)
        });
        let queue = Queue::open(&queue_dir, agent_config.queue.max_bytes)?;
        if !queue.is_empty() {
            tracing::info!(
                events = queue.len(),
                "snapshots from before are still to upload"
            );
        }
        let shared = watch::Shared::new(queue);
        let (url, secret) = camera.capture_url()?;
        let detector = watch::spawn_detector(
            watch::CameraStream {
                url,
                secret,
                gop: gop.clone().expect("kept when motion detection is on"),
            },
            agent_config.motion,
            agent_config.clips.enabled.then_some(agent_config.clips),
            shared.clone(),
            ptz.is_some().then(|| head.clone()),
            stop.clone(),
            clock,
        )?;
        let uploader = tokio::spawn(watch::upload(
            shared,
            config.relays.clone(),
            config.token.clone(),
            config.tls.clone(),
        ));
        Some((detector, uploader))
    } else {
        None
    };
    link::run(config, ptz, clock, telemetry::shutdown_signal()).await;
    stop.store(true, Ordering::Relaxed);
    if let Some((detector, uploader)) = watching {
        // The clip being recorded ends with the detector, whole, into the queue (it uploads
        // at the next start); a camera that stalls does not hold the stop up for long.
        let finished = tokio::task::spawn_blocking(move || detector.join());
        if tokio::time::timeout(DETECTOR_STOP, finished).await.is_err() {
            tracing::warn!("the detector did not stop in time; a clip being recorded is lost");
        }
        uploader.abort();
    }
    drop(camera);
    Ok(())
}

/// How long a stopping agent waits for its detector to finish the clip being recorded.
const DETECTOR_STOP: Duration = Duration::from_secs(5);

/// `detect`: decodes the input, runs the detector with the configured tuning, and prints
/// `{"start_ms","end_ms","peak_score","bbox"}` per event (the box in the input's pixels), then
/// `{"frames","events"}`; with `--clips`, `{"clip","bytes","event_at_ms","length_ms",
/// "pre_roll_bytes"}` per clip written.
fn detect(args: DetectArgs) -> Result<(), Error> {
    let agent_config = AgentConfig::load(args.config.as_deref())?;
    let config = agent_config.motion;
    // The coded frames, handed on for clips as the capture reads them.
    let (coded, mut clips) = match &args.clips {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(Error::io(format!("creating {}", dir.display())))?;
            let ring = Arc::new(gop::GopRing::default());
            let maker = clips::ClipMaker::new(agent_config.clips, &ring);
            (Some(ring), Some(maker))
        }
        None => (None, None),
    };
    let clip_dir = args.clips.clone().unwrap_or_default();
    let mut place = |key: &str, _| Ok(clip_dir.join(format!("{key}.mp4")));
    let print_clips = |ended: Vec<clips::Outcome>| -> Result<(), Error> {
        for outcome in ended {
            let clip = match outcome {
                clips::Outcome::Finished(clip) => clip,
                clips::Outcome::Failed { error, .. } => return Err(error),
            };
            println!(
                "{}",
                serde_json::json!({
                    "clip": clip.path,
                    "bytes": clip.bytes,
                    "event_at_ms": clip.event_at.as_millis() as u64,
                    "length_ms": clip.length.as_millis() as u64,
                    "pre_roll_bytes": clip.pre_roll_bytes,
                })
            );
        }
        Ok(())
    };
    let mut capture = Capture::open(
        &args.input,
        config.picture_width,
        config.max_fps,
        false,
        false,
        coded,
    )?;
    let mut detector: Option<Detector> = None;
    let (mut frames, mut events, mut started) = (0u64, 0u64, 0u64);
    let mut scale = (1.0, 1.0);
    let mut print = |event: MotionEvent, scale: (f64, f64)| {
        events += 1;
        println!(
            "{}",
            serde_json::json!({
                "start_ms": event.start.as_millis() as u64,
                "end_ms": event.end.as_millis() as u64,
                "peak_score": (event.peak_score * 1e4).round() / 1e4,
                "bbox": event.bbox.scaled(scale.0, scale.1),
            })
        );
    };
    while let Some(picture) = capture.next_picture()? {
        frames += 1;
        let d = match &mut detector {
            Some(d) => d,
            None => {
                if let Some((w, h)) = capture.source_size() {
                    scale = (
                        f64::from(w) / picture.width as f64,
                        f64::from(h) / picture.height as f64,
                    );
                }
                detector.insert(
                    Detector::new(&config, picture.width, picture.height).map_err(Error::Config)?,
                )
            }
        };
        let decision = d.process(&picture.luma, picture.colour, picture.at);
        if let Some(maker) = &mut clips {
            let motion = match &decision {
                Some(Decision::Started { since, .. }) => {
                    started += 1;
                    Some(clips::Motion::Started {
                        key: format!("event-{started}"),
                        since: *since,
                    })
                }
                Some(Decision::Ended(event)) => Some(clips::Motion::Ended { end: event.end }),
                None => None,
            };
            print_clips(maker.picture(picture.at, motion, &mut place)?)?;
        }
        if let Some(Decision::Ended(event)) = decision {
            print(event, scale);
        }
    }
    if let Some(Decision::Ended(event)) = detector.as_mut().and_then(Detector::finish) {
        print(event, scale);
    }
    if let Some(maker) = &mut clips {
        print_clips(maker.end(&mut place)?)?;
    }
    println!(
        "{}",
        serde_json::json!({ "frames": frames, "events": events })
    );
    Ok(())
}
