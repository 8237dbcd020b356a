//! The relay under abuse, against itself at rest: its peak resident memory and `/healthz`
//! p50/p99 while
//! - (a) 1,000 logins arrive at once (made-up accounts, each from an address of its own
//!   through the trusted proxy's `X-Forwarded-For`, so no limiter stops them: the password
//!   checks' own cap must);
//! - (b) 48 flat 8K JPEGs (a few hundred KB each, 100 MB decoded) are uploaded at once with a
//!   camera's token;
//! - (c) 2,000 connections send a request's first lines and never the rest.
//!
//! And whether an honest viewer's live video goes on through each (RTP packets keep coming).
//! Goals: peak RSS under 300 MiB, `/healthz` p99 under 100 ms, the viewer never stops.
//!
//! Release builds, loopback only; `bench/abuse.sh` runs it inside a network namespace of its
//! own.

use anyhow::{Context, Result, bail, ensure};
use eyeward_bench::process::{
    BENCH_EMAIL, BENCH_PASSWORD, Running, add_camera, dies_with_parent, flat_8k_jpeg,
    provision_customer, start_relay, start_simulator, target_bin, usage,
};
use eyeward_bench::quantile;
use eyeward_bench::viewer::{self, Eyeward};
use serde_json::{Value, json};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// What the watchers saw during one phase.
struct Seen {
    peak_rss_mib: f64,
    health_ms: Vec<f64>,
    /// The viewer's longest stretch without an RTP packet.
    longest_gap: Duration,
}

/// Samples the relay's RSS, `/healthz` and the viewer's packets until `stop` is set.
async fn watch(
    pid: u32,
    base: String,
    viewer: Arc<viewer::Viewer>,
    stop: Arc<AtomicBool>,
) -> Result<Seen> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(u) = usage(pid) {
                    peak.fetch_max(u.rss_bytes, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let mut health_ms = Vec::new();
    let (mut last_packets, mut last_change, mut longest_gap) =
        (viewer.packets(), Instant::now(), Duration::ZERO);
    while !stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        let ok = http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        health_ms.push(if ok {
            start.elapsed().as_secs_f64() * 1000.0
        } else {
            f64::INFINITY
        });
        let packets = viewer.packets();
        if packets != last_packets {
            (last_packets, last_change) = (packets, Instant::now());
        }
        longest_gap = longest_gap.max(last_change.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sampler.await?;
    Ok(Seen {
        peak_rss_mib: peak.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0),
        health_ms,
        longest_gap,
    })
}

/// Runs `load` while watching; prints and returns the phase's figures.
async fn phase<F: std::future::Future<Output = Result<String>>>(
    name: &str,
    relay: &Running,
    base: &str,
    viewer: &Arc<viewer::Viewer>,
    load: F,
) -> Result<Value> {
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch(
        relay.pid(),
        base.to_owned(),
        viewer.clone(),
        stop.clone(),
    ));
    let started = Instant::now();
    let outcome = load.await?;
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let seen = watcher.await??;
    let (p50, p99) = (
        quantile(&seen.health_ms, 0.5),
        quantile(&seen.health_ms, 0.99),
    );
    println!(
        "{name:<34} peak RSS {:6.1} MiB   /healthz p50 {p50:6.2} ms  p99 {p99:7.2} ms   viewer's longest gap {:5} ms   {:.1} s; {outcome}",
        seen.peak_rss_mib,
        seen.longest_gap.as_millis(),
        took.as_secs_f64()
    );
    Ok(json!({
        "peak_rss_mib": seen.peak_rss_mib,
        "healthz_p50_ms": p50,
        "healthz_p99_ms": p99,
        "viewer_longest_gap_ms": seen.longest_gap.as_millis() as u64,
        "seconds": took.as_secs_f64(),
        "outcome": outcome,
    }))
}

/// Sends every request at once; their answers in order.
async fn all_at_once(
    requests: impl Iterator<
        Item = impl std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
    >,
) -> Vec<reqwest::Result<reqwest::Response>> {
    let handles: Vec<_> = requests.map(tokio::spawn).collect();
    let mut answers = Vec::new();
    for h in handles {
        if let Ok(a) = h.await {
            answers.push(a);
        }
    }
    answers
}

