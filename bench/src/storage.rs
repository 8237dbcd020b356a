//! The relay on its two storage backends, same machine, same run (issue 20): SQLite and files
//! in `data_dir` (synchronous FULL, each picture fsynced) against PostgreSQL (fsync and
//! synchronous commit on) and S3, Garage twice: with its data and metadata fsynced before a
//! `PUT` is answered (durable as one node) and with its defaults (no fsync: a cluster's other
//! copies keep the data).
//!
//! - **ingest**: agents' uploads (a 320×180 JPEG, the relay's checks, the picture stored, the
//!   row committed, the alert queued) from 16, then 32, connections at once over 20 cameras for
//!   the given seconds: p50/p95 from request to 201, and the events per second sustained;
//! - **console list**: a customer's page of 50 events on a camera, once the tables hold the
//!   ingest's events: p95;
//! - **motion to mail**: an upload to the alert mail accepted by a real SMTP server, each on
//!   a camera of its own (no cooldown in the way): p95;
//! - **CPU per event** during the ingest, split between the relay, the load (this process)
//!   and the rest of the machine (the database and object store servers); and the time the
//!   hypervisor stole, a sign of how busy this VM's neighbours were.
//!
//! Each backend runs `ROUNDS` times at each of `WORKERS`, in turns, and each figure is its
//! median round. Release binaries on loopback. `bench/storage.sh [SECONDS]` runs it.

use anyhow::{Context, Result, ensure};
use eyeward_bench::backend::Backend;
use eyeward_bench::ingest::{jpeg, upload};
use eyeward_bench::mail::Sink;
use eyeward_bench::process::{add_camera, bench_login, provision_customer, start_relay, usage};
use eyeward_bench::quantile;
use eyeward_testkit::garage::Garage;
use eyeward_testkit::postgres::Postgres;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Uploads in flight at once.
/// Uploads in flight at once: each backend is measured at each. A relay serving many cameras
/// has many in flight; the servers' backend gains from more (PostgreSQL commits several
/// transactions in one flush), SQLite from fewer (its writers queue for one lock).
const WORKERS: [usize; 2] = [16, 32];
/// Cameras the ingest spreads over.
const CAMERAS: usize = 20;
/// Motion-to-mail samples, one camera each.
const ALERTS: usize = 20;
/// Console list requests.
const LISTS: usize = 200;
/// Rounds of each backend, taken in turns: this VM's neighbours come and go (one round alone
/// can land in a busy or a quiet minute), so each figure is the backend's median round.
const ROUNDS: usize = 3;

/// What one backend did.
struct Figures {
    ingest_p50_ms: f64,
    ingest_p95_ms: f64,
    events_per_second: f64,
    list_p95_ms: f64,
    mail_p95_ms: f64,
    /// CPU milliseconds per ingested event: the relay, this process, everything else.
    cpu_ms: [f64; 3],
    /// The share of the machine's time the hypervisor gave to others during the ingest.
    steal: f64,
}

/// CPU time the whole machine has been busy so far (every core's time but idle, iowait and
/// steal), and the time stolen from it by the hypervisor.
fn machine_busy() -> Result<(Duration, Duration)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .context("/proc/stat")?
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    // user nice system idle iowait irq softirq steal.
    let busy: u64 = ticks.iter().take(7).sum::<u64>() - ticks[3] - ticks[4];
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let time = |t: u64| Duration::from_secs_f64(t as f64 / per_second);
    Ok((time(busy), time(ticks[7])))
}

