//! A direct camera pulled over UDP cannot point the relay's packets elsewhere: its SETUP reply
//! may name any `source=` address, but the relay sends to, and takes media from, only the
//! address it checked and connected to. The hostile camera is a proxy in front of the
//! simulator that adds `source=127.0.0.2` to every Transport header; the test runs in a
//! network namespace of its own, where nftables counts every packet sent to 127.0.0.2.

mod common;

use anyhow::{Context, Result, ensure};
use common::{Camera, Process, Relay, in_loopback_namespace};
use eyeward_bench::viewer::{Eyeward, loopback_api};
use std::process::Command;
use std::time::{Duration, Instant};

const PW: &str = "correct horse battery";
const FORGED: &str = "127.0.0.2";

/// Runs `nft` with `args`; returns its output.
fn nft(args: &[&str]) -> Result<String> {
    let out = Command::new("nft").args(args).output().context("nft")?;
    ensure!(
        out.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The packets sent to the forged address so far (an nftables counter).
fn packets_to_forged() -> Result<u64> {
    let chain = nft(&["list", "chain", "ip", "probe", "out"])?;
    let counted = chain
        .split("counter packets ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .with_context(|| format!("no counter in {chain}"))?;
    Ok(counted.parse()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_camera_naming_another_source_is_still_pulled_from_its_own_address() -> Result<()> {
    if !in_loopback_namespace(
        "a_udp_camera_naming_another_source_is_still_pulled_from_its_own_address",
    )? {
        return Ok(());
    }
    nft(&["add", "table", "ip", "probe"])?;
    nft(&[
        "add",
        "chain",
        "ip",
        "probe",
        "out",
        "{ type filter hook output priority 0 ; }",
    ])?;
    nft(&[
        "add", "rule", "ip", "probe", "out", "ip", "daddr", FORGED, "counter",
    ])?;
    // The counter counts: one packet of the test's own.
    std::net::UdpSocket::bind("127.0.0.1:0")?.send_to(b"probe", (FORGED, 9))?;
    assert_eq!(
        packets_to_forged()?,
        1,
        "the counter missed the test's probe"
    );

    let camera = Camera::start("fixed", &[], None)?;
    let upstream = camera
        .url
        .strip_prefix("rtsp://")
        .and_then(|rest| rest.split('/').next())
        .context("camera address")?;
    let dir = tempfile::tempdir()?;
    let mut forge = Command::new("python3");
    forge
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/rtsp/forge_source.py"
        ))
        .args([upstream, FORGED]);
    let forge = Process::spawn(forge, Some("forging on"), dir.path().join("forge.log"))?;
    let forging_at = forge.ready.rsplit(' ').next().context("proxy address")?;

    let relay = Relay::start(
        "[cameras]\nallow_private_sources = true\nrtsp_transport = \"udp\"\n\
         [webrtc]\nice_addresses = [\"127.0.0.1\"]\n",
    )?;
    let customer = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let cam = relay.camera(
        customer,
        "Gate",
        "fixed",
        "camera-only",
        &format!("rtsp://{forging_at}/live"),
    )?;
    let id = cam["id"].as_i64().context("id")?;
    let alice = Eyeward::login(&relay.base, "a@example.jp", PW).await?;
    let viewer = alice.join(&loopback_api()?, id).await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while viewer.packets() < 100 {
        ensure!(
            Instant::now() < deadline,
            "{} packets from a camera that names another source; relay log:\n{}",
            viewer.packets(),
            relay.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        packets_to_forged()?,
        1,
        "the relay sent packets to the forged source"
    );
    alice.leave(viewer).await?;
    Ok(())
}
