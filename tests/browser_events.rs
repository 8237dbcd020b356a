//! Events as evidence, in Chromium (`tests/browser/events.mjs`): the feed of every camera
//! pages back through all 133 events kept and filters by camera; the viewer steps to a
//! camera's earlier and later events by button and by arrow key, with the picture to
//! download; a camera's day (yesterday's 130 events) pages past the first 100 on its live
//! view. Screenshots go to `target/test-output/browser_events/`.

mod common;

use anyhow::{Context, Result, ensure};
use common::Relay;

const PW: &str = "correct horse battery";
const DAY_MS: i64 = 24 * 3600 * 1000;
const JST_MS: i64 = 9 * 3600 * 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_pages_filters_and_steps_through_every_event_kept() -> Result<()> {
    // The events come faster than a camera's usual bound.
    let relay = Relay::start("[events]\nmax_per_minute_per_camera = 1000\n")?;
    let me = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let porch = relay.camera(me, "Porch", "fixed", "camera-only", "agent")?;
    let garden = relay.camera(me, "Garden", "fixed", "camera-only", "agent")?;
    let token = |cam: &serde_json::Value| -> Result<String> {
        Ok(cam["agent_token"].as_str().context("token")?.to_owned())
    };
    // Porch: 130 events yesterday (home time) from 10:00, a minute apart.
    let now = eyeward::UnixMillis::now().0;
    let today = (now + JST_MS).div_euclid(DAY_MS) * DAY_MS - JST_MS;
    let yesterday_ten = today - DAY_MS + 10 * 3600 * 1000;
    let picture = common::jpeg(160, 90);
    for i in 0..130 {
        let at = yesterday_ten + i * 60_000;
        let r = common::upload_event_at(
            &relay,
            &token(&porch)?,
            &format!("porch-{i:04}"),
            &picture,
            at,
        )
        .await?;
        ensure!(r.status() == 201, "upload {i}: {}", r.status());
    }
    // Garden: three just now.
    for i in 0..3 {
        let r = common::upload_event_at(
            &relay,
            &token(&garden)?,
            &format!("garden-{i:04}"),
            &picture,
            now - (3 - i) * 1000,
        )
        .await?;
        ensure!(r.status() == 201, "garden upload {i}: {}", r.status());
    }
    let yesterday = time::OffsetDateTime::from_unix_timestamp((today - DAY_MS + JST_MS) / 1000)?
        .date()
        .to_string();
    common::run_browser_script(
        "events",
        &relay,
        &[
            ("EMAIL", "a@example.jp".into()),
            ("PASSWORD", PW.into()),
            ("PORCH", porch["id"].as_i64().context("id")?.to_string()),
            ("YESTERDAY", yesterday),
        ],
        &[],
    )
    .await?;
    Ok(())
}
