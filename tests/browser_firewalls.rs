//! Viewers behind firewalls, in Chromium, in loopback-only network namespaces whose nftables
//! firewall blocks the way: with every UDP datagram dropped the live view plays over ICE-TCP
//! to the relay's one TCP media port; with the relay's media ports closed to the browser
//! (only its web port and 443 open) the page falls back by itself to TURN over TLS on 443,
//! through Debian's coturn with the time-limited credential the relay handed it.

mod common;

use anyhow::{Context, Result, ensure};
use common::turn::{Coturn, RELAY_ADDRESS};
use common::{Camera, Relay, free_port, in_loopback_namespace, nft, wait_online};
use std::process::Command;
use std::time::Duration;

const PW: &str = "correct horse battery";
const SECRET: &str = "tests-turn-secret-5b7e21";

/// Packets the firewall's counters saw dropped so far.
fn dropped() -> Result<u64> {
    let out = Command::new("nft")
        .args(["list", "table", "inet", "firewall"])
        .output()?;
    let listing = String::from_utf8_lossy(&out.stdout);
    let mut words = listing.split_whitespace();
    let mut total = 0;
    while words.any(|w| w == "packets") {
        total += words.next().context("a count")?.parse::<u64>()?;
    }
    Ok(total)
}

/// A customer's camera linked through its agent, online; the relay started with `webrtc`
/// (the `[webrtc]` section's lines).
async fn watched_camera(webrtc: &str) -> Result<(Relay, Camera, common::Process, i64)> {
    let relay = Relay::start(&format!(
        "[webrtc]\nice_addresses = [\"127.0.0.1\"]\n{webrtc}"
    ))?;
    let me = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let cam = relay.camera(me, "Porch", "fixed", "camera-only", "agent")?;
    let cam_id = cam["id"].as_i64().context("id")?;
    let camera = Camera::start("fixed", &[], None)?;
    let token = cam["agent_token"].as_str().context("token")?;
    let agent = relay.start_agent(token, &camera.url, "agent")?;
    let alice = relay.login("a@example.jp", PW).await?;
    wait_online(&alice, cam_id, true, Duration::from_secs(10)).await?;
    Ok((relay, camera, agent, cam_id))
}

/// Opens the camera in Chromium and checks the path its video took (`EXPECT`: `tcp`, or
/// `relay-tls`); what the script printed.
async fn play(relay: &Relay, agent: &common::Process, cam_id: i64, expect: &str) -> Result<String> {
    common::run_browser_script(
        "firewall",
        relay,
        &[
            ("EMAIL", "a@example.jp".into()),
            ("PASSWORD", PW.into()),
            ("CAMERA_ID", cam_id.to_string()),
            ("EXPECT", expect.into()),
        ],
        &[("agent", agent)],
    )
    .await
}

async fn metrics(relay: &Relay) -> Result<String> {
    let alice = relay.login("a@example.jp", PW).await?;
    Ok(alice.get("/metrics").await?.text().await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_over_ice_tcp_when_udp_is_blocked() -> Result<()> {
    if !in_loopback_namespace("chromium_plays_over_ice_tcp_when_udp_is_blocked")? {
        return Ok(());
    }
    common::browser_scripts()?;
    nft(
        None,
        "table inet firewall {
            chain out { type filter hook output priority 0; meta l4proto udp counter drop; }
        }",
    )?;
    let (relay, camera, agent, cam_id) = watched_camera("").await?;
    play(&relay, &agent, cam_id, "tcp").await?;
    ensure!(
        dropped()? > 0,
        "the browser did try UDP, and it was dropped"
    );
    let metrics = metrics(&relay).await?;
    ensure!(
        metrics.contains("eyeward_viewer_media_started_total{transport=\"tcp\"} 1"),
        "{metrics}"
    );
    ensure!(!metrics.contains("transport=\"udp\""), "{metrics}");
    drop(camera);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_falls_back_to_turn_over_tls_on_443_when_only_that_is_open() -> Result<()> {
    if !in_loopback_namespace("chromium_falls_back_to_turn_over_tls_on_443_when_only_that_is_open")?
    {
        return Ok(());
    }
    common::browser_scripts()?;
    let coturn = Coturn::start_tls(SECRET, 443).await?;
    let (udp, tcp) = (free_port()?, free_port()?);
    let (relay, camera, agent, cam_id) = watched_camera(&format!(
        "udp_port = {udp}\ntcp_port = {tcp}\n\
         ice_servers = [{{ urls = [\"turns:127.0.0.1:443?transport=tcp\"], secret = \"{SECRET}\" }}]\n"
    ))
    .await?;
    // The browser reaches the relay's web port and 443, nothing else of the relay's or
    // coturn's; coturn (relaying from its own address) reaches the relay's media port.
    nft(
        None,
        &format!(
            "table inet firewall {{
                chain out {{
                    type filter hook output priority 0;
                    ip saddr {RELAY_ADDRESS} udp dport {udp} accept;
                    udp dport {udp} counter drop;
                    tcp dport {tcp} counter drop;
                    udp dport {plain} counter drop;
                    tcp dport {plain} counter drop;
                }}
            }}",
            plain = coturn.port
        ),
    )?;
    let out = play(&relay, &agent, cam_id, "relay-tls").await;
    let out = out.with_context(|| format!("coturn's log:\n{}", coturn.log()))?;
    ensure!(
        dropped()? > 0,
        "the direct path was tried first, and blocked"
    );
    // Allocated with this viewer's own time-limited credential (`<expiry>:c<customer>`).
    let log = coturn.log();
    ensure!(
        log.lines()
            .any(|l| l.contains(":c1>: incoming packet ALLOCATE processed, success")),
        "coturn allocated for the viewer: {log}"
    );
    eprintln!("{out}");
    drop(camera);
    Ok(())
}
