//! Alert mail through a real SMTP server (aiosmtpd, `tests/smtp/sink.py`): a new address is
//! confirmed once through its mailed link; motion in the simulator mails the camera's owner's
//! confirmed addresses only, one message each, with the stored snapshot attached, whatever
//! the camera is called; the one-click unsubscribe removes that address alone.

mod common;

use anyhow::{Context, Result};
use common::smtp::{Received, Smtp, add_address, confirmed_address, link, subject};
use common::{Camera, Relay, status_json, wait_online};
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PW: &str = "correct horse battery";

fn is_alert(r: &Received) -> bool {
    subject(&r.raw).starts_with("Motion:")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_go_to_the_owners_confirmed_addresses_only() -> Result<()> {
    let smtp = Smtp::start()?;
    let relay = Relay::start(&format!("[mail]\nsmtp_url = \"{}\"\n", smtp.url()))?;
    let alice_id = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    relay.customer("b@example.jp", "Bob", "tokyo", PW)?;
    relay.operator("op@example.jp", "Oscar", "tokyo", PW)?;
    let alice = relay.login("a@example.jp", PW).await?;
    let bob = relay.login("b@example.jp", PW).await?;

    // Alice lists three addresses; Bob lists one of hers too (his own entry).
    let mut ids = Vec::new();
    for email in [
        "home@example.jp",
        "never@example.jp",
        "former@example.jp",
        "gone@example.jp",
    ] {
        let (status, a) = add_address(&alice, email).await?;
        assert_eq!((status, &a["confirmed"]), (201, &json!(false)), "{a}");
        ids.push(a["id"].as_i64().context("id")?);
    }
    let (status, _) = add_address(&bob, "home@example.jp").await?;
    assert_eq!(status, 201);
    let (status, dup) = add_address(&alice, "HOME@example.jp").await?;
    assert_eq!(status, 409, "{dup}");
    let (status, bad) = add_address(&alice, "not an address").await?;
    assert_eq!(status, 400, "{bad}");

    // Five confirmation mails, each to its address alone.
    let mails = smtp
        .wait_for("five confirmation mails", |m| m.len() >= 5)
        .await?;
    let confirm_link = |to: &str, nth: usize| -> Result<String> {
        let mail = mails
            .iter()
            .filter(|m| m.to == [to])
            .nth(nth)
            .with_context(|| format!("confirmation to {to}"))?;
        link(&mail.raw, &format!("{}/confirm/", relay.base))
    };
    let anonymous = reqwest::Client::new();
    let home = confirm_link("home@example.jp", 0)?;
    // Opening the link shows a page; only its button (a POST) confirms.
    let page = anonymous.get(&home).send().await?;
    assert_eq!(page.status(), 200);
    assert!(page.text().await?.contains("<form method=\"post\">"));
    assert_eq!(anonymous.post(&home).send().await?.status(), 200);
    assert_eq!(
        anonymous.post(&home).send().await?.status(),
        404,
        "single use"
    );
    for email in ["former@example.jp", "gone@example.jp"] {
        let url = confirm_link(email, 0)?;
        assert_eq!(anonymous.post(&url).send().await?.status(), 200);
    }
    let (_, bobs) = status_json(bob.get("/api/alert-addresses").await?).await?;
    assert_eq!(
        bobs[0]["confirmed"], false,
        "Alice's link confirmed her entry only"
    );
    // Removal is immediate.
    let removed = alice
        .request(
            reqwest::Method::DELETE,
            &format!("/api/alert-addresses/{}", ids[2]),
        )
        .send()
        .await?;
    assert_eq!(removed.status(), 204);

    // A camera whose name tries to add a recipient.
    let cam = relay.camera(alice_id, "Street", "fixed", "dispatch", "agent")?;
    let cam_id = cam["id"].as_i64().context("id")?;
    let evil = "Front\r\nBcc: x@evil.example\r\n.\r\n";
    let (status, _) = status_json(
        alice
            .patch(&format!("/api/cameras/{cam_id}"), &json!({"name": evil}))
            .await?,
    )
    .await?;
    assert_eq!(status, 200);
    let _agent = relay.start_agent(
        cam["agent_token"].as_str().context("token")?,
        "sim://fixed",
        "agent",
    )?;
    wait_online(&alice, cam_id, true, Duration::from_secs(15)).await?;

    smtp.wait_for("the alert", |m| m.iter().any(is_alert))
        .await?;
    // The crossing goes on a few seconds: still one alert per address.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mails = smtp
        .received()?
        .into_iter()
        .filter(is_alert)
        .collect::<Vec<_>>();
    assert_eq!(mails.len(), 1, "one alert, to one address");
    let alert = &mails[0];
    assert_eq!(alert.to, ["home@example.jp"]);
    for m in smtp.received()? {
        assert!(
            !m.to
                .iter()
                .any(|t| t.contains("op@") || t.contains("evil") || t.contains("a@example.jp")),
            "{:?}",
            m.to
        );
    }
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-output/alert_mail");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("alert.eml"), &alert.raw)?;
    let message = MessageParser::default()
        .parse(&alert.raw)
        .context("the alert")?;
    let text = String::from_utf8_lossy(&alert.raw);
    let header_block = text.split("\r\n\r\n").next().unwrap_or_default();
    assert!(
        !header_block.to_ascii_lowercase().contains("\nbcc:"),
        "{header_block}"
    );
    assert!(!text.split("\r\n").any(|l| l == "."), "no lone dot");
    let subject = message.subject().context("subject")?;
    assert!(
        subject.starts_with("Motion: Front") && subject.ends_with("JST"),
        "{subject}"
    );
    assert!(
        message
            .body_text(0)
            .context("text")?
            .contains("saw motion at")
    );
    assert!(
        message
            .body_html(0)
            .context("html")?
            .contains("cid:snapshot")
    );
    assert!(
        message
            .message_id()
            .is_some_and(|id| id.starts_with("alert."))
    );

    // The attachment is the stored snapshot.
    let (_, events) =
        status_json(alice.get(&format!("/api/cameras/{cam_id}/events")).await?).await?;
    let stored = alice
        .get(events[0]["snapshot_url"].as_str().context("snapshot url")?)
        .await?
        .bytes()
        .await?;
    let attachment = message
        .attachments()
        .find(|a| a.attachment_name().is_some_and(|n| n.ends_with(".jpg")))
        .context("a .jpg attachment")?;
    assert_eq!(attachment.contents(), &stored[..]);
    // The mailbox that is gone refused its copy for good: the event says so.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, events) =
            status_json(alice.get(&format!("/api/cameras/{cam_id}/events")).await?).await?;
        let mail = &events[0]["mail"];
        let state_of = |to: &str| {
            mail.as_array()
                .and_then(|m| m.iter().find(|d| d["to"] == to))
                .map(|d| d["state"].clone())
        };
        if state_of("gone@example.jp") == Some(json!("failed")) {
            assert_eq!(state_of("home@example.jp"), Some(json!("sent")), "{mail}");
            assert_eq!(mail.as_array().map(Vec::len), Some(2), "{mail}");
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "no failed delivery: {mail}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    image::load_from_memory_with_format(attachment.contents(), image::ImageFormat::Jpeg)?;

    // One click removes that address, and only it.
    let unsubscribe = message
        .header_raw("List-Unsubscribe")
        .context("List-Unsubscribe")?
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned();
    assert_eq!(
        message.header_raw("List-Unsubscribe-Post").map(str::trim),
        Some("List-Unsubscribe=One-Click")
    );
    let clicked = anonymous
        .post(&unsubscribe)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await?;
    assert_eq!(clicked.status(), 200);
    let (_, left) = status_json(alice.get("/api/alert-addresses").await?).await?;
    let left: Vec<_> = left
        .as_array()
        .context("list")?
        .iter()
        .map(|a| a["email"].clone())
        .collect();
    assert_eq!(left, [json!("never@example.jp"), json!("gone@example.jp")]);
    let (_, bobs) = status_json(bob.get("/api/alert-addresses").await?).await?;
    assert_eq!(bobs.as_array().map(Vec::len), Some(1), "Bob's entry stays");
    let (_, history) = status_json(alice.get("/api/history").await?).await?;
    let history = history.to_string();
    for action in [
        "alert_address.added",
        "alert_address.confirmed",
        "alert_address.removed",
        "alert_address.unsubscribed",
    ] {
        assert!(history.contains(action), "{action} in {history}");
    }
    Ok(())
}

/// The Message-ID of a message, without its angle brackets.
fn message_id(raw: &[u8]) -> String {
    MessageParser::default()
        .parse(raw)
        .and_then(|m| m.message_id().map(str::to_owned))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_alerts_survive_a_mail_server_outage_and_a_relay_crash() -> Result<()> {
    let mut smtp = Smtp::start()?;
    let mut relay = Relay::start(&format!(
        "[mail]\nsmtp_url = \"{}\"\nalert_cooldown = \"1s\"\n",
        smtp.url()
    ))?;
    let alice_id = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let alice = relay.login("a@example.jp", PW).await?;
    confirmed_address(&relay, &smtp, &alice, "home@example.jp").await?;
    let cam = relay.camera(alice_id, "Porch", "fixed", "dispatch", "agent")?;
    let cam_id = cam["id"].as_i64().context("id")?;
    // Someone crosses every 4 s; the agent makes each crossing an event.
    let camera = Camera::start(
        "fixed",
        &[
            "--motion-offset",
            "2s",
            "--motion-every",
            "4s",
            "--motion-crossing",
            "2s",
        ],
        None,
    )?;
    let _agent = relay.start_configured_agent(
        cam["agent_token"].as_str().context("token")?,
        &camera.url,
        "agent",
        "[motion]\nstop_after = \"500ms\"\ncooldown = \"1s\"\n",
        &[],
    )?;

    // The mail server goes away; events (and their mails) pile up.
    smtp.stop()?;
    let deadline = Instant::now() + Duration::from_secs(40);
    let events = loop {
        let (_, list) =
            status_json(alice.get(&format!("/api/cameras/{cam_id}/events")).await?).await?;
        let list = list.as_array().cloned().unwrap_or_default();
        if list.len() >= 3 {
            break list;
        }
        anyhow::ensure!(Instant::now() < deadline, "events: {list:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The relay dies with its mail queued, comes back, and so does the mail server.
    relay.process.signal(libc::SIGKILL)?;
    relay.restart()?;
    smtp.restart()?;

    let wanted: Vec<String> = events
        .iter()
        .map(|e| format!("alert.{}.", e["id"]))
        .collect();
    let got = smtp
        .wait_for("every queued alert", |m| {
            wanted
                .iter()
                .all(|w| m.iter().any(|r| message_id(&r.raw).starts_with(w.as_str())))
        })
        .await?;
    // At most once more each (a mail sent right before the crash), never to anyone else.
    for w in &wanted {
        let copies = got
            .iter()
            .filter(|r| message_id(&r.raw).starts_with(w.as_str()))
            .count();
        assert!((1..=2).contains(&copies), "{w}: {copies} copies");
    }
    assert!(got.iter().all(|r| r.to == ["home@example.jp"]));
    Ok(())
}

/// The `.eml` files of the relay's outbox folder (no SMTP server configured), oldest first.
fn outbox_files(relay: &Relay) -> Result<Vec<Vec<u8>>> {
    let dir = relay.dir.path().join("data/outbox");
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&dir)?
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| Ok((e.metadata()?.modified()?, e.path())))
        .collect::<Result<_>>()?;
    files.sort();
    files.iter().map(|(_, p)| Ok(std::fs::read(p)?)).collect()
}

/// Waits for a mail in the relay's outbox folder whose subject starts with `prefix`.
async fn wait_for_outbox(relay: &Relay, prefix: &str) -> Result<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(found) = outbox_files(relay)?
            .into_iter()
            .find(|f| subject(f).starts_with(prefix))
        {
            return Ok(found);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no {prefix} mail in the outbox folder"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_mail_server_mail_goes_to_the_outbox_folder_in_the_customers_language()
-> Result<()> {
    let relay = Relay::start("")?;
    let alice_id = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let alice = relay.login("a@example.jp", PW).await?;
    let (status, _) = status_json(alice.patch("/api/me", &json!({"lang": "ja"})).await?).await?;
    assert_eq!(status, 200);
    let (status, _) = add_address(&alice, "home@example.jp").await?;
    assert_eq!(status, 201);

    let confirmation = wait_for_outbox(&relay, "【eyeward】通知先メールアドレスの確認").await?;
    let confirm = link(&confirmation, &format!("{}/confirm/", relay.base))?;
    assert_eq!(
        reqwest::Client::new().post(&confirm).send().await?.status(),
        200
    );

    let cam = relay.camera(alice_id, "玄関", "fixed", "dispatch", "agent")?;
    let _agent = relay.start_agent(
        cam["agent_token"].as_str().context("token")?,
        "sim://fixed",
        "agent",
    )?;
    let alert = wait_for_outbox(&relay, "【動体検知】").await?;
    let alert = MessageParser::default()
        .parse(&alert)
        .context("the alert")?;
    let subject = alert.subject().context("subject")?;
    assert!(subject.starts_with("【動体検知】玄関 "), "{subject}");
    assert!(
        alert
            .body_text(0)
            .context("text")?
            .contains("動きを検知しました")
    );
    assert_eq!(
        alert.to().and_then(|t| t.first()).and_then(|a| a.address()),
        Some("home@example.jp")
    );
    assert!(
        alert
            .attachments()
            .any(|a| a.attachment_name().is_some_and(|n| n.ends_with(".jpg")))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_is_told_of_operations_and_of_a_camera_offline_each_switchable() -> Result<()> {
    let smtp = Smtp::start()?;
    let relay = Relay::start(&format!(
        "[mail]\nsmtp_url = \"{}\"\noffline_after = \"2s\"\n",
        smtp.url()
    ))?;
    let alice_id = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let alice = relay.login("a@example.jp", PW).await?;
    confirmed_address(&relay, &smtp, &alice, "home@example.jp").await?;

    // Operations: the confirmation itself, a login from a new browser, a renamed camera.
    // A login from a browser used before and pan-tilt moves are not mailed by default.
    smtp.wait_subject("Account activity: Alert address confirmed: home@example.jp")
        .await?;
    relay.login("a@example.jp", PW).await?;
    smtp.wait_subject("Account activity: Login from a new browser")
        .await?;
    let again = alice
        .post(
            "/api/login",
            &json!({"email": "a@example.jp", "password": PW}),
        )
        .await?;
    assert_eq!(again.status(), 200);
    let (_, settings) = status_json(alice.get("/api/mail-settings").await?).await?;
    assert_eq!(
        settings,
        json!({"offline": true, "operations": true, "ptz": false})
    );
    let cam = relay.camera(alice_id, "Porch", "fixed", "dispatch", "agent")?;
    let cam_id = cam["id"].as_i64().context("id")?;
    let (status, _) = status_json(
        alice
            .patch(&format!("/api/cameras/{cam_id}"), &json!({"name": "Gate"}))
            .await?,
    )
    .await?;
    assert_eq!(status, 200);
    smtp.wait_subject("Account activity: Camera renamed to Gate")
        .await?;

    // Switched off, operations are no longer mailed.
    let (status, settings) = status_json(
        alice
            .request(reqwest::Method::PUT, "/api/mail-settings")
            .json(&json!({"offline": true, "operations": false}))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(
        (status, settings),
        (
            200,
            json!({"offline": true, "operations": false, "ptz": false})
        )
    );
    let (status, _) = status_json(
        alice
            .patch(&format!("/api/cameras/{cam_id}"), &json!({"name": "Porch"}))
            .await?,
    )
    .await?;
    assert_eq!(status, 200);

    // The camera goes offline for longer than 2 s, then comes back.
    let mut agent = relay.start_agent(
        cam["agent_token"].as_str().context("token")?,
        "sim://fixed",
        "agent",
    )?;
    wait_online(&alice, cam_id, true, Duration::from_secs(15)).await?;
    agent.stop()?;
    wait_online(&alice, cam_id, false, Duration::from_secs(15)).await?;
    smtp.wait_subject("Camera offline: Porch").await?;
    let _agent = relay.start_agent(
        cam["agent_token"].as_str().context("token")?,
        "sim://fixed",
        "agent",
    )?;
    smtp.wait_subject("Camera back online: Porch").await?;

    let all: Vec<String> = smtp.received()?.iter().map(|r| subject(&r.raw)).collect();
    assert!(
        !all.iter()
            .any(|s| s == "Account activity: Camera renamed to Porch"),
        "switched off: {all:?}"
    );
    assert_eq!(
        all.iter()
            .filter(|s| s.contains("Login from a new browser"))
            .count(),
        1,
        "the known browser's login was mailed: {all:?}"
    );
    assert_eq!(
        all.iter()
            .filter(|s| s.starts_with("Camera offline"))
            .count(),
        1,
        "{all:?}"
    );
    assert!(smtp.received()?.iter().all(|r| r.to == ["home@example.jp"]));
    Ok(())
}

/// A mail server with a certificate nobody public signed, that insists on TLS (`mode`:
/// `--tls` for STARTTLS, `--implicit-tls` for TLS from the start) and a login; the relay
/// trusts that certificate through `ca_file`. The confirmation mail must get through, and the
/// password must stay out of the log.
async fn mail_over_tls(mode: &str, scheme: &str) -> Result<()> {
    let certs = tempfile::tempdir()?;
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])?;
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem())?;
    std::fs::write(&key, made.key_pair.serialize_pem())?;
    let path = |p: &Path| p.to_str().map(str::to_owned).context("utf-8 path");
    let smtp = Smtp::start_with(vec![
        mode.into(),
        path(&cert)?,
        path(&key)?,
        "relay".into(),
        "p@ss word".into(),
    ])?;
    let url = format!("{scheme}://relay:p%40ss%20word@127.0.0.1:{}", smtp.port);
    let relay = Relay::start(&format!(
        "[mail]\nsmtp_url = \"{url}\"\nca_file = {:?}\n",
        path(&cert)?
    ))?;
    relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let alice = relay.login("a@example.jp", PW).await?;
    let (status, _) = add_address(&alice, "home@example.jp").await?;
    assert_eq!(status, 201);
    let got = smtp
        .wait_for("the confirmation over TLS", |m| {
            m.iter().any(|r| r.to == ["home@example.jp"])
        })
        .await
        .with_context(|| relay.log())?;
    assert!(
        subject(&got[0].raw).contains("confirm"),
        "{}",
        subject(&got[0].raw)
    );
    let log = relay.log();
    assert!(!log.contains("p@ss") && !log.contains("p%40ss"), "{log}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_over_starttls_with_a_password_to_a_server_of_a_private_ca() -> Result<()> {
    mail_over_tls("--tls", "smtp").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_over_implicit_tls_with_a_password() -> Result<()> {
    mail_over_tls("--implicit-tls", "smtps").await
}
