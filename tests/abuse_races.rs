//! Check-then-act races on live views: parallel offers cannot all pass the viewer limits that
//! none of them is counted in yet, and an operator's shared live view set up while its dispatch
//! request closes does not outlive the request. The relay runs in-process, so that a fail
//! point can hold a session between its checks and its registration.

mod common;

use anyhow::{Context, Result};
use common::in_process::InProcessRelay;
use common::{status_json, wait_online};
use futures_util::future::join_all;
use serde_json::json;
use std::time::Duration;

const PW: &str = "correct horse battery";

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
        offers.push(common::whep_offer().await?);
    }
    let path = format!("/api/cameras/{cam_id}/whep");
    let answers = join_all(
        offers
            .into_iter()
            .map(|(_pc, sdp)| common::post_offer(&alice, &path, sdp)),
    )
    .await;
    let answers: Vec<u16> = answers
        .into_iter()
        .map(|a| a.map(|r| r.status().as_u16()))
        .collect::<Result<_>>()?;
    let started = answers.iter().filter(|s| **s == 201).count();
    let refused = answers.iter().filter(|s| **s == 429).count();
    assert_eq!((started, refused), (2, 18), "{answers:?}");
    assert_eq!(viewers(&relay, cam_id), 2);

    // The operator's shared view is being set up when the customer cancels the request: the
    // operator is refused, and no session of the request stays.
    let id =
        common::request_dispatch(&alice, &json!({"camera_id": cam_id, "share_live": true})).await?;
    fail::cfg("whep-register", "return(1500)").map_err(anyhow::Error::msg)?;
    let (_pc, sdp) = common::whep_offer().await?;
    let watching = {
        let op = op.clone();
        tokio::spawn(async move {
            let path = format!("/api/ops/dispatch-requests/{id}/whep");
            common::post_offer(&op, &path, sdp)
                .await
                .map(|r| r.status().as_u16())
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
