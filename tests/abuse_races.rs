//! Check-then-act races on live views: parallel offers cannot all pass the viewer limits that
//! none of them is counted in yet, and an operator's shared live view set up while its dispatch
//! request closes does not outlive the request. The relay runs in-process, so that a fail
//! point can hold a session between its checks and its registration.

mod common;

use anyhow::{Context, Result};
use common::in_process::InProcessRelay;
use common::{Client, status_json, wait_online};
use futures_util::future::join_all;
use serde_json::json;
use std::time::Duration;

const PW: &str = "correct horse battery";

/// A WebRTC offer with its candidates, from a webrtc-rs peer.
async fn offer() -> Result<String> {
    let pc = eyeward_bench::viewer::recvonly(&eyeward_bench::viewer::loopback_api()?).await?;
    let offer = pc.create_offer(None).await?;
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(offer).await?;
    let _ = gathered.recv().await;
    Ok(pc.local_description().await.context("offer")?.sdp)
}

async fn post_offer(client: &Client, path: &str, sdp: String) -> Result<u16> {
    Ok(client
        .request(reqwest::Method::POST, path)
        .header("content-type", "application/sdp")
        .body(sdp)
        .send()
        .await?
        .status()
        .as_u16())
}

/// The relay's live sessions of `camera`, as its metrics count them.
fn viewers(relay: &InProcessRelay, camera: i64) -> i64 {
    relay
        .state
        .metrics
        .viewers
        .get_or_create(&eyeward_relay::metrics::CameraLabels { camera })
        .get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn races_cannot_get_past_the_viewer_limits_or_a_closed_request() -> Result<()> {
    let relay = InProcessRelay::start(
        "[webrtc]\nice_addresses = [\"127.0.0.1\"]\nmax_viewers_per_customer = 2\n",
    )
    .await?;
    let alice_id = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    relay.operator("op@example.jp", "Oscar", "tokyo", PW)?;
    let cam = relay.camera(alice_id, "Hall", "fixed", "dispatch", "agent")?;
    let cam_id = cam["id"].as_i64().context("id")?;
    let _agent = relay.start_agent(
        cam["agent_token"].as_str().context("token")?,
        "sim://fixed",
        "agent",
    )?;
    let alice = relay.login("a@example.jp", PW).await?;
    let op = relay.login("op@example.jp", PW).await?;
    wait_online(&alice, cam_id, true, Duration::from_secs(15)).await?;

    // Twenty offers at once, each held a moment before it is registered: two get a session.
    fail::cfg("whep-register", "return(300)").map_err(anyhow::Error::msg)?;
    let mut offers = Vec::new();
    for _ in 0..20 {
        offers.push(offer().await?);
    }
    let path = format!("/api/cameras/{cam_id}/whep");
    let answers = join_all(offers.into_iter().map(|sdp| post_offer(&alice, &path, sdp))).await;
    let answers: Vec<u16> = answers.into_iter().collect::<Result<_>>()?;
    let started = answers.iter().filter(|s| **s == 201).count();
    let refused = answers.iter().filter(|s| **s == 429).count();
    assert_eq!((started, refused), (2, 18), "{answers:?}");
    assert_eq!(viewers(&relay, cam_id), 2);

    // The operator's shared view is being set up when the customer cancels the request: the
    // operator is refused, and no session of the request stays.
    let (status, request) = status_json(
        alice
            .post(
                "/api/dispatch-requests",
                &json!({"camera_id": cam_id, "share_live": true}),
            )
            .await?,
    )
    .await?;
    assert_eq!(status, 201, "{request}");
    let id = request["id"].as_i64().context("id")?;
    fail::cfg("whep-register", "return(1500)").map_err(anyhow::Error::msg)?;
    let sdp = offer().await?;
    let watching = {
        let op = op.clone();
        tokio::spawn(async move {
            post_offer(&op, &format!("/api/ops/dispatch-requests/{id}/whep"), sdp).await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = status_json(
        alice
            .post(&format!("/api/dispatch-requests/{id}/cancel"), &json!({}))
            .await?,
    )
    .await?;
    assert_eq!(status, 200);
    let answered = watching.await??;
    fail::remove("whep-register");
    assert_eq!(answered, 404, "the operator got a view of a closed request");
    assert_eq!(viewers(&relay, cam_id), 2, "only the customer's two remain");
    Ok(())
}
