//! # eyeward-agent
//!
//! The on-camera agent. Its commands (`run`, `simulate`, `detect`; see the project's
//! `docs/api.md`) are built on this crate; today it carries the command-line frame and the
//! shared logging set-up.

use clap::Parser;
use eyeward::telemetry::{self, LogFormat};
use std::process::ExitCode;

/// eyeward's on-camera agent: motion detection, snapshots, pan-tilt and the link to the relay.
#[derive(Debug, Parser)]
#[command(name = "eyeward-agent", version)]
pub struct Cli {
    /// Log line format on stderr: human or json. The level comes from RUST_LOG (default info).
    #[arg(long, global = true, default_value = "human")]
    log_format: LogFormat,
}

/// Parses the arguments and runs the agent.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    ExitCode::SUCCESS
}
