//! Several relay nodes in a real browser (`tests/browser/cluster.mjs`): three relay processes
//! behind HAProxy; headless Chromium pages pinned to each node watch a pan-tilt camera whose
//! agent is linked to node a, turn it from c and see it move on b, see an event stored on a
//! appear live on b; then a is killed (-9) and the page that was on a plays again through
//! another node without a reload, and c is stopped (SIGTERM) and its page, told to
//! reconnect, plays again through b. Runs in a loopback-only network namespace.

mod common;

use anyhow::{Context, Result};
use common::cluster::Nodes;
use common::{in_loopback_namespace, start_agent_with, wait_online};
use std::time::Duration;

const PW: &str = "correct horse battery";
const TEST: &str = "pages_on_every_node_watch_turn_and_follow_one_camera_and_survive_its_node";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_on_every_node_watch_turn_and_follow_one_camera_and_survive_its_node() -> Result<()> {
    if !in_loopback_namespace(TEST)? {
        return Ok(());
    }
    common::browser_scripts()?;
    let nodes = Nodes::start(
        &["a", "b", "c"],
        "[webrtc]\nice_addresses = [\"127.0.0.1\"]",
    )?;
    let result: Result<()> = async {
        let a = nodes.node("a");
        let alice = a.customer("a@example.jp", "Alice", "tokyo", PW)?;
        let cam = a.camera(alice, "Porch", "pan-tilt", "dispatch", "agent")?;
        let cam_id = cam["id"].as_i64().context("id")?;
        let token = cam["agent_token"].as_str().context("token")?;
        // Linked to a; once a is gone, through the load balancer.
        let lb = nodes.lb.base();
        let agent = start_agent_with(
            &a.base,
            a.dir.path(),
            token,
            "sim://pan-tilt",
            "agent",
            &["--relay", &lb],
        )?;
        let on_b = nodes.login_on("b", "a@example.jp", PW).await?;
        wait_online(&on_b, cam_id, true, Duration::from_secs(20)).await?;
        let jpeg = a.dir.path().join("event.jpg");
        std::fs::write(&jpeg, common::jpeg(64, 48))?;
        common::run_browser_script(
            "cluster",
            a,
            &[
                ("BASE_URL", lb.clone()),
                ("EMAIL", "a@example.jp".into()),
                ("PASSWORD", PW.into()),
                ("CAMERA_ID", cam_id.to_string()),
                ("NODE_A", a.base.clone()),
                ("NODE_A_PID", a.process.pid().context("pid")?.to_string()),
                (
                    "NODE_C_PID",
                    nodes.node("c").process.pid().context("pid")?.to_string(),
                ),
                ("AGENT_TOKEN", token.to_owned()),
                ("JPEG", jpeg.display().to_string()),
            ],
            &[("agent", &agent)],
        )
        .await?;
        Ok(())
    }
    .await;
    result.with_context(|| nodes.logs())
}
