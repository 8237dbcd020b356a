//! Guard dispatch from real browsers: headless Chromium as a customer asks for a guard from a
//! dispatch camera's live view and shares the picture, the live view and the clip of the
//! motion just seen; the Tokyo operator's console shows the request at once (the East
//! operator's never does), opens it, sees the picture, plays the clip and accepts;
//! the customer's page follows and the customer cancels with the fee due; a camera-only
//! camera offers no guard (`tests/browser/dispatch.mjs`). The API then confirms what the pages
//! showed. Runs in a loopback-only network namespace.

mod common;

use anyhow::{Context, Result};
use common::{Camera, Relay, in_loopback_namespace, status_json, wait_online};
use serde_json::Value;
use std::time::Duration;

const PW: &str = "correct horse battery";
const TEST: &str = "a_guard_requested_in_chromium_reaches_only_the_customers_center_and_a_late_cancel_keeps_the_fee";
const HOME: &str = "1-1 Chiyoda, Chiyoda-ku, Tokyo";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_requested_in_chromium_reaches_only_the_customers_center_and_a_late_cancel_keeps_the_fee()
-> Result<()> {
    if !in_loopback_namespace(TEST)? {
        return Ok(());
    }
    common::browser_scripts()?;
    let relay = Relay::start("[webrtc]\nice_addresses = [\"127.0.0.1\"]")?;
    let me = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    relay.set_home(me, HOME, "35.68,139.76")?;
    relay.operator("op@example.jp", "Oscar", "tokyo", PW)?;
    relay.operator("east@example.jp", "Emi", "east", PW)?;
    relay.guard("tokyo", "Sato", "35.69,139.77")?;
    let cam = relay.camera(me, "Back door", "fixed", "dispatch", "agent")?;
    let cam_id = cam["id"].as_i64().context("id")?;
    let only = relay.camera(me, "Garden", "fixed", "camera-only", "agent")?;
    // Someone crosses the picture once, 4 s in: an event with its clip.
    let camera = Camera::start(
        "fixed",
        &[
            "--motion-offset",
            "4s",
            "--motion-crossing",
            "2s",
            "--motion-every",
            "600s",
            "--keyframe-interval",
            "2s",
        ],
        None,
    )?;
    let agent = relay.start_configured_agent(
        cam["agent_token"].as_str().context("token")?,
        &camera.url,
        "agent",
        "[motion]\nstop_after = \"500ms\"\n[clips]\nenabled = true\npre_roll = \"2s\"\npost_roll = \"1s\"\n",
        &[],
    )?;
    let alice = relay.login("a@example.jp", PW).await?;
    wait_online(&alice, cam_id, true, Duration::from_secs(10)).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let clipped = loop {
        let (_, events) =
            status_json(alice.get(&format!("/api/cameras/{cam_id}/events")).await?).await?;
        if let Some(e) = events
            .as_array()
            .and_then(|l| l.iter().find(|e| e["clip"].is_object()))
        {
            break e["id"].clone();
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "no clip: {}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    common::run_browser_script(
        "dispatch",
        &relay,
        &[
            ("EMAIL", "a@example.jp".into()),
            ("PASSWORD", PW.into()),
            ("OPERATOR_EMAIL", "op@example.jp".into()),
            ("EAST_OPERATOR_EMAIL", "east@example.jp".into()),
            ("CAMERA_ID", cam_id.to_string()),
            ("CAMERA_NAME", "Back door".into()),
            ("CAMERA_ONLY_ID", only["id"].to_string()),
            ("CAMERA_ONLY_NAME", "Garden".into()),
            ("HOME_ADDRESS", HOME.into()),
        ],
        &[("agent", &agent), ("simulator", &camera.process)],
    )
    .await?;

    // What the pages showed, asked of the API: one request, cancelled after acceptance, with
    // the fee due and charged once.
    let (status, requests) = status_json(alice.get("/api/dispatch-requests").await?).await?;
    assert_eq!(status, 200, "{requests}");
    let requests = requests.as_array().context("requests")?;
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request["state"], "cancelled", "{request}");
    assert_eq!(request["fee_due_yen"], 3300, "{request}");
    assert_eq!(request["camera_id"], cam_id, "{request}");
    assert_eq!(request["share_snapshot"], true, "{request}");
    // The picture was shared (the history below says the operator looked at it) and, the
    // request closed, is deleted.
    assert_eq!(request["has_snapshot"], false, "{request}");
    assert_eq!(request["share_live"], true, "{request}");
    assert_eq!(request["clip_event_id"], clipped, "{request}");
    assert_eq!(request["note"], "Someone at the back door", "{request}");
    let (_, charges) = status_json(alice.get("/api/charges").await?).await?;
    let charges = charges.as_array().context("charges")?;
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(charges[0]["amount_yen"], 3300, "{charges:?}");
    assert_eq!(charges[0]["request_id"], request["id"], "{charges:?}");

    // The customer's history says that the Tokyo operator opened the request, looked at the
    // picture, watched live and played the clip.
    let (_, history) = status_json(alice.get("/api/history?limit=200").await?).await?;
    let history = history.as_array().context("history")?;
    let by_operator = |action: &str| {
        history.iter().any(|e: &Value| {
            e["action"] == action
                && e["actor_kind"] == "operator"
                && e["actor_name"] == "Oscar"
                && e["detail"]["request_id"] == request["id"]
        })
    };
    assert!(by_operator("dispatch.viewed"), "{history:?}");
    assert!(by_operator("dispatch.snapshot_viewed"), "{history:?}");
    assert!(by_operator("dispatch.live_viewed"), "{history:?}");
    assert!(by_operator("dispatch.clip_viewed"), "{history:?}");
    assert!(by_operator("dispatch.accepted"), "{history:?}");
    Ok(())
}
