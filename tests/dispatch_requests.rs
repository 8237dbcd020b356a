//! Dispatch requests over the real relay's HTTP API, with a real SMTP server: a request goes to
//! the customer's guard center only; each step is stored with its actor, mailed to the
//! customer's confirmed addresses and seen live; the fee is charged at acceptance and stays on
//! a later cancel; a shared picture is shown to the center only while the request is open and
//! each look is in the customer's history; bad input is a clean 4xx that changes nothing.

mod common;

use anyhow::{Context, Result};
use common::smtp::{Smtp, confirmed_address, subject};
use common::{Client, Relay, jpeg, sse_until, status_json};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const PW: &str = "correct horse battery";

/// Alice's home, and guards of her center: Sato is near, Suzuki farther; Ito is in the east.
const HOME: &str = "35.6812,139.7671";
const NEAR: &str = "35.6900,139.7700";
const FAR: &str = "35.9000,139.9000";

/// A relay with Alice (tokyo, a home), Bob (tokyo), operators of tokyo and of east, three
/// guards, and Alice's dispatch-plan and camera-only cameras.
struct World {
    relay: Relay,
    alice: Client,
    bob: Client,
    tokyo: Client,
    tokyo2: Client,
    east: Client,
    alice_id: i64,
    dispatch_cam: i64,
    camera_only_cam: i64,
    guards: Vec<(i64, String)>,
}

impl World {
    async fn start(extra: &str) -> Result<World> {
        let relay = Relay::start(extra)?;
        let alice_id = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
        relay.set_home(alice_id, "1-9-1 Marunouchi, Chiyoda-ku, Tokyo", HOME)?;
        relay.customer("b@example.jp", "Bob", "tokyo", PW)?;
        relay.operator("op@example.jp", "Oscar", "tokyo", PW)?;
        relay.operator("op2@example.jp", "Olivia", "tokyo", PW)?;
        relay.operator("east@example.jp", "Eve", "east", PW)?;
        let mut guards = Vec::new();
        for (center, name, at) in [
            ("tokyo", "Sato", NEAR),
            ("tokyo", "Suzuki", FAR),
            ("east", "Ito", NEAR),
        ] {
            let g = relay.guard(center, name, at)?;
            guards.push((
                g["id"].as_i64().context("guard id")?,
                g["guard_token"].as_str().context("guard token")?.to_owned(),
            ));
        }
        let dispatch_cam = relay.camera(alice_id, "Porch", "fixed", "dispatch", "agent")?["id"]
            .as_i64()
            .context("id")?;
        let camera_only_cam =
            relay.camera(alice_id, "Garden", "fixed", "camera-only", "agent")?["id"]
                .as_i64()
                .context("id")?;
        Ok(World {
            alice: relay.login("a@example.jp", PW).await?,
            bob: relay.login("b@example.jp", PW).await?,
            tokyo: relay.login("op@example.jp", PW).await?,
            tokyo2: relay.login("op2@example.jp", PW).await?,
            east: relay.login("east@example.jp", PW).await?,
            relay,
            alice_id,
            dispatch_cam,
            camera_only_cam,
            guards,
        })
    }

    /// A camera of Alice's on the dispatch plan with its agent on a simulated camera, online:
    /// its id and the agent.
    async fn live_camera(&self) -> Result<(i64, common::Process)> {
        let cam = self
            .relay
            .camera(self.alice_id, "Hall", "fixed", "dispatch", "agent")?;
        let cam_id = cam["id"].as_i64().context("id")?;
        let agent = self.relay.start_agent(
            cam["agent_token"].as_str().context("token")?,
            "sim://fixed",
            "agent",
        )?;
        common::wait_online(&self.alice, cam_id, true, Duration::from_secs(10)).await?;
        Ok((cam_id, agent))
    }

    /// Alice asks for a guard from her dispatch camera.
    async fn request(&self, body: Value) -> Result<(u16, Value)> {
        status_json(self.alice.post("/api/dispatch-requests", &body).await?).await
    }

