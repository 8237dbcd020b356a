//! The identity-check password (本人確認用パスワード) through the real pages and the real mail:
//! in Chromium the customer sets it behind their login password and a Tokyo operator checks a
//! caller from the console, match and no match, until the hour's checks are used up
//! (`tests/browser/identity.mjs`). Each check reaches the customer as an operation mail with
//! its result; the West operator gets 404 for the same customer, with the right word or not;
//! the company's reset from the command line (stdin) mails the customer and ends nothing
//! else: the customer's session and login password go on. Screenshots go to
//! `target/test-output/browser_identity/`.

mod common;

use anyhow::{Context, Result, ensure};
use common::smtp::Smtp;
use common::{Relay, status_json};
use serde_json::json;

const PW: &str = "correct horse battery";
const WORD: &str = "sakura mochi";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_is_checked_by_the_identity_check_password_from_the_console() -> Result<()> {
    let smtp = Smtp::start()?;
    let relay = Relay::start(&format!("[mail]\nsmtp_url = \"{}\"\n", smtp.url()))?;
    let alice_id = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    relay.operator("op@example.jp", "Oscar", "tokyo", PW)?;
    relay.operator("west@example.jp", "Wendy", "west", PW)?;
    let camera = relay.camera(alice_id, "Porch", "fixed", "dispatch", "agent")?;
    let alice = relay.login("a@example.jp", PW).await?;
    common::smtp::confirmed_address(&relay, &smtp, &alice, "alice@example.jp").await?;
    let request = common::request_dispatch(
        &alice,
        &json!({"camera_id": camera["id"].as_i64().context("camera id")?}),
    )
    .await?;

    let out = common::run_browser_script(
        "identity",
        &relay,
        &[
            ("CUSTOMER_EMAIL", "a@example.jp".into()),
            ("CUSTOMER_ID", alice_id.to_string()),
            ("OPERATOR_EMAIL", "op@example.jp".into()),
            ("OPERATOR_NAME", "Oscar".into()),
            ("PASSWORD", PW.into()),
            ("WORD", WORD.into()),
            ("REQUEST_ID", request.to_string()),
        ],
        &[],
    )
    .await?;
    ensure!(out.contains("\"ok\":true"), "{out}");

    // Every check reached the customer's confirmed address, with its result.
    for (subject, n) in [
        ("Account activity: Identity-check password set", 1),
        (
            "Account activity: The guard center checked your identity-check password: it matched",
            1,
        ),
        (
            "Account activity: The guard center checked your identity-check password: it did not match",
            4,
        ),
        (
            "Account activity: The guard center checked your identity-check password: not checked, too many checks this hour",
            1,
        ),
    ] {
        let mails = smtp
            .wait_for(subject, |m| {
                m.iter()
                    .filter(|r| common::smtp::subject(&r.raw) == subject)
                    .count()
                    >= n
            })
            .await?;
        let got = mails
            .iter()
            .filter(|r| common::smtp::subject(&r.raw) == subject)
            .count();
        ensure!(got == n, "{got} mails {subject:?}, wanted {n}");
    }

    // Another center's operator: 404 for the customer, whatever the word; nothing counted.
    let west = relay.login("west@example.jp", PW).await?;
    for word in [WORD, "wrong"] {
        let (status, body) = status_json(
            west.post(
                &format!("/api/ops/customers/{alice_id}/identity-check"),
                &json!({ "identity_password": word }),
            )
            .await?,
        )
        .await?;
        ensure!(status == 404, "{status} {body}");
    }

    // The company's desk resets it from the command line: the customer is mailed, and Alice's
    // session and login password go on.
    let reset = relay.admin(
        &[
            "customer",
            "set-identity-password",
            "--id",
            &alice_id.to_string(),
        ],
        "Momo Taro\n",
    )?;
    ensure!(reset["identity_password_set"] == true, "{reset}");
    smtp.wait_subject("Account activity: Identity-check password reset by our desk")
        .await?;
    let (status, me) = status_json(alice.get("/api/me/identity-password").await?).await?;
    ensure!(status == 200 && me["set"] == true, "{status} {me}");
    ensure!(
        me.as_object().is_some_and(|o| o.len() == 3),
        "set, set_at and the customer number only: {me}"
    );
    let (status, _) = status_json(alice.get("/api/cameras").await?).await?;
    ensure!(status == 200, "the reset ended Alice's session: {status}");
    let history: serde_json::Value = alice.get("/api/history?limit=1").await?.json().await?;
    ensure!(
        history[0]["action"] == "identity.password_reset" && history[0]["actor_kind"] == "admin",
        "{history}"
    );
    let (status, _) = status_json(
        relay
            .login("a@example.jp", PW)
            .await?
            .get("/api/me")
            .await?,
    )
    .await?;
    ensure!(
        status == 200,
        "the reset changed Alice's login password: {status}"
    );
    Ok(())
}
