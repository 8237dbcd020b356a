//! The event clips' benchmark on the agent (`bench/clips.sh`, issue 24): what making clips
//! adds to the agent reading the simulator's 720p 15 fps stream at about 2 Mbit/s (grain 8),
//! its intruder crossing every 20 s. `eyeward-agent detect` on the live stream, without and
//! with `--clips` (pre-roll 5 s, post-roll 10 s), for `SECONDS` each after 5 s of warm-up:
//! CPU (share of one core) and peak resident and private memory, the clips written, the
//! bytes the pre-roll ring held and the stream's bytes of a pre-roll (from the clips' own size
//! and length). Goals: the pre-roll ring at most twice the stream's bytes of a pre-roll; CPU
//! added at most 1% of a core (no decoding or encoding for clips).
//!
//! Then the whole path, relay and agent, twice with `EVENTS` crossings each, without and with
//! clips ([`eyeward_bench::alerts`]): motion to mail (goal: p95 unchanged with clips on) and
//! the bytes the agent sent for its clips against the clips' own (goal ≤ 1.05 ×).
//!
//! `clips [SECONDS] [EVENTS]` (defaults 40 and 15); prints a Markdown section.

use anyhow::{Context, Result};
use eyeward_bench::alerts::{motion_to_mail, percentile, table};
use eyeward_bench::process::{
    Load, Running, dies_with_parent, measure, start_simulator, target_bin,
};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The pre-roll asked for.
const PRE_ROLL: Duration = Duration::from_secs(5);

/// Runs `detect` on `camera` with `extra` arguments for `span` after a warm-up; its load and
/// the JSON lines it printed by then.
fn detect(dir: &Path, camera: &str, extra: &[&str], span: Duration) -> Result<(Load, Vec<Value>)> {
    let out = dir.join(format!("detect-{}.out", extra.len()));
    let mut agent = Command::new(target_bin("eyeward-agent")?);
    agent
        .arg("detect")
        .arg(camera)
        .args(extra)
        .stdout(std::fs::File::create(&out)?)
        .stderr(Stdio::null());
    let agent = Running(dies_with_parent(&mut agent).spawn()?);
    std::thread::sleep(Duration::from_secs(5));
    let load = measure(agent.pid(), span)?;
    drop(agent);
    let lines = std::fs::read_to_string(&out)?
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    Ok((load, lines))
}

