//! Motion to mail, as `bench/mail.sh` and `bench/clips.sh` measure it: from the moment the
//! simulator's scripted intruder enters the picture to the moment the SMTP server (aiosmtpd,
//! `tests/smtp/sink.py`) accepted the alert mail, and where the time goes:
//!
//! - **detect**: entry → the snapshot's capture (`captured_at`: decode, detector, hysteresis);
//! - **upload**: capture → stored at the relay (`received_at`: JPEG, fsync into the agent's
//!   queue, HTTP upload, the relay's checks, fsync, commit);
//! - **mail**: stored → accepted by the SMTP server (the outbox, rendering, SMTP).
//!
//! The same alerts go to a device as Web Push, to a push service on loopback
//! (`eyeward_testkit::push`) that checks their VAPID signature and decrypts them as a browser
//! does: **push** is stored → decrypted there (the outbox, the encryption, the signature, HTTP).
//!
//! The agent reaches the relay through an [`Uplink`] that counts what it sends, by request:
//! what clips cost the home's upstream. Release binaries on loopback; all clocks are this
//! machine's.

use crate::mail::{Accepted, Sink};
use crate::process::{
    Running, bench_login, dies_with_parent, provision_relay, start_relay, start_simulator,
    target_bin,
};
use anyhow::{Context, Result, bail, ensure};
use eyeward_testkit::push::PushService;
use eyeward_testkit::uplink::Uplink;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The simulator's script: the first crossing 3 s after start, then every 8 s, 3 s each (the
/// agent's default cooldown is 5 s after an event ends: one event per crossing).
const OFFSET_MS: i64 = 3000;
pub const EVERY_MS: i64 = 8000;

/// The spans of each event, milliseconds.
#[derive(Debug, Default)]
pub struct Spans {
    pub total: Vec<i64>,
    pub detect: Vec<i64>,
    pub upload: Vec<i64>,
    pub mailing: Vec<i64>,
    /// Entry → the push decrypted at the push service, and stored → that.
    pub push_total: Vec<i64>,
    pub pushing: Vec<i64>,
}

/// What one run saw.
#[derive(Debug, Default)]
pub struct Run {
    pub spans: Spans,
    /// The bytes the agent sent in event uploads (`POST`), and in clip uploads (`HEAD`,
    /// `PUT`), headers included.
    pub event_bytes_sent: u64,
    pub clip_bytes_sent: u64,
    /// The clips stored, and their bytes.
    pub clips: usize,
    pub clip_bytes: u64,
}

