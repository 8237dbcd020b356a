//! # eyeward-agent
//!
//! The on-camera agent: it keeps the outbound link to the relay and carries RTSP through it
//! (`run`), and it can stand in for a camera (`simulate`). Motion detection, snapshots and
//! pan-tilt drivers build on this crate.

pub mod error;
pub mod simulate;

use clap::{Args, Parser, Subcommand};
use error::Error;
use eyeward::CameraModel;
use eyeward::telemetry::{self, LogFormat};
use simulate::scene::MotionScript;
use simulate::{Simulator, SimulatorConfig};
use std::net::SocketAddr;
use std::process::ExitCode;
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

#[derive(Debug, Subcommand)]
enum Command {
    /// Serves a simulated camera at rtsp://LISTEN/live until SIGTERM or Ctrl-C. Prints
    /// `eyeward-agent simulating a MODEL camera at rtsp://…/live` on stdout once it serves.
    Simulate(SimulateArgs),
}

#[derive(Debug, Args)]
struct SimulateArgs {
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
    #[arg(long, default_value_t = 2000)]
    bitrate_kbps: u32,
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
}

fn parse_model(s: &str) -> Result<CameraModel, String> {
    s.parse().map_err(|e: eyeward::Error| e.to_string())
}

impl SimulateArgs {
    fn config(self) -> Result<SimulatorConfig, Error> {
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
            bitrate_kbps: self.bitrate_kbps,
            credentials,
            script: MotionScript {
                offset: self.motion_offset,
                every: (!self.motion_every.is_zero()).then_some(self.motion_every),
                crossing: self.motion_crossing,
            },
            ..SimulatorConfig::new(self.model)
        })
    }
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
            Command::Simulate(args) => simulate(args).await,
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

async fn simulate(args: SimulateArgs) -> Result<(), Error> {
    let config = args.config()?;
    let model = config.model;
    let sim = Simulator::start(config)?;
    println!("eyeward-agent simulating a {model} camera at {}", sim.url());
    shutdown_signal().await;
    drop(sim);
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        () = term => tracing::info!("SIGTERM: shutting down"),
    }
}
