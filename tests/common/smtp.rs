//! The tests' SMTP server (aiosmtpd, `tests/smtp/sink.py`) and what tests do with mail.

use super::{Process, Relay, free_port, status_json};
use anyhow::{Context, Result, bail};
use mail_parser::MessageParser;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The tests' SMTP server, on a port of its own; stopped when dropped.
pub struct Smtp {
    pub process: Process,
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// What it was started with beyond its folder and port.
    options: Vec<String>,
}

/// A message the server accepted: its envelope recipients and its bytes.
pub struct Received {
    pub to: Vec<String>,
    pub raw: Vec<u8>,
}

impl Smtp {
    pub fn start() -> Result<Smtp> {
        Smtp::start_with(Vec::new())
    }

    /// With `options` for `sink.py` (`--tls CERT KEY USER PASSWORD`).
    pub fn start_with(options: Vec<String>) -> Result<Smtp> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let process = Smtp::spawn(dir.path(), port, &options)?;
        Ok(Smtp {
            process,
            dir,
            port,
            options,
        })
    }

    fn spawn(dir: &Path, port: u16, options: &[String]) -> Result<Process> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let python = root.join("tests/.venv/bin/python");
        anyhow::ensure!(
            python.exists(),
            "no aiosmtpd: run scripts/setup.sh test (the README's test command does)"
        );
        let mut cmd = Command::new(python);
        cmd.arg(root.join("tests/smtp/sink.py"))
            .arg(dir.join("mail"))
            .arg(port.to_string())
            .args(options);
        Process::spawn(cmd, Some("smtp listening on"), dir.join("smtp.log"))
    }

    /// Stops the server; mail to it fails until [`Smtp::restart`].
    pub fn stop(&mut self) -> Result<()> {
        self.process.stop()?;
        Ok(())
    }

    /// Starts it again on the same port, keeping what it received.
    pub fn restart(&mut self) -> Result<()> {
        self.process = Smtp::spawn(self.dir.path(), self.port, &self.options)?;
        Ok(())
    }

    /// Waits for a message with this subject.
    pub async fn wait_subject(&self, want: &str) -> Result<Vec<Received>> {
        self.wait_for(want, |m| m.iter().any(|r| subject(&r.raw) == want))
            .await
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Everything received so far, in order.
    pub fn received(&self) -> Result<Vec<Received>> {
        let folder = self.dir.path().join("mail");
        let mut names: Vec<PathBuf> = std::fs::read_dir(&folder)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|json| {
                let envelope: Value = serde_json::from_slice(&std::fs::read(json)?)?;
                let to = serde_json::from_value(envelope["to"].clone())?;
                let raw = std::fs::read(json.with_extension("eml"))?;
                Ok(Received { to, raw })
            })
            .collect()
    }

    /// Waits until `ok` holds for what was received.
    pub async fn wait_for(
        &self,
        what: &str,
        ok: impl Fn(&[Received]) -> bool,
    ) -> Result<Vec<Received>> {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let got = self.received()?;
            if ok(&got) {
                return Ok(got);
            }
            if Instant::now() > deadline {
                bail!(
                    "{what}: {} messages so far; {}",
                    got.len(),
                    self.process.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub fn subject(raw: &[u8]) -> String {
    MessageParser::default()
        .parse(raw)
        .and_then(|m| m.subject().map(str::to_owned))
        .unwrap_or_default()
}

/// The first link in the message's text that starts with `prefix` (after the relay's base).
pub fn link(raw: &[u8], prefix: &str) -> Result<String> {
    let message = MessageParser::default().parse(raw).context("a mail")?;
    let text = message.body_text(0).context("a text part")?;
    let start = text
        .find(prefix)
        .with_context(|| format!("no {prefix} in {text}"))?;
    let end = text[start..]
        .find(|c: char| c.is_whitespace())
        .map_or(text.len(), |n| start + n);
    Ok(text[start..end].to_owned())
}

/// `POST /api/alert-addresses {"email"}` as `client`: the status and the answer.
pub async fn add_address(client: &super::Client, email: &str) -> Result<(u16, Value)> {
    status_json(
        client
            .post("/api/alert-addresses", &json!({"email": email}))
            .await?,
    )
    .await
}

/// Adds `email` to the customer's alert addresses and confirms it through its mail.
pub async fn confirmed_address(
    relay: &Relay,
    smtp: &Smtp,
    customer: &super::Client,
    email: &str,
) -> Result<()> {
    let (status, _) = add_address(customer, email).await?;
    assert_eq!(status, 201);
    let mails = smtp
        .wait_for("the confirmation", |m| m.iter().any(|r| r.to == [email]))
        .await?;
    let mail = mails
        .iter()
        .find(|r| r.to == [email])
        .context("confirmation")?;
    let url = link(&mail.raw, &format!("{}/confirm/", relay.base))?;
    assert_eq!(
        reqwest::Client::new().post(&url).send().await?.status(),
        200
    );
    Ok(())
}
