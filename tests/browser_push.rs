//! Notifications in real browsers. In Firefox ESR, end to end: its push service is the test's
//! loopback one; Alice turns notifications on with the alerts card's button, motion on her
//! camera is pushed by the relay through that service to Firefox, which decrypts it, and the
//! pages' service worker shows the alert; she turns them off with the same button. In
//! Chromium (whose push service cannot be replaced): the push the relay sent a test device for
//! Alice's alert (as the loopback service decrypted it) is handed to the service worker, which
//! shows it with the camera, the time, the picture and the event's link; she removes that
//! device from the card. See `tests/browser/push_firefox.mjs` and `tests/browser/push.mjs`;
//! screenshots go to `target/test-output/browser_push*/`.

mod common;

use anyhow::{Context, Result, ensure};
use common::{Relay, in_loopback_namespace, status_json};
use eyeward_testkit::push::PushService;
use std::time::Duration;

const PW: &str = "correct horse battery";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_alert_is_shown_by_the_service_worker_and_its_device_removed_from_the_card()
-> Result<()> {
    common::browser_scripts()?;
    let service = PushService::start().await?;
    let relay = Relay::start("[push]\nallow_private_endpoints = true\n")?;
    let owner = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let porch = relay.camera(owner, "Porch", "fixed", "dispatch", "agent")?;
    let alice = relay.login("a@example.jp", PW).await?;
    let (status, device) = status_json(
        alice
            .post("/api/push/devices", &service.device("phone", 1))
            .await?,
    )
    .await?;
    ensure!(status == 201, "{device}");
    let token = porch["agent_token"].as_str().context("token")?;
    let upload = common::upload_event(
        &relay,
        token,
        "service-worker-0001",
        &common::jpeg(320, 180),
    )
    .await?;
    ensure!(upload.status() == 201, "upload: {}", upload.status());
    let pushed = service
        .wait_for("the push", Duration::from_secs(10), |d| !d.is_empty())
        .await?;
    let vars = [
        ("EMAIL", "a@example.jp".to_owned()),
        ("PASSWORD", PW.to_owned()),
        ("PAYLOAD", pushed[0].payload.to_string()),
    ];
    common::run_browser_script("push", &relay, &vars, &[]).await?;
    let (_, push) = status_json(alice.get("/api/push").await?).await?;
    assert_eq!(
        push["devices"],
        serde_json::json!([]),
        "removed from the card"
    );
    Ok(())
}

const FIREFOX_TEST: &str = "firefox_subscribes_from_the_card_and_shows_a_pushed_alert";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_subscribes_from_the_card_and_shows_a_pushed_alert() -> Result<()> {
    if !in_loopback_namespace(FIREFOX_TEST)? {
        return Ok(());
    }
    common::browser_scripts()?;
    let service = PushService::start().await?;
    let relay = Relay::start(&format!(
        "{}\n[push]\nallow_private_endpoints = true\n",
        common::LOOPBACK_VIEWERS_AND_CAMERAS
    ))?;
    let owner = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let porch = relay.camera(owner, "Porch", "fixed", "dispatch", "agent")?;
    let jpeg = relay.dir.path().join("motion.jpg");
    std::fs::write(&jpeg, common::jpeg(320, 180))?;
    let vars = [
        ("EMAIL", "a@example.jp".to_owned()),
        ("PASSWORD", PW.to_owned()),
        ("PUSH_SERVER", service.ws_url()),
        (
            "AGENT_TOKEN",
            porch["agent_token"].as_str().context("token")?.to_owned(),
        ),
        ("JPEG_FILE", jpeg.display().to_string()),
    ];
    common::run_browser_script("push_firefox", &relay, &vars, &[]).await?;
    // Through the service: signed by the relay, and Firefox's ack says it reached the page.
    let delivered = service.delivered();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert!(service.refused().is_empty(), "{:?}", service.refused());
    let acks = service.acks();
    assert_eq!(
        acks,
        [(delivered[0].device.clone(), 100)],
        "decrypted and given to the page"
    );
    let alice = relay.login("a@example.jp", PW).await?;
    let (_, push) = status_json(alice.get("/api/push").await?).await?;
    assert_eq!(push["devices"], serde_json::json!([]), "turned off");
    Ok(())
}
