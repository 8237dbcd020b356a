//! Arming, switched where customers switch it: in Chromium on the cameras page, on a desktop
//! in English and on a phone in Japanese (`tests/browser/arming.mjs`). What the page set is
//! then checked where it matters, in the mail: at Home only the camera set to alert when home
//! mails, the other's event is stored but not mailed; back Away, both mail. Screenshots go to
//! `target/test-output/browser_arming/`.

mod common;

use anyhow::{Context, Result, ensure};
use common::smtp::{Smtp, confirmed_address, subject};
use common::{Relay, status_json};
use std::time::Duration;

const PW: &str = "correct horse battery";

/// The alert mails received so far, by the camera named in their subject.
fn alerts_about(smtp: &Smtp, camera: &str) -> Result<usize> {
    Ok(smtp
        .received()?
        .iter()
        .filter(|r| subject(&r.raw).contains(camera))
        .count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_arms_from_the_cameras_page_and_only_armed_cameras_mail() -> Result<()> {
    let smtp = Smtp::start()?;
    // A short cooldown: each camera's next event mails at once.
    let relay = Relay::start(&format!(
        "[mail]\nsmtp_url = \"{}\"\nalert_cooldown = \"1s\"\n",
        smtp.url()
    ))?;
    let owner = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let alice = relay.login("a@example.jp", PW).await?;
    let porch = relay.camera(owner, "Porch", "fixed", "dispatch", "agent")?;
    let garden = relay.camera(owner, "Garden", "fixed", "camera-only", "agent")?;
    confirmed_address(&relay, &smtp, &alice, "home@example.jp").await?;
    let token = |cam: &serde_json::Value| -> Result<String> {
        Ok(cam["agent_token"].as_str().context("token")?.to_owned())
    };
    let vars = |step: &str| {
        vec![
            ("STEP", step.to_owned()),
            ("EMAIL", "a@example.jp".to_owned()),
            ("PASSWORD", PW.to_owned()),
        ]
    };

    common::run_browser_script("arming", &relay, &vars("desktop"), &[]).await?;
    // Home, with Garden set to alert when home: Garden's event mails, Porch's does not.
    let (_, arming) = status_json(alice.get("/api/arming").await?).await?;
    assert_eq!(arming["mode"], "home", "{arming}");
    for (cam, key) in [(&porch, "arming-porch-1"), (&garden, "arming-garden-1")] {
        let upload =
            common::upload_event(&relay, &token(cam)?, key, &common::jpeg(320, 180)).await?;
        assert_eq!(upload.status(), 201);
    }
    smtp.wait_for("Garden's alert", |m| {
        m.iter().any(|r| subject(&r.raw).contains("Garden"))
    })
    .await?;
    // The mailer has sent what was queued with Garden's; Porch's would have gone with it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        alerts_about(&smtp, "Porch")?,
        0,
        "Porch mailed while quiet at home"
    );
    let porch_id = porch["id"].as_i64().context("id")?;
    let (_, events) = status_json(
        alice
            .get(&format!("/api/cameras/{porch_id}/events"))
            .await?,
    )
    .await?;
    assert_eq!(events[0]["armed"], false, "stored, not armed: {events}");

    common::run_browser_script("arming", &relay, &vars("phone"), &[]).await?;
    // Away: Porch mails again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let upload = common::upload_event(
        &relay,
        &token(&porch)?,
        "arming-porch-2",
        &common::jpeg(320, 180),
    )
    .await?;
    assert_eq!(upload.status(), 201);
    smtp.wait_for("Porch's alert", |m| {
        m.iter().any(|r| subject(&r.raw).contains("Porch"))
    })
    .await?;
    let (_, arming) = status_json(alice.get("/api/arming").await?).await?;
    ensure!(
        arming["schedule"].as_array().is_some_and(Vec::is_empty),
        "{arming}"
    );
    Ok(())
}
