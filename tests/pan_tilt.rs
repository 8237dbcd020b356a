//! Pan-tilt end to end: a customer's commands go relay → link → agent → ONVIF → the simulated
//! camera, whose own status (read over ONVIF by the test, apart from our path) shows the move;
//! a continuous move stops at the dead-man timeout; presets; every viewer sees the position;
//! each press is one history entry. Bad input, other customers' and fixed cameras, and a
//! burst of 1000 commands get clean 4xx answers and leave the camera still. A move is no
//! motion event, but a crossing right after it is.

mod common;

use anyhow::{Context, Result, ensure};
use common::{Camera, Client, Relay, status_json, wait_online};
use eyeward::api::PtzStatus;
use eyeward::clock::Clock;
use eyeward_agent::onvif::client::{Position, Ptz, Status};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const PW: &str = "correct horse battery";

/// A relay, Alice's pan-tilt camera behind its agent (a simulator with its own ONVIF
/// service), her fixed camera, and Bob's pan-tilt camera.
struct Setup {
    relay: Relay,
    camera: Camera,
    agent: common::Process,
    /// The test's own line to the camera, to check what it really does.
    onvif: Ptz,
    alice: Client,
    cam: i64,
    fixed: i64,
    bobs: i64,
}

async fn setup(simulator: &[&str], agent_config: Option<&str>) -> Result<Setup> {
    let relay = Relay::start("")?;
    let alice_id = relay.customer("alice@example.jp", "Alice", "tokyo", PW)?;
    let bob_id = relay.customer("bob@example.jp", "Bob", "east", PW)?;
    let cam = relay.camera(alice_id, "Porch", "pan-tilt", "dispatch", "agent")?;
    let fixed = relay.camera(alice_id, "Door", "fixed", "dispatch", "agent")?;
    let bobs = relay.camera(bob_id, "Garden", "pan-tilt", "dispatch", "agent")?;
    let camera = Camera::start("pan-tilt", simulator, None)?;
    let onvif_url = camera.onvif_url()?;
    let dir = tempfile::tempdir()?;
    let mut extra = vec!["--onvif", onvif_url.as_str()];
    let config_path = dir.path().join("agent.toml");
    if let Some(text) = agent_config {
        std::fs::write(&config_path, text)?;
        extra.extend(["--config", config_path.to_str().context("path")?]);
    }
    let agent = common::start_agent_with(
        &relay.base,
        relay.dir.path(),
        cam["agent_token"].as_str().context("token")?,
        &camera.url,
        "agent",
        &extra,
    )?;
    std::mem::forget(dir);
    let alice = relay.login("alice@example.jp", PW).await?;
    let cam = cam["id"].as_i64().context("id")?;
    wait_online(&alice, cam, true, Duration::from_secs(10)).await?;
    let onvif = Ptz::connect(&onvif_url, None, Duration::from_secs(2), Clock::real()).await?;
    Ok(Setup {
        relay,
        camera,
        agent,
        onvif,
        alice,
        cam,
        fixed: fixed["id"].as_i64().context("id")?,
        bobs: bobs["id"].as_i64().context("id")?,
    })
}

impl Setup {
    async fn ptz(&self, cam: i64, command: Value) -> Result<(u16, Value)> {
        status_json(
            self.alice
                .post(&format!("/api/cameras/{cam}/ptz"), &command)
                .await?,
        )
        .await
    }

    /// Sends a command that must succeed; returns the state it answers.
    async fn ok(&self, command: Value) -> Result<Value> {
        let (status, body) = self.ptz(self.cam, command.clone()).await?;
        ensure!(status == 200, "{command} → {status} {body}");
        Ok(body["state"].clone())
    }

    /// How many motion events the camera has.
    async fn events(&self) -> Result<usize> {
        let path = format!("/api/cameras/{}/events", self.cam);
        let (_, list) = status_json(self.alice.get(&path).await?).await?;
        Ok(list.as_array().context("array")?.len())
    }

