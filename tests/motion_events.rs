//! The watcher end to end: the agent decodes its (simulated) camera, the scripted intruder's
//! crossing becomes exactly one event at the relay, and its snapshot shows the intruder,
//! boxed, at the camera's full size.

mod common;

use anyhow::{Context, Result};
use common::{Relay, status_json, wait_online};
use std::time::{Duration, Instant};

const PW: &str = "correct horse battery";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crossing_becomes_one_event_whose_snapshot_shows_the_intruder() -> Result<()> {
    let relay = Relay::start("")?;
    let alice_id = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let cam = relay.camera(alice_id, "Street", "fixed", "dispatch", "agent")?;
    let cam_id = cam["id"].as_i64().context("id")?;
    // sim://fixed: the intruder enters 5 s after start and takes 4 s to cross.
    let agent = relay.start_agent(
        cam["agent_token"].as_str().context("token")?,
        "sim://fixed",
        "agent",
    )?;
    let alice = relay.login("a@example.jp", PW).await?;
    wait_online(&alice, cam_id, true, Duration::from_secs(10)).await?;

    let deadline = Instant::now() + Duration::from_secs(25);
    let events = loop {
        let (_, list) =
            status_json(alice.get(&format!("/api/cameras/{cam_id}/events")).await?).await?;
        let list = list.as_array().context("array")?.clone();
        if !list.is_empty() {
            break list;
        }
        assert!(Instant::now() < deadline, "no event: {}", agent.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The crossing goes on for a few seconds more: still one event.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, again) =
        status_json(alice.get(&format!("/api/cameras/{cam_id}/events")).await?).await?;
    assert_eq!(again.as_array().map(Vec::len), Some(1), "{again}");
    let event = &events[0];
    assert_eq!(event["delayed"], false, "{event}");
    assert_eq!(
        (event["width"].as_u64(), event["height"].as_u64()),
        (Some(1280), Some(720))
    );

    let resp = alice
        .get(event["snapshot_url"].as_str().context("url")?)
        .await?;
    assert_eq!(resp.status(), 200);
    let jpeg = resp.bytes().await?;
    assert!(
        jpeg.len() < 250_000,
        "a 720p snapshot stays small: {} bytes",
        jpeg.len()
    );
    let img = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)?.to_rgb8();
    let bbox: Vec<u32> = serde_json::from_value(event["bbox"].clone())?;
    let [x, y, w, h] = bbox[..] else {
        anyhow::bail!("bbox {bbox:?}")
    };
    // The intruder is dark (luma 35) on a light street; the box around it is yellow.
    let dark = (y..y + h)
        .flat_map(|py| (x..x + w).map(move |px| (px, py)))
        .filter(|&(px, py)| img.get_pixel(px, py).0.iter().all(|c| *c < 60))
        .count();
    assert!(
        dark > 500,
        "the intruder is inside the box: {dark} dark pixels in {bbox:?}"
    );
    let edge = img.get_pixel(x + w / 2, y + 1).0;
    assert!(
        edge[0] > 180 && edge[1] > 150 && edge[2] < 110,
        "box edge {edge:?}"
    );
    let out =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-output/motion_events");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("snapshot.jpg"), &jpeg)?;
    Ok(())
}
