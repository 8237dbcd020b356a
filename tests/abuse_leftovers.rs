//! Nothing of a removed camera or a closed share stays stored (on disk or in the bucket): a dispatch request's shared
//! picture is deleted when the request closes, and a removed camera's snapshots are deleted
//! by the relay's housekeeping (at start, then hourly), even when the camera was removed by
//! the admin command while the relay ran.

mod common;

use anyhow::{Context, Result};
use common::{Relay, status_json};
use serde_json::json;

const PW: &str = "correct horse battery";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_pictures_and_removed_cameras_snapshots_are_deleted() -> Result<()> {
    let mut relay = Relay::start("")?;
    let owner = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let cam = relay.camera(owner, "Porch", "fixed", "dispatch", "agent")?;
    let cam_id = cam["id"].as_i64().context("id")?;
    let alice = relay.login("a@example.jp", PW).await?;

    // A shared picture lives while its request is open, and goes when it closes.
    let id = common::request_dispatch(
        &alice,
        &json!({"camera_id": cam_id, "share_snapshot": true}),
    )
    .await?;
    let put = alice
        .request(
            reqwest::Method::PUT,
            &format!("/api/dispatch-requests/{id}/snapshot"),
        )
        .header("content-type", "image/jpeg")
        .body(common::jpeg(320, 180))
        .send()
        .await?;
    assert_eq!(put.status(), 204);
    let picture = format!("{id}.jpg");
    assert!(relay.pictures("dispatch").await?.contains(&picture));
    let (status, _) = status_json(
        alice
            .post(&format!("/api/dispatch-requests/{id}/cancel"), &json!({}))
            .await?,
    )
    .await?;
    assert_eq!(status, 200);
    assert!(
        !relay.pictures("dispatch").await?.contains(&picture),
        "the closed request's picture is still there"
    );
    let (status, _) = status_json(
        alice
            .get(&format!("/api/dispatch-requests/{id}/snapshot"))
            .await?,
    )
    .await?;
    assert_eq!(status, 404);

    // A camera's snapshots go once the camera is removed.
    let upload = common::upload_event(
        &relay,
        cam["agent_token"].as_str().context("token")?,
        "left-0001",
        &common::jpeg(320, 180),
    )
    .await?;
    assert_eq!(upload.status(), 201);
    let folder = format!("snapshots/{cam_id}");
    assert_eq!(relay.pictures(&folder).await?, ["left-0001.jpg"]);
    relay.admin(&["camera", "remove", "--id", &cam_id.to_string()], "")?;
    relay.restart()?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !relay.pictures(&folder).await?.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the removed camera's snapshots are still there"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(())
}