    async fn status(&self) -> Result<Status> {
        Ok(self.onvif.status().await?)
    }

    /// Waits until the camera itself says it is still; returns how long that took.
    async fn until_still(&self, limit: Duration) -> Result<Duration> {
        let start = Instant::now();
        loop {
            if !self.status().await?.moving {
                return Ok(start.elapsed());
            }
            ensure!(
                start.elapsed() < limit,
                "still moving after {limit:?}; simulator log:\n{}",
                self.camera.process.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn near(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.02
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_move_the_camera_and_every_viewer_sees_where_it_looks() -> Result<()> {
    let s = setup(&["--motion-every", "0s"], None).await?;
    let cam = s.cam;
    // A second viewer of the same camera, following its state live.
    let other_tab = s.relay.login("alice@example.jp", PW).await?;
    let resp = other_tab
        .get(&format!("/api/cameras/{cam}/ptz/live"))
        .await?;
    assert_eq!(resp.status(), 200);
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        let mut resp = resp;
        let mut text = String::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let frame: String = text.drain(..end + 2).collect();
                if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data:"))
                    && let Ok(v) = serde_json::from_str::<Value>(data.trim())
                {
                    let _ = seen_tx.send(v);
                }
            }
        }
    });

    // Right at full speed: the camera turns right at once, and the answer says so.
    let state = s
        .ok(json!({"action": "move", "pan": 1.0, "tilt": 0.0}))
        .await?;
    assert_eq!(state["moving"], true, "{state}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let turning = s.status().await?;
    assert!(turning.moving && turning.position.pan > 0.1, "{turning:?}");
    let state = s.ok(json!({"action": "stop"})).await?;
    assert_eq!(state["moving"], false, "{state}");
    let stopped = s.status().await?;
    assert!(!stopped.moving, "{stopped:?}");
    assert!(near(
        state["pan"].as_f64().context("pan")?,
        stopped.position.pan
    ));
    // The other tab saw the camera turn right and stop.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let v = tokio::time::timeout_at(deadline.into(), seen_rx.recv())
            .await
            .context("the other tab saw no stopped state")?
            .context("stream ended")?;
        if v["moving"] == false && v["pan"].as_f64().is_some_and(|p| p > 0.1) {
            break;
        }
    }

    // Nobody repeats the move (the tab closed): the camera stops at the dead-man timeout.
    let sent = Instant::now();
    s.ok(json!({"action": "move", "pan": -1.0, "tilt": 0.0}))
        .await?;
    s.until_still(Duration::from_secs(3)).await?;
    let stopped_after = sent.elapsed();
    assert!(
        stopped_after >= Duration::from_millis(900) && stopped_after < Duration::from_millis(1600),
        "stopped {stopped_after:?} after the last move (dead-man 1 s)"
    );

    // Absolute, step, click-to-centre.
    s.ok(json!({"action": "go_to", "pan": 0.5, "tilt": -0.5}))
        .await?;
    s.until_still(Duration::from_secs(5)).await?;
    let p = s.status().await?.position;
    assert!(near(p.pan, 0.5) && near(p.tilt, -0.5), "{p:?}");
    s.ok(json!({"action": "step", "pan": -0.25, "tilt": 0.25}))
        .await?;
    s.until_still(Duration::from_secs(5)).await?;
    let p = s.status().await?.position;
    assert!(near(p.pan, 0.25) && near(p.tilt, -0.25), "{p:?}");
    // A click on the right quarter line, upper quarter: a quarter picture right and up (the
    // simulator's picture spans 1 across and 2 up-down in the generic space).
    s.ok(json!({"action": "centre", "x": 0.75, "y": 0.25}))
        .await?;
    s.until_still(Duration::from_secs(5)).await?;
    let p = s.status().await?.position;
    assert!(near(p.pan, 0.5) && near(p.tilt, 0.25), "{p:?}");

    // Presets: save here, go elsewhere, come back; home; remove; unknown.
    let state = s
        .ok(json!({"action": "save_preset", "name": "玄関"}))
        .await?;
    assert_eq!(state["presets"], json!(["玄関"]), "{state}");
    s.ok(json!({"action": "go_to", "pan": -0.5, "tilt": 0.0}))
        .await?;
    s.until_still(Duration::from_secs(5)).await?;
    s.ok(json!({"action": "preset", "name": "玄関"})).await?;
    s.until_still(Duration::from_secs(5)).await?;
    let p = s.status().await?.position;
    assert!(near(p.pan, 0.5) && near(p.tilt, 0.25), "{p:?}");
    s.ok(json!({"action": "preset", "name": "home"})).await?;
    s.until_still(Duration::from_secs(5)).await?;
    let p = s.status().await?.position;
    assert!(near(p.pan, 0.0) && near(p.tilt, 0.0), "{p:?}");
    let state = s
        .ok(json!({"action": "remove_preset", "name": "玄関"}))
        .await?;
    assert_eq!(state["presets"], json!([]), "{state}");
    let (status, body) = s
        .ptz(cam, json!({"action": "preset", "name": "玄関"}))
        .await?;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("no preset"),
        "{body}"
    );