    /// Operator `who` takes `action` on request `id`.
    async fn step(&self, who: &Client, id: i64, action: &str) -> Result<(u16, Value)> {
        status_json(
            who.post(
                &format!("/api/ops/dispatch-requests/{id}/{action}"),
                &json!({}),
            )
            .await?,
        )
        .await
    }

    /// Operator `who` sends `guard` to request `id`.
    async fn assign(&self, who: &Client, id: i64, guard: i64) -> Result<(u16, Value)> {
        status_json(
            who.post(
                &format!("/api/ops/dispatch-requests/{id}/assign"),
                &json!({ "guard_id": guard }),
            )
            .await?,
        )
        .await
    }

    /// `who` cancels request `id`.
    async fn cancel(&self, who: &Client, id: i64) -> Result<(u16, Value)> {
        status_json(
            who.post(&format!("/api/dispatch-requests/{id}/cancel"), &json!({}))
                .await?,
        )
        .await
    }

    /// Alice's view of request `id`.
    async fn state(&self, id: i64) -> Result<Value> {
        let (status, v) = status_json(
            self.alice
                .get(&format!("/api/dispatch-requests/{id}"))
                .await?,
        )
        .await?;
        assert_eq!(status, 200, "{v}");
        Ok(v["request"].clone())
    }

    async fn get(&self, who: &Client, path: &str) -> Result<(u16, Value)> {
        status_json(who.get(path).await?).await
    }

