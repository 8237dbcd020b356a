//! A panic in one camera's feed, one viewer's stream or one agent's link ends that task alone:
//! the other cameras and viewers keep their video, the process keeps answering, the camera
//! recovers, and the panic is logged and counted without the camera's password. The relay
//! runs in-process so that fail points (the relay's `failpoints` feature) can fire panics
//! inside it; the cameras, agent and viewers are real.

mod common;

use anyhow::{Context, Result, bail};
use common::Camera;
use common::in_process::InProcessRelay;
use eyeward_bench::viewer::{Eyeward, Viewer, loopback_api};
use eyeward_relay::metrics::TaskLabels;
use std::time::{Duration, Instant};

const PW: &str = "correct horse battery";
const RTSP_PASSWORD: &str = "SENTINEL-panic-rtsp-4d2c";

/// Panics counted for `task` so far.
fn panics(relay: &InProcessRelay, task: &'static str) -> u64 {
    relay
        .state
        .metrics
        .task_panics
        .get_or_create(&TaskLabels { task })
        .get()
}

async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            bail!("{what}: not within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Which of `viewers` receive video over the next `window`.
async fn receiving(viewers: &[&Viewer], window: Duration) -> Vec<bool> {
    let before: Vec<u64> = viewers.iter().map(|v| v.packets()).collect();
    tokio::time::sleep(window).await;
    viewers
        .iter()
        .zip(before)
        .map(|(v, b)| v.packets() > b)
        .collect()
}

/// Waits until `viewer` receives video again.
async fn wait_receiving(what: &str, viewer: &Viewer, limit: Duration) -> Result<()> {
    let start = viewer.packets();
    wait_for(what, limit, || viewer.packets() > start + 30).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_ends_one_task_alone_and_the_camera_recovers() -> Result<()> {
    let relay = InProcessRelay::start(
        "[webrtc]\nice_addresses = [\"127.0.0.1\"]\n[cameras]\nallow_private_sources = true",
    )
    .await?;
    let customer = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    // Camera A: a direct camera with a password. Camera B: through its agent.
    let direct = Camera::start("fixed", &["--username", "admin"], Some(RTSP_PASSWORD))?;
    let source = direct
        .url
        .replacen("rtsp://", &format!("rtsp://admin:{RTSP_PASSWORD}@"), 1);
    let a = relay.camera(customer, "Gate", "fixed", "camera-only", &source)?["id"]
        .as_i64()
        .context("id")?;
    let b_cam = relay.camera(customer, "Porch", "fixed", "camera-only", "agent")?;
    let b = b_cam["id"].as_i64().context("id")?;
    let _agent = relay.start_agent(
        b_cam["agent_token"].as_str().context("token")?,
        "sim://fixed",
        "agent",
    )?;
    let b_id = eyeward::CameraId(b);
    wait_for("camera B online", Duration::from_secs(15), || {
        relay.state.links.is_online(b_id)
    })
    .await?;

    let alice = Eyeward::login(&relay.base, "a@example.jp", PW).await?;
    let api = loopback_api()?;
    let va = alice.join(&api, a).await?;
    let vb1 = alice.join(&api, b).await?;
    let vb2 = alice.join(&api, b).await?;
    for (name, v) in [("A", &va), ("B1", &vb1), ("B2", &vb2)] {
        wait_receiving(&format!("viewer {name} starts"), v, Duration::from_secs(20)).await?;
    }

    // Camera A's feed panics at every frame: pulled again and again, with pauses that grow.
    fail::cfg(format!("feed-frame-{a}"), "panic").map_err(anyhow::Error::msg)?;
    wait_for("A's feed panics twice", Duration::from_secs(15), || {
        panics(&relay, "feed") >= 2
    })
    .await?;
    assert_eq!(
        receiving(&[&vb1, &vb2], Duration::from_secs(1)).await,
        [true, true],
        "camera B's viewers keep their video while A's feed panics"
    );
    assert_eq!(relay.client().get("/healthz").await?.status(), 200);
    fail::remove(format!("feed-frame-{a}"));
    wait_receiving("A's viewer gets video again", &va, Duration::from_secs(30)).await?;

    // One of camera B's two viewers panics: that session alone ends.
    fail::cfg(format!("viewer-frame-{b}"), "1*panic").map_err(anyhow::Error::msg)?;
    wait_for("a viewer's task panics", Duration::from_secs(10), || {
        panics(&relay, "viewer") == 1
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let alive = receiving(&[&va, &vb1, &vb2], Duration::from_secs(1)).await;
    assert!(alive[0], "camera A's viewer goes on");
    assert!(
        alive[1] != alive[2],
        "exactly one of B's viewers ended: {alive:?}"
    );
    let survivor = if alive[1] { &vb1 } else { &vb2 };
    let sessions = |cam: i64| {
        relay
            .state
            .metrics
            .viewers
            .get_or_create(&eyeward_relay::metrics::CameraLabels { camera: cam })
            .get()
    };
    wait_for(
        "the panicked session is gone",
        Duration::from_secs(5),
        || sessions(b) == 1,
    )
    .await?;

    // Camera B's agent link panics: the agent connects again and B's video comes back.
    fail::cfg(format!("agent-heartbeat-{b}"), "1*panic").map_err(anyhow::Error::msg)?;
    wait_for("B's link panics", Duration::from_secs(15), || {
        panics(&relay, "agent_link") == 1
    })
    .await?;
    wait_for("B online again", Duration::from_secs(15), || {
        relay.state.links.is_online(b_id)
    })
    .await?;
    wait_receiving(
        "B's remaining viewer gets video after the new link",
        survivor,
        Duration::from_secs(30),
    )
    .await?;
    let late = alice.join(&api, b).await?;
    wait_receiving("a new viewer of B", &late, Duration::from_secs(20)).await?;
    assert!(receiving(&[&va], Duration::from_secs(1)).await[0]);

    // Counted, and logged without the camera's password.
    let metrics = relay.client().get("/metrics").await?.text().await?;
    for task in ["feed", "viewer", "agent_link"] {
        assert!(
            metrics.contains(&format!("eyeward_task_panics_total{{task=\"{task}\"}}")),
            "{metrics}"
        );
    }
    let log = relay.log();
    assert!(log.matches("task panicked").count() >= 4, "{log}");
    for what in [&log, &metrics] {
        assert!(!what.contains(RTSP_PASSWORD), "the password leaked: {what}");
    }
    Ok(())
}
