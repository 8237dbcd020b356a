//! A camera whose picture never ends cannot take the relay's memory, over TCP or over UDP:
//! the relay cuts its connection once one picture passes the bound (8 MiB), and another
//! customer's viewer plays on through the attack. Both cameras stand on an address of their
//! own (a LAN camera's, not loopback): the test runs in a network namespace of its own, with
//! that address on its loopback device.

mod common;

use anyhow::{Context, Result, ensure};
use common::{Camera, Process, Relay, in_loopback_namespace};
use eyeward_bench::viewer::{Eyeward, loopback_api};
use std::process::Command;
use std::time::{Duration, Instant};

const PW: &str = "correct horse battery";
/// The cameras' address, as on a LAN.
const CAMERA_IP: &str = "10.9.0.2";
/// What the hostile camera sends at most: far past the relay's bound.
const LIMIT: usize = 64 * 1024 * 1024;
/// What it may have sent before the relay cut it off: the bound (8 MiB), the relay's read
/// buffers and the sockets' queues.
const CUT_OFF_BY: usize = 24 * 1024 * 1024;

/// Waits up to `within` for `viewer` to have received `more` packets beyond `from`.
async fn plays_on(viewer: &eyeward_bench::viewer::Viewer, more: u64, within: Duration) -> bool {
    let from = viewer.packets();
    let deadline = Instant::now() + within;
    while viewer.packets() < from + more {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_picture_that_never_ends_is_cut_off_and_other_viewers_play_on() -> Result<()> {
    if !in_loopback_namespace("a_picture_that_never_ends_is_cut_off_and_other_viewers_play_on")? {
        return Ok(());
    }
    let added = Command::new("ip")
        .args(["addr", "add", &format!("{CAMERA_IP}/32"), "dev", "lo"])
        .status()?;
    ensure!(added.success(), "ip addr add {CAMERA_IP}");
    let honest = Camera::start_on(&format!("{CAMERA_IP}:0"), "fixed", &[], None)?;
    for transport in ["tcp", "udp"] {
        let dir = tempfile::tempdir()?;
        let mut script = Command::new("python3");
        script
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/rtsp/endless_picture.py"
            ))
            .args([CAMERA_IP, &LIMIT.to_string()]);
        let hostile = Process::spawn(
            script,
            Some("endless picture on"),
            dir.path().join("endless.log"),
        )?;
        let hostile_url = hostile.ready.rsplit(' ').next().context("url")?.to_owned();

        let relay = Relay::start(&format!(
            "[cameras]\nallow_private_sources = true\nrtsp_transport = \"{transport}\"\n\
             [webrtc]\nice_addresses = [\"127.0.0.1\"]\n"
        ))?;
        let alice = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
        let endless = relay.camera(alice, "Endless", "fixed", "camera-only", &hostile_url)?;
        let bob = relay.customer("b@example.jp", "Bob", "west", PW)?;
        let gate = relay.camera(bob, "Gate", "fixed", "camera-only", &honest.url)?;

        let api = loopback_api()?;
        let bob = Eyeward::login(&relay.base, "b@example.jp", PW).await?;
        let bobs = bob.join(&api, gate["id"].as_i64().context("id")?).await?;
        ensure!(
            plays_on(&bobs, 50, Duration::from_secs(20)).await,
            "{transport}: the honest camera does not play ({} packets); relay log:\n{}",
            bobs.packets(),
            relay.log()
        );

        let alice = Eyeward::login(&relay.base, "a@example.jp", PW).await?;
        let alices = alice
            .join(&api, endless["id"].as_i64().context("id")?)
            .await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let verdict = loop {
            if let Some(line) = hostile
                .ready_lines()
                .into_iter()
                .find(|l| l.starts_with("cut off") || l.starts_with("never"))
            {
                break line;
            }
            ensure!(
                Instant::now() < deadline,
                "{transport}: the hostile camera never played; its log:\n{}\nrelay log:\n{}",
                hostile.log(),
                relay.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        eprintln!("{transport}: {verdict}");
        let sent: usize = verdict
            .split(' ')
            .find_map(|w| w.parse().ok())
            .context("bytes in the verdict")?;
        ensure!(
            verdict.starts_with("cut off") && sent <= CUT_OFF_BY,
            "{transport}: {verdict}; relay log:\n{}",
            relay.log()
        );
        ensure!(
            relay.log().contains("a picture on channel 0 passed"),
            "{transport}: the relay did not say why; its log:\n{}",
            relay.log()
        );
        ensure!(
            plays_on(&bobs, 50, Duration::from_secs(10)).await,
            "{transport}: the honest viewer stopped during the attack; relay log:\n{}",
            relay.log()
        );
        alice.leave(alices).await?;
        bob.leave(bobs).await?;
    }
    Ok(())
}