fn main() -> Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()
        .context("SECONDS")?
        .unwrap_or(40);
    let span = Duration::from_secs(seconds);
    let events: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse())
        .transpose()
        .context("EVENTS")?
        .unwrap_or(15);
    let dir = std::env::temp_dir().join(format!("eyeward-clips-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // Sensor grain makes the encoder spend its whole bitrate, as a real street does.
    let (_sim, camera) = start_simulator(
        "fixed",
        "127.0.0.1:0",
        &[
            "--motion-every",
            "20s",
            "--motion-offset",
            "8s",
            "--grain",
            "8",
        ],
        &dir.join("sim.log"),
    )?;
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[clips]\npre_roll = \"{}s\"\npost_roll = \"10s\"\n",
            PRE_ROLL.as_secs()
        ),
    )?;
    let clips = dir.join("clips");
    eprintln!("detect without clips, {seconds} s…");
    let (bare, _) = detect(&dir, &camera, &[], span)?;
    eprintln!("detect with clips, {seconds} s…");
    let with_clips = [
        "--config",
        config.to_str().context("utf-8")?,
        "--clips",
        clips.to_str().context("utf-8")?,
    ];
    let (clipping, lines) = detect(&dir, &camera, &with_clips, span)?;
    let written: Vec<&Value> = lines.iter().filter(|l| l.get("clip").is_some()).collect();
    let (bytes, ms) = written.iter().fold((0u64, 0u64), |(b, m), c| {
        (
            b + c["bytes"].as_u64().unwrap_or(0),
            m + c["length_ms"].as_u64().unwrap_or(0),
        )
    });
    let ring = written
        .iter()
        .filter_map(|c| c["pre_roll_bytes"].as_u64())
        .max()
        .unwrap_or(0) as f64;
    // The stream's bytes a second, from the clips (their boxes are a fraction of a percent).
    let per_second = if ms > 0 {
        bytes as f64 * 1000.0 / ms as f64
    } else {
        0.0
    };
    let pre_roll_bytes = per_second * PRE_ROLL.as_secs_f64();

    let mb = |b: f64| b / 1e6;
    println!("## Event clips on the agent (`bench/clips.sh`)\n");
    println!(
        "`eyeward-agent detect` on the simulator's 720p 15 fps stream (grain 8, a keyframe every \
         4 s, the intruder every 20 s), {seconds} s each after 5 s of warm-up; with clips: \
         pre-roll {} s, post-roll 10 s. {} clips written, {:.0} kbit/s of stream in them.\n",
        PRE_ROLL.as_secs(),
        written.len(),
        per_second * 8.0 / 1000.0
    );
    println!("| | CPU (share of one core) | peak RSS (MB) | of it private (MB) |");
    println!("| --- | ---: | ---: | ---: |");
    for (what, load) in [("without clips", &bare), ("with clips", &clipping)] {
        println!(
            "| {what} | {:.2}% | {:.1} | {:.1} |",
            load.cpu * 100.0,
            mb(load.rss as f64),
            mb(load.anon as f64)
        );
    }
    let added_cpu = (clipping.cpu - bare.cpu) * 100.0;
    let added_private = clipping.anon as f64 - bare.anon as f64;
    println!(
        "| added | {added_cpu:+.2}% (goal ≤ 1%) | {:+.1} | {:+.1} |",
        mb(clipping.rss as f64 - bare.rss as f64),
        mb(added_private),
    );
    println!(
        "\nThe pre-roll ring held {:.2} MB at most when a clip began: {:.2} × the stream's \
         {:.2} MB of a pre-roll (goal ≤ 2; it reaches back from a keyframe, so up to a group of \
         pictures more). The rest of what clips add is the muxer's and the allocator's.",
        mb(ring),
        ring / pre_roll_bytes.max(1.0),
        mb(pre_roll_bytes)
    );

    // The whole path, without and with clips.
    let runtime = tokio::runtime::Runtime::new()?;
    let grain = ["--grain", "8"];
    let with_clips_config = format!(
        "[clips]\nenabled = true\npre_roll = \"{}s\"\npost_roll = \"10s\"\n",
        PRE_ROLL.as_secs()
    );
    eprintln!("motion to mail without clips, {events} crossings…");
    let mut without = runtime.block_on(motion_to_mail(&dir.join("without"), events, &grain, ""))?;
    eprintln!("motion to mail with clips, {events} crossings…");
    let mut with = runtime.block_on(motion_to_mail(
        &dir.join("with"),
        events,
        &grain,
        &with_clips_config,
    ))?;
    println!(
        "\n### Motion to mail, without and with clips\n\nThe relay and the agent (release \
         builds, loopback), {events} crossings each, one every {} s, the same stream. With \
         clips, each event's clip (pre-roll {} s, up to the next event) uploads after its \
         snapshot, giving way to the next event's.\n",
        eyeward_bench::alerts::EVERY_MS / 1000,
        PRE_ROLL.as_secs()
    );
    println!("Without clips:\n\n{}", table(&mut without.spans));
    println!("With clips:\n\n{}", table(&mut with.spans));
    let (p95_without, p95_with) = (
        percentile(&without.spans.total, 95.0),
        percentile(&with.spans.total, 95.0),
    );
    println!(
        "Entry to mail, p95: {p95_without} ms without clips, {p95_with} ms with ({:+} ms; \
         goal: unchanged).\n",
        p95_with - p95_without
    );
    println!(
        "Upstream: {} clips stored, {:.2} MB; the agent sent {:.2} MB for them (HEAD and \
         PUT, headers included): {:.3} × (goal ≤ 1.05). Its event uploads took {:.2} MB with \
         clips, {:.2} MB without.",
        with.clips,
        mb(with.clip_bytes as f64),
        mb(with.clip_bytes_sent as f64),
        with.clip_bytes_sent as f64 / (with.clip_bytes as f64).max(1.0),
        mb(with.event_bytes_sent as f64),
        mb(without.event_bytes_sent as f64)
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
