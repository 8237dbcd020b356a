//! Every browser plays: Chromium made to offer VP8 alone (as Firefox without its OpenH264
//! plug-in does) plays an H.264 camera through the relay's VP8 transcode, which a second such
//! page shares, while a page that offers H.264 gets the camera's own stream. Runs in a
//! loopback-only network namespace.

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
    let args = [
        "--keyframe-interval",
        "1s",
        "--width",
        "640",
        "--height",
        "360",
    ];
    let camera = Camera::start("fixed", &args, None)?;
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
