//! Nothing is lost between the camera and the relay: while the relay is away the agent keeps
//! detecting and queueing on its disk, a `kill -9` of the agent in the middle loses nothing it
//! had queued, and once both are back every snapshot arrives exactly once, in order; over a
//! lossy, slow link as well.

mod common;

use anyhow::{Context, Result, bail};
use common::{Process, Relay, bin, in_loopback_namespace, status_json, wait_online};
use eyeward::UnixMillis;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const PW: &str = "correct horse battery";

/// The agent's tuning for these tests: short events and cooldowns, so that the simulator's
/// crossing every 4 s is an event every 4 s.
const AGENT_CONFIG: &str = "[motion]\nstop_after = \"500ms\"\ncooldown = \"1s\"\n";

/// Where the camera and its agent run: beside the test, or in a home network of their own.
trait Network {
    /// A command for `program` on the camera's side.
    fn command(&self, program: &Path) -> Command;
    /// The address the relay listens on, reachable from the camera's side.
    fn relay_listen(&self) -> &str;
    /// Packets the link dropped on purpose so far.
    fn dropped(&self) -> Result<u64> {
        Ok(0)
    }
}

struct Loopback;

impl Network for Loopback {
    fn command(&self, program: &Path) -> Command {
        Command::new(program)
    }

    fn relay_listen(&self) -> &str {
        "127.0.0.1:0"
    }
}

/// A home network of its own for the camera and the agent: a network namespace joined to the
/// relay's by a veth pair. Both directions drop packets at random (nftables; this kernel has
/// no netem) and the uplink is slow (tbf), so uploads see loss, retransmits and queueing delay.
/// Made inside the test's own loopback-only namespace; removed when dropped.
struct Home {
    name: String,
}

const RELAY_SIDE: &str = "10.231.0.1";
const HOME_SIDE: &str = "10.231.0.2";

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!("ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

impl Home {
    fn create(loss_percent: u32) -> Result<Home> {
        let name = format!("eyeward-home-{}", std::process::id());
        ip(&["netns", "add", &name])?;
        let home = Home { name };
        let ns = home.name.as_str();
        ip(&[
            "link", "add", "ew-relay", "type", "veth", "peer", "name", "ew-home", "netns", ns,
        ])?;
        ip(&[
            "addr",
            "add",
            &format!("{RELAY_SIDE}/30"),
            "dev",
            "ew-relay",
        ])?;
        ip(&["link", "set", "ew-relay", "up"])?;
        // `ip netns exec NS PROGRAM ARGS...`
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", ns];
            all.extend_from_slice(args);
            ip(&all)
        };
        inside(&["ip", "link", "set", "lo", "up"])?;
        inside(&[
            "ip",
            "addr",
            "add",
            &format!("{HOME_SIDE}/30"),
            "dev",
            "ew-home",
        ])?;
        inside(&["ip", "link", "set", "ew-home", "up"])?;
        let rules = format!(
            "table inet lossy {{
               chain up {{ type filter hook output priority 0; oifname \"ew-home\" numgen random mod 100 < {loss_percent} counter drop; }}
               chain down {{ type filter hook input priority 0; iifname \"ew-home\" numgen random mod 100 < {loss_percent} counter drop; }}
             }}"
        );
        let out = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .expect("stdin")
                    .write_all(rules.as_bytes())?;
                child.wait_with_output()
            })
            .context("running nft (nftables)")?;
        if !out.status.success() {
            bail!("nft: {}", out.status);
        }
        inside(&[
            "tc", "qdisc", "add", "dev", "ew-home", "root", "tbf", "rate", "4mbit", "burst",
            "16kb", "latency", "200ms",
        ])?;
        Ok(home)
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

impl Network for Home {
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    fn relay_listen(&self) -> &str {
        // RELAY_SIDE, any port.
        "10.231.0.1:0"
    }

    fn dropped(&self) -> Result<u64> {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.name, "nft", "list", "table", "inet", "lossy",
            ])
            .output()?;
        let rules = String::from_utf8(out.stdout)?;
        Ok(rules
            .split("packets ")
            .skip(1)
            .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .sum())
    }
}

/// The queued events in the agent's queue folder.
fn queued(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .count()
    })
}

