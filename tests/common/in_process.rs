//! A relay served inside the test process, for tests that look into its state (its link
//! registry) or inject faults into it (fail points): the same server as the binary's, with
//! its log captured for the test to read.

use super::Site;
use anyhow::Result;
use eyeward_relay::config::Config;
use eyeward_relay::http::{self, AppState};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// A relay running in this process; stopped when dropped.
pub struct InProcessRelay {
    site: Site,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::ops::Deref for InProcessRelay {
    type Target = Site;
    fn deref(&self) -> &Site {
        &self.site
    }
}

impl InProcessRelay {
    /// Starts a relay on `127.0.0.1:0`; `extra` is appended to its config.
    pub async fn start(extra: &str) -> Result<InProcessRelay> {
        capture_log();
        let mut site = Site::new("127.0.0.1:0", extra)?;
        let config = Config::parse(&std::fs::read_to_string(&site.config)?)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr, state) = http::spawn(&config, async move {
            let _ = stopped.await;
        })
        .await?;
        site.base = format!("http://{addr}");
        Ok(InProcessRelay {
            site,
            state,
            stop: Some(stop),
        })
    }

    /// Everything logged in this process so far (every in-process relay of the test binary).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&capture_log().lock().unwrap_or_else(|p| p.into_inner()))
            .into_owned()
    }
}

impl Drop for InProcessRelay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The process's log, as the relay binary would write it, kept in memory.
fn capture_log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let writer = log.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .try_init();
        log
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
