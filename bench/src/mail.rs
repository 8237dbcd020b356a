//! The real SMTP server benchmarks send mail to (aiosmtpd, `tests/smtp/sink.py`; `scripts/
//! setup.sh test` installs it), what it accepted, and an alert address confirmed through it.

use crate::process::{Running, spawn_until_line};
use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A running SMTP server on loopback that keeps every message it accepts as a file.
pub struct Sink {
    _process: Running,
    pub port: u16,
    folder: PathBuf,
}

/// A mail the server accepted: when, its Message-ID (without `<>`) and the whole message.
pub struct Accepted {
    pub at_ms: i64,
    pub message_id: String,
    pub raw: String,
}

impl Accepted {
    /// The event an alert mail is about (its Message-ID is `alert.<event>.…`); `None` for
    /// other mail.
    pub fn alert_event(&self) -> Option<i64> {
        self.message_id
            .strip_prefix("alert.")?
            .split('.')
            .next()?
            .parse()
            .ok()
    }
}

impl Sink {
    /// Starts the server on a free port; its messages go to `dir/mail`.
    pub fn start(dir: &Path) -> Result<Sink> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let folder = dir.join("mail");
        let mut cmd = Command::new(root.join("tests/.venv/bin/python"));
        cmd.arg(root.join("tests/smtp/sink.py"))
            .arg(&folder)
            .arg(port.to_string())
            .stderr(Stdio::null());
        let (process, _) = spawn_until_line(cmd, "smtp listening")
            .context("aiosmtpd (scripts/setup.sh test installs it)")?;
        Ok(Sink {
            _process: process,
            port,
            folder,
        })
    }

    /// How many messages the server has accepted (each is whole once its envelope is written).
    pub fn count(&self) -> Result<usize> {
        Ok(std::fs::read_dir(&self.folder)?
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .count())
    }

    /// Every message accepted so far, in the order accepted.
    pub fn accepted(&self) -> Result<Vec<Accepted>> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.folder)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|json| {
                let envelope: Value = serde_json::from_slice(&std::fs::read(json)?)?;
                let raw = String::from_utf8_lossy(&std::fs::read(json.with_extension("eml"))?)
                    .into_owned();
                let message_id = raw
                    .lines()
                    .find_map(|l| l.strip_prefix("Message-ID: <"))
                    .map(|id| id.trim_end_matches('>').to_owned())
                    .unwrap_or_default();
                Ok(Accepted {
                    at_ms: envelope["at_ms"].as_i64().context("at_ms")?,
                    message_id,
                    raw,
                })
            })
            .collect()
    }

    /// Adds `address` as an alert address of the customer logged in on `http` and opens the
    /// link of the confirmation mail this server receives (the first mail it gets).
    pub async fn confirm_alert_address(
        &self,
        http: &reqwest::Client,
        base: &str,
        address: &str,
    ) -> Result<()> {
        let added = http
            .post(format!("{base}/api/alert-addresses"))
            .header("origin", base)
            .json(&json!({"email": address}))
            .send()
            .await?;
        ensure!(
            added.status().is_success(),
            "alert address: {}",
            added.status()
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let link = loop {
            if let Some(m) = self.accepted()?.first() {
                let text = mail_parser::MessageParser::default()
                    .parse(m.raw.as_bytes())
                    .and_then(|p| p.body_text(0).map(|t| t.into_owned()))
                    .context("the confirmation mail's text")?;
                let start = text.find("/confirm/").context("a confirmation link")?;
                let token: String = text[start + 9..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                    .collect();
                break format!("{base}/confirm/{token}");
            }
            if Instant::now() > deadline {
                bail!("no confirmation mail");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let confirmed = reqwest::Client::new().post(&link).send().await?;
        ensure!(confirmed.status() == 200, "confirm: {}", confirmed.status());
        Ok(())
    }
}
