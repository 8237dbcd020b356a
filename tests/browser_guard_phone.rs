//! The guard's phone in Chromium, the way a guard, an operator and a customer use it at once
//! (`tests/browser/guard_phone.mjs`): the operator issues a sign-in link from the console
//! (its QR code and URL); the guard opens it on a 390×844 phone in Japanese with a fake
//! position, sees the assignment (the address with a navigation link, the customer's note
//! and how to get in, the shared picture), and says "on my way", "arrived" (the first
//! answer lost on the way: the phone sends it again, and the relay answers it as done) and
//! "done" with a report; the customer's page and the console follow each step live, and the
//! phone's position moves the customer's estimated arrival. After completion the phone shows
//! nothing of the customer and the relay answers 404 for the assignment and its picture; an
//! operator's revocation ends the phone's session within 5 s. Another guard's phone gets 404
//! for the assignment while it is open. Screenshots go to
//! `target/test-output/browser_guard_phone/`.

mod common;

use anyhow::{Context, Result, ensure};
use common::{Relay, status_json};
use serde_json::json;

const PW: &str = "correct horse battery";
const HOME: &str = "1-1 Chiyoda, Chiyoda-ku, Tokyo";
const ENTRY: &str = "Gate code 4812, the side door";
const NOTE: &str = "Someone at the back window";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_takes_a_request_from_sign_in_to_done_on_a_phone() -> Result<()> {
    let relay = Relay::start("")?;
    let alice_id = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    relay.operator("op@example.jp", "Oscar", "tokyo", PW)?;
    relay.set_home(alice_id, HOME, "35.6800,139.7600")?;
    let sato = relay.guard("tokyo", "Sato", "35.7400,139.7600")?;
    let suzuki = relay.guard("tokyo", "Suzuki", "35.6900,139.7000")?;
    let id = |g: &serde_json::Value| g["id"].as_i64().context("guard id");
    let (sato, suzuki) = (id(&sato)?, id(&suzuki)?);
    let camera = relay.camera(alice_id, "Porch", "fixed", "dispatch", "agent")?;
    let alice = relay.login("a@example.jp", PW).await?;
    let notes = alice
        .request(reqwest::Method::PUT, "/api/home")
        .json(&json!({"phone": "090-1234-5678", "entry": ENTRY, "key_holder": null}))
        .send()
        .await?;
    ensure!(notes.status().is_success(), "notes: {}", notes.status());
    let request = common::request_dispatch(
        &alice,
        &json!({"camera_id": camera["id"], "note": NOTE, "share_snapshot": true}),
    )
    .await?;
    let picture = alice
        .request(
            reqwest::Method::PUT,
            &format!("/api/dispatch-requests/{request}/snapshot"),
        )
        .header("content-type", "image/jpeg")
        .body(common::jpeg(320, 240))
        .send()
        .await?;
    ensure!(
        picture.status().is_success(),
        "picture: {}",
        picture.status()
    );
    let op = relay.login("op@example.jp", PW).await?;
    let accepted = op
        .post(
            &format!("/api/ops/dispatch-requests/{request}/accept"),
            &json!({}),
        )
        .await?;
    ensure!(accepted.status() == 200, "accept: {}", accepted.status());
    let assigned = op
        .post(
            &format!("/api/ops/dispatch-requests/{request}/assign"),
            &json!({ "guard_id": sato }),
        )
        .await?;
    ensure!(assigned.status() == 200, "assign: {}", assigned.status());

    // Suzuki, signed in on a phone of his own, gets nothing of Sato's assignment.
    let suzukis = common::guard_phone(&relay, &op, suzuki).await?;
    for path in [
        format!("/guard/v1/assignments/{request}"),
        format!("/guard/v1/assignments/{request}/snapshot"),
    ] {
        let (status, body) = status_json(suzukis.get(&path).await?).await?;
        ensure!(status == 404, "{path} as Suzuki: {status} {body}");
    }
    let (status, mine) = status_json(suzukis.get("/guard/v1/assignment").await?).await?;
    ensure!(
        status == 200 && mine["assignment"].is_null(),
        "{status} {mine}"
    );
    let step = suzukis
        .post(
            &format!("/guard/v1/assignments/{request}/arrive"),
            &json!({}),
        )
        .await?;
    ensure!(step.status() == 404, "Suzuki's step: {}", step.status());

    let out = common::run_browser_script(
        "guard_phone",
        &relay,
        &[
            ("OPERATOR_EMAIL", "op@example.jp".into()),
            ("CUSTOMER_EMAIL", "a@example.jp".into()),
            ("PASSWORD", PW.into()),
            ("GUARD_ID", sato.to_string()),
            ("REQUEST_ID", request.to_string()),
            ("HOME", HOME.into()),
            ("ENTRY", ENTRY.into()),
            ("NOTE", NOTE.into()),
        ],
        &[],
    )
    .await?;
    let result: serde_json::Value = serde_json::from_str(
        out.lines()
            .find(|l| l.contains("\"ok\":true"))
            .context("result line")?,
    )?;
    let revoked_ms = result["revokedWithinMs"]
        .as_f64()
        .context("revocation time")?;
    ensure!(
        revoked_ms < 5000.0,
        "the revoked page lasted {revoked_ms} ms"
    );

    // The steps were the guard's own, in the customer's history and on the request.
    let history: serde_json::Value = alice.get("/api/history?limit=50").await?.json().await?;
    let by_sato: Vec<&str> = history
        .as_array()
        .context("history")?
        .iter()
        .filter(|e| e["actor_kind"] == "guard" && e["actor_name"] == "Sato")
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in [
        "dispatch.en_route",
        "dispatch.arrived",
        "dispatch.completed",
        "dispatch.snapshot_viewed",
    ] {
        ensure!(by_sato.contains(&action), "{action} by Sato in {by_sato:?}");
    }
    let (_, done) = status_json(
        alice
            .get(&format!("/api/dispatch-requests/{request}"))
            .await?,
    )
    .await?;
    ensure!(done["request"]["state"] == "completed", "{done}");
    ensure!(
        done["request"]["report"] == "All quiet; a cat at the back window",
        "{done}"
    );
    Ok(())
}
