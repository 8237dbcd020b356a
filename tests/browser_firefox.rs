//! Every browser plays, seen in a real one: Debian's Firefox ESR, which offers no H.264, plays
//! an H.264 camera behind its agent through the relay's VP8 transcode and hears its AAC sound
//! as Opus once Listen is pressed. Runs in a network namespace with one local address besides
//! loopback, which Firefox needs to gather candidates at all.

mod common;

use anyhow::{Context, Result};
use common::{
    Camera, NAMESPACE_LOCAL_ADDRESS, Relay, in_namespace_with_local_address, wait_online,
};
use std::time::Duration;

const PW: &str = "correct horse battery";
const TEST: &str = "firefox_without_h264_plays_a_camera_in_vp8_and_hears_it";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_without_h264_plays_a_camera_in_vp8_and_hears_it() -> Result<()> {
    if !in_namespace_with_local_address(TEST)? {
        return Ok(());
    }
    common::browser_scripts()?;
    let relay = Relay::start(&format!(
        "[webrtc]\nice_addresses = [\"{NAMESPACE_LOCAL_ADDRESS}\"]\n"
    ))?;
    let me = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let aac = [&common::SMALL_CAMERA[..], &["--audio", "aac"]].concat();
    let camera = Camera::start("fixed", &aac, None)?;
    let porch = relay.camera(me, "Porch", "fixed", "dispatch", "agent")?;
    let id = porch["id"].as_i64().context("id")?;
    let token = porch["agent_token"].as_str().context("token")?;
    let agent = relay.start_agent(token, &camera.url, "agent")?;
    let alice = relay.login("a@example.jp", PW).await?;
    wait_online(&alice, id, true, Duration::from_secs(10)).await?;
    common::run_browser_script(
        "firefox",
        &relay,
        &[
            ("EMAIL", "a@example.jp".into()),
            ("PASSWORD", PW.into()),
            ("CAMERA_ID", id.to_string()),
        ],
        &[("agent", &agent)],
    )
    .await?;
    Ok(())
}
