//! The simulated camera is a real RTSP camera to a third-party client (ffprobe): H.264 at the
//! configured size, rate and keyframe interval, with Digest credentials when asked.

mod common;

use anyhow::{Context, Result};
use common::Camera;
use std::process::Command;

/// Runs ffprobe over RTSP/TCP for `seconds` of video; returns its CSV lines.
fn probe(url: &str, entries: &str, seconds: u32) -> Result<(bool, String, String)> {
    // `timeout`: a camera that stops sending must fail the test, not hang it.
    let out = Command::new("timeout")
        .args([
            "30",
            "ffprobe",
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-select_streams",
            "v:0",
        ])
        .args(["-read_intervals", &format!("%+{seconds}")])
        .args(["-show_entries", entries, "-of", "csv=p=0", url])
        .output()
        .context("running ffprobe (install ffmpeg: the README's test command does)")?;
    Ok((
        out.status.success(),
        String::from_utf8(out.stdout)?,
        String::from_utf8(out.stderr)?,
    ))
}

#[test]
fn ffprobe_reads_h264_at_the_configured_size_rate_and_keyframe_interval() -> Result<()> {
    let cam = Camera::start(
        "fixed",
        &[
            "--width",
            "640",
            "--height",
            "360",
            "--fps",
            "10",
            "--keyframe-interval",
            "2s",
        ],
        None,
    )?;
    let (ok, stream, err) = probe(
        &cam.url,
        "stream=codec_name,profile,width,height,r_frame_rate",
        1,
    )?;
    assert!(ok, "{err}");
    assert_eq!(stream.trim(), "h264,Constrained Baseline,640,360,10/1");

    let (ok, frames, err) = probe(&cam.url, "frame=key_frame,pts_time", 5)?;
    assert!(ok, "{err}");
    let frames: Vec<(bool, f64)> = frames
        .lines()
        .filter_map(|l| {
            let (key, pts) = l.split_once(',')?;
            Some((key == "1", pts.trim_end_matches(',').parse().ok()?))
        })
        .collect();
    let mut keys: Vec<f64> = frames.iter().filter(|f| f.0).map(|f| f.1).collect();
    // ffprobe lists a keyframe twice when it carries parameter sets as side data.
    keys.dedup();
    assert!(keys.len() >= 2, "keyframes at {keys:?}");
    for pair in keys.windows(2) {
        assert!(
            (pair[1] - pair[0] - 2.0).abs() < 0.15,
            "keyframes at {keys:?}"
        );
    }
    // 10 fps: frames 0.1 s apart.
    let (first, last) = (frames[0].1, frames[frames.len() - 1].1);
    let mut pts: Vec<f64> = frames.iter().map(|f| f.1).collect();
    pts.dedup();
    let rate = (pts.len() - 1) as f64 / (last - first);
    assert!((rate - 10.0).abs() < 0.5, "{rate} fps");
    Ok(())
}

#[test]
fn a_camera_with_credentials_refuses_clients_without_them() -> Result<()> {
    let cam = Camera::start(
        "pan-tilt",
        &["--username", "admin", "--width", "320", "--height", "180"],
        Some("s3cret-pw"),
    )?;
    let (ok, _, err) = probe(&cam.url, "stream=codec_name", 1)?;
    assert!(!ok && err.contains("401"), "{err}");
    let with = cam.url.replacen("rtsp://", "rtsp://admin:s3cret-pw@", 1);
    let (ok, stream, err) = probe(&with, "stream=codec_name,width,height", 1)?;
    assert!(ok, "{err}");
    assert_eq!(stream.trim(), "h264,320,180");
    assert!(
        !cam.process.log().contains("s3cret-pw"),
        "the password is not logged"
    );
    Ok(())
}
