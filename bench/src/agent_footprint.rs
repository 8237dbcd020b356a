//! The agent's footprint as built for a camera (`--no-default-features`: no simulator, no
//! RTSP or HTTP server) against its default build (with the simulator), measured in the same
//! run on the same work: the binary's size as built and stripped, and its memory and CPU
//! while it keeps its link and runs motion detection on a 1280×720 15 fps camera.
//!
//! Run `bench/footprint.sh [SECONDS]` (builds both release agents first).

use anyhow::{Context, Result, bail};
use eyeward::CameraId;
use eyeward_bench::process::{Running, provision_relay, start_simulator, target_bin, usage};
use eyeward_relay::config::Config;
use eyeward_relay::http;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One build's figures.
struct Footprint {
    size: u64,
    stripped: u64,
    /// Resident memory at the end, and at its highest.
    rss: u64,
    peak_rss: u64,
    /// CPU time per second of the run.
    cpu_share: f64,
}

/// Its size stripped of symbols: what a camera's flash would hold.
fn stripped_size(binary: &Path, dir: &Path) -> Result<u64> {
    let copy = dir.join("stripped");
    std::fs::copy(binary, &copy)?;
    let status = Command::new("strip").arg(&copy).status().context("strip")?;
    if !status.success() {
        bail!("strip failed on {}", binary.display());
    }
    Ok(std::fs::metadata(&copy)?.len())
}

/// Runs `binary` as the camera's agent for `secs` once it is linked.
async fn measure(binary: &Path, camera_url: &str, secs: Duration, dir: &Path) -> Result<Footprint> {
    let (config_file, cam) = provision_relay(dir, "", "fixed", "agent")?;
    let config = Config::parse(&std::fs::read_to_string(&config_file)?)?;
    let (relay_addr, state) = http::spawn(&config, std::future::pending()).await?;
    let token = cam["agent_token"].as_str().context("token")?;
    std::fs::write(dir.join("agent.token"), token)?;
    let agent = Command::new(binary)
        .args([
            "run",
            "--relay",
            &format!("http://{relay_addr}"),
            "--camera",
            camera_url,
        ])
        .arg("--token-file")
        .arg(dir.join("agent.token"))
        .stderr(Stdio::null())
        .spawn()?;
    let agent = Running(agent);
    let start = Instant::now();
    while !state.links.is_online(CameraId(1)) {
        if start.elapsed() > Duration::from_secs(10) {
            bail!("{} never came online", binary.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Past the start: the decoder's buffers filled, the first heartbeats sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = usage(agent.pid())?;
    let t0 = Instant::now();
    tokio::time::sleep(secs).await;
    let after = usage(agent.pid())?;
    let size = std::fs::metadata(binary)?.len();
    Ok(Footprint {
        size,
        stripped: stripped_size(binary, dir)?,
        rss: after.rss_bytes,
        peak_rss: after.peak_rss_bytes,
        cpu_share: (after.cpu - before.cpu).as_secs_f64() / t0.elapsed().as_secs_f64(),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let secs = Duration::from_secs(
        args.next()
            .map_or(Ok(20), |s| s.parse())
            .context("seconds")?,
    );
    let camera_build = PathBuf::from(args.next().context("the camera build's binary")?);
    let default_build = target_bin("eyeward-agent")?;
    let dir = std::env::temp_dir().join(format!("eyeward-footprint-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (_sim, camera_url) = start_simulator("fixed", "127.0.0.1:0", &[], &dir.join("sim.log"))?;

    let mut rows = Vec::new();
    for (name, binary) in [
        ("camera build", &camera_build),
        ("default build", &default_build),
    ] {
        let run_dir = dir.join(name.replace(' ', "-"));
        std::fs::create_dir_all(&run_dir)?;
        rows.push((name, measure(binary, &camera_url, secs, &run_dir).await?));
    }
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "agent footprint, {} s linked with motion detection on a 1280x720 15 fps camera",
        secs.as_secs()
    );
    println!("  build           size MiB  stripped MiB  RSS MiB  peak RSS MiB  CPU");
    for (name, f) in &rows {
        println!(
            "  {name:<14} {:>9.1} {:>13.1} {:>8.1} {:>13.1} {:>5.1}%",
            mib(f.size),
            mib(f.stripped),
            mib(f.rss),
            mib(f.peak_rss),
            f.cpu_share * 100.0
        );
    }
    let (camera, default) = (&rows[0].1, &rows[1].1);
    println!(
        "  camera / default: stripped size {:.2}, RSS {:.2}",
        camera.stripped as f64 / default.stripped as f64,
        camera.rss as f64 / default.rss as f64
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
