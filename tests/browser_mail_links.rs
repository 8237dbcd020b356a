//! The links in real mails, opened in Chromium: an alert address is confirmed by the button
//! of its mailed link's page (posted with `Origin: null`, as Chromium does under the page's
//! `no-referrer` policy), the alert's "See this event" opens the event after a login, and the
//! alert's unsubscribe page stops the alerts. Screenshots go to
//! `target/test-output/browser_mail_links/`.

mod common;

use anyhow::{Context, Result};
use common::smtp::{Smtp, add_address, link};
use common::{Relay, status_json};
use serde_json::json;

const PW: &str = "correct horse battery";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_address_is_confirmed_and_unsubscribed_from_its_mails_in_chromium() -> Result<()> {
    let smtp = Smtp::start()?;
    let relay = Relay::start(&format!("[mail]\nsmtp_url = \"{}\"\n", smtp.url()))?;
    let owner = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let alice = relay.login("a@example.jp", PW).await?;
    let cam = relay.camera(owner, "Porch", "fixed", "dispatch", "agent")?;
    let cam_id = cam["id"].as_i64().context("id")?;
    let address = "home@example.jp";
    assert_eq!(add_address(&alice, address).await?.0, 201);
    let mails = smtp
        .wait_for("the confirmation", |m| m.iter().any(|r| r.to == [address]))
        .await?;
    let confirm = link(&mails[0].raw, &format!("{}/confirm/", relay.base))?;
    common::run_browser_script(
        "mail_links",
        &relay,
        &[
            ("STEP", "confirm".into()),
            ("CONFIRM_URL", confirm),
            ("ADDRESS", address.into()),
        ],
        &[],
    )
    .await?;
    let (_, list) = status_json(alice.get("/api/alert-addresses").await?).await?;
    assert_eq!(list[0]["confirmed"], true, "{list}");

    // Motion: its alert mail, whose links are opened next.
    let upload = common::upload_event(
        &relay,
        cam["agent_token"].as_str().context("token")?,
        "mail-links-1",
        &common::jpeg(320, 180),
    )
    .await?;
    assert_eq!(upload.status(), 201, "{}", upload.text().await?);
    let mails = smtp
        .wait_for("the alert", |m| {
            m.iter()
                .any(|r| common::smtp::subject(&r.raw).starts_with("Motion"))
        })
        .await?;
    let alert = mails
        .iter()
        .find(|r| common::smtp::subject(&r.raw).starts_with("Motion"))
        .context("alert")?;
    let event_url = link(&alert.raw, &format!("{}/#event/", relay.base))?;
    let unsubscribe_url = link(&alert.raw, &format!("{}/unsubscribe/", relay.base))?;
    common::run_browser_script(
        "mail_links",
        &relay,
        &[
            ("STEP", "alert".into()),
            ("EVENT_URL", event_url),
            ("UNSUBSCRIBE_URL", unsubscribe_url),
            ("EMAIL", "a@example.jp".into()),
            ("PASSWORD", PW.into()),
            ("CAMERA_NAME", "Porch".into()),
            ("CAMERA_ID", cam_id.to_string()),
        ],
        &[],
    )
    .await?;
    let (_, list) = status_json(alice.get("/api/alert-addresses").await?).await?;
    assert_eq!(list, json!([]), "unsubscribed");
    Ok(())
}