    async fn waiting(&self, center: &str) -> Result<String> {
        let text = reqwest::get(self.relay.url("/metrics"))
            .await?
            .text()
            .await?;
        let line = format!("eyeward_dispatch_waiting{{center=\"{center}\"}} ");
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or("absent")
            .to_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_reaches_its_center_only_and_every_step_is_stored_mailed_and_seen_live()
-> Result<()> {
    let smtp = Smtp::start()?;
    let w = World::start(&format!("[mail]\nsmtp_url = \"{}\"\n", smtp.url())).await?;
    confirmed_address(&w.relay, &smtp, &w.alice, "home@example.jp").await?;

    // The terms the confirmation shows.
    let (_, terms) = w.get(&w.alice, "/api/dispatch-terms").await?;
    assert_eq!(terms["fee_yen"], 3300, "{terms}");
    assert_eq!(w.waiting("tokyo").await?, "0");

    // Roles: an operator cannot ask, a customer cannot see the console, nobody without a
    // session sees anything.
    let (status, _) = status_json(
        w.tokyo
            .post(
                "/api/dispatch-requests",
                &json!({"camera_id": w.dispatch_cam}),
            )
            .await?,
    )
    .await?;
    assert_eq!(status, 403);
    assert_eq!(w.get(&w.alice, "/api/ops/dispatch-requests").await?.0, 403);
    assert_eq!(
        w.get(&w.relay.client(), "/api/dispatch-requests").await?.0,
        401
    );
    assert_eq!(
        w.get(&w.relay.client(), "/api/ops/dispatch-requests")
            .await?
            .0,
        401
    );

    // The customer's page and the tokyo console follow the requests live.
    let page = sse_until(
        &w.alice,
        "/api/dispatch-requests/live",
        "\"state\":\"accepted\"".into(),
    )
    .await?;
    let console = sse_until(
        &w.tokyo,
        "/api/ops/dispatch-requests/live",
        "\"state\":\"requested\"".into(),
    )
    .await?;

    let asked = Instant::now();
    let (status, req) = w
        .request(json!({
            "camera_id": w.dispatch_cam, "note": "Someone at the back door",
            "share_snapshot": true, "fee_yen": 3300,
        }))
        .await?;
    assert_eq!(status, 201, "{req}");
    let id = req["id"].as_i64().context("id")?;
    assert_eq!(
        (req["state"].as_str(), req["fee_due_yen"].as_i64()),
        (Some("requested"), Some(0))
    );
    console.await??;
    eprintln!(
        "request → tokyo console's live stream: {:?}",
        asked.elapsed()
    );
    assert_eq!(w.waiting("tokyo").await?, "1");
    assert_eq!(w.waiting("east").await?, "0");

    // One open request per camera: a double click does not ask twice.
    let (status, again) = w.request(json!({"camera_id": w.dispatch_cam})).await?;
    assert_eq!(status, 409, "{again}");

    // The tokyo queue has it, without personal data; the east center never sees it.
    let (_, queue) = w.get(&w.tokyo, "/api/ops/dispatch-requests").await?;
    let item = &queue["requests"][0];
    assert_eq!(
        (item["id"].as_i64(), item["state"].as_str()),
        (Some(id), Some("requested"))
    );
    assert!(
        item.get("note").is_none() && item.get("customer").is_none(),
        "{item}"
    );
    let (_, east_queue) = w
        .get(&w.east, "/api/ops/dispatch-requests?closed=true")
        .await?;
    assert_eq!(east_queue["requests"], json!([]));
    assert_eq!(
        w.get(&w.east, &format!("/api/ops/dispatch-requests/{id}"))
            .await?
            .0,
        404
    );
    assert_eq!(w.step(&w.east, id, "accept").await?.0, 404);
    assert_eq!(w.state(id).await?["state"], "requested");

    // Alice shares a picture; tokyo sees it while the request is open.
    let picture = jpeg(320, 180);
    let put = w
        .alice
        .request(
            reqwest::Method::PUT,
            &format!("/api/dispatch-requests/{id}/snapshot"),
        )
        .header("Content-Type", "image/jpeg")
        .body(picture.clone())
        .send()
        .await?;
    assert_eq!(put.status(), 204);
    let shared = w
        .tokyo
        .get(&format!("/api/ops/dispatch-requests/{id}/snapshot"))
        .await?;
    assert_eq!(shared.status(), 200);
    assert_eq!(shared.bytes().await?.as_ref(), picture.as_slice());
    assert_eq!(
        w.east
            .get(&format!("/api/ops/dispatch-requests/{id}/snapshot"))
            .await?
            .status(),
        404
    );

    // Opening it shows the customer, the home and the nearest free guard first.
    let (status, detail) = w
        .get(&w.tokyo, &format!("/api/ops/dispatch-requests/{id}"))
        .await?;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["customer"]["name"], "Alice");
    assert_eq!(
        detail["customer"]["address"],
        "1-9-1 Marunouchi, Chiyoda-ku, Tokyo"
    );
    assert_eq!(detail["camera_name"], "Porch");
    assert_eq!(detail["note"], "Someone at the back door");
    let proposals: Vec<&str> = detail["proposals"]
        .as_array()
        .context("proposals")?
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(proposals, ["Sato", "Suzuki"], "{detail}");
    assert!(
        detail["estimate"]
            .as_str()
            .unwrap_or_default()
            .contains("straight-line")
    );

    // Accepted once: the second accept (another operator) is refused and changes nothing.
    let (status, accepted) = w.step(&w.tokyo, id, "accept").await?;
    assert_eq!(
        (status, accepted["state"].as_str()),
        (200, Some("accepted")),
        "{accepted}"
    );
    let live = page.await??;
    assert!(live.contains("\"fee_due_yen\":3300"), "{live}");
    let (status, twice) = w.step(&w.tokyo2, id, "accept").await?;
    assert_eq!(status, 409, "{twice}");
    assert_eq!(w.state(id).await?["state"], "accepted");
    assert_eq!(w.waiting("tokyo").await?, "0");

    // Only the center's free guards go; a customer cannot move the request on.
    let (sato, _) = &w.guards[0];
    let (ito, _) = &w.guards[2];
    assert_eq!(w.assign(&w.tokyo, id, *ito).await?.0, 404);
    assert_eq!(w.assign(&w.alice, id, *sato).await?.0, 403);
    let (status, assigned) = w.assign(&w.tokyo, id, *sato).await?;
    assert_eq!(
        (status, assigned["guard_name"].as_str()),
        (200, Some("Sato")),
        "{assigned}"
    );
    assert_eq!(w.step(&w.tokyo, id, "arrive").await?.0, 200);
    assert_eq!(w.step(&w.tokyo, id, "complete").await?.0, 200);

    // Closed: the share has ended and the personal data is no longer shown.
    assert_eq!(
        w.tokyo
            .get(&format!("/api/ops/dispatch-requests/{id}/snapshot"))
            .await?
            .status(),
        404
    );
    let (_, closed) = w
        .get(&w.tokyo, &format!("/api/ops/dispatch-requests/{id}"))
        .await?;
    assert!(
        closed.get("customer").is_none() && closed.get("note").is_none(),
        "{closed}"
    );
    // Cancelling a completed request is refused and changes nothing.
    assert_eq!(w.cancel(&w.alice, id).await?.0, 409);
    let done = w.state(id).await?;
    assert_eq!(
        (done["state"].as_str(), done["fee_due_yen"].as_i64()),
        (Some("completed"), Some(3300))
    );
    // Closed, the request no longer names its customer to the center, not even in its steps.
    let (_, closed) = w
        .get(&w.tokyo, &format!("/api/ops/dispatch-requests/{id}"))
        .await?;
    assert!(!closed.to_string().contains("Alice"), "{closed}");

    // Every step, with its actor.
    let (_, full) = w
        .get(&w.alice, &format!("/api/dispatch-requests/{id}"))
        .await?;
    let steps: Vec<(String, String)> = full["steps"]
        .as_array()
        .context("steps")?
        .iter()
        .map(|s| {
            (
                s["to_state"].as_str().unwrap_or_default().to_owned(),
                s["actor_name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("requested", "Alice"),
        ("accepted", "Oscar"),
        ("assigned", "Oscar"),
        ("arrived", "Oscar"),
        ("completed", "Oscar"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(steps, want);

    // One charge, the fee agreed.
    let (_, charges) = w.get(&w.alice, "/api/charges").await?;
    assert_eq!(charges.as_array().map(Vec::len), Some(1), "{charges}");
    assert_eq!(charges[0]["amount_yen"], 3300);

    // A mail at each step, to Alice's confirmed address alone.
    for state in ["requested", "accepted", "assigned", "arrived", "completed"] {
        let want = format!("Guard dispatch {id}: {state}");
        let mails = smtp.wait_subject(&want).await?;
        let mail = mails
            .iter()
            .find(|m| subject(&m.raw) == want)
            .context("mail")?;
        assert_eq!(mail.to, ["home@example.jp"], "{want}");
    }

    // What the operator looked at is in Alice's history, by name.
    let (_, history) = w.get(&w.alice, "/api/history?limit=100").await?;
    let looked: Vec<(&str, &str)> = history
        .as_array()
        .context("history")?
        .iter()
        .filter(|e| e["action"].as_str().is_some_and(|a| a.ends_with("viewed")))
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default(),
                e["actor_name"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert!(looked.contains(&("dispatch.viewed", "Oscar")), "{looked:?}");
    assert!(
        looked.contains(&("dispatch.snapshot_viewed", "Oscar")),
        "{looked:?}"
    );
    assert!(looked.iter().all(|(_, who)| *who == "Oscar"), "{looked:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_is_free_before_acceptance_and_the_fee_stays_after_it() -> Result<()> {
    let w = World::start("").await?;
    let (_, first) = w.request(json!({"camera_id": w.dispatch_cam})).await?;
    let first = first["id"].as_i64().context("id")?;
    // Without the customer's consent no picture is shared: none can be uploaded, the center
    // gets none.
    let put = w
        .alice
        .request(
            reqwest::Method::PUT,
            &format!("/api/dispatch-requests/{first}/snapshot"),
        )
        .header("Content-Type", "image/jpeg")
        .body(jpeg(64, 64))
        .send()
        .await?;
    assert_eq!(status_json(put).await?.0, 409);
    assert_eq!(
        w.get(
            &w.tokyo,
            &format!("/api/ops/dispatch-requests/{first}/snapshot")
        )
        .await?
        .0,
        404
    );
    let (status, free) = w.cancel(&w.alice, first).await?;
    assert_eq!(
        (status, free["state"].as_str(), free["fee_due_yen"].as_i64()),
        (200, Some("cancelled"), Some(0))
    );
    // The center cannot act on a cancelled request.
    assert_eq!(w.step(&w.tokyo, first, "accept").await?.0, 409);

    let (_, second) = w.request(json!({"camera_id": w.dispatch_cam})).await?;
    let second = second["id"].as_i64().context("id")?;
    assert_eq!(w.step(&w.tokyo, second, "accept").await?.0, 200);
    // Bob cannot cancel (or see) Alice's request: 404, and it stays accepted.
    assert_eq!(w.cancel(&w.bob, second).await?.0, 404);
    assert_eq!(
        w.get(&w.bob, &format!("/api/dispatch-requests/{second}"))
            .await?
            .0,
        404
    );
    assert_eq!(w.get(&w.bob, "/api/dispatch-requests").await?.1, json!([]));
    assert_eq!(w.state(second).await?["state"], "accepted");
    let (status, paid) = w.cancel(&w.alice, second).await?;
    assert_eq!(
        (status, paid["state"].as_str(), paid["fee_due_yen"].as_i64()),
        (200, Some("cancelled"), Some(3300))
    );
    let (_, charges) = w.get(&w.alice, "/api/charges").await?;
    assert_eq!(charges.as_array().map(Vec::len), Some(1), "{charges}");
    assert_eq!(charges[0]["request_id"].as_i64(), Some(second));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_clean_refusals_that_store_nothing() -> Result<()> {
    let w = World::start("").await?;
    let cases: Vec<(Value, u16)> = vec![
        // A camera on the camera-only plan can never ask for a guard.
        (json!({"camera_id": w.camera_only_cam}), 403),
        (json!({"camera_id": 999_999}), 404),
        (json!({"camera_id": "1"}), 400),
        (json!({}), 400),
        (json!({"camera_id": w.dispatch_cam, "urgent": true}), 400),
        (
            json!({"camera_id": w.dispatch_cam, "note": "x".repeat(1001)}),
            400,
        ),
        (
            json!({"camera_id": w.dispatch_cam, "note": "ring\u{7}"}),
            400,
        ),
        (json!({"camera_id": w.dispatch_cam, "fee_yen": 1000}), 409),
        (
            json!({"camera_id": w.dispatch_cam, "share_live": "yes"}),
            400,
        ),
    ];
    for (body, want) in &cases {
        let (status, answer) = w.request(body.clone()).await?;
        assert_eq!(status, *want, "{body} → {answer}");
    }
    // A 1 MB note.
    let (status, _) = w
        .request(json!({"camera_id": w.dispatch_cam, "note": "x".repeat(1 << 20)}))
        .await?;
    assert_eq!(status, 413);
    // Broken JSON.
    let broken = w
        .alice
        .request(reqwest::Method::POST, "/api/dispatch-requests")
        .header("Content-Type", "application/json")
        .body("{\"camera_id\": ")
        .send()
        .await?;
    assert_eq!(status_json(broken).await?.0, 400);
    assert_eq!(
        w.get(&w.alice, "/api/dispatch-requests").await?.1,
        json!([])
    );

    // On a real request: a picture it does not share, a broken picture, unknown actions,
    // foreign and malformed ids.
    let (_, req) = w
        .request(json!({"camera_id": w.dispatch_cam, "share_snapshot": true}))
        .await?;
    let id = req["id"].as_i64().context("id")?;
    let put = |body: Vec<u8>| {
        w.alice
            .request(
                reqwest::Method::PUT,
                &format!("/api/dispatch-requests/{id}/snapshot"),
            )
            .header("Content-Type", "image/jpeg")
            .body(body)
            .send()
    };
    assert_eq!(
        status_json(put(b"not a jpeg".to_vec()).await?).await?.0,
        400
    );
    let mut cut = jpeg(64, 64);
    cut.truncate(cut.len() / 2);
    assert_eq!(status_json(put(cut).await?).await?.0, 400);
    assert_eq!(w.step(&w.tokyo, id, "cancel").await?.0, 404);
    assert_eq!(w.step(&w.tokyo, id, "explode").await?.0, 404);
    assert_eq!(w.step(&w.tokyo, id, "arrive").await?.0, 409);
    assert_eq!(w.step(&w.tokyo, 999_999, "accept").await?.0, 404);
    assert_eq!(
        w.get(&w.tokyo, "/api/ops/dispatch-requests/abc").await?.0,
        404
    );
    let (status, _) = status_json(
        w.tokyo
            .request(reqwest::Method::PUT, "/api/ops/guards/1/position")
            .json(&json!({"lat": 91.0, "lon": 0.0}))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, 400);
    let req_now = w.state(id).await?;
    assert_eq!(
        (req_now["state"].as_str(), req_now["has_snapshot"].as_bool()),
        (Some("requested"), Some(false))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_click_asks_for_one_guard() -> Result<()> {
    let w = World::start("").await?;
    let mut tries = Vec::new();
    for _ in 0..10 {
        let who = Client {
            http: w.alice.http.clone(),
            base: w.alice.base.clone(),
        };
        let camera = w.dispatch_cam;
        tries.push(tokio::spawn(async move {
            let resp = who
                .post("/api/dispatch-requests", &json!({ "camera_id": camera }))
                .await?;
            anyhow::Ok(resp.status().as_u16())
        }));
    }
    let mut statuses = Vec::new();
    for t in tries {
        statuses.push(t.await??);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    let (_, mine) = w.get(&w.alice, "/api/dispatch-requests").await?;
    assert_eq!(mine.as_array().map(Vec::len), Some(1), "{mine}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_racing_to_accept_accept_once_and_charge_once() -> Result<()> {
    let w = World::start("").await?;
    let (_, req) = w.request(json!({"camera_id": w.dispatch_cam})).await?;
    let id = req["id"].as_i64().context("id")?;
    let mut tries = Vec::new();
    for n in 0..20 {
        let op = if n % 2 == 0 { &w.tokyo } else { &w.tokyo2 };
        // The same session (reqwest clients share their cookie jar when cloned).
        let who = Client {
            http: op.http.clone(),
            base: op.base.clone(),
        };
        tries.push(tokio::spawn(async move {
            let resp = who
                .post(
                    &format!("/api/ops/dispatch-requests/{id}/accept"),
                    &json!({}),
                )
                .await?;
            anyhow::Ok(resp.status().as_u16())
        }));
    }
    let mut statuses = Vec::new();
    for t in tries {
        statuses.push(t.await??);
    }
    statuses.sort();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    let (_, charges) = w.get(&w.alice, "/api/charges").await?;
    assert_eq!(charges.as_array().map(Vec::len), Some(1), "{charges}");
    let (_, full) = w
        .get(&w.alice, &format!("/api/dispatch-requests/{id}"))
        .await?;
    assert_eq!(full["steps"].as_array().map(Vec::len), Some(2), "{full}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waits_through_a_restart_and_guards_phones_move_the_proposal() -> Result<()> {
    let mut w = World::start("").await?;
    let (_, req) = w.request(json!({"camera_id": w.dispatch_cam})).await?;
    let id = req["id"].as_i64().context("id")?;
    // Nobody works the queue; the relay restarts: the request is still there, counted.
    w.relay.restart()?;
    assert_eq!(w.waiting("tokyo").await?, "1");
    let tokyo = w.relay.login("op@example.jp", PW).await?;
    let (_, queue) = w.get(&tokyo, "/api/ops/dispatch-requests").await?;
    assert_eq!(queue["requests"][0]["id"].as_i64(), Some(id), "{queue}");

    // Suzuki's phone reports a fix right at the home: Suzuki is proposed first now.
    let (suzuki, token) = &w.guards[1];
    let report = |token: &str, body: Value| {
        reqwest::Client::new()
            .post(w.relay.url("/guard/v1/position"))
            .bearer_auth(token.to_owned())
            .json(&body)
            .send()
    };
    assert_eq!(
        report("ewg_wrong", json!({"lat": 35.0, "lon": 139.0}))
            .await?
            .status(),
        401
    );
    assert_eq!(
        report(token, json!({"lat": 95.0, "lon": 139.0}))
            .await?
            .status(),
        400
    );
    assert_eq!(
        report(token, json!({"lat": 35.6813, "lon": 139.7672}))
            .await?
            .status(),
        204
    );
    let (_, detail) = w
        .get(&tokyo, &format!("/api/ops/dispatch-requests/{id}"))
        .await?;
    assert_eq!(
        detail["proposals"][0]["guard_id"].as_i64(),
        Some(*suzuki),
        "{detail}"
    );
    assert!(
        detail["proposals"][0]["distance_km"]
            .as_f64()
            .context("distance")?
            < 0.1
    );

    // An operator moves Sato next door; once Sato is assigned, Sato is busy elsewhere.
    let (sato, _) = &w.guards[0];
    let (status, moved) = status_json(
        tokyo
            .request(
                reqwest::Method::PUT,
                &format!("/api/ops/guards/{sato}/position"),
            )
            .json(&json!({"lat": 35.6812, "lon": 139.7671}))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, 200, "{moved}");
    let (_, detail) = w
        .get(&tokyo, &format!("/api/ops/dispatch-requests/{id}"))
        .await?;
    assert_eq!(
        detail["proposals"][0]["guard_id"].as_i64(),
        Some(*sato),
        "{detail}"
    );
    assert_eq!(w.step(&tokyo, id, "accept").await?.0, 200);
    assert_eq!(w.assign(&tokyo, id, *sato).await?.0, 200);
    let (_, guards) = w.get(&tokyo, "/api/ops/guards").await?;
    let sato_now = guards
        .as_array()
        .context("guards")?
        .iter()
        .find(|g| g["id"].as_i64() == Some(*sato))
        .context("sato")?;
    assert_eq!(sato_now["busy_with"].as_i64(), Some(id), "{guards}");
    // A request from Alice's other dispatch camera is not offered the busy guard.
    let back = w
        .relay
        .camera(w.alice_id, "Back door", "fixed", "dispatch", "agent")?["id"]
        .as_i64()
        .context("id")?;
    let (status, other) = w.request(json!({"camera_id": back})).await?;
    assert_eq!(status, 201, "{other}");
    let other = other["id"].as_i64().context("id")?;
    let (_, detail) = w
        .get(&tokyo, &format!("/api/ops/dispatch-requests/{other}"))
        .await?;
    let proposed: Vec<i64> = detail["proposals"]
        .as_array()
        .context("proposals")?
        .iter()
        .filter_map(|p| p["guard_id"].as_i64())
        .collect();
    assert_eq!(proposed, [*suzuki], "{detail}");
    Ok(())
}

/// The counter or gauge `name` (with its labels) in the relay's metrics, or 0.
async fn metric(relay: &Relay, name: &str) -> Result<f64> {
    let text = reqwest::get(relay.url("/metrics")).await?.text().await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0))
}

/// Polls `metric` until `ok` holds.
async fn wait_metric(relay: &Relay, name: &str, ok: impl Fn(f64) -> bool) -> Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = metric(relay, name).await?;
        if ok(v) {
            return Ok(v);
        }
        anyhow::ensure!(Instant::now() < deadline, "{name} stayed at {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_center_watches_live_only_when_shared_and_only_until_the_request_closes() -> Result<()>
{
    use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
    let w = World::start("[webrtc]\nice_addresses = [\"127.0.0.1\"]").await?;
    let (cam_id, _agent) = w.live_camera().await?;
    let (pc, sdp) = common::whep_offer().await?;
    let watch = |id: i64| {
        w.tokyo
            .request(
                reqwest::Method::POST,
                &format!("/api/ops/dispatch-requests/{id}/whep"),
            )
            .header("Content-Type", "application/sdp")
            .body(sdp.clone())
            .send()
    };

    // Not shared: nothing to watch.
    let (_, private) = w.request(json!({"camera_id": cam_id})).await?;
    let private = private["id"].as_i64().context("id")?;
    assert_eq!(status_json(watch(private).await?).await?.0, 404);
    assert_eq!(w.cancel(&w.alice, private).await?.0, 200);

    // Shared: the operator's peer gets the camera's video.
    let (_, shared) = w
        .request(json!({"camera_id": cam_id, "share_live": true}))
        .await?;
    let shared = shared["id"].as_i64().context("id")?;
    let resp = watch(shared).await?;
    assert_eq!(resp.status(), 201);
    let location = resp.headers()["location"].to_str()?.to_owned();
    assert!(
        location.starts_with(&format!("/api/ops/dispatch-requests/{shared}/whep/")),
        "{location}"
    );
    pc.set_remote_description(RTCSessionDescription::answer(resp.text().await?)?)
        .await?;
    let viewers = format!("eyeward_viewers{{camera=\"{cam_id}\"}}");
    wait_metric(&w.relay, &viewers, |v| v == 1.0).await?;
    wait_metric(&w.relay, "eyeward_frames_forwarded_total", |v| v > 0.0).await?;
    // Alice's own camera list is not the operator's: the camera path stays hers.
    assert_eq!(
        w.get(&w.tokyo, &format!("/api/cameras/{cam_id}")).await?.0,
        403
    );

    // The request closes: the operator's session ends at once and cannot start again.
    assert_eq!(w.cancel(&w.alice, shared).await?.0, 200);
    wait_metric(&w.relay, &viewers, |v| v == 0.0).await?;
    assert_eq!(status_json(watch(shared).await?).await?.0, 404);
    let (_, history) = w.get(&w.alice, "/api/history?limit=50").await?;
    assert!(
        history
            .as_array()
            .context("history")?
            .iter()
            .any(|e| e["action"] == "dispatch.live_viewed" && e["actor_name"] == "Oscar"),
        "{history}"
    );
    let _ = pc.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guards_phone_watches_live_only_while_its_request_shares_it_and_is_open() -> Result<()>
{
    use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
    let w = World::start("[webrtc]\nice_addresses = [\"127.0.0.1\"]").await?;
    let (cam_id, _agent) = w.live_camera().await?;
    let (sato, suzuki) = (w.guards[0].0, w.guards[1].0);
    let sato_phone = common::guard_phone(&w.relay, &w.tokyo, sato).await?;
    let suzuki_phone = common::guard_phone(&w.relay, &w.tokyo, suzuki).await?;
    let (_, shared) = w
        .request(json!({"camera_id": cam_id, "share_live": true}))
        .await?;
    let shared = shared["id"].as_i64().context("id")?;
    assert_eq!(w.step(&w.tokyo, shared, "accept").await?.0, 200);
    assert_eq!(w.assign(&w.tokyo, shared, sato).await?.0, 200);
    let (pc, sdp) = common::whep_offer().await?;
    let path = format!("/guard/v1/assignments/{shared}/whep");
    let watch = |phone: &Client| {
        phone
            .request(reqwest::Method::POST, &path)
            .header("Content-Type", "application/sdp")
            .body(sdp.clone())
            .send()
    };

    // Another guard's phone: nothing to watch.
    assert_eq!(status_json(watch(&suzuki_phone).await?).await?.0, 404);
    // Sato's, the guard given the request: the camera's video.
    let resp = watch(&sato_phone).await?;
    assert_eq!(resp.status(), 201);
    pc.set_remote_description(RTCSessionDescription::answer(resp.text().await?)?)
        .await?;
    let viewers = format!("eyeward_viewers{{camera=\"{cam_id}\"}}");
    wait_metric(&w.relay, &viewers, |v| v == 1.0).await?;
    wait_metric(&w.relay, "eyeward_frames_forwarded_total", |v| v > 0.0).await?;

    // The customer cancels: the phone's session ends at once and cannot start again.
    assert_eq!(w.cancel(&w.alice, shared).await?.0, 200);
    wait_metric(&w.relay, &viewers, |v| v == 0.0).await?;
    assert_eq!(status_json(watch(&sato_phone).await?).await?.0, 404);
    let (_, history) = w.get(&w.alice, "/api/history?limit=50").await?;
    assert!(
        history.as_array().context("history")?.iter().any(|e| {
            e["action"] == "dispatch.live_viewed"
                && e["actor_kind"] == "guard"
                && e["actor_name"] == "Sato"
        }),
        "{history}"
    );
    let _ = pc.close().await;
    Ok(())
}
