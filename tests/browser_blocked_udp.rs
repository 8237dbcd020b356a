//! Viewers behind firewalls, in Chromium: in a loopback-only network namespace where nftables
//! drops every UDP datagram, the live view still plays, over ICE-TCP to the relay's one TCP
//! media port, without the person doing anything.

mod common;

use anyhow::{Context, Result, ensure};
use common::{Camera, Relay, in_loopback_namespace, wait_online};
use std::process::Command;
use std::time::Duration;

const PW: &str = "correct horse battery";
const TEST: &str = "chromium_plays_over_ice_tcp_when_udp_is_blocked";

/// Drops every UDP datagram in this namespace, counting them.
fn block_udp() -> Result<()> {
    let rules = "table inet firewall {
        chain out { type filter hook output priority 0; meta l4proto udp counter drop; }
    }";
    common::nft(None, rules)?;
    Ok(())
}

/// UDP datagrams the firewall dropped so far.
fn udp_dropped() -> Result<u64> {
    let out = Command::new("nft")
        .args(["list", "table", "inet", "firewall"])
        .output()?;
    let listing = String::from_utf8_lossy(&out.stdout);
    let packets = listing
        .split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .context("no counter")?;
    Ok(packets.parse()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_over_ice_tcp_when_udp_is_blocked() -> Result<()> {
    if !in_loopback_namespace(TEST)? {
        return Ok(());
    }
    common::browser_scripts()?;
    block_udp()?;
    let relay = Relay::start("[webrtc]\nice_addresses = [\"127.0.0.1\"]")?;
    let me = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let cam = relay.camera(me, "Porch", "fixed", "camera-only", "agent")?;
    let cam_id = cam["id"].as_i64().context("id")?;
    let camera = Camera::start("fixed", &[], None)?;
    let token = cam["agent_token"].as_str().context("token")?;
    let agent = relay.start_agent(token, &camera.url, "agent")?;
    let alice = relay.login("a@example.jp", PW).await?;
    wait_online(&alice, cam_id, true, Duration::from_secs(10)).await?;

    let out = common::run_browser_script(
        "blocked_udp",
        &relay,
        &[
            ("EMAIL", "a@example.jp".into()),
            ("PASSWORD", PW.into()),
            ("CAMERA_ID", cam_id.to_string()),
        ],
        &[("agent", &agent)],
    )
    .await?;
    ensure!(out.contains("\"protocol\":\"tcp\""), "{out}");
    ensure!(
        udp_dropped()? > 0,
        "the browser did try UDP, and it was dropped"
    );
    let metrics = alice.get("/metrics").await?.text().await?;
    ensure!(
        metrics.contains("eyeward_viewer_media_started_total{transport=\"tcp\"} 1"),
        "{metrics}"
    );
    ensure!(!metrics.contains("transport=\"udp\""), "{metrics}");
    drop(camera);
    Ok(())
}
