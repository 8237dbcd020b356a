//! The simulated camera is a real RTSP camera to a third-party client (ffprobe): H.264 (or
//! H.265) at the configured size, rate and keyframe interval, with Digest credentials when asked; and, as an
//! option, a camera whose encoder keeps its own keyframe schedule (a new session waits for it),
//! and a camera with a microphone (a tone in G.711 or AAC, as a second stream).

mod common;

use anyhow::{Context, Result};
use common::Camera;
use std::process::Command;

/// Runs ffprobe over RTSP/TCP for `seconds` of video; returns its CSV lines.
fn probe(url: &str, entries: &str, seconds: u32) -> Result<(bool, String, String)> {
    probe_stream(url, "v:0", entries, seconds)
}

/// Runs ffprobe over RTSP/TCP for `seconds` of stream `select` (`v:0`, `a:0`).
fn probe_stream(
    url: &str,
    select: &str,
    entries: &str,
    seconds: u32,
) -> Result<(bool, String, String)> {
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
            select,
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
    reads_as_configured(&[], "h264,Constrained Baseline,640,360,10/1")
}

#[test]
fn ffprobe_reads_h265_at_the_configured_size_rate_and_keyframe_interval() -> Result<()> {
    reads_as_configured(&["--video", "h265"], "hevc,Main,640,360,10/1")
}

/// A camera at 640×360, 10 fps, a keyframe every 2 s (and `extra`) reads as `stream` (codec,
/// profile, size, rate), with keyframes 2 s apart and frames 0.1 s apart.
fn reads_as_configured(extra: &[&str], stream: &str) -> Result<()> {
    let args = [
        "--width",
        "640",
        "--height",
        "360",
        "--fps",
        "10",
        "--keyframe-interval",
        "2s",
    ];
    let cam = Camera::start("fixed", &[&args[..], extra].concat(), None)?;
    let (ok, found, err) = probe(
        &cam.url,
        "stream=codec_name,profile,width,height,r_frame_rate",
        1,
    )?;
    assert!(ok, "{err}");
    assert_eq!(found.trim(), stream);

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

/// How long a new session waited for its first frame, and whether that was a keyframe.
async fn first_frame(url: &str) -> Result<(std::time::Duration, bool)> {
    use eyeward_relay::config::RtspTransport;
    use eyeward_relay::ingest::Ingest;
    let since = std::time::Instant::now();
    let mut ingest = Ingest::connect(url, None, RtspTransport::Tcp).await?;
    let frame = tokio::time::timeout(std::time::Duration::from_secs(10), ingest.next_frame())
        .await
        .context("no frame in 10 s")??
        .context("session ended")?;
    Ok((since.elapsed(), frame.is_key))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keyframes_on_schedule_a_new_session_waits_for_the_encoders_next_keyframe()
-> Result<()> {
    let camera = Camera::start(
        "fixed",
        &[
            "--keyframes-on-schedule",
            "--keyframe-interval",
            "4s",
            "--width",
            "320",
            "--height",
            "240",
        ],
        None,
    )?;
    // Alone, 1 s after a scheduled keyframe: the encoder starts at the next, 3 s away.
    camera.sleep_until_after_keyframe(4000, 1000, 0).await?;
    let (waited, key) = first_frame(&camera.url).await?;
    assert!(key, "an encoder starts with a keyframe");
    assert!(
        waited > std::time::Duration::from_millis(2000),
        "waited for the schedule: {waited:?}"
    );
    // Beside a session that keeps the encoder running: delta frames until the next keyframe,
    // however much the new session would like one.
    let url = camera.url.clone();
    let watching = tokio::spawn(async move {
        use eyeward_relay::config::RtspTransport;
        use eyeward_relay::ingest::Ingest;
        let mut ingest = Ingest::connect(&url, None, RtspTransport::Tcp).await?;
        while ingest.next_frame().await?.is_some() {}
        anyhow::Ok(())
    });
    // (That session's encoder starts at the next scheduled keyframe: join 1 s after the one
    // after that.)
    camera.sleep_until_after_keyframe(4000, 1000, 4000).await?;
    let (_, key) = first_frame(&camera.url).await?;
    assert!(
        !key,
        "a session joining mid-group starts with a delta frame"
    );
    watching.abort();

    // Without the option, a camera alone starts a new session with a keyframe at once.
    let eager = Camera::start("fixed", &["--width", "320", "--height", "240"], None)?;
    let (waited, key) = first_frame(&eager.url).await?;
    assert!(
        key && waited < std::time::Duration::from_millis(1500),
        "{waited:?}"
    );
    Ok(())
}

/// The dominant frequency of mono 16-bit samples at `rate`, from their zero crossings.
fn frequency(samples: &[i16], rate: u32) -> f64 {
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    crossings as f64 / 2.0 / (samples.len() as f64 / f64::from(rate))
}

#[test]
fn a_camera_with_a_microphone_sends_its_tone_in_g711_or_aac() -> Result<()> {
    for (codec, probed) in [
        ("pcmu", "pcm_mulaw,8000,1"),
        ("pcma", "pcm_alaw,8000,1"),
        ("aac", "aac,16000,1"),
    ] {
        let cam = Camera::start(
            "fixed",
            &["--width", "320", "--height", "180", "--audio", codec],
            None,
        )?;
        let (ok, stream, err) =
            probe_stream(&cam.url, "a:0", "stream=codec_name,sample_rate,channels", 1)?;
        assert!(ok, "{codec}: {err}");
        assert_eq!(stream.trim(), probed, "{codec}");
        // The video is still there, as before.
        let (ok, video, err) = probe(&cam.url, "stream=codec_name", 1)?;
        assert!(ok, "{codec}: {err}");
        assert_eq!(video.trim(), "h264", "{codec}");
        // What a listener hears: two seconds decoded by ffmpeg, the tone's pitch.
        let out = Command::new("timeout")
            .args([
                "30",
                "ffmpeg",
                "-v",
                "error",
                "-rtsp_transport",
                "tcp",
                "-i",
            ])
            .arg(&cam.url)
            .args([
                "-map", "0:a:0", "-t", "2", "-f", "s16le", "-ac", "1", "-ar", "8000", "-",
            ])
            .output()
            .context("running ffmpeg")?;
        assert!(
            out.status.success(),
            "{codec}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let samples: Vec<i16> = out
            .stdout
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        assert!(samples.len() > 8_000, "{codec}: {} samples", samples.len());
        // The first samples are the decoder's start: leave them out.
        let hz = frequency(&samples[800..], 8_000);
        assert!(
            (hz - f64::from(eyeward_camera_sim::TONE_HZ)).abs() < 20.0,
            "{codec}: {hz} Hz"
        );
    }
    Ok(())
}
