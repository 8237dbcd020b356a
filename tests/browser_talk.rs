//! Talkback in a real browser: the owner holds "speak" in Chromium's live view (with the mouse,
//! then with Space) and the camera's speaker (the simulator's ONVIF back-channel, reached
//! through the camera's agent, then directly) hears the page's microphone, a 660 Hz tone from a file Chromium
//! takes for its fake microphone, measured by the simulator; letting go stops it. A camera
//! without a back-channel says so (409) on the page; another customer's camera, or a session
//! that is not the page's, is 404; each talk is in the owner's history, shown on the page.
//! Runs in a loopback-only network namespace.

mod common;

use anyhow::{Context, Result};
use common::{Camera, Relay, in_loopback_namespace, status_json, wait_online};
use std::time::Duration;

const PW: &str = "correct horse battery";
const TEST: &str = "the_owner_holds_speak_and_the_camera_hears_the_microphone";
/// The fake microphone's tone.
const TONE_HZ: f64 = 660.0;

/// A WAV file (48 kHz, mono, 16-bit) of `seconds` of the tone in syllables (250 ms of tone,
/// 50 ms of silence), as speech comes, so that no noise suppression takes it for a hum.
fn microphone_file(path: &std::path::Path, seconds: u32) -> Result<()> {
    const RATE: u32 = 48_000;
    let samples: Vec<i16> = (0..RATE * seconds)
        .map(|i| {
            let t = f64::from(i) / f64::from(RATE);
            let on = (i % (RATE * 3 / 10)) < RATE / 4;
            let level = if on { 0.5 } else { 0.0 };
            (level * 32767.0 * (2.0 * std::f64::consts::PI * TONE_HZ * t).sin()) as i16
        })
        .collect();
    let data_len = (samples.len() * 2) as u32;
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&RATE.to_le_bytes());
    wav.extend_from_slice(&(RATE * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        wav.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, wav).context("writing the microphone's file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_holds_speak_and_the_camera_hears_the_microphone() -> Result<()> {
    if !in_loopback_namespace(TEST)? {
        return Ok(());
    }
    common::browser_scripts()?;
    let relay = Relay::start(common::LOOPBACK_VIEWERS_AND_CAMERAS)?;
    let me = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let other = relay.customer("b@example.jp", "Bob", "tokyo", PW)?;
    let small = common::SMALL_CAMERA;
    let speaker = Camera::start(
        "fixed",
        &[&small[..], &["--backchannel", "pcmu"]].concat(),
        None,
    )?;
    let mute = Camera::start("fixed", &small, None)?;
    let porch = relay.camera(me, "Porch", "fixed", "dispatch", "agent")?;
    let gate = relay.camera(me, "Gate", "fixed", "camera-only", &mute.url)?;
    // The same camera read directly too: its speaker reached without an agent.
    let door = relay.camera(me, "Door", "fixed", "camera-only", &speaker.url)?;
    let foreign = relay.camera(other, "Bob's", "fixed", "camera-only", &speaker.url)?;
    let id = |v: &serde_json::Value| v["id"].as_i64().context("id");
    let token = porch["agent_token"].as_str().context("token")?;
    let agent = relay.start_agent(token, &speaker.url, "porch-agent")?;
    let alice = relay.login("a@example.jp", PW).await?;
    wait_online(&alice, id(&porch)?, true, Duration::from_secs(10)).await?;
    let dir = tempfile::tempdir()?;
    let microphone = dir.path().join("microphone.wav");
    microphone_file(&microphone, 20)?;
    common::run_browser_script(
        "talk",
        &relay,
        &[
            ("EMAIL", "a@example.jp".into()),
            ("PASSWORD", PW.into()),
            ("SPEAKER_CAMERA", id(&porch)?.to_string()),
            ("MUTE_CAMERA", id(&gate)?.to_string()),
            ("DIRECT_SPEAKER_CAMERA", id(&door)?.to_string()),
            ("FOREIGN_CAMERA", id(&foreign)?.to_string()),
            ("MICROPHONE", microphone.display().to_string()),
            (
                "CAMERA_LOG",
                speaker.process.log_path().display().to_string(),
            ),
            ("TONE_HZ", TONE_HZ.to_string()),
        ],
        &[("agent", &agent), ("speaker camera", &speaker.process)],
    )
    .await?;
    // Each talk is in the history, with how long it lasted.
    let (_, history) = status_json(alice.get("/api/history?limit=50").await?).await?;
    let talks: Vec<&serde_json::Value> = history
        .as_array()
        .context("history")?
        .iter()
        .filter(|e| {
            e["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("camera.talk"))
        })
        .collect();
    let ended: Vec<f64> = talks
        .iter()
        .filter(|e| e["action"] == "camera.talk_ended")
        .filter_map(|e| e["detail"]["seconds"].as_f64())
        .collect();
    assert_eq!(talks.len(), 6, "{history}");
    assert!(
        ended.len() == 3 && ended.iter().all(|s| *s >= 2.0),
        "{history}"
    );
    let on = |camera: &str| {
        talks
            .iter()
            .filter(|e| e["detail"]["camera"] == camera)
            .count()
    };
    assert_eq!((on("Porch"), on("Door")), (4, 2), "{history}");
    assert!(talks.iter().all(|e| e["actor_name"] == "Alice"));
    // GStreamer says so when a reference is given back twice (rtspsrc's back-channel signal
    // takes the one it is handed): none here.
    let log = relay.process.log();
    assert!(!log.contains("CRITICAL"), "{log}");
    Ok(())
}
