//! Motion to mail: from the moment the simulator's scripted intruder enters the picture to the
//! moment the SMTP server (aiosmtpd, `tests/smtp/sink.py`) accepted the alert mail, p50 and p95
//! over N events, and where the time goes:
//!
//! - **detect**: entry → the snapshot's capture (`captured_at`: decode, detector, hysteresis);
//! - **upload**: capture → stored at the relay (`received_at`: JPEG, fsync into the agent's
//!   queue, HTTP upload, the relay's checks, fsync, commit);
//! - **mail**: stored → accepted by the SMTP server (the outbox, rendering, SMTP).
//!
//! Release binaries on loopback; all clocks are this machine's. `bench/mail.sh` runs it.

use anyhow::{Context, Result, bail};
use eyeward_bench::mail::{Accepted, Sink};
use eyeward_bench::process::{
    Running, bench_login, dies_with_parent, provision_relay, start_relay, start_simulator,
    target_bin,
};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

/// The simulator's script: the first crossing 3 s after start, then every 8 s, 3 s each (the
/// agent's default cooldown is 5 s after an event ends: one event per crossing).
const OFFSET_MS: i64 = 3000;
const EVERY_MS: i64 = 8000;

fn percentile(sorted: &[i64], p: f64) -> i64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(Ok(20), |s| s.parse())
        .context("number of events")?;
    let dir = std::env::temp_dir().join(format!("eyeward-mail-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    let sink = Sink::start(&dir)?;

    // The relay, its customer with one confirmed address, the camera and its agent.
    let (config, cam) = provision_relay(
        &dir,
        &format!(
            "[mail]\nsmtp_url = \"smtp://127.0.0.1:{}\"\nalert_cooldown = \"1s\"\n",
            sink.port
        ),
        "fixed",
        "agent",
    )?;
    let (_relay, base) = start_relay(&config, &dir.join("relay.log"))?;
    let http = bench_login(&base).await?;
    sink.confirm_alert_address(&http, &base, "home@example.jp")
        .await?;

    let sim_log = dir.join("sim.log");
    let (_sim, camera) = start_simulator(
        "fixed",
        "127.0.0.1:0",
        &[
            "--motion-offset",
            &format!("{OFFSET_MS}ms"),
            "--motion-every",
            &format!("{EVERY_MS}ms"),
            "--motion-crossing",
            "3s",
        ],
        &sim_log,
    )?;
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
    let mut agent = Command::new(target_bin("eyeward-agent")?);
    agent
        .args(["run", "--relay", &base, "--camera", &camera, "--token-file"])
        .arg(dir.join("agent.token"))
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
    let (mut total, mut detect, mut upload, mut mailing) = (vec![], vec![], vec![], vec![]);
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
        total.push(alert.at_ms - onset);
        detect.push(captured - onset);
        upload.push(received - captured);
        mailing.push(alert.at_ms - received);
    }
    println!("## Motion to mail ({n} crossings, release build, loopback)\n");
    println!("| span | p50 ms | p95 ms | max ms |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, v) in [
        ("entry → mail accepted by the SMTP server", &mut total),
        ("detect: entry → snapshot captured", &mut detect),
        ("upload: captured → stored at the relay", &mut upload),
        ("mail: stored → accepted by the SMTP server", &mut mailing),
    ] {
        v.sort_unstable();
        println!(
            "| {name} | {} | {} | {} |",
            percentile(v, 50.0),
            percentile(v, 95.0),
            v.last().copied().unwrap_or_default()
        );
    }
    let p95 = percentile(&total, 95.0);
    println!(
        "\ngoal: p95 ≤ 1500 ms: {}",
        if p95 <= 1500 { "met" } else { "NOT met" }
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
