//! `eyeward-agent detect` on recordings of the simulated camera (made with ffmpeg): the
//! scripted intruder's crossing is exactly one event, at the right time and place; a still
//! street, with its ticking on-screen clock and keyframes, gives none; the event's clip
//! begins at a keyframe at least its pre-roll before the event, runs on without a gap and
//! shows the crossing; bad input is a clean error. Drawn clips, encoded with x264 and
//! decoded by the agent as a camera is: views that pan, zoom or shake on their own and a
//! switch to night mode give no event, and a person walking in right after a pan is found.

mod common;

use anyhow::{Context, Result, ensure};
use common::{Camera, bin};
use eyeward_agent::motion::SETTLE_PICTURES;
use eyeward_bench::video::encode_mp4;
use eyeward_camera_sim::clips;
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

/// A camera whose intruder enters `offset` after it starts and takes 3 s to cross, with a
/// keyframe every 2 s.
fn walker(offset: &str) -> Result<Camera> {
    Camera::start(
        "fixed",
        &[
            "--motion-offset",
            offset,
            "--motion-crossing",
            "3s",
            "--keyframe-interval",
            "2s",
        ],
        None,
    )
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
    let walker = walker("3s")?;
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

/// The labelled clips (`eyeward_camera_sim::clips`) named here.
fn labelled(names: &[&str]) -> Vec<clips::Clip> {
    let all: Vec<_> = clips::view_changes()
        .into_iter()
        .chain(clips::people())
        .collect();
    names
        .iter()
        .map(|name| {
            all.iter()
                .find(|c| c.name == *name)
                .unwrap_or_else(|| panic!("no clip {name:?}"))
                .clone()
        })
        .collect()
}

#[test]
fn views_that_move_or_go_to_night_mode_give_no_event_through_the_agents_decoding() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let clips = labelled(&[
        "textured pan diagonally at 400 px/s, starting at once",
        "street pan across at 30 px/s, starting smoothly",
        "dark pan down at 120 px/s, starting smoothly",
        "textured zoom 2x in 2 s",
        "street shaken ±3 px at 5 hz",
        "street switching to night mode with a person standing",
        "street pan at 400 px/s, then a person walks in",
    ]);
    // The detector looks at 10 of the 15 pictures a second: it settles for
    // SETTLE_PICTURES + 1 of its pictures after the view's last move.
    let settle = f64::from(SETTLE_PICTURES + 1) / 10.0;
    for (i, clip) in clips.iter().enumerate() {
        let path = dir.path().join(format!("clip-{i}.mp4"));
        let frames = (clip.seconds * 15.0) as usize;
        let pictures = (0..frames).map(|f| clip.render(f as f64 / 15.0, 640, 360));
        encode_mp4(pictures, (640, 360), 15, &path)?;
        let (ok, lines, stderr) = detect(path.to_str().context("utf-8")?, &[])?;
        ensure!(ok, "detect failed on {}: {stderr}", clip.name);
        let (summary, events) = lines.split_last().context("a summary line")?;
        assert_eq!(
            summary["events"].as_u64(),
            Some(clip.expected_events() as u64),
            "{}: {lines:?}",
            clip.name
        );
        if let Some(entry) = clip.entry() {
            let visible = entry.max(clip.view_settles().map_or(0.0, |end| end + settle));
            let start = events[0]["start_ms"].as_f64().context("start_ms")? / 1000.0;
            assert!(
                start - visible <= 0.3,
                "{}: found at {start} s, visible from {visible} s",
                clip.name
            );
        }
    }
    Ok(())
}

/// Each decoded frame of `path`: whether it is a keyframe, and its time in seconds.
fn frames_of(path: &Path) -> Result<Vec<(bool, f64)>> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["frame=key_frame,pts_time", "-of", "json"])
        .arg(path)
        .output()
        .context("running ffprobe")?;
    ensure!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let probe: Value = serde_json::from_slice(&out.stdout)?;
    probe["frames"]
        .as_array()
        .context("frames")?
        .iter()
        .map(|f| {
            let at = f["pts_time"].as_str().context("pts_time")?.parse::<f64>()?;
            Ok((f["key_frame"] == 1, at))
        })
        .collect()
}

