//! An event's clip in Chromium (`tests/browser/clips.mjs`, issue 24): the real agent records
//! the simulated camera's intruder and uploads the clip after the snapshot. The customer opens
//! the alert mail's "Watch the video clip" link at once: after logging in, the page says the
//! clip is on its way, and plays it when it arrives. Then the customer plays it in the history
//! (it advances at the camera's 1280 × 720, and goes to the moment of detection), on the
//! event's page with the snapshot as its poster, and saves it. The saved file is the stored
//! clip, byte for byte. A gap that says the camera dropped clips is shown in the history too.
//! Screenshots go to `target/test-output/browser_clips/`.

mod common;

use anyhow::{Context, Result};
use common::smtp::{Smtp, confirmed_address};
use common::{Camera, Relay};

const PW: &str = "correct horse battery";

#[tokio::test]
async fn chromium_plays_an_events_clip_from_the_alert_mail_and_the_history_and_saves_it()
-> Result<()> {
    let smtp = Smtp::start()?;
    let relay = Relay::start(&format!("[mail]\nsmtp_url = \"{}\"\n", smtp.url()))?;
    let alice = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let cam = relay.camera(alice, "Front door", "fixed", "dispatch", "agent")?;
    let client = relay.login("a@example.jp", PW).await?;
    confirmed_address(&relay, &smtp, &client, "home@example.jp").await?;
    let camera = Camera::start(
        "fixed",
        &[
            "--motion-offset",
            "8s",
            "--motion-crossing",
            "3s",
            "--motion-every",
            "60s",
            "--keyframe-interval",
            "2s",
        ],
        None,
    )?;
    let agent = relay.start_configured_agent(
        cam["agent_token"].as_str().context("token")?,
        &camera.url,
        "agent",
        // A long post-roll: the clip comes seconds after the alert mail, whose link is opened
        // before it has arrived.
        "[motion]\nstop_after = \"500ms\"\n[clips]\nenabled = true\npre_roll = \"3s\"\npost_roll = \"6s\"\n",
        &[],
    )?;
    let alert = smtp
        .wait_for("the alert", |m| {
            m.iter()
                .any(|r| common::smtp::subject(&r.raw).starts_with("Motion"))
        })
        .await?;
    let alert = alert
        .iter()
        .find(|r| common::smtp::subject(&r.raw).starts_with("Motion"))
        .context("the alert")?;
    let clip_url =
        common::smtp::link(&alert.raw, &format!("{}/#event/", relay.base)).and_then(|event| {
            let clip = format!("{event}/clip");
            let text = String::from_utf8_lossy(&alert.raw);
            anyhow::ensure!(
                text.contains(&format!("Watch the video clip: {clip}")),
                "{text}"
            );
            Ok(clip)
        })?;
    // The camera's queue once had to drop clips: a gap that says so, then grows.
    let token = cam["agent_token"].as_str().context("token")?;
    let now = eyeward::UnixMillis::now().0;
    for (clips, status) in [(2, 201), (3, 200)] {
        let gap = reqwest::Client::new()
            .post(relay.url(&format!(
                "/agent/v1/events?kind=gap&key=gap-clips-1&captured_at={now}&until={now}\
                 &lost_snapshots=0&lost_events=0&lost_clips={clips}"
            )))
            .bearer_auth(token)
            .send()
            .await?;
        let (got, gap) = common::status_json(gap).await?;
        assert_eq!(
            (got, gap["lost_clips"].as_i64()),
            (status, Some(clips)),
            "{gap}"
        );
    }
    let out = common::run_browser_script(
        "clips",
        &relay,
        &[
            ("EMAIL", "a@example.jp".into()),
            ("PASSWORD", PW.into()),
            ("CLIP_URL", clip_url.clone()),
        ],
        &[("agent", &agent)],
    )
    .await?;
    let line: serde_json::Value = serde_json::from_str(
        out.lines()
            .find(|l| l.contains("\"ok\":true"))
            .context("the script's result")?,
    )?;
    let saved = std::fs::read(line["saved"].as_str().context("saved")?)?;
    let id = line["event"].as_i64().context("event")?;
    let stored = client
        .get(&format!("/api/events/{id}/clip"))
        .await?
        .bytes()
        .await?;
    assert_eq!(saved, stored.to_vec(), "the saved file is the clip");
    Ok(())
}