    // GET gives the same state to anyone who opens the camera now.
    let (status, got) =
        status_json(other_tab.get(&format!("/api/cameras/{cam}/ptz")).await?).await?;
    assert_eq!(status, 200);
    let got: PtzStatus = serde_json::from_value(got)?;
    assert!(got.online);
    assert_eq!(got.deadman_ms, 1000);
    let pan = got.state.as_ref().context("a state")?.pan;
    assert!(near(pan, 0.0), "{got:?}");

    // History: one entry per press (the held move once, not per repeat), from the web, with
    // the camera's name; stops are not moves.
    let (_, history) = status_json(s.alice.get("/api/history").await?).await?;
    let ptz: Vec<&Value> = history
        .as_array()
        .context("array")?
        .iter()
        .filter(|e| e["action"].as_str().is_some_and(|a| a.starts_with("ptz.")))
        .collect();
    let actions: Vec<String> = ptz
        .iter()
        .rev()
        .map(|e| {
            format!(
                "{}:{}",
                e["action"].as_str().unwrap_or(""),
                e["detail"]["action"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            "ptz.moved:move",
            "ptz.moved:move",
            "ptz.moved:go_to",
            "ptz.moved:step",
            "ptz.moved:centre",
            "ptz.preset_saved:save_preset",
            "ptz.moved:go_to",
            "ptz.moved:preset",
            "ptz.moved:preset",
            "ptz.preset_removed:remove_preset",
        ],
        "{history}"
    );
    for e in ptz {
        assert_eq!(e["channel"], "web", "{e}");
        assert_eq!(e["actor_name"], "Alice", "{e}");
        assert_eq!(e["detail"]["camera"], "Porch", "{e}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_commands_foreign_and_fixed_cameras_and_a_burst_get_clean_refusals() -> Result<()> {
    let mut s = setup(&["--motion-every", "0s"], None).await?;
    let cam = s.cam;
    for (bad, why) in [
        (json!({"action": "move", "pan": 1.5, "tilt": 0}), "speed"),
        (json!({"action": "move", "pan": 0, "tilt": -7}), "speed"),
        (json!({"action": "move", "pan": 0, "tilt": 0}), "speed"),
        (json!({"action": "go_to", "pan": 2, "tilt": 0}), "position"),
        (json!({"action": "step", "pan": 0, "tilt": -1.5}), "step"),
        (json!({"action": "centre", "x": 1.2, "y": 0.5}), "x"),
        (
            json!({"action": "move", "pan": "fast", "tilt": 0}),
            "invalid type",
        ),
        (json!({"action": "spin"}), "unknown variant"),
        (json!({"action": "preset", "name": ""}), "preset name"),
        (
            json!({"action": "save_preset", "name": "x".repeat(33)}),
            "preset name",
        ),
        (json!({"action": "remove_preset", "name": "home"}), "home"),
        (json!({"action": "stop", "speed": 1}), "unknown field"),
    ] {
        let (status, body) = s.ptz(cam, bad.clone()).await?;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["error"].as_str().unwrap_or("").contains(why),
            "{bad}: {body}"
        );
    }
    let (status, body) = s
        .ptz(cam, json!({"action": "preset", "name": "nowhere"}))
        .await?;
    assert_eq!(status, 422, "{body}");
    let right = json!({"action": "move", "pan": 1, "tilt": 0});
    let (status, body) = s.ptz(s.fixed, right.clone()).await?;
    assert_eq!(status, 409, "a fixed camera: {body}");
    let (status, body) = status_json(
        s.alice
            .get(&format!("/api/cameras/{}/ptz", s.fixed))
            .await?,
    )
    .await?;
    assert_eq!(status, 409, "{body}");
    for other in [s.bobs, 999_999] {
        let (status, body) = s.ptz(other, right.clone()).await?;
        assert_eq!(status, 404, "camera {other}: {body}");
        let (status, _) = status_json(
            s.alice
                .get(&format!("/api/cameras/{other}/ptz/live"))
                .await?,
        )
        .await?;
        assert_eq!(status, 404);
    }
    let anonymous = s.relay.client();
    let (status, _) = status_json(
        anonymous
            .post(&format!("/api/cameras/{cam}/ptz"), &right)
            .await?,
    )
    .await?;
    assert_eq!(status, 401);
    let resp = s
        .alice
        .request(reqwest::Method::POST, &format!("/api/cameras/{cam}/ptz"))
        .header("content-type", "application/json")
        .body("{\"action\":")
        .send()
        .await?;
    assert_eq!(status_json(resp).await?.0, 400);

    // 1000 commands at once, as a stuck key or a script would send: the first few pass, the
    // rest are told to wait, nothing fails on our side, and the camera ends still.
    let commands = (0..1000).map(|i| {
        let body = if i % 2 == 0 {
            right.clone()
        } else {
            json!({"action": "step", "pan": -0.01, "tilt": 0})
        };
        let request = s
            .alice
            .request(reqwest::Method::POST, &format!("/api/cameras/{cam}/ptz"))
            .json(&body);
        async move {
            let resp = request.send().await?;
            let retry = resp.headers().get("retry-after").is_some();
            Ok::<_, anyhow::Error>((resp.status().as_u16(), retry))
        }
    });
    let burst_started = Instant::now();
    let answers = futures_util::stream::iter(commands)
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    let mut counts = std::collections::BTreeMap::new();
    for a in answers {
        let (status, retry) = a?;
        if status == 429 {
            assert!(retry, "429 carries Retry-After");
        }
        *counts.entry(status).or_insert(0) += 1;
    }
    // The bucket: 20 at once, then 10 a second.
    let allowed = 20.0 + 10.0 * burst_started.elapsed().as_secs_f64() + 2.0;
    let passed = counts.get(&200).copied().unwrap_or(0);
    let limited = counts.get(&429).copied().unwrap_or(0);
    assert!(
        passed >= 20 && f64::from(passed) <= allowed && passed + limited == 1000,
        "{counts:?} in {:?}",
        burst_started.elapsed()
    );
    s.until_still(Duration::from_secs(3)).await?;
    let (_, state) = status_json(s.alice.get(&format!("/api/cameras/{cam}/ptz")).await?).await?;
    assert_eq!(state["online"], true, "the link survived: {state}");

    // A restarted relay knows where the camera looks again without anyone moving it.
    s.relay.restart()?;
    let alice = s.relay.login("alice@example.jp", PW).await?;
    wait_online(&alice, cam, true, Duration::from_secs(10)).await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, got) = status_json(alice.get(&format!("/api/cameras/{cam}/ptz")).await?).await?;
        if got["state"]["moving"] == false {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "no state after the restart: {got}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.alice = alice;

    // With the agent gone, commands are refused at once, not left hanging.
    s.agent.stop()?;
    wait_online(&s.alice, cam, false, Duration::from_secs(5)).await?;
    let (status, body) = s.ptz(cam, right).await?;
    assert_eq!(status, 409, "{body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_that_does_not_answer_fails_the_command_cleanly() -> Result<()> {
    let relay = Relay::start("")?;
    let alice_id = relay.customer("alice@example.jp", "Alice", "tokyo", PW)?;
    let cam = relay.camera(alice_id, "Porch", "pan-tilt", "dispatch", "agent")?;
    let camera = Camera::start("pan-tilt", &["--motion-every", "0s"], None)?;
    // An ONVIF address that takes connections and never answers (a hung camera).
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let hung = format!("http://{}/onvif/device_service", silent.local_addr()?);
    let held = std::thread::spawn(move || silent.incoming().take(8).flatten().collect::<Vec<_>>());
    let agent = common::start_agent_with(
        &relay.base,
        relay.dir.path(),
        cam["agent_token"].as_str().context("token")?,
        &camera.url,
        "agent",
        &["--onvif", &hung],
    )?;
    let alice = relay.login("alice@example.jp", PW).await?;
    let cam = cam["id"].as_i64().context("id")?;
    wait_online(&alice, cam, true, Duration::from_secs(10)).await?;
    let sent = Instant::now();
    let (status, body) = status_json(
        alice
            .post(
                &format!("/api/cameras/{cam}/ptz"),
                &json!({"action": "move", "pan": 1, "tilt": 0}),
            )
            .await?,
    )
    .await?;
    let took = sent.elapsed();
    assert_eq!(status, 503, "{body}");
    assert!(
        took < Duration::from_secs(5),
        "answered after {took:?}, within the agent's 3 s ONVIF timeout"
    );
    // The link is unharmed.
    let (_, state) = status_json(alice.get(&format!("/api/cameras/{cam}/ptz")).await?).await?;
    assert_eq!(state["online"], true, "{state}\n{}", agent.log());
    drop(held);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_is_no_motion_event_but_a_crossing_right_after_it_is() -> Result<()> {
    // One crossing, 20 s after the scene starts, 6 s long (2 s of it in the home view).
    let s = setup(
        &[
            "--motion-offset",
            "20s",
            "--motion-every",
            "600s",
            "--motion-crossing",
            "6s",
        ],
        None,
    )
    .await?;
    let started = Instant::now();
    // Let the detector learn the scene, then sweep right and back, and a held move.
    tokio::time::sleep(Duration::from_secs(5)).await;
    s.ok(json!({"action": "go_to", "pan": 0.6, "tilt": 0.3}))
        .await?;
    s.until_still(Duration::from_secs(5)).await?;
    for _ in 0..4 {
        s.ok(json!({"action": "move", "pan": -1.0, "tilt": -0.5}))
            .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    s.ok(json!({"action": "preset", "name": "home"})).await?;
    s.until_still(Duration::from_secs(5)).await?;
    // The camera turns by itself, as on its own patrol: the agent sees it only in the
    // camera's status.
    s.onvif
        .relative(Position {
            pan: 0.5,
            tilt: 0.0,
        })
        .await?;
    s.until_still(Duration::from_secs(5)).await?;
    s.onvif
        .absolute(Position {
            pan: 0.0,
            tilt: 0.0,
        })
        .await?;
    s.until_still(Duration::from_secs(5)).await?;
    let moves_done = started.elapsed();
    // Until the crossing: nothing.
    tokio::time::sleep(Duration::from_secs(18).saturating_sub(started.elapsed())).await;
    assert_eq!(
        s.events().await?,
        0,
        "the moves (done {moves_done:?} after start) made an event"
    );
    // The crossing: one event.
    let deadline = Instant::now() + Duration::from_secs(15);
    while s.events().await? == 0 {
        ensure!(
            Instant::now() < deadline,
            "the crossing after the move made no event; agent log:\n{}",
            s.agent.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}
