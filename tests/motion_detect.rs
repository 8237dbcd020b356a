//! `eyeward-agent detect` on recordings of the simulated camera (made with ffmpeg): the
//! scripted intruder's crossing is exactly one event, at the right time and place; a still
//! street, with its ticking on-screen clock and keyframes, gives none; bad input is a clean
//! error.

mod common;

use anyhow::{Context, Result, ensure};
use common::{Camera, bin};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Records `seconds` of the camera into `path` (H.264 copied, as a camera's recording is).
fn record(url: &str, seconds: u32, path: &Path) -> Result<()> {
    let status = Command::new("timeout")
        .args([
            "30",
            "ffmpeg",
            "-loglevel",
            "error",
            "-rtsp_transport",
            "tcp",
            "-i",
        ])
        .arg(url)
        .args(["-t", &seconds.to_string(), "-c", "copy", "-y"])
        .arg(path)
        .status()
        .context("running ffmpeg (install ffmpeg: the README's test command does)")?;
    ensure!(status.success(), "ffmpeg could not record {url}");
    Ok(())
}

/// Runs `detect` on `input`; returns its success, the JSON lines it printed, and stderr.
fn detect(input: &str, extra: &[&str]) -> Result<(bool, Vec<Value>, String)> {
    let out = Command::new(bin("eyeward-agent"))
        .arg("detect")
        .arg(input)
        .args(extra)
        .output()?;
    let lines = String::from_utf8(out.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<Vec<Value>, _>>()
        .context("detect prints JSON lines only")?;
    Ok((out.status.success(), lines, String::from_utf8(out.stderr)?))
}

#[test]
fn an_intruder_crossing_is_one_event_and_a_still_street_none() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // The intruder enters 3 s after the camera starts and takes 3 s to cross.
    let walker = Camera::start(
        "fixed",
        &[
            "--motion-offset",
            "3s",
            "--motion-crossing",
            "3s",
            "--keyframe-interval",
            "2s",
        ],
        None,
    )?;
    let crossing = dir.path().join("crossing.mp4");
    record(&walker.url, 9, &crossing)?;
    let still = Camera::start(
        "fixed",
        &["--motion-every", "0s", "--keyframe-interval", "2s"],
        None,
    )?;
    let quiet = dir.path().join("still.mp4");
    record(&still.url, 9, &quiet)?;

    let (ok, lines, stderr) = detect(crossing.to_str().context("utf-8")?, &[])?;
    ensure!(ok, "detect failed: {stderr}");
    let (summary, events) = lines.split_last().context("a summary line")?;
    assert_eq!(summary["events"], 1, "{lines:?}");
    assert!(
        summary["frames"].as_u64().context("frames")? >= 80,
        "{summary}"
    );
    let event = &events[0];
    let (start, end) = (event["start_ms"].as_u64(), event["end_ms"].as_u64());
    let (start, end) = (start.context("start_ms")?, end.context("end_ms")?);
    // The recording began a moment after the camera: the entry is at most 3 s in.
    assert!((1000..=3200).contains(&start), "{event}");
    assert!(end >= start + 1500, "the crossing lasts: {event}");
    let score = event["peak_score"].as_f64().context("peak_score")?;
    assert!(score > 0.005 && score < 0.2, "{event}");
    let bbox: Vec<u64> = serde_json::from_value(event["bbox"].clone())?;
    assert_eq!(bbox.len(), 4);
    // In the input's pixels, on the street (the intruder walks in the lower half).
    assert!(
        bbox[0] + bbox[2] <= 1280 && bbox[1] + bbox[3] <= 720,
        "{event}"
    );
    assert!(bbox[1] + bbox[3] > 360, "{event}");

    let (ok, lines, stderr) = detect(quiet.to_str().context("utf-8")?, &[])?;
    ensure!(ok, "detect failed: {stderr}");
    assert_eq!(
        lines.len(),
        1,
        "a still street gives only the summary: {lines:?}"
    );
    assert_eq!(lines[0]["events"], 0);

    // A config that masks the street (the lower two thirds) hides the intruder.
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        "[motion]\nmasks = [[[0.0, 0.33], [1.0, 0.33], [1.0, 1.0], [0.0, 1.0]]]\n",
    )?;
    let masked = detect(
        crossing.to_str().context("utf-8")?,
        &["--config", config.to_str().context("utf-8")?],
    )?;
    assert!(masked.0, "{}", masked.2);
    assert_eq!(
        masked.1.last().context("summary")?["events"],
        0,
        "{:?}",
        masked.1
    );
    Ok(())
}

#[test]
fn bad_input_and_bad_config_are_clean_errors() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("missing.mp4");
    let (ok, lines, stderr) = detect(missing.to_str().context("utf-8")?, &[])?;
    assert!(!ok && lines.is_empty(), "{lines:?}");
    assert!(stderr.contains("missing.mp4"), "{stderr}");

    let garbage = dir.path().join("garbage.mp4");
    std::fs::write(&garbage, b"this is not a video")?;
    let (ok, _, stderr) = detect(garbage.to_str().context("utf-8")?, &[])?;
    assert!(!ok, "garbage must fail");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let config = dir.path().join("agent.toml");
    std::fs::write(&config, "[motion]\nmin_area = 2.0\n")?;
    let (ok, _, stderr) = detect(
        garbage.to_str().context("utf-8")?,
        &["--config", config.to_str().context("utf-8")?],
    )?;
    assert!(!ok && stderr.contains("min_area"), "{stderr}");
    std::fs::write(&config, "[motion]\nsensitivty = \"high\"\n")?;
    let (ok, _, stderr) = detect(
        garbage.to_str().context("utf-8")?,
        &["--config", config.to_str().context("utf-8")?],
    )?;
    assert!(
        !ok && stderr.contains("sensitivty"),
        "a typo is refused: {stderr}"
    );
    Ok(())
}