/// Counts answers by status, as `"401×940 503×60"` (0: no answer).
fn tally(answers: &[reqwest::Result<reqwest::Response>]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for a in answers {
        let status = a.as_ref().map_or(0, |r| r.status().as_u16());
        *counts.entry(status).or_insert(0) += 1;
    }
    counts
        .iter()
        .map(|(s, n)| format!("{s}×{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::main]
async fn main() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("eyeward-abuse-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (config, customer) = provision_customer(
        dir.as_path(),
        "[webrtc]\nice_addresses = [\"127.0.0.1\"]\n[http]\ntrusted_proxies = [\"127.0.0.1\"]\n",
    )?;
    let camera = add_camera(&config, customer, "Street", "fixed", "agent")?;
    let token = camera["agent_token"].as_str().context("token")?.to_owned();
    let camera_id = camera["id"].as_i64().context("id")?;
    let (relay, base) = start_relay(&config, &dir.as_path().join("relay.log"))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let (_sim, url) = start_simulator(
        "fixed",
        &format!("127.0.0.1:{port}"),
        &[
            "--width",
            "1280",
            "--height",
            "720",
            "--keyframe-interval",
            "2s",
        ],
        &dir.as_path().join("sim.log"),
    )?;
    let token_file = dir.as_path().join("agent.token");
    std::fs::write(&token_file, &token)?;
    let mut agent = Command::new(target_bin("eyeward-agent")?);
    agent
        .args(["run", "--relay", &base, "--camera", &url, "--token-file"])
        .arg(&token_file)
        .env("RUST_LOG", "warn")
        .stderr(std::fs::File::create(dir.as_path().join("agent.log"))?);
    let _agent = Running(dies_with_parent(&mut agent).spawn()?);

    // The honest viewer.
    let eyeward = Eyeward::login(&base, BENCH_EMAIL, BENCH_PASSWORD).await?;
    let api = viewer::loopback_api()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let honest = loop {
        match eyeward.join(&api, camera_id).await {
            Ok(v) => break Arc::new(v),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => return Err(e.context("the honest viewer cannot join")),
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while honest.packets() < 100 {
        ensure!(Instant::now() < deadline, "the honest viewer gets no video");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("relay {base}; an honest viewer watches camera {camera_id}");

    let at_rest = phase("at rest (5 s)", &relay, &base, &honest, async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok("nothing".to_owned())
    })
    .await?;

    let logins = phase("(a) 1,000 logins at once", &relay, &base, &honest, async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(60))
            .build()?;
        let answers = all_at_once((0..1000).map(|i| {
            http.post(format!("{base}/api/login"))
                .header("x-forwarded-for", format!("10.{}.{}.1", i / 250, i % 250))
                .json(&json!({"email": format!("user{i}@example.jp"), "password": "not the password"}))
                .send()
        }))
        .await;
        Ok(tally(&answers))
    })
    .await?;

    let jpeg = flat_8k_jpeg(&dir)?;
    let uploads = phase(
        "(b) 48 flat 8K JPEGs at once",
        &relay,
        &base,
        &honest,
        async {
            let http = reqwest::Client::new();
            let now = eyeward::UnixMillis::now().0;
            let answers = all_at_once((0..48).map(|i| {
                http.post(format!(
                "{base}/agent/v1/events?key=abuse-{i:04}&captured_at={now}&score=0.04&bbox=0,0,8,8"
            ))
            .bearer_auth(&token)
            .header("content-type", "image/jpeg")
            .body(jpeg.clone())
            .send()
            }))
            .await;
            Ok(format!(
                "{} ({} KB each)",
                tally(&answers),
                jpeg.len() / 1024
            ))
        },
    )
    .await?;

    let addr = base.trim_start_matches("http://").to_owned();
    let slow = phase(
        "(c) 2,000 slow connections (15 s)",
        &relay,
        &base,
        &honest,
        async {
            let mut held = Vec::new();
            for _ in 0..2000 {
                match tokio::net::TcpStream::connect(&addr).await {
                    Ok(mut s) => {
                        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
                        held.push(s);
                    }
                    Err(e) => bail!("connecting: {e}"),
                }
            }
            tokio::time::sleep(Duration::from_secs(15)).await;
            // How many the relay has closed by now (a read gives 0 bytes at once).
            let mut closed = 0;
            for s in &mut held {
                let mut buf = [0u8; 1];
                if let Ok(Ok(0)) = tokio::time::timeout(
                    Duration::from_millis(1),
                    tokio::io::AsyncReadExt::read(s, &mut buf),
                )
                .await
                {
                    closed += 1;
                }
            }
            Ok(format!(
                "{closed} of {} closed by the relay after 15 s",
                held.len()
            ))
        },
    )
    .await?;

    let phases = [("(a)", &logins), ("(b)", &uploads), ("(c)", &slow)];
    let mut missed = Vec::new();
    for (name, p) in phases {
        if p["peak_rss_mib"].as_f64().unwrap_or(f64::MAX) >= 300.0 {
            missed.push(format!("{name} peak RSS"));
        }
        if p["healthz_p99_ms"].as_f64().unwrap_or(f64::MAX) >= 100.0 {
            missed.push(format!("{name} /healthz p99"));
        }
        if p["viewer_longest_gap_ms"].as_u64().unwrap_or(u64::MAX) >= 1000 {
            missed.push(format!("{name} the viewer's video stopped"));
        }
    }
    println!(
        "{}",
        json!({"at_rest": at_rest, "logins": logins, "uploads": uploads, "slow": slow, "missed": missed})
    );
    if missed.is_empty() {
        println!("every goal met (peak RSS < 300 MiB, /healthz p99 < 100 ms, no viewer gap ≥ 1 s)");
    } else {
        println!("goals missed: {}", missed.join(", "));
    }
    Ok(())
}
