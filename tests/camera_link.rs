//! The agent's link as real processes: relay, agent and simulated camera. The camera is online
//! while its agent's link is up, goes offline when the agent dies, and comes back by itself
//! after the relay restarts. Tokens open only their own camera.

mod common;

use anyhow::{Context, Result};
use common::{Process, Relay, status_json, wait_online};
use serde_json::Value;
use std::time::{Duration, Instant};

const PW: &str = "correct horse battery";

/// A relay with one customer and one agent camera; returns the relay, the camera id and its
/// token.
fn relay_with_agent_camera() -> Result<(Relay, i64, String)> {
    let relay = Relay::start("")?;
    let customer = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let cam = relay.camera(customer, "Porch", "fixed", "dispatch", "agent")?;
    let token = cam["agent_token"].as_str().context("token")?.to_owned();
    Ok((relay, cam["id"].as_i64().context("id")?, token))
}

fn start_agent(relay: &Relay, token: &str, name: &str) -> Result<Process> {
    relay.start_agent(token, "sim://fixed", name)
}

fn actions(history: &Value) -> Vec<String> {
    history
        .as_array()
        .map(|h| {
            h.iter()
                .filter_map(|e| e["action"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_camera_is_online_while_its_agent_is_and_the_agent_comes_back_after_a_relay_restart()
-> Result<()> {
    let (mut relay, cam, token) = relay_with_agent_camera()?;
    let alice = relay.login("a@example.jp", PW).await?;
    wait_online(&alice, cam, false, Duration::ZERO)
        .await
        .context("offline before the agent runs")?;

    let mut agent = start_agent(&relay, &token, "agent")?;
    let took = wait_online(&alice, cam, true, Duration::from_secs(2))
        .await
        .with_context(|| agent.log())?;
    eprintln!("online {took:?} after the agent started");

    // kill -9: no goodbye, the relay notices on its own.
    agent.signal(libc::SIGKILL)?;
    let took = wait_online(&alice, cam, false, Duration::from_secs(15)).await?;
    eprintln!("offline {took:?} after kill -9");
    // The history row is written just after the camera shows offline.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let history = loop {
        let (_, history) = status_json(alice.get("/api/history").await?).await?;
        if actions(&history).first().map(String::as_str) == Some("camera.offline")
            || std::time::Instant::now() > deadline
        {
            break history;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let a = actions(&history);
    assert_eq!(a[..2], ["camera.offline", "camera.online"], "{history}");
    assert_eq!(history[0]["channel"], "agent");

    // The relay restarts; the agent finds it again without help.
    let agent = start_agent(&relay, &token, "agent2")?;
    wait_online(&alice, cam, true, Duration::from_secs(5)).await?;
    relay.restart()?;
    let alice = relay.login("a@example.jp", PW).await?;
    let took = wait_online(&alice, cam, true, Duration::from_secs(20))
        .await
        .with_context(|| agent.log())?;
    eprintln!("back online {took:?} after the relay restarted");
    Ok(())
}

#[tokio::test]
async fn a_second_agent_with_the_same_token_replaces_the_first_and_wrong_tokens_are_refused()
-> Result<()> {
    let (relay, cam, token) = relay_with_agent_camera()?;
    let alice = relay.login("a@example.jp", PW).await?;
    let mut first = start_agent(&relay, &token, "first")?;
    wait_online(&alice, cam, true, Duration::from_secs(5)).await?;
    let second = start_agent(&relay, &token, "second")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !relay.log().contains("replaced_older=true") {
        assert!(Instant::now() < deadline, "no replacement: {}", relay.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The replaced agent's departure does not take the camera offline.
    first.signal(libc::SIGKILL)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    wait_online(&alice, cam, true, Duration::ZERO)
        .await
        .with_context(|| second.log())?;

    let secret = "ewa_thisIsNotAValidTokenButLooksLikeOne1234567";
    let refused = start_agent(&relay, secret, "refused")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !refused.log().contains("refused this agent's token") {
        assert!(Instant::now() < deadline, "not refused: {}", refused.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        relay
            .log()
            .contains("agent refused: unknown or revoked token")
    );
    assert!(!relay.log().contains(secret), "tokens never reach the log");
    let metrics = relay.client().get("/metrics").await?.text().await?;
    // Counted: at least the refusal seen above (the refused agent tries again after a
    // random 0–3 s, so a second one may be in already).
    let failures: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("eyeward_agent_auth_failures_total "))
        .and_then(|v| v.trim().parse().ok())
        .context("the auth failures counter")?;
    assert!(failures >= 1, "{metrics}");
    assert!(metrics.contains("eyeward_agent_links 1"), "{metrics}");
    Ok(())
}

#[tokio::test]
async fn a_silent_agent_goes_offline_after_missed_heartbeats_and_recovers() -> Result<()> {
    let (relay, cam, token) = relay_with_agent_camera()?;
    let alice = relay.login("a@example.jp", PW).await?;
    let agent = start_agent(&relay, &token, "agent")?;
    wait_online(&alice, cam, true, Duration::from_secs(5)).await?;
    // Frozen, its socket still open: only the missing heartbeats tell.
    agent.kill_only(libc::SIGSTOP);
    let took = wait_online(&alice, cam, false, Duration::from_secs(15)).await?;
    eprintln!("offline {took:?} after the agent froze");
    assert!(
        relay.log().contains("heartbeats stopped"),
        "{}",
        relay.log()
    );
    agent.kill_only(libc::SIGCONT);
    wait_online(&alice, cam, true, Duration::from_secs(10))
        .await
        .with_context(|| agent.log())?;
    Ok(())
}
