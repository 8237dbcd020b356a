//! Backups of a serving relay (issue 27), on release builds, SQLite and files in `data_dir`:
//! `eyeward-relay admin backup` of a relay holding N events with pictures (100,000 unless
//! told) while a steady load runs against the relay.
//!
//! 1. **Fill**: N events over 20 cameras, 32 uploads at once, as fast as they are answered.
//! 2. **Without a backup**: 30 s of the steady load alone: 20 event uploads a second (the
//!    rate of the test) and `/healthz` 20 times a second; ingest p95, `/healthz` p99.
//! 3. **During the first backup**, into an empty folder: the same load and figures over the
//!    backup's span; the backup's time and throughput.
//! 4. **During a second backup** into the same folder: what an incremental one takes.
//!
//! Printed: the figures, and the ratios during against without (goal: ≤ 1.5×).
//! `bench/backup.sh [EVENTS] [MAX_RATE]` runs it (`MAX_RATE`: the backup's `--max-rate`, in
//! MB/s, 0 for none; its default without).

use anyhow::{Context, Result};
use eyeward_bench::ingest::{jpeg, upload};
use eyeward_bench::process::{add_camera, provision_customer, relay_admin, start_relay};
use eyeward_bench::quantile;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Cameras the events spread over.
const CAMERAS: usize = 20;
/// Uploads in flight at once while filling.
const FILL_WORKERS: usize = 32;
/// The steady load: an upload and a `/healthz` each this often.
const STEADY_EVERY: Duration = Duration::from_millis(50);
/// How long the load runs alone.
const ALONE: Duration = Duration::from_secs(30);

/// What the steady load saw: ingest and `/healthz` times, in milliseconds.
#[derive(Default)]
struct Seen {
    ingest_ms: Vec<f64>,
    healthz_ms: Vec<f64>,
}

impl Seen {
    fn ingest_p95(&self) -> f64 {
        quantile(&self.ingest_ms, 0.95)
    }
    fn healthz_p99(&self) -> f64 {
        quantile(&self.healthz_ms, 0.99)
    }
}

/// Runs the steady load on the relay at `base` (uploads as the camera with `token`) until
/// `work` ends; what the load saw, and what `work` gave.
async fn under_steady_load<T>(
    base: &str,
    token: &str,
    phase: &str,
    work: impl Future<Output = Result<T>>,
) -> Result<(Seen, T)> {
    let http = reqwest::Client::new();
    let stop = AtomicBool::new(false);
    let picture = jpeg()?;
    let uploads = async {
        let mut took = Vec::new();
        let mut tick = tokio::time::interval(STEADY_EVERY);
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            n += 1;
            let key = format!("steady-{phase}-{n:06}");
            took.push(upload(&http, base, token, &key, &picture).await?);
        }
        anyhow::Ok(took)
    };
    let health = async {
        let mut took = Vec::new();
        let mut tick = tokio::time::interval(STEADY_EVERY);
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let started = Instant::now();
            let answer = http.get(format!("{base}/healthz")).send().await?;
            anyhow::ensure!(answer.status() == 200, "/healthz: {}", answer.status());
            answer.bytes().await?;
            took.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        anyhow::Ok(took)
    };
    let work = async {
        let done = work.await;
        stop.store(true, Ordering::Relaxed);
        done
    };
    let (ingest_ms, healthz_ms, done) = tokio::join!(uploads, health, work);
    Ok((
        Seen {
            ingest_ms: ingest_ms?,
            healthz_ms: healthz_ms?,
        },
        done?,
    ))
}

