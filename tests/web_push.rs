//! Web Push end to end, against a push service this test runs on loopback
//! (`eyeward_testkit::push`): it takes RFC 8030 deliveries, checks each RFC 8292 VAPID
//! signature, and decrypts the payload per RFC 8291 with the device's own keys, as a browser
//! does; here the signing key is also checked to be the one the relay hands browsers. Motion on Alice's camera
//! reaches her device with the camera, the time, the event's link and a picture link that
//! shows the snapshot without a session; Bob's device (another household) gets nothing; when
//! the service answers 410, the relay removes the device. A relay that keeps to public push
//! services refuses an endpoint on loopback.

mod common;

use anyhow::{Context, Result, ensure};
use common::{Relay, status_json};
use eyeward_testkit::push::PushService;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const PW: &str = "correct horse battery";
const WITHIN: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_is_pushed_encrypted_and_signed_to_the_households_devices_only() -> Result<()> {
    let service = PushService::start().await?;
    let relay =
        Relay::start("[mail]\nalert_cooldown = \"1s\"\n[push]\nallow_private_endpoints = true\n")?;
    let alice_id = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let bob_id = relay.customer("b@example.jp", "Bob", "west", PW)?;
    let porch = relay.camera(alice_id, "Porch", "fixed", "dispatch", "agent")?;
    let gate = relay.camera(bob_id, "Gate", "fixed", "dispatch", "agent")?;
    let token = |v: &Value| {
        v["agent_token"]
            .as_str()
            .map(str::to_owned)
            .context("token")
    };
    let alice = relay.login("a@example.jp", PW).await?;
    let bob = relay.login("b@example.jp", PW).await?;

    let (status, push) = status_json(alice.get("/api/push").await?).await?;
    ensure!(status == 200, "{push}");
    let relay_key = push["public_key"].as_str().context("key")?.to_owned();
    assert_eq!(
        relay_key.len(),
        87,
        "an uncompressed P-256 point, base64url"
    );
    for (name, seed, client) in [("alice", 1, &alice), ("bob", 2, &bob)] {
        let sub = service.device(name, seed);
        let (status, device) = status_json(client.post("/api/push/devices", &sub).await?).await?;
        ensure!(status == 201, "{name}: {status} {device}");
        assert_eq!(
            device["service"], "127.0.0.1",
            "the service's host, not the endpoint"
        );
    }
    // The same key for every session, and in the history.
    let (_, again) = status_json(bob.get("/api/push").await?).await?;
    assert_eq!(again["public_key"], relay_key.as_str());
    let (_, history) = status_json(alice.get("/api/history").await?).await?;
    assert_eq!(history[0]["action"], "push.subscribed", "{history}");

    // Motion on Alice's camera reaches her device alone.
    let upload = common::upload_event(
        &relay,
        &token(&porch)?,
        "push-0001",
        &common::jpeg(320, 180),
    )
    .await?;
    let (status, event) = status_json(upload).await?;
    ensure!(status == 201, "{event}");
    let event_id = event["id"].as_i64().context("event id")?;
    let delivered = service
        .wait_for("Alice's push", WITHIN, |d| !d.is_empty())
        .await?;
    let delivery = &delivered[0];
    assert_eq!(delivery.device, "alice");
    assert_eq!(
        delivery.vapid_key, relay_key,
        "signed with the key browsers were given"
    );
    let p = &delivery.payload;
    let title = p["title"].as_str().context("title")?;
    assert!(title.ends_with("Porch"), "{p}");
    assert!(
        p["body"].as_str().is_some_and(|b| b.contains(':')),
        "the time: {p}"
    );
    assert_eq!(p["url"], relay.url(&format!("/#event/{event_id}")));
    assert_eq!(p["tag"], format!("eyeward-camera-{}", porch["id"]));
    // The picture link works without a session, and only as given.
    let picture = p["image"].as_str().context("image")?;
    let resp = reqwest::get(picture).await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert!(!resp.bytes().await?.is_empty());
    let wrong = reqwest::get(format!("{picture}x")).await?;
    assert_eq!(wrong.status(), 404);

    // Motion on Bob's camera reaches Bob's device; Alice's still has one push.
    let upload =
        common::upload_event(&relay, &token(&gate)?, "push-0002", &common::jpeg(320, 180)).await?;
    assert_eq!(upload.status(), 201);
    let delivered = service
        .wait_for("Bob's push", WITHIN, |d| d.len() == 2)
        .await?;
    assert_eq!(delivered[1].device, "bob");
    let title = delivered[1].payload["title"].as_str().unwrap_or_default();
    assert!(title.ends_with("Gate"), "{title}");
    assert!(service.refused().is_empty(), "{:?}", service.refused());

    // The service says Alice's device is gone: the relay removes it.
    service.gone("alice");
    tokio::time::sleep(Duration::from_millis(1100)).await; // the camera's cooldown
    let upload = common::upload_event(
        &relay,
        &token(&porch)?,
        "push-0003",
        &common::jpeg(320, 180),
    )
    .await?;
    assert_eq!(upload.status(), 201);
    let start = Instant::now();
    loop {
        let (_, push) = status_json(alice.get("/api/push").await?).await?;
        if push["devices"] == json!([]) {
            break;
        }
        ensure!(start.elapsed() < WITHIN, "still there: {push}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(service.delivered().len(), 2);
    // Bob's device is his alone: Alice cannot remove it.
    let (_, bobs) = status_json(bob.get("/api/push").await?).await?;
    let bobs_id = bobs["devices"][0]["id"].as_i64().context("id")?;
    let resp = alice
        .request(
            reqwest::Method::DELETE,
            &format!("/api/push/devices/{bobs_id}"),
        )
        .send()
        .await?;
    assert_eq!(resp.status(), 404);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_keeping_to_public_push_services_refuses_an_endpoint_on_its_network() -> Result<()>
{
    let relay = Relay::start("")?;
    relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let alice = relay.login("a@example.jp", PW).await?;
    let service = PushService::start().await?;
    for endpoint in [
        "http://127.0.0.1:9/push/x",
        "https://127.0.0.1/push/x",
        "https://10.0.0.1/push/x",
        "https://[::1]/push/x",
    ] {
        let mut sub = service.device("x", 3);
        sub["endpoint"] = endpoint.into();
        let (status, body) = status_json(alice.post("/api/push/devices", &sub).await?).await?;
        assert_eq!(status, 400, "{endpoint}: {body}");
        assert_eq!(body["code"], "bad_endpoint");
    }
    let (_, push) = status_json(alice.get("/api/push").await?).await?;
    assert_eq!(push["devices"], json!([]));
    Ok(())
}
