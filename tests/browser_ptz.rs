//! Pan-tilt from a real browser: headless Chromium holds the arrow pad and the arrow keys,
//! clicks the picture to centre it, saves and recalls a preset; the picture slides the way the
//! camera turned; a closed tab, and a tab whose commands stop arriving, leave the camera still
//! within the dead-man timeout; a fixed camera shows no controls (`tests/browser/ptz.mjs`).
//! Runs in a loopback-only network namespace.

mod common;

use anyhow::{Context, Result};
use common::{Camera, Relay, in_loopback_namespace, start_agent_with, wait_online};
use eyeward::clock::Clock;
use eyeward_agent::onvif::client::Ptz;
use std::time::Duration;

const PW: &str = "correct horse battery";
const TEST: &str = "chromium_turns_the_camera_and_a_closed_tab_leaves_it_still";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_turns_the_camera_and_a_closed_tab_leaves_it_still() -> Result<()> {
    if !in_loopback_namespace(TEST)? {
        return Ok(());
    }
    common::browser_scripts()?;
    let relay = Relay::start("[webrtc]\nice_addresses = [\"127.0.0.1\"]")?;
    let me = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let cam = relay.camera(me, "Porch", "pan-tilt", "dispatch", "agent")?;
    let fixed = relay.camera(me, "Door", "fixed", "dispatch", "agent")?;
    let cam_id = cam["id"].as_i64().context("id")?;
    // A still street (no intruder), keyframes often so the picture follows a turn quickly.
    let camera = Camera::start(
        "pan-tilt",
        &["--motion-every", "0s", "--keyframe-interval", "1s"],
        None,
    )?;
    let onvif_url = camera.onvif_url()?;
    let agent = start_agent_with(
        &relay.base,
        relay.dir.path(),
        cam["agent_token"].as_str().context("token")?,
        &camera.url,
        "agent",
        &["--onvif", &onvif_url],
    )?;
    let alice = relay.login("a@example.jp", PW).await?;
    wait_online(&alice, cam_id, true, Duration::from_secs(10)).await?;

    common::run_browser_script(
        "ptz",
        &relay,
        &[
            ("EMAIL", "a@example.jp".into()),
            ("PASSWORD", PW.into()),
            ("CAMERA_ID", cam_id.to_string()),
            ("FIXED_CAMERA_ID", fixed["id"].to_string()),
        ],
        &[("agent", &agent), ("simulator", &camera.process)],
    )
    .await?;
    // The camera itself, asked apart from our path, is still.
    let onvif = Ptz::connect(&onvif_url, None, Duration::from_secs(2), Clock::real()).await?;
    let status = onvif.status().await?;
    assert!(!status.moving, "{status:?}");
    // The tab whose commands stopped was stopped by the dead-man timeout.
    let log = agent.log();
    assert!(
        log.contains("no command within the dead-man timeout"),
        "{log}"
    );
    Ok(())
}
