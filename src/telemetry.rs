//! What both binaries share around `main`: the tracing set-up (human or JSON lines on
//! stderr, a filter from `RUST_LOG`, default `info`, and a panic hook that logs the panic
//! before the default hook runs, so a panicking task leaves a line in the log), and the
//! shutdown signal.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("unknown log format {s:?}; expected human or json")),
        }
    }
}

/// Crates that log routine moments louder than they are, and the least level kept of each.
/// The WebRTC stack (webrtc-rs's `rtc` crates) logs routine moments of every live session at
/// info and as warnings (every state change, a browser's DTLS extensions it does not know,
/// packets that arrive before the handshake is done): several lines per viewer, which would
/// bury the relay's own warnings. PostgreSQL's notices come at info ("the
/// migrations table already exists, skipping" on every start and admin command); its
/// warnings stay.
const CHATTY: [(&str, &str); 11] = [
    ("rtc", "error"),
    ("rtc_ice", "error"),
    ("rtc_dtls", "error"),
    ("rtc_srtp", "error"),
    ("rtc_sctp", "error"),
    ("rtc_mdns", "error"),
    ("rtc_stun", "error"),
    ("rtc_turn", "error"),
    ("rtc_datachannel", "error"),
    ("rtc_interceptor", "error"),
    ("sqlx::postgres::notice", "warn"),
];

/// The log filter for `spec` (`RUST_LOG`'s syntax): as given, except that the [`CHATTY`]
/// crates log at their level only, unless `spec` names them itself.
fn filter(spec: &str) -> EnvFilter {
    let mut filter = EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("info"));
    let named: Vec<&str> = spec
        .split(',')
        .filter_map(|directive| directive.split(['=', '[']).next())
        .map(str::trim)
        .collect();
    for (target, level) in CHATTY.iter().filter(|(t, _)| !named.contains(t)) {
        if let Ok(directive) = format!("{target}={level}").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Installs the global subscriber and the panic hook. Call once, first thing in `main`.
pub fn init(format: LogFormat) {
    let filter = filter(&std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(panic = %info, "panic");
        default_hook(info);
    }));
}

/// Resolves on SIGTERM or Ctrl-C (logging which).
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

#[cfg(test)]
mod tests {
    use super::filter;

    #[test]
    fn the_webrtc_crates_log_errors_only_unless_named() {
        let quiet = filter("warn").to_string();
        assert!(quiet.contains("rtc_ice=error"), "{quiet}");
        assert!(quiet.contains("rtc=error"), "{quiet}");
        assert!(quiet.contains("warn"), "{quiet}");
        assert!(quiet.contains("sqlx::postgres::notice=warn"), "{quiet}");

        let asked = filter("info,rtc_ice=debug").to_string();
        assert!(asked.contains("rtc_ice=debug"), "{asked}");
        assert!(!asked.contains("rtc_ice=error"), "{asked}");
        assert!(asked.contains("rtc=error"), "{asked}");
    }

    #[test]
    fn a_broken_spec_falls_back_to_info() {
        let fallback = filter("not a [valid filter").to_string();
        assert!(fallback.contains("info"), "{fallback}");
    }
}