#[test]
fn an_events_clip_begins_a_pre_roll_before_it_at_a_keyframe_and_shows_the_crossing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let walker = walker("8s")?;
    let recording = dir.path().join("crossing.mp4");
    record(&walker.url, 18, &recording)?;
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        "[clips]\npre_roll = \"3s\"\npost_roll = \"2s\"\nmax_length = \"30s\"\n",
    )?;
    let clips = dir.path().join("clips");
    let (ok, lines, stderr) = detect(
        recording.to_str().context("utf-8")?,
        &[
            "--config",
            config.to_str().context("utf-8")?,
            "--clips",
            clips.to_str().context("utf-8")?,
        ],
    )?;
    ensure!(ok, "detect failed: {stderr}");
    let clip_lines: Vec<&Value> = lines.iter().filter(|l| l.get("clip").is_some()).collect();
    assert_eq!(clip_lines.len(), 1, "{lines:?}");
    let clip = clip_lines[0];
    let event = lines
        .iter()
        .find(|l| l.get("start_ms").is_some())
        .context("the event")?;
    let event_at = clip["event_at_ms"].as_u64().context("event_at_ms")?;
    let length = clip["length_ms"].as_u64().context("length_ms")?;
    // At least the pre-roll before the event, from the keyframe before that (2 s apart).
    assert!((3000..=5100).contains(&event_at), "{clip}");
    // The crossing (3 s) and the post-roll after it.
    let crossing =
        event["end_ms"].as_u64().context("end")? - event["start_ms"].as_u64().context("start")?;
    assert!(length >= event_at + crossing + 2000 - 200, "{clip} {event}");
    let path = Path::new(clip["clip"].as_str().context("clip path")?);
    assert_eq!(
        std::fs::metadata(path)?.len(),
        clip["bytes"].as_u64().context("bytes")?
    );

    // It decodes from its first frame, a keyframe, and its frames follow each other with the
    // camera's own spacing (a 15th of a second, as the simulator's clock keeps it under load):
    // none missing, none out of order.
    let frames = frames_of(path)?;
    assert!(frames[0].0, "starts at a keyframe");
    assert!(frames[0].1.abs() < 0.001, "starts at 0: {:?}", frames[0]);
    // A picture the simulator's encoder sends late under load is followed by one early (a gap
    // of 128 ms, then 15 ms, was seen): each gap is under two intervals, and there are as many
    // pictures as the clip's length holds at 15 a second.
    let gaps: Vec<f64> = frames.windows(2).map(|w| w[1].1 - w[0].1).collect();
    assert!(
        gaps.iter().all(|g| (0.0..2.0 / 15.0).contains(g)),
        "{gaps:?}"
    );
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    assert!((mean - 1.0 / 15.0).abs() < 0.002, "{mean}");
    let lasts = frames.last().context("frames")?.1;
    assert_eq!(
        frames.len(),
        (lasts * 15.0).round() as usize + 1,
        "none missing"
    );
    assert!(
        (lasts * 1000.0 - length as f64).abs() < 100.0,
        "{lasts} s against {clip}"
    );

    // The clip shows the crossing: the detector finds it there, where the clip says (within
    // a second: the detector learns the street afresh from the clip's first pictures).
    let (ok, lines, stderr) = detect(path.to_str().context("utf-8")?, &[])?;
    ensure!(ok, "detect on the clip failed: {stderr}");
    let again = lines.first().context("an event in the clip")?;
    let start = again["start_ms"].as_u64().context("start_ms")?;
    assert!(start.abs_diff(event_at) <= 1000, "{again} against {clip}");
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
    // Clips of events that would never be: refused before anything starts.
    std::fs::write(
        &config,
        "[motion]\nenabled = false\n[clips]\nenabled = true\n",
    )?;
    let token = dir.path().join("token");
    std::fs::write(&token, "t")?;
    let out = Command::new(bin("eyeward-agent"))
        .args([
            "run",
            "--relay",
            "http://127.0.0.1:9",
            "--camera",
            "sim://fixed",
        ])
        .arg("--token-file")
        .arg(&token)
        .arg("--config")
        .arg(&config)
        .output()?;
    let stderr = String::from_utf8(out.stderr)?;
    assert!(
        !out.status.success() && stderr.contains("clips: events come from motion detection"),
        "{stderr}"
    );
    Ok(())
}
