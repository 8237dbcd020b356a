//! A camera (or whoever holds its token) cannot flood the relay with events: past its rate
//! it gets 429 and past its share of the disk 507, both with `Retry-After` (which the agent
//! follows, keeping its queue); other cameras go on.

mod common;

use anyhow::{Context, Result};
use common::Relay;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_is_held_to_its_rate_and_its_share_of_the_disk() -> Result<()> {
    let relay = Relay::start(
        "[events]\nmax_per_minute_per_camera = 5\nmax_snapshot_bytes_per_camera = 60000\n",
    )?;
    let owner = relay.customer("a@example.jp", "Alice", "tokyo", "correct horse battery")?;
    let cam = |name: &str| -> Result<String> {
        Ok(
            relay.camera(owner, name, "fixed", "camera-only", "agent")?["agent_token"]
                .as_str()
                .context("token")?
                .to_owned(),
        )
    };
    let (flood, other) = (cam("Flood")?, cam("Other")?);
    let small = common::jpeg(64, 64);

    // Five at once, then a wait that Retry-After says.
    for i in 0..5 {
        assert_eq!(
            common::upload_event(&relay, &flood, &format!("flood-{i:04}"), &small)
                .await?
                .status(),
            201
        );
    }
    let resp = common::upload_event(&relay, &flood, "flood-0005", &small).await?;
    assert_eq!(resp.status(), 429);
    let wait: u64 = resp.headers()["retry-after"].to_str()?.parse()?;
    assert!((1..=12).contains(&wait), "Retry-After {wait}");
    assert!(resp.text().await?.contains("too_many_events"));
    // Another camera is not held up.
    assert_eq!(
        common::upload_event(&relay, &other, "other-0000", &small)
            .await?
            .status(),
        201
    );

    // The other camera's share of the disk: full, then 507 with Retry-After.
    let big = common::jpeg(640, 360);
    let mut statuses = Vec::new();
    for i in 1..5 {
        let resp = common::upload_event(&relay, &other, &format!("other-{i:04}"), &big).await?;
        statuses.push(resp.status().as_u16());
        if resp.status() == 507 {
            assert!(resp.headers().contains_key("retry-after"));
            assert!(resp.text().await?.contains("camera_quota_full"));
            break;
        }
    }
    assert_eq!(
        statuses.last(),
        Some(&507),
        "{statuses:?} ({} bytes each)",
        big.len()
    );
    Ok(())
}
