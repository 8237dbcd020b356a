//! The relay's RTSP client (retina) receives H.264 from a simulated camera through an agent's
//! tunnel, and from a direct rtsp:// camera. The relay runs in-process so the test can ask its
//! link registry for a tunnel, as live video will; the agent and camera are real processes.

mod common;

use anyhow::{Context, Result, bail};
use common::Camera;
use common::in_process::InProcessRelay;
use eyeward::CameraId;
use eyeward_relay::config::RtspTransport;
use eyeward_relay::ingest::Ingest;
use eyeward_relay::link;
use std::time::{Duration, Instant};

/// A customer with an agent camera; returns the camera id and its token.
fn agent_camera(relay: &InProcessRelay, email: &str) -> Result<(CameraId, String)> {
    let customer = relay.customer(email, "C", "east", "correct horse battery")?;
    let cam = relay.camera(customer, "Cam", "fixed", "camera-only", "agent")?;
    Ok((
        CameraId(cam["id"].as_i64().context("id")?),
        cam["agent_token"].as_str().context("token")?.to_owned(),
    ))
}

async fn wait_online(relay: &InProcessRelay, cam: CameraId) -> Result<()> {
    let start = Instant::now();
    while !relay.state.links.is_online(cam) {
        if start.elapsed() > Duration::from_secs(10) {
            bail!("camera {cam} never came online");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Reads frames until a keyframe and `n` frames have come; checks they are Annex B H.264 with
/// parameter sets ahead of the keyframe.
async fn expect_frames(ingest: &mut Ingest, n: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut frames, mut keyframes, mut last_ts) = (0, 0, None);
    while frames < n || keyframes == 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, ingest.next_frame())
            .await
            .context("frames stopped coming")??
            .context("the camera ended the session")?;
        assert!(frame.data.starts_with(&[0, 0, 0, 1]), "Annex B start code");
        if frame.is_key {
            keyframes += 1;
            let nal_types: Vec<u8> = frame
                .data
                .windows(5)
                .filter(|w| w[..4] == [0, 0, 0, 1])
                .map(|w| w[4] & 0x1f)
                .collect();
            assert_eq!(
                nal_types[..2],
                [7, 8],
                "SPS and PPS lead the keyframe: {nal_types:?}"
            );
            assert!(nal_types.contains(&5), "an IDR slice: {nal_types:?}");
        }
        if let Some(prev) = last_ts {
            assert!(frame.timestamp > prev, "timestamps increase");
        }
        last_ts = Some(frame.timestamp);
        frames += 1;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retina_receives_h264_through_an_agent_tunnel() -> Result<()> {
    let relay = InProcessRelay::start("").await?;
    let (cam, token) = agent_camera(&relay, "a@example.jp")?;
    let agent = relay.start_agent(&token, "sim://fixed", "agent")?;
    wait_online(&relay, cam).await?;

    let (tunnel_url, _tunnel) =
        link::local_tunnel(relay.state.links.clone(), cam, link::TunnelTo::Video).await?;
    assert!(
        tunnel_url.starts_with("rtsp://127.0.0.1:") && tunnel_url.ends_with("/live"),
        "{}",
        tunnel_url
    );
    let mut ingest = Ingest::connect(&tunnel_url, None, RtspTransport::Tcp)
        .await
        .with_context(|| agent.log())?;
    expect_frames(&mut ingest, 20).await?;

    // Two tunnels side by side, each its own RTSP session. Both are read all along, as the
    // relay reads its cameras: a session left unread would hold up the camera's encoder.
    let first = tokio::spawn(async move {
        expect_frames(&mut ingest, 60).await?;
        anyhow::Ok(())
    });
    let (second_url, _second) =
        link::local_tunnel(relay.state.links.clone(), cam, link::TunnelTo::Video).await?;
    let mut ingest2 = Ingest::connect(&second_url, None, RtspTransport::Tcp).await?;
    expect_frames(&mut ingest2, 5).await?;
    first.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retina_receives_h264_from_a_direct_camera_with_credentials_over_tcp_or_udp() -> Result<()>
{
    let camera = Camera::start(
        "pan-tilt",
        &["--username", "admin", "--width", "640", "--height", "360"],
        Some("cam-pass-1"),
    )?;
    let refused = Ingest::connect(&camera.url, None, RtspTransport::Tcp)
        .await
        .err()
        .context("no credentials, no video")?;
    assert!(refused.to_string().contains("401"), "{refused}");
    for transport in [RtspTransport::Tcp, RtspTransport::Udp] {
        let creds = Some(("admin".into(), "cam-pass-1".into()));
        let mut ingest = Ingest::connect(&camera.url, creds, transport).await?;
        expect_frames(&mut ingest, 10).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnel_to_an_unreachable_camera_fails_cleanly() -> Result<()> {
    let relay = InProcessRelay::start("").await?;
    let (cam, token) = agent_camera(&relay, "a@example.jp")?;
    // Nothing listens on port 9 of loopback: the agent cannot reach its camera.
    let _agent = relay.start_agent(&token, "rtsp://127.0.0.1:9/live", "agent")?;
    wait_online(&relay, cam).await?;
    let (tunnel_url, _tunnel) =
        link::local_tunnel(relay.state.links.clone(), cam, link::TunnelTo::Video).await?;
    let err = Ingest::connect(&tunnel_url, None, RtspTransport::Tcp)
        .await
        .err()
        .context("no camera, no session")?;
    eprintln!("{err}");
    assert!(relay.state.links.is_online(cam), "the link itself stays up");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cameras_credentials_stay_with_the_agent() -> Result<()> {
    let camera = Camera::start(
        "fixed",
        &["--username", "admin", "--width", "640", "--height", "360"],
        Some("only-the-agent-knows"),
    )?;
    let relay = InProcessRelay::start("").await?;
    let (cam, token) = agent_camera(&relay, "a@example.jp")?;
    let with_credentials = camera
        .url
        .replacen("rtsp://", "rtsp://admin:only-the-agent-knows@", 1);
    let agent = relay.start_agent(&token, &with_credentials, "agent")?;
    wait_online(&relay, cam).await?;
    // The relay's client has no credentials, yet the camera's Digest challenge is answered.
    let (tunnel_url, _tunnel) =
        link::local_tunnel(relay.state.links.clone(), cam, link::TunnelTo::Video).await?;
    let mut ingest = Ingest::connect(&tunnel_url, None, RtspTransport::Tcp)
        .await
        .with_context(|| agent.log())?;
    expect_frames(&mut ingest, 10)
        .await
        .with_context(|| agent.log())?;
    assert!(
        !agent.log().contains("only-the-agent-knows"),
        "{}",
        agent.log()
    );

    // Wrong credentials on the agent: the relay sees the camera's refusal, not a hang.
    let (cam2, token2) = agent_camera(&relay, "b@example.jp")?;
    let wrong = camera.url.replacen("rtsp://", "rtsp://admin:wrong@", 1);
    let _agent2 = relay.start_agent(&token2, &wrong, "agent2")?;
    wait_online(&relay, cam2).await?;
    let (tunnel_url, _tunnel) =
        link::local_tunnel(relay.state.links.clone(), cam2, link::TunnelTo::Video).await?;
    let err = Ingest::connect(&tunnel_url, None, RtspTransport::Tcp)
        .await
        .err()
        .context("wrong credentials, no video")?;
    assert!(err.to_string().contains("401"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_through_the_agent_starts_with_its_group_of_pictures_not_the_cameras_next_keyframe()
-> Result<()> {
    // A camera whose encoder keeps its own schedule: a new session waits up to 8 s for a
    // keyframe. The agent's decoder reads it all along and keeps the current group. Grain
    // makes the encoder spend its whole 2 Mbit/s: a group of several seconds is megabytes.
    const KEYFRAME_INTERVAL_MS: i64 = 8000;
    let camera = Camera::start(
        "fixed",
        &[
            "--keyframes-on-schedule",
            "--keyframe-interval",
            "8s",
            "--grain",
            "12",
        ],
        None,
    )?;
    let relay = InProcessRelay::start("").await?;
    let (cam, token) = agent_camera(&relay, "a@example.jp")?;
    let agent = relay.start_agent(&token, &camera.url, "agent")?;
    wait_online(&relay, cam).await?;
    // Pull 3 s after one of the camera's keyframes, 5 s before its next; two intervals on,
    // so that the agent, however slow to start, has had one.
    camera
        .sleep_until_after_keyframe(KEYFRAME_INTERVAL_MS, 3000, 2 * KEYFRAME_INTERVAL_MS)
        .await?;
    let pulled = Instant::now();
    let (tunnel_url, _tunnel) =
        link::local_tunnel(relay.state.links.clone(), cam, link::TunnelTo::Video).await?;
    let mut ingest = Ingest::connect(&tunnel_url, None, RtspTransport::Tcp)
        .await
        .with_context(|| agent.log())?;
    let first = tokio::time::timeout(Duration::from_secs(4), ingest.next_frame())
        .await
        .with_context(|| format!("no frame within 4 s: {}", agent.log()))??
        .context("session ended")?;
    assert!(first.is_key, "the group starts at its keyframe");
    assert!(
        pulled.elapsed() < Duration::from_secs(3),
        "well before the camera's next keyframe, 5 s away: {:?} {}",
        pulled.elapsed(),
        agent.log()
    );
    assert!(agent.served_from_group_of_pictures(), "{}", agent.log());
    // The group (three seconds of frames, more than one piece of the tunnel) comes stamped
    // 1 ms apart, then the camera's own spacing (15 fps: 6000 ticks).
    let mut gaps = Vec::new();
    let mut last = first.timestamp;
    for _ in 0..60 {
        let f = tokio::time::timeout(Duration::from_secs(2), ingest.next_frame())
            .await
            .context("frames stopped")??
            .context("session ended")?;
        gaps.push(f.timestamp - last);
        last = f.timestamp;
    }
    let cached = gaps.iter().take_while(|g| **g == 90).count();
    assert!(cached >= 35, "about 45 frames of the group: {gaps:?}");
    assert!(
        gaps[cached..].iter().all(|g| (3000..9000).contains(g)),
        "then live: {gaps:?}"
    );
    Ok(())
}
