//! Every browser plays every camera: Chromium made to offer VP8 alone (as Firefox without its
//! OpenH264 plug-in does) plays an H.264 camera through the relay's VP8 transcode, which a
//! second such page shares, while a page that offers H.264 gets the camera's own stream; and
//! Chromium plays H.265 cameras through the relay's one H.264 transcode of each: one read
//! directly, one behind its agent, which keeps its group of pictures for the view's start and
//! detects motion in it. Runs in a loopback-only network namespace.

mod common;

use anyhow::{Context, Result};
use common::{Camera, Relay, in_loopback_namespace, wait_online};
use std::time::Duration;

const PW: &str = "correct horse battery";
const TEST: &str = "a_browser_without_h264_plays_the_camera_in_vp8";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_without_h264_plays_the_camera_in_vp8() -> Result<()> {
    if !in_loopback_namespace(TEST)? {
        return Ok(());
    }
    common::browser_scripts()?;
    let relay = Relay::start("[webrtc]\nice_addresses = [\"127.0.0.1\"]\n")?;
    let me = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let camera = Camera::start("fixed", &common::SMALL_CAMERA, None)?;
    let porch = relay.camera(me, "Porch", "fixed", "dispatch", "agent")?;
    let id = porch["id"].as_i64().context("id")?;
    let token = porch["agent_token"].as_str().context("token")?;
    let agent = relay.start_agent(token, &camera.url, "agent")?;
    let alice = relay.login("a@example.jp", PW).await?;
    wait_online(&alice, id, true, Duration::from_secs(10)).await?;
    common::run_browser_script(
        "codecs",
        &relay,
        &[
            ("EMAIL", "a@example.jp".into()),
            ("PASSWORD", PW.into()),
            ("CAMERA_ID", id.to_string()),
        ],
        &[("agent", &agent)],
    )
    .await?;
    // One transcode for both VP8 pages.
    let log = relay.process.log();
    let transcodes = log
        .lines()
        .filter(|l| l.contains("codec=Vp8") && l.contains("feed starting"))
        .count();
    assert_eq!(transcodes, 1, "{log}");
    Ok(())
}

const H265_TEST: &str =
    "chromium_plays_h265_cameras_direct_and_behind_an_agent_through_one_transcode_each";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_h265_cameras_direct_and_behind_an_agent_through_one_transcode_each()
-> Result<()> {
    if !in_loopback_namespace(H265_TEST)? {
        return Ok(());
    }
    common::browser_scripts()?;
    let relay = Relay::start(common::LOOPBACK_VIEWERS_AND_CAMERAS)?;
    let me = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let h265 = [&common::SMALL_CAMERA[..], &["--video", "h265"]].concat();
    let camera = Camera::start("fixed", &h265, None)?;
    let porch = relay.camera(me, "Porch", "fixed", "camera-only", &camera.url)?;
    let porch = porch["id"].as_i64().context("id")?;
    let behind = Camera::start("fixed", &h265, None)?;
    let yard = relay.camera(me, "Yard", "fixed", "camera-only", "agent")?;
    let token = yard["agent_token"].as_str().context("token")?;
    let yard = yard["id"].as_i64().context("id")?;
    let agent = relay.start_agent(token, &behind.url, "agent")?;
    let alice = relay.login("a@example.jp", PW).await?;
    wait_online(&alice, yard, true, Duration::from_secs(10)).await?;
    common::run_browser_script(
        "h265",
        &relay,
        &[
            ("EMAIL", "a@example.jp".into()),
            ("PASSWORD", PW.into()),
            ("CAMERA_IDS", format!("{porch},{yard}")),
        ],
        &[("camera", &camera.process), ("agent", &agent)],
    )
    .await?;
    // One transcode for each camera's two pages.
    let log = relay.process.log();
    let transcodes = log
        .matches("transcoding the camera's H.265 to H.264")
        .count();
    assert_eq!(transcodes, 2, "{log}");
    // The agent served the view from the H.265 it keeps, and saw the intruder cross in it.
    let agent_log = agent.log();
    assert!(
        agent_log.contains("served from the agent's group of pictures"),
        "{agent_log}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, events) =
            common::status_json(alice.get(&format!("/api/cameras/{yard}/events")).await?).await?;
        if events.as_array().is_some_and(|e| !e.is_empty()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no event: {agent_log}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}