/// The nearest-rank percentile of `sorted`.
pub fn percentile(sorted: &[i64], p: f64) -> i64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `n` crossings of the simulator (720p, `sim_args` added) before an agent with `agent_config`
/// (its TOML): the spans of each alert, and what the agent sent. `dir` holds the run's files.
pub async fn motion_to_mail(
    dir: &Path,
    n: usize,
    sim_args: &[&str],
    agent_config: &str,
) -> Result<Run> {
    std::fs::create_dir_all(dir)?;
    let sink = Sink::start(dir)?;
    // The relay, its customer with one confirmed address, the camera and its agent.
    let (config, cam) = provision_relay(
        dir,
        &format!(
            "[mail]\nsmtp_url = \"smtp://127.0.0.1:{}\"\nalert_cooldown = \"1s\"\n\
             [push]\nallow_private_endpoints = true\n",
            sink.port
        ),
        "fixed",
        "agent",
    )?;
    let (_relay, base) = start_relay(&config, &dir.join("relay.log"))?;
    let http = bench_login(&base).await?;
    sink.confirm_alert_address(&http, &base, "home@example.jp")
        .await?;
    let push = PushService::start().await?;
    let device = http
        .post(format!("{base}/api/push/devices"))
        .header("origin", &base)
        .json(&push.device("phone", 1))
        .send()
        .await?;
    ensure!(device.status() == 201, "push device: {}", device.status());
    let uplink = Uplink::start(&base, None).await?;

    let sim_log = dir.join("sim.log");
    let mut args = vec![
        "--motion-offset".to_owned(),
        format!("{OFFSET_MS}ms"),
        "--motion-every".into(),
        format!("{EVERY_MS}ms"),
        "--motion-crossing".into(),
        "3s".into(),
    ];
    args.extend(sim_args.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_sim, camera) = start_simulator("fixed", "127.0.0.1:0", &args, &sim_log)?;
    let scene_started: i64 = std::fs::read_to_string(&sim_log)?
        .split("scene_started_unix_ms=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .context("the simulator's scene start in its log")?
        .parse()?;
    std::fs::write(
        dir.join("agent.token"),
        cam["agent_token"].as_str().context("token")?,
    )?;
    std::fs::write(dir.join("agent.toml"), agent_config)?;
    let mut agent = Command::new(target_bin("eyeward-agent")?);
    agent
        .args([
            "run",
            "--relay",
            &uplink.base,
            "--camera",
            &camera,
            "--token-file",
        ])
        .arg(dir.join("agent.token"))
        .arg("--config")
        .arg(dir.join("agent.toml"))
        .env("RUST_LOG", "warn")
        .stderr(std::fs::File::create(dir.join("agent.log"))?);
    let _agent = Running(dies_with_parent(&mut agent).spawn()?);

    eprintln!(
        "waiting for {n} crossings, one every {} s (about {} s)",
        EVERY_MS / 1000,
        (OFFSET_MS + EVERY_MS * n as i64) / 1000 + 5
    );
    let deadline =
        Instant::now() + Duration::from_millis((OFFSET_MS + EVERY_MS * (n as i64 + 3)) as u64);
    let alerts = loop {
        let alerts: Vec<Accepted> = sink
            .accepted()?
            .into_iter()
            .filter(|m| m.alert_event().is_some())
            .collect();
        if alerts.len() >= n {
            break alerts;
        }
        if Instant::now() > deadline {
            bail!("{} alert mails of {n}; see {}", alerts.len(), dir.display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The last clips upload after their events: a moment for them.
    let clips_on = agent_config.contains("[clips]");
    if clips_on {
        tokio::time::sleep(Duration::from_secs(15)).await;
    }

    // Each alert's push, a moment after its mail at most.
    let pushes = push
        .wait_for("a push for each alert", Duration::from_secs(10), |d| {
            d.len() >= alerts.len()
        })
        .await?;
    ensure!(
        push.refused().is_empty(),
        "pushes refused: {:?}",
        push.refused()
    );
    let events: Vec<Value> = http
        .get(format!("{base}/api/cameras/{}/events?limit=200", cam["id"]))
        .send()
        .await?
        .json()
        .await?;
    let parse = |s: &Value| -> Result<i64> {
        let t = time::OffsetDateTime::parse(
            s.as_str().context("a time")?,
            &time::format_description::well_known::Rfc3339,
        )?;
        Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
    };
    let mut run = Run::default();
    for alert in alerts.iter().take(n) {
        let id = alert.alert_event().context("event id")?;
        let event = events
            .iter()
            .find(|e| e["id"] == id)
            .context("the alert's event")?;
        let (captured, received) = (parse(&event["at"])?, parse(&event["received_at"])?);
        // The crossing that this event is: the last scripted entry before its capture.
        let k = (captured - scene_started - OFFSET_MS).div_euclid(EVERY_MS);
        let onset = scene_started + OFFSET_MS + k * EVERY_MS;
        run.spans.total.push(alert.at_ms - onset);
        run.spans.detect.push(captured - onset);
        run.spans.upload.push(received - captured);
        run.spans.mailing.push(alert.at_ms - received);
        let url = format!("#event/{id}");
        if let Some(pushed) = pushes
            .iter()
            .find(|p| p.payload["url"].as_str().is_some_and(|u| u.ends_with(&url)))
        {
            run.spans.push_total.push(pushed.at_ms - onset);
            run.spans.pushing.push(pushed.at_ms - received);
        }
    }
    for e in events.iter().filter(|e| e["clip"].is_object()) {
        run.clips += 1;
        run.clip_bytes += e["clip"]["bytes"].as_u64().unwrap_or(0);
    }
    run.event_bytes_sent = uplink.posts();
    run.clip_bytes_sent = uplink.clip_requests();
    Ok(run)
}

/// The spans as a Markdown table: p50, p95 and the longest of each.
pub fn table(spans: &mut Spans) -> String {
    let mut out =
        String::from("| span | p50 ms | p95 ms | max ms |\n| --- | ---: | ---: | ---: |\n");
    for (name, v) in [
        ("entry → mail accepted by the SMTP server", &mut spans.total),
        ("detect: entry → snapshot captured", &mut spans.detect),
        ("upload: captured → stored at the relay", &mut spans.upload),
        (
            "mail: stored → accepted by the SMTP server",
            &mut spans.mailing,
        ),
        (
            "entry → push decrypted at the push service",
            &mut spans.push_total,
        ),
        ("push: stored → decrypted there", &mut spans.pushing),
    ] {
        if v.is_empty() {
            continue;
        }
        v.sort_unstable();
        out.push_str(&format!(
            "| {name} | {} | {} | {} |\n",
            percentile(v, 50.0),
            percentile(v, 95.0),
            v.last().copied().unwrap_or_default()
        ));
    }
    out
}
