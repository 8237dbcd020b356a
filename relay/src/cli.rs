//! The command line: `serve`, `check-config` and `admin`.

use crate::admin::{self, AdminCommand};
use crate::config::Config;
use crate::error::Error;
use crate::store::Store;
use clap::{Parser, Subcommand};
use eyeward::telemetry::{self, LogFormat};
use std::path::PathBuf;
use std::process::ExitCode;

/// eyeward's relay: live video from home cameras to browsers, alert mail and guard dispatch.
#[derive(Debug, Parser)]
#[command(name = "eyeward-relay", version)]
pub struct Cli {
    /// Log line format on stderr: human or json. The level comes from RUST_LOG (default info).
    #[arg(long, global = true, default_value = "human")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the server until SIGTERM or Ctrl-C. Prints `eyeward-relay listening on
    /// http://ADDRESS` on stdout once it accepts connections.
    Serve {
        /// The TOML configuration file (see docs/config.md). Without one, the defaults:
        /// 127.0.0.1:8080 and ./eyeward-data.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Checks a configuration without serving: the file, then the database (and whether
    /// this relay can run its schema), the picture storage, the SMTP server and the TLS
    /// files, each reached and left unchanged. Exits 1 if anything fails.
    CheckConfig {
        /// The configuration file `serve` would be given.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print one JSON object: {"ok": bool, "findings": [{"part", "ok", "detail"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Provisions accounts and cameras, on the same database whether or not the server runs.
    Admin {
        /// The same configuration file as `serve` (for data_dir).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        /// Print exactly one JSON object on stdout (errors too, as {"error": "..."}).
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        command: AdminCommand,
    },
}

/// Parses the arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    keep_large_buffers_out_of_the_heap();
    if let Command::Admin {
        command: AdminCommand::Backup { .. },
        ..
    } = &cli.command
    {
        // Before the runtime's threads start: Linux keeps priorities per thread, and new
        // threads take their maker's.
        crate::backup::run_behind_the_relay();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("eyeward-relay: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Serve { config } => report(serve(config).await),
            Command::CheckConfig { config, json } => check_config(config, json).await,
            Command::Admin {
                config,
                json,
                command,
            } => run_admin(config, json, command).await,
        }
    })
}

/// Keeps glibc's malloc from raising its mmap threshold. By default the first free of a large
/// block raises it (up to 32 MiB), after which the large short-lived buffers the relay makes
/// (a snapshot decoded whole to be checked: 0.7 MB at 640×360, 6 MB at 1080p) come from the
/// per-thread arenas, which fragment and do not shrink: the soak (`bench/soak.sh`) saw the
/// relay's resident memory grow by 21 MiB over 7,200 events while its live heap stayed under
/// 6 MiB. With the threshold fixed at its default, such buffers are mapped and unmapped
/// whole. An operator's own `GLIBC_TUNABLES` setting of it is left alone.
fn keep_large_buffers_out_of_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let tuned = std::env::var("GLIBC_TUNABLES")
            .is_ok_and(|t| t.contains("glibc.malloc.mmap_threshold"));
        if !tuned {
            // SAFETY: mallopt only changes malloc's parameters; it is called before the
            // runtime's threads start.
            let set = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
            if set != 1 {
                tracing::warn!("could not fix malloc's mmap threshold");
            }
        }
    }
}

fn report(result: Result<(), Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e.chain(), "eyeward-relay stopped");
            eprintln!("eyeward-relay: {}", e.chain());
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Option<PathBuf>) -> Result<(), Error> {
    let config = Config::load(config.as_deref())?;
    let store = Store::open(&config.data_dir, &config.database).await?;
    let objects = crate::objects::Objects::open(&config.data_dir, &config.storage).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::internal(format!("cannot listen on {}: {e}", config.listen)))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::internal("listener address").with_source(e))?;
    tracing::info!(config = %config.redacted(), "starting");
    let server = crate::http::run(
        listener,
        &config,
        store,
        objects,
        telemetry::shutdown_signal(),
    )?;
    // Tests and scripts wait for this line to know the server (and its port) is ready.
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    println!("eyeward-relay listening on {scheme}://{bound}");
    server.await?;
    tracing::info!("stopped");
    Ok(())
}

async fn check_config(config: Option<PathBuf>, json: bool) -> ExitCode {
    let findings = crate::check_config::check(config.as_deref()).await;
    let ok = findings.iter().all(|f| f.ok);
    if json {
        println!("{}", serde_json::json!({ "ok": ok, "findings": findings }));
    } else {
        for f in &findings {
            println!(
                "{:4} {}: {}",
                if f.ok { "ok" } else { "FAIL" },
                f.part,
                f.detail
            );
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn run_admin(config: Option<PathBuf>, json: bool, cmd: AdminCommand) -> ExitCode {
    let result = async {
        let config = Config::load(config.as_deref())?;
        if cmd.opens_its_own_store() {
            return admin::run_on_config(&config, cmd).await;
        }
        let store = Store::open(&config.data_dir, &config.database).await?;
        admin::run(
            &store,
            config.cameras.source_policy(),
            cmd,
            std::io::stdin().lock(),
        )
        .await
    }
    .await;
    match (result, json) {
        (Ok(out), true) => {
            println!("{}", out.json);
            ExitCode::SUCCESS
        }
        (Ok(out), false) => {
            if !out.human.is_empty() {
                println!("{}", out.human);
            }
            ExitCode::SUCCESS
        }
        (Err(e), json) => {
            if json {
                println!("{}", serde_json::json!({ "error": e.to_string() }));
            }
            // The cause too: the operator at the console needs it (which TLS check, say).
            eprintln!("eyeward-relay admin: {}", e.chain());
            ExitCode::FAILURE
        }
    }
}