async fn measure(backend: &Backend, n: usize, seconds: u64, workers: usize) -> Result<Figures> {
    let dir =
        std::env::temp_dir().join(format!("eyeward-storage-bench-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sink = Sink::start(&dir)?;
    let (config, customer) = provision_customer(
        &dir,
        &format!(
            "[mail]\nsmtp_url = \"smtp://127.0.0.1:{}\"\n[events]\n\
             max_per_minute_per_camera = 1000000\n{}",
            sink.port,
            backend.config(&dir)?
        ),
    )?;
    let mut tokens = Vec::new();
    for n in 0..CAMERAS + ALERTS {
        let cam = add_camera(&config, customer, &format!("Camera {n}"), "fixed", "agent")?;
        tokens.push(cam["agent_token"].as_str().context("token")?.to_owned());
    }
    let (relay, base) = start_relay(&config, &dir.join("relay.log"))?;
    let customer_http = bench_login(&base).await?;
    sink.confirm_alert_address(&customer_http, &base, "home@example.jp")
        .await?;
    let http = reqwest::Client::new();
    let jpeg = Arc::new(jpeg()?);

    // Motion to mail, first, while every alert camera is out of its cooldown.
    let mut mail_ms = Vec::new();
    for (n, token) in tokens[CAMERAS..].iter().enumerate() {
        let before = sink.count()?;
        let started = eyeward::UnixMillis::now().0;
        upload(&http, &base, token, &format!("alert-{n:05}"), &jpeg).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let accepted = loop {
            let alerts: Vec<_> = sink
                .accepted()?
                .into_iter()
                .skip(before)
                .filter(|m| m.alert_event().is_some())
                .collect();
            if let Some(first) = alerts.first() {
                break first.at_ms;
            }
            ensure!(Instant::now() < deadline, "no alert mail for upload {n}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        mail_ms.push((accepted - started) as f64);
    }

    // Ingest: every worker uploads as fast as it is answered, for `seconds`.
    let cpu_before = (
        usage(relay.pid())?.cpu,
        usage(std::process::id())?.cpu,
        machine_busy()?,
    );
    let until = Instant::now() + Duration::from_secs(seconds);
    let began = Instant::now();
    let uploaders: Vec<_> = (0..workers)
        .map(|w| {
            let (http, base, jpeg) = (http.clone(), base.clone(), jpeg.clone());
            let tokens: Vec<String> = tokens[..CAMERAS].to_vec();
            tokio::spawn(async move {
                let mut took = Vec::new();
                let mut n = 0;
                while Instant::now() < until {
                    let token = &tokens[(w + n) % CAMERAS];
                    took.push(
                        upload(&http, &base, token, &format!("ingest-{w:02}-{n:06}"), &jpeg)
                            .await?,
                    );
                    n += 1;
                }
                anyhow::Ok(took)
            })
        })
        .collect();
    let mut ingest_ms = Vec::new();
    for uploader in uploaders {
        ingest_ms.extend(uploader.await??);
    }
    let events_per_second = ingest_ms.len() as f64 / began.elapsed().as_secs_f64();
    let per_event = |d: Duration| d.as_secs_f64() * 1000.0 / ingest_ms.len() as f64;
    let relay_cpu = usage(relay.pid())?.cpu - cpu_before.0;
    let load_cpu = usage(std::process::id())?.cpu - cpu_before.1;
    let (busy, stolen) = machine_busy()?;
    let rest_cpu = (busy - cpu_before.2.0).saturating_sub(relay_cpu + load_cpu);
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let steal = (stolen - cpu_before.2.1).as_secs_f64() / (began.elapsed().as_secs_f64() * cores);
    let cpu_ms = [
        per_event(relay_cpu),
        per_event(load_cpu),
        per_event(rest_cpu),
    ];

    // The console's list, on tables that now hold the ingest.
    let cameras: Vec<serde_json::Value> = customer_http
        .get(format!("{base}/api/cameras"))
        .send()
        .await?
        .json()
        .await?;
    let mut list_ms = Vec::new();
    for n in 0..LISTS {
        let id = &cameras[n % CAMERAS]["id"];
        let started = Instant::now();
        let page = customer_http
            .get(format!("{base}/api/cameras/{id}/events?limit=50"))
            .send()
            .await?;
        ensure!(page.status() == 200, "list: {}", page.status());
        page.bytes().await?;
        list_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Figures {
        ingest_p50_ms: quantile(&ingest_ms, 0.50),
        ingest_p95_ms: quantile(&ingest_ms, 0.95),
        events_per_second,
        list_p95_ms: quantile(&list_ms, 0.95),
        mail_p95_ms: quantile(&mail_ms, 0.95),
        cpu_ms,
        steal,
    })
}

/// Each figure's median over the rounds.
fn median(rounds: &[Figures]) -> Figures {
    let of = |f: fn(&Figures) -> f64| quantile(&rounds.iter().map(f).collect::<Vec<_>>(), 0.5);
    Figures {
        ingest_p50_ms: of(|f| f.ingest_p50_ms),
        ingest_p95_ms: of(|f| f.ingest_p95_ms),
        events_per_second: of(|f| f.events_per_second),
        list_p95_ms: of(|f| f.list_p95_ms),
        mail_p95_ms: of(|f| f.mail_p95_ms),
        cpu_ms: [
            of(|f| f.cpu_ms[0]),
            of(|f| f.cpu_ms[1]),
            of(|f| f.cpu_ms[2]),
        ],
        steal: of(|f| f.steal),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map_or(Ok(20), |s| s.parse())
        .context("seconds of ingest")?;
    let backends = [
        Backend::Embedded,
        Backend::Servers {
            postgres: Box::new(Postgres::start()?),
            garage: Box::new(Garage::start_durable()?),
            name: "PostgreSQL + S3 (Garage, fsync)",
        },
        Backend::Servers {
            postgres: Box::new(Postgres::start()?),
            garage: Box::new(Garage::start()?),
            name: "PostgreSQL + S3 (Garage, its defaults)",
        },
    ];
    // rounds[level][backend]: every round's figures.
    let mut rounds: Vec<Vec<Vec<Figures>>> = WORKERS
        .iter()
        .map(|_| backends.iter().map(|_| Vec::new()).collect())
        .collect();
    let mut runs = 0;
    for round in 0..ROUNDS {
        for (level, &workers) in WORKERS.iter().enumerate() {
            for (n, backend) in backends.iter().enumerate() {
                eprintln!(
                    "round {} of {ROUNDS}: {}, {workers} uploads at once ({seconds} s of ingest)",
                    round + 1,
                    backend.name()
                );
                runs += 1;
                let figures = measure(backend, runs, seconds, workers).await?;
                eprintln!(
                    "  {:.0} events/s, ingest p95 {:.1} ms, steal {:.0}%",
                    figures.events_per_second,
                    figures.ingest_p95_ms,
                    figures.steal * 100.0
                );
                rounds[level][n].push(figures);
            }
        }
    }
    println!(
        "## Storage backends (median of {ROUNDS} rounds of {seconds} s of ingest, {CAMERAS} cameras, release build, loopback)\n"
    );
    println!(
        "| backend | uploads at once | ingest p50 ms | ingest p95 ms | events/s (each round) | console list p95 ms | motion to mail p95 ms | CPU ms/event: relay, load, servers | steal |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    let mut summary = Vec::new();
    for (level, &workers) in WORKERS.iter().enumerate() {
        let rows: Vec<Figures> = rounds[level].iter().map(|all| median(all)).collect();
        for ((backend, f), all) in backends.iter().zip(&rows).zip(&rounds[level]) {
            let each: Vec<String> = all
                .iter()
                .map(|r| format!("{:.0}", r.events_per_second))
                .collect();
            println!(
                "| {} | {workers} | {:.1} | {:.1} | {:.0} ({}) | {:.1} | {:.0} | {:.2}, {:.2}, {:.2} | {:.0}% |",
                backend.name(),
                f.ingest_p50_ms,
                f.ingest_p95_ms,
                f.events_per_second,
                each.join(", "),
                f.list_p95_ms,
                f.mail_p95_ms,
                f.cpu_ms[0],
                f.cpu_ms[1],
                f.cpu_ms[2],
                f.steal * 100.0
            );
        }
        let base = &rows[0];
        for (backend, other) in backends.iter().zip(&rows).skip(1) {
            let ratio = other.ingest_p95_ms / base.ingest_p95_ms;
            summary.push(format!(
                "{}, {workers} at once, against SQLite + files: ingest p95 ×{ratio:.2}, events/s ×{:.2}, \
                 list p95 ×{:.2}, mail p95 ×{:.2}\ngoals: ingest p95 ≤ 2× SQLite's: {}; \
                 ≥ 500 events/s sustained: {}",
                backend.name(),
                other.events_per_second / base.events_per_second,
                other.list_p95_ms / base.list_p95_ms,
                other.mail_p95_ms / base.mail_p95_ms,
                verdict(ratio <= 2.0),
                verdict(other.events_per_second >= 500.0)
            ));
        }
    }
    for line in summary {
        println!("\n{line}");
    }
    Ok(())
}
