//! An event's clip in Chromium (`tests/browser/clips.mjs`, issue 24): the real agent records
//! the simulated camera's intruder and uploads the clip; the customer plays it in the history
//! (it advances at the camera's 1280 × 720, and goes to the moment of detection), on the
//! event's page with the snapshot as its poster, and saves it. The saved file is the stored
//! clip, byte for byte. Screenshots go to `target/test-output/browser_clips/`.

mod common;

use anyhow::{Context, Result, ensure};
use common::{Camera, Relay, start_agent_with, status_json};
use std::time::{Duration, Instant};

const PW: &str = "correct horse battery";

#[tokio::test]
async fn chromium_plays_an_events_clip_in_the_history_and_saves_it() -> Result<()> {
    let relay = Relay::start("")?;
    let alice = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let cam = relay.camera(alice, "Front door", "fixed", "dispatch", "agent")?;
    let camera = Camera::start(
        "fixed",
        &[
            "--motion-offset",
            "8s",
            "--motion-crossing",
            "3s",
            "--motion-every",
            "60s",
            "--keyframe-interval",
            "2s",
        ],
        None,
    )?;
    let config = relay.dir.path().join("agent.toml");
    std::fs::write(
        &config,
        "[motion]\nstop_after = \"500ms\"\n[clips]\nenabled = true\npre_roll = \"3s\"\npost_roll = \"2s\"\n",
    )?;
    let agent = start_agent_with(
        &relay.base,
        relay.dir.path(),
        cam["agent_token"].as_str().context("token")?,
        &camera.url,
        "agent",
        &["--config", config.to_str().context("utf-8")?],
    )?;
    let client = relay.login("a@example.jp", PW).await?;
    let cam_id = cam["id"].as_i64().context("id")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let event = loop {
        let (status, list) =
            status_json(client.get(&format!("/api/cameras/{cam_id}/events")).await?).await?;
        ensure!(status == 200, "{status} {list}");
        if let Some(e) = list
            .as_array()
            .and_then(|l| l.iter().find(|e| e["clip"].is_object()))
        {
            break e.clone();
        }
        ensure!(
            Instant::now() < deadline,
            "no clip; agent log:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let id = event["id"].as_i64().context("id")?;
    let out = common::run_browser_script(
        "clips",
        &relay,
        &[
            ("EMAIL", "a@example.jp".into()),
            ("PASSWORD", PW.into()),
            ("EVENT_ID", id.to_string()),
            ("EVENT_AT_MS", event["clip"]["event_at_ms"].to_string()),
        ],
        &[("agent", &agent)],
    )
    .await?;
    let line: serde_json::Value = serde_json::from_str(
        out.lines()
            .find(|l| l.contains("\"ok\":true"))
            .context("the script's result")?,
    )?;
    let saved = std::fs::read(line["saved"].as_str().context("saved")?)?;
    let stored = client
        .get(&format!("/api/events/{id}/clip"))
        .await?
        .bytes()
        .await?;
    assert_eq!(saved, stored.to_vec(), "the saved file is the clip");
    Ok(())
}
