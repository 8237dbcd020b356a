//! Every camera live at once, in Chromium (`tests/browser/grid.mjs`): two online cameras play
//! side by side, each its own WHEP session, a camera without its agent looks offline; a
//! click on a tile opens that camera large; leaving the grid ends its sessions. Runs in a
//! loopback-only network namespace. Screenshots go to `target/test-output/browser_grid/`.

mod common;

use anyhow::{Context, Result};
use common::{Relay, in_loopback_namespace, wait_online};
use std::time::Duration;

const PW: &str = "correct horse battery";
const TEST: &str = "the_grid_plays_every_online_camera_at_once_and_opens_one_large";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grid_plays_every_online_camera_at_once_and_opens_one_large() -> Result<()> {
    if !in_loopback_namespace(TEST)? {
        return Ok(());
    }
    common::browser_scripts()?;
    let relay = Relay::start("[webrtc]\nice_addresses = [\"127.0.0.1\"]")?;
    let me = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let alice = relay.login("a@example.jp", PW).await?;
    let mut agents = Vec::new();
    for name in ["Porch", "Garden"] {
        let cam = relay.camera(me, name, "fixed", "camera-only", "agent")?;
        let token = cam["agent_token"].as_str().context("token")?;
        agents.push(relay.start_agent(token, "sim://fixed", name)?);
        let id = cam["id"].as_i64().context("id")?;
        wait_online(&alice, id, true, Duration::from_secs(15)).await?;
    }
    relay.camera(me, "Garage", "fixed", "camera-only", "agent")?;
    common::run_browser_script(
        "grid",
        &relay,
        &[("EMAIL", "a@example.jp".into()), ("PASSWORD", PW.into())],
        &[],
    )
    .await?;
    Ok(())
}