/// Waits until `ok` holds, polling every 100 ms; `what` and `log` explain a timeout.
async fn until(
    limit: Duration,
    what: &str,
    log: impl Fn() -> String,
    ok: impl Fn() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + limit;
    while !ok() {
        if Instant::now() > deadline {
            bail!("{what} did not happen in {limit:?}; log:\n{}", log());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// The capture times of the snapshots an agent's log says it queued (durably: the line comes
/// after the fsync).
fn queued_in_log(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("motion: snapshot queued"))
        .filter_map(|l| {
            let at = l.split("captured_at=").nth(1)?.split_whitespace().next()?;
            Some(UnixMillis(at.parse().ok()?).to_rfc3339())
        })
        .collect()
}

async fn event_list(client: &common::Client, cam_id: i64) -> Result<Vec<Value>> {
    let path = format!("/api/cameras/{cam_id}/events?limit=200");
    let (status, list) = status_json(client.get(&path).await?).await?;
    anyhow::ensure!(status == 200, "events: {status} {list}");
    Ok(list.as_array().cloned().unwrap_or_default())
}

/// The scenario: events flow, the relay stops, the agent queues, is killed (-9) and restarted
/// while the relay is still away, more events queue, the relay returns, the camera stops; then
/// the relay must hold every queued snapshot once, in capture order.
async fn outage(net: &dyn Network) -> Result<()> {
    // What waited out the outage (seconds long here) is marked late.
    let mut relay = Relay::start_on(net.relay_listen(), "[events]\ndelayed_after = \"2s\"")?;
    let alice_id = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let cam = relay.camera(alice_id, "Street", "fixed", "dispatch", "agent")?;
    let cam_id = cam["id"].as_i64().context("id")?;
    let dir = relay.dir.path().to_owned();

    let mut sim_cmd = net.command(&bin("eyeward-agent"));
    sim_cmd.args([
        "simulate",
        "--model",
        "fixed",
        "--listen",
        "127.0.0.1:0",
        "--motion-offset",
        "2s",
        "--motion-every",
        "4s",
        "--motion-crossing",
        "2s",
    ]);
    let mut camera = Process::spawn(
        sim_cmd,
        Some("eyeward-agent simulating"),
        dir.join("sim.log"),
    )?;
    let camera_url = camera
        .ready
        .rsplit(' ')
        .next()
        .context("camera url")?
        .to_owned();

    let token_file = dir.join("agent.token");
    std::fs::write(&token_file, cam["agent_token"].as_str().context("token")?)?;
    std::fs::write(dir.join("agent.toml"), AGENT_CONFIG)?;
    let queue = dir.join("agent.token.queue");
    let base = relay.base.clone();
    let agent = |n: u32| -> Result<Process> {
        let mut cmd = net.command(&bin("eyeward-agent"));
        cmd.args(["run", "--relay", &base, "--camera", &camera_url, "--config"])
            .arg(dir.join("agent.toml"))
            .arg("--token-file")
            .arg(&token_file);
        Process::spawn(cmd, None, dir.join(format!("agent{n}.log")))
    };
    let mut first = agent(1)?;
    let alice = relay.login("a@example.jp", PW).await?;
    wait_online(&alice, cam_id, true, Duration::from_secs(30)).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while event_list(&alice, cam_id).await?.is_empty() {
        anyhow::ensure!(Instant::now() < deadline, "no first event: {}", first.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The relay goes away; the agent keeps detecting and queueing.
    relay.stop()?;
    until(
        Duration::from_secs(30),
        "two events queued",
        || first.log(),
        || queued(&queue) >= 2,
    )
    .await?;
    first.signal(libc::SIGKILL)?;
    let kept = queued(&queue);
    let second = agent(2)?;
    until(
        Duration::from_secs(30),
        "more events queued after the crash",
        || second.log(),
        || queued(&queue) > kept,
    )
    .await?;

    // Both back: the queue empties into the relay. The camera stops, so the count is final.
    relay.restart()?;
    camera.stop()?;
    until(
        Duration::from_secs(90),
        "the queue emptied",
        || second.log(),
        || queued(&queue) == 0,
    )
    .await?;
    let alice = relay.login("a@example.jp", PW).await?;
    let stored = event_list(&alice, cam_id).await?;

    let mut taken = queued_in_log(&first.log());
    taken.extend(queued_in_log(&second.log()));
    let mut arrived: Vec<String> = stored
        .iter()
        .map(|e| e["at"].as_str().unwrap_or_default().to_owned())
        .collect();
    arrived.reverse(); // the list is newest first
    // A kill -9 right after an fsync, before the log line, may leave one more than logged.
    let missing: Vec<_> = taken.iter().filter(|t| !arrived.contains(t)).collect();
    assert!(missing.is_empty(), "lost: {missing:?}; arrived {arrived:?}");
    assert!(
        arrived.len() == taken.len() || arrived.len() == taken.len() + 1,
        "each once: queued {taken:?}, arrived {arrived:?}"
    );
    assert!(taken.len() >= 4, "the scenario queued {taken:?}");
    // In order: the relay stored them (ids) in the order they were captured.
    let mut by_id = stored.clone();
    by_id.sort_by_key(|e| e["id"].as_i64());
    let ids_in_capture_order: Vec<_> = by_id
        .iter()
        .map(|e| e["at"].as_str().unwrap_or_default())
        .collect();
    let mut sorted = ids_in_capture_order.clone();
    sorted.sort();
    assert_eq!(ids_in_capture_order, sorted, "stored in capture order");
    let timing: Vec<_> = stored
        .iter()
        .map(|e| {
            format!(
                "{} → {} delayed {}",
                e["at"], e["received_at"], e["delayed"]
            )
        })
        .collect();
    assert!(
        stored.iter().any(|e| e["delayed"] == true),
        "what waited out the outage says so: {timing:#?}"
    );
    assert!(
        stored.iter().all(|e| e["snapshot_url"].is_string()),
        "nothing had to be dropped: {stored:?}"
    );
    drop(second);
    let dropped = net.dropped()?;
    if net.relay_listen() != Loopback.relay_listen() {
        assert!(dropped > 0, "the link really lost packets");
    }
    eprintln!(
        "{} snapshots arrived; the link dropped {dropped} packets",
        stored.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_snapshot_arrives_once_in_order_after_a_relay_outage_and_an_agent_crash() -> Result<()>
{
    outage(&Loopback).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossy_slow_link_to_the_relay_loses_nothing() -> Result<()> {
    if !in_loopback_namespace("a_lossy_slow_link_to_the_relay_loses_nothing")? {
        return Ok(());
    }
    let home = Home::create(10)?;
    outage(&home).await
}