/// `admin backup --to folder [--max-rate MB/s]`, timed; its summary and the wall time in
/// seconds.
async fn backup(
    config: &Path,
    folder: &Path,
    max_rate: Option<u32>,
) -> Result<(serde_json::Value, f64)> {
    let (config, folder) = (config.to_owned(), folder.to_owned());
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut args = vec![
            "backup".to_owned(),
            "--to".to_owned(),
            folder.to_str().context("utf-8")?.to_owned(),
        ];
        if let Some(rate) = max_rate {
            args.extend(["--max-rate".to_owned(), rate.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let summary = relay_admin(&config, &args, "")?;
        Ok((summary, started.elapsed().as_secs_f64()))
    })
    .await?
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let events: usize = std::env::args()
        .nth(1)
        .map_or(Ok(100_000), |s| s.parse())
        .context("events to fill the relay with")?;
    let max_rate: Option<u32> = std::env::args()
        .nth(2)
        .map(|s| s.parse())
        .transpose()
        .context("the backup's --max-rate")?;
    let dir = std::env::temp_dir().join(format!("eyeward-backup-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (config, customer) =
        provision_customer(&dir, "[events]\nmax_per_minute_per_camera = 1000000\n")?;
    let mut tokens = Vec::new();
    for n in 0..=CAMERAS {
        let cam = add_camera(&config, customer, &format!("Camera {n}"), "fixed", "agent")?;
        tokens.push(cam["agent_token"].as_str().context("token")?.to_owned());
    }
    let steady_token = tokens.pop().context("the steady camera")?;
    let (_relay, base) = start_relay(&config, &dir.join("relay.log"))?;

    eprintln!("filling the relay with {events} events...");
    let filled = Instant::now();
    let picture = Arc::new(jpeg()?);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let fillers: Vec<_> = (0..FILL_WORKERS)
        .map(|_| {
            let (http, base, picture, next) = (
                reqwest::Client::new(),
                base.clone(),
                picture.clone(),
                next.clone(),
            );
            let tokens = tokens.clone();
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= events {
                        return anyhow::Ok(());
                    }
                    let key = format!("fill-{n:08}");
                    upload(&http, &base, &tokens[n % CAMERAS], &key, &picture).await?;
                }
            })
        })
        .collect();
    for filler in fillers {
        filler.await??;
    }
    let fill_s = filled.elapsed().as_secs_f64();
    eprintln!(
        "filled in {fill_s:.0} s; the load alone for {} s...",
        ALONE.as_secs()
    );

    let (alone, ()) = under_steady_load(&base, &steady_token, "alone", async {
        tokio::time::sleep(ALONE).await;
        Ok(())
    })
    .await?;
    eprintln!("the first backup, under the load...");
    let folder = dir.join("backup");
    let (first, (first_summary, first_s)) = under_steady_load(
        &base,
        &steady_token,
        "first",
        backup(&config, &folder, max_rate),
    )
    .await?;
    eprintln!("a second backup into the same folder, under the load...");
    let (again, (again_summary, again_s)) = under_steady_load(
        &base,
        &steady_token,
        "again",
        backup(&config, &folder, max_rate),
    )
    .await?;
    let verify_started = Instant::now();
    relay_admin(
        &config,
        &["verify-backup", "--from", folder.to_str().context("utf-8")?],
        "",
    )?;
    let verify_s = verify_started.elapsed().as_secs_f64();

    let mb = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0) / 1e6;
    let objects = first_summary["objects"].as_f64().unwrap_or(0.0);
    let bytes = mb(&first_summary["bytes_copied"]) + mb(&first_summary["database_bytes"]);
    let rate = max_rate.map_or("its default".to_owned(), |r| format!("{r} MB/s"));
    println!(
        "## Backup of a serving relay ({events} events with pictures, SQLite and files, --max-rate {rate}, release build, loopback)\n"
    );
    println!(
        "Filled in {fill_s:.0} s ({:.0} events/s, {FILL_WORKERS} uploads at once). The steady load: an upload and a `/healthz` every {} ms.\n",
        events as f64 / fill_s,
        STEADY_EVERY.as_millis()
    );
    println!("| phase | span s | uploads | ingest p95 ms | `/healthz` p99 ms |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, seen, span) in [
        ("the load alone", &alone, ALONE.as_secs_f64()),
        ("during the first backup", &first, first_s),
        ("during a second backup (incremental)", &again, again_s),
    ] {
        println!(
            "| {name} | {span:.1} | {} | {:.1} | {:.1} |",
            seen.ingest_ms.len(),
            seen.ingest_p95(),
            seen.healthz_p99()
        );
    }
    println!(
        "\nFirst backup: {:.0} objects and {bytes:.0} MB (database {:.0} MB) in {first_s:.1} s: \
         {:.0} objects/s, {:.0} MB/s. Second: {again_s:.1} s, {} objects copied. \
         verify-backup: {verify_s:.1} s.",
        objects,
        mb(&first_summary["database_bytes"]),
        objects / first_s,
        bytes / first_s,
        again_summary["objects_copied"]
    );
    let ingest = first.ingest_p95() / alone.ingest_p95();
    let health = first.healthz_p99() / alone.healthz_p99();
    let verdict = |r: f64| if r <= 1.5 { "met" } else { "NOT met" };
    println!(
        "\nDuring the first backup against the load alone: ingest p95 ×{ingest:.2} ({}), \
         `/healthz` p99 ×{health:.2} ({}); goal ≤ 1.5× each.",
        verdict(ingest),
        verdict(health)
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
