//! Pan-tilt command latency: from a press of the live view's arrow in Chromium (the
//! pointerdown event's time) to the simulated camera's move starting, as the simulator logs
//! it ("pan-tilt: continuous move"), through the relay (HTTP, the per-camera gate), the
//! agent's link and its ONVIF driver. The floor, measured in the same run: ContinuousMove
//! sent straight to the camera's ONVIF service. p50 and p95 of each; the goal is p95 ≤ 150 ms.
//!
//! Release binaries on loopback inside a network namespace of their own; all clocks are this
//! machine's. `bench/ptz.sh` runs it.

use anyhow::{Context, Result, bail};
use eyeward_bench::process::{
    BENCH_EMAIL, BENCH_PASSWORD, Running, bench_login, dies_with_parent, provision_relay,
    start_relay, start_simulator, target_bin,
};
use eyeward_bench::quantile;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// When the simulator logged each move's start, in Unix ms.
fn move_starts(log: &Path) -> Result<Vec<f64>> {
    std::fs::read_to_string(log)?
        .lines()
        .filter(|l| l.contains("pan-tilt: continuous move") && !l.contains("timed out"))
        .map(|l| {
            let stamp = l.split_whitespace().next().context("a timestamp")?;
            let at =
                time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)?;
            Ok(at.unix_timestamp_nanos() as f64 / 1e6)
        })
        .collect()
}

/// For each command time, how long until the first move start after it.
fn delays(sent: &[f64], starts: &[f64]) -> Result<Vec<f64>> {
    sent.iter()
        .map(|&t| {
            starts
                .iter()
                .find(|&&s| s >= t - 1.0)
                .map(|s| s - t)
                .context("a command the camera never logged")
        })
        .collect()
}

fn summary(name: &str, ms: &[f64]) -> Value {
    let (p50, p95, max) = (quantile(ms, 0.5), quantile(ms, 0.95), quantile(ms, 1.0));
    println!(
        "{name:<28} n={:<3} p50 {p50:6.1} ms   p95 {p95:6.1} ms   max {max:6.1} ms",
        ms.len()
    );
    json!({ "p50_ms": p50, "p95_ms": p95, "max_ms": max, "n": ms.len() })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let presses: usize = std::env::args()
        .nth(1)
        .map_or(Ok(40), |s| s.parse())
        .context("number of presses")?;
    let dir = std::env::temp_dir().join(format!("eyeward-ptz-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (config, cam) = provision_relay(
        &dir,
        "[webrtc]\nice_addresses = [\"127.0.0.1\"]\n",
        "pan-tilt",
        "agent",
    )?;
    let (_relay, base) = start_relay(&config, &dir.join("relay.log"))?;
    let onvif_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let onvif = format!("http://127.0.0.1:{onvif_port}/onvif");
    let sim_log = dir.join("sim.log");
    let (_sim, camera) = start_simulator(
        "pan-tilt",
        "127.0.0.1:0",
        &[
            "--motion-every",
            "0s",
            "--onvif-listen",
            &format!("127.0.0.1:{onvif_port}"),
        ],
        &sim_log,
    )?;
    std::fs::write(
        dir.join("agent.token"),
        cam["agent_token"].as_str().context("token")?,
    )?;
    let mut agent = Command::new(target_bin("eyeward-agent")?);
    agent
        .args(["run", "--relay", &base, "--camera", &camera, "--token-file"])
        .arg(dir.join("agent.token"))
        .args(["--onvif", &format!("{onvif}/device_service")])
        .env("RUST_LOG", "warn")
        .stderr(std::fs::File::create(dir.join("agent.log"))?);
    let _agent = Running(dies_with_parent(&mut agent).spawn()?);

    let http = bench_login(&base).await?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let cams: Value = http
            .get(format!("{base}/api/cameras"))
            .send()
            .await?
            .json()
            .await?;
        if cams[0]["online"] == true {
            break;
        }
        if Instant::now() > deadline {
            bail!("the camera did not come online: {cams}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("ptz.mjs");
    let out = tokio::process::Command::new("node")
        .arg(script)
        .env("BASE_URL", &base)
        .env("EMAIL", BENCH_EMAIL)
        .env("PASSWORD", BENCH_PASSWORD)
        .env("CAMERA_ID", cam["id"].to_string())
        .env("PRESSES", presses.to_string())
        .env("PTZ_URL", format!("{onvif}/ptz_service"))
        .stdout(Stdio::piped())
        .spawn()?
        .wait_with_output()
        .await?;
    if !out.status.success() {
        bail!("ptz.mjs failed");
    }
    let v: Value = serde_json::from_slice(&out.stdout)?;
    let times = |k: &str| -> Result<Vec<f64>> {
        v[k].as_array()
            .context("ptz.mjs output")?
            .iter()
            .map(|x| x.as_f64().context("ms"))
            .collect()
    };
    let starts = move_starts(&sim_log)?;
    let through = delays(&times("presses")?, &starts)?;
    let direct = delays(&times("direct")?, &starts)?;
    println!("pan-tilt command latency, press → the camera's move starts (release, loopback):");
    let ours = summary("browser → relay → agent", &through);
    let floor = summary("straight to the camera", &direct);
    let p95 = ours["p95_ms"].as_f64().unwrap_or(f64::MAX);
    println!(
        "goal p95 ≤ 150 ms: {} ({p95:.1} ms); the relay and link add {:.1} ms at p50",
        if p95 <= 150.0 { "met" } else { "NOT met" },
        ours["p50_ms"].as_f64().unwrap_or(0.0) - floor["p50_ms"].as_f64().unwrap_or(0.0)
    );
    println!("{}", json!({ "eyeward": ours, "direct": floor }));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
