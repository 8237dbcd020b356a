//! A camera's sound in a real browser: headless Chromium opens a camera, hears nothing until
//! the person presses Listen, then hears the simulator's 880 Hz tone, measured in the page
//! with WebAudio, within 100 ms of the pictures (the simulator's sync marks): AAC through the camera's agent (transcoded to Opus on the relay), G.711
//! from a camera the relay reads directly (passed through). A camera whose sound the relay
//! cannot decode (Speex) still plays its video, and the page says why there is no sound;
//! another customer's session is 404. Runs in a loopback-only network namespace.

mod common;

use anyhow::{Context, Result};
use common::{Camera, Relay, in_loopback_namespace, wait_online};
use std::time::Duration;

const PW: &str = "correct horse battery";
const TEST: &str = "chromium_hears_a_cameras_tone_once_listen_is_pressed";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_hears_a_cameras_tone_once_listen_is_pressed() -> Result<()> {
    if !in_loopback_namespace(TEST)? {
        return Ok(());
    }
    common::browser_scripts()?;
    let relay = Relay::start(common::LOOPBACK_VIEWERS_AND_CAMERAS)?;
    let me = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let other = relay.customer("b@example.jp", "Bob", "tokyo", PW)?;
    // Small pictures: three cameras, two agents, the relay and Chromium share two cores.
    let camera = |codec: &str| {
        let args = [
            &common::SMALL_CAMERA[..],
            &["--audio", codec, "--sync-marks"],
        ]
        .concat();
        Camera::start("fixed", &args, None)
    };
    let (aac, pcmu, speex) = (camera("aac")?, camera("pcmu")?, camera("speex")?);
    let porch = relay.camera(me, "Porch", "fixed", "dispatch", "agent")?;
    let gate = relay.camera(me, "Gate", "fixed", "camera-only", &pcmu.url)?;
    let shed = relay.camera(me, "Shed", "fixed", "dispatch", "agent")?;
    let foreign = relay.camera(other, "Bob's", "fixed", "camera-only", &pcmu.url)?;
    let id = |v: &serde_json::Value| v["id"].as_i64().context("id");
    let token = |v: &serde_json::Value| {
        v["agent_token"]
            .as_str()
            .map(str::to_owned)
            .context("token")
    };
    let porch_agent = relay.start_agent(&token(&porch)?, &aac.url, "porch-agent")?;
    let shed_agent = relay.start_agent(&token(&shed)?, &speex.url, "shed-agent")?;
    let alice = relay.login("a@example.jp", PW).await?;
    wait_online(&alice, id(&porch)?, true, Duration::from_secs(10)).await?;
    wait_online(&alice, id(&shed)?, true, Duration::from_secs(10)).await?;
    common::run_browser_script(
        "sound",
        &relay,
        &[
            ("EMAIL", "a@example.jp".into()),
            ("PASSWORD", PW.into()),
            ("AAC_CAMERA", id(&porch)?.to_string()),
            ("PCMU_CAMERA", id(&gate)?.to_string()),
            ("SPEEX_CAMERA", id(&shed)?.to_string()),
            ("FOREIGN_CAMERA", id(&foreign)?.to_string()),
        ],
        &[("porch agent", &porch_agent), ("shed agent", &shed_agent)],
    )
    .await?;
    Ok(())
}
