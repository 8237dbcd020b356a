//! Live video in a real browser: headless Chromium logs in, opens a camera, decodes 1280×720
//! frames; a second browser watches at once; the camera dies and comes back and the same page
//! shows video again without a reload; its agent stops, the page says since when the camera is
//! offline at once, and plays again by itself when the agent is back. Runs in a loopback-only
//! network namespace.

mod common;

use anyhow::{Context, Result};
use common::{Camera, Relay, bin, free_port, in_loopback_namespace, wait_online};
use std::time::Duration;

const PW: &str = "correct horse battery";
const TEST: &str = "chromium_plays_a_camera_live_and_recovers_when_the_camera_restarts";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_a_camera_live_and_recovers_when_the_camera_restarts() -> Result<()> {
    if !in_loopback_namespace(TEST)? {
        return Ok(());
    }
    common::browser_scripts()?;
    let relay = Relay::start("[webrtc]\nice_addresses = [\"127.0.0.1\"]")?;
    let me = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let other = relay.customer("b@example.jp", "Bob", "tokyo", PW)?;
    let cam = relay.camera(me, "Living room", "pan-tilt", "dispatch", "agent")?;
    let cam_id = cam["id"].as_i64().context("id")?;
    let foreign = relay.camera(other, "Bob's", "fixed", "dispatch", "agent")?["id"]
        .as_i64()
        .context("id")?;

    // The camera runs as its own process on a known port, so the browser test can kill it
    // and start it again where it was.
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let sim_args = ["--keyframe-interval", "2s"];
    let camera = Camera::start_on(&listen, "pan-tilt", &sim_args, None)?;
    let token = cam["agent_token"].as_str().context("token")?;
    let agent = relay.start_agent(token, &camera.url, "agent")?;
    let alice = relay.login("a@example.jp", PW).await?;
    wait_online(&alice, cam_id, true, Duration::from_secs(10)).await?;

    let sim_cmd: Vec<String> = [bin("eyeward-agent").display().to_string()]
        .into_iter()
        .chain(["simulate", "--model", "pan-tilt", "--listen", &listen].map(String::from))
        .chain(sim_args.map(String::from))
        .collect();
    // The same agent, as the browser test starts it again after stopping it.
    let agent_cmd: Vec<String> = [bin("eyeward-agent").display().to_string()]
        .into_iter()
        .chain(["run", "--relay", &relay.base, "--camera", &camera.url].map(String::from))
        .chain(["--token-file".to_owned()])
        .chain([relay.dir.path().join("agent.token").display().to_string()])
        .collect();
    common::run_browser_script(
        "live",
        &relay,
        &[
            ("EMAIL", "a@example.jp".into()),
            ("PASSWORD", PW.into()),
            ("CAMERA_ID", cam_id.to_string()),
            ("FOREIGN_CAMERA_ID", foreign.to_string()),
            (
                "SIM_PID",
                camera.process.pid().context("sim pid")?.to_string(),
            ),
            ("SIM_CMD", serde_json::to_string(&sim_cmd)?),
            ("AGENT_PID", agent.pid().context("agent pid")?.to_string()),
            ("AGENT_CMD", serde_json::to_string(&agent_cmd)?),
        ],
        &[("agent", &agent)],
    )
    .await?;
    drop(camera);
    Ok(())
}
