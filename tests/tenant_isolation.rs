//! Every endpoint answers only its owner: another customer's ids get 404 (never 403, which
//! would confirm that the id exists), no session gets 401, the wrong role gets 403.
//! `tests/route_walk.rs` walks every route of the router by itself; the tables here look
//! closer at some of them.

mod common;

use anyhow::Result;
use common::{Relay, status_json};
use reqwest::Method;
use serde_json::{Value, json};

const PW: &str = "correct horse battery";

/// Customer endpoints that take a camera id: (method, path with `{cam}`, body).
fn camera_endpoints() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/api/cameras/{cam}", None),
        (Method::GET, "/api/cameras/{cam}/events", None),
        (
            Method::PATCH,
            "/api/cameras/{cam}",
            Some(json!({"name": "renamed"})),
        ),
    ]
}

/// Customer endpoints without an id.
fn customer_endpoints() -> Vec<(Method, &'static str)> {
    vec![
        (Method::GET, "/api/cameras"),
        (Method::GET, "/api/history"),
        (Method::GET, "/api/alert-addresses"),
        (Method::GET, "/api/dispatch-requests"),
        (Method::GET, "/api/dispatch-terms"),
        (Method::GET, "/api/charges"),
    ]
}

/// Customer endpoints that take a dispatch request id: (method, path with `{id}`, body).
fn request_endpoints() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/api/dispatch-requests/{id}", None),
        (Method::GET, "/api/dispatch-requests/{id}/snapshot", None),
        (Method::POST, "/api/dispatch-requests/{id}/cancel", None),
    ]
}

/// Operator endpoints that take a dispatch request id.
fn console_endpoints() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/api/ops/dispatch-requests/{id}", None),
        (
            Method::GET,
            "/api/ops/dispatch-requests/{id}/snapshot",
            None,
        ),
        (Method::POST, "/api/ops/dispatch-requests/{id}/accept", None),
        (Method::POST, "/api/ops/dispatch-requests/{id}/arrive", None),
        (
            Method::POST,
            "/api/ops/dispatch-requests/{id}/complete",
            None,
        ),
        (
            Method::POST,
            "/api/ops/dispatch-requests/{id}/assign",
            Some(json!({"guard_id": 1})),
        ),
    ]
}

/// Endpoints for any logged-in account.
fn account_endpoints() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/api/me", None),
        (Method::PATCH, "/api/me", Some(json!({"lang": "ja"}))),
        (Method::POST, "/api/logout", None),
    ]
}

async fn call(
    c: &common::Client,
    m: &Method,
    path: &str,
    body: &Option<Value>,
) -> Result<(u16, Value)> {
    let mut rb = c.request(m.clone(), path);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    status_json(rb.send().await?).await
}

#[tokio::test]
async fn customers_see_only_their_own_cameras_and_history() -> Result<()> {
    let relay = Relay::start("")?;
    let a = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let b = relay.customer("b@example.jp", "Bob", "west", PW)?;
    relay.operator("op@example.jp", "Oscar", "tokyo", PW)?;
    let cam_a = relay.camera(a, "A porch", "fixed", "dispatch", "agent")?["id"]
        .as_i64()
        .unwrap();
    let cam_b = relay.camera(
        b,
        "B garden",
        "pan-tilt",
        "camera-only",
        "rtsp://192.0.2.1/live",
    )?["id"]
        .as_i64()
        .unwrap();

    let alice = relay.login("a@example.jp", PW).await?;
    let bob = relay.login("b@example.jp", PW).await?;
    let oscar = relay.login("op@example.jp", PW).await?;
    let anonymous = relay.client();

    for (m, tpl, body) in camera_endpoints() {
        let own = tpl.replace("{cam}", &cam_a.to_string());
        let foreign = tpl.replace("{cam}", &cam_b.to_string());
        assert_eq!(
            call(&anonymous, &m, &own, &body).await?.0,
            401,
            "{m} {tpl} anonymous"
        );
        assert_eq!(
            call(&oscar, &m, &own, &body).await?.0,
            403,
            "{m} {tpl} operator"
        );
        let (status, err) = call(&alice, &m, &foreign, &body).await?;
        assert_eq!(status, 404, "{m} {tpl}: Alice on Bob's camera");
        let (unknown, _) = call(&alice, &m, &tpl.replace("{cam}", "999999"), &body).await?;
        assert_eq!(
            err,
            status_json(alice.get(&tpl.replace("{cam}", "999999")).await?)
                .await?
                .1,
            "a foreign id and a missing id must be indistinguishable"
        );
        assert_eq!(unknown, 404);
        assert_eq!(
            call(&alice, &m, &tpl.replace("{cam}", "abc"), &body)
                .await?
                .0,
            404
        );
        assert_eq!(
            call(&alice, &m, &own, &body).await?.0,
            200,
            "{m} {tpl}: owner"
        );
    }
    // Bob's camera was not renamed by Alice's attempt.
    let (_, cam) = status_json(bob.get(&format!("/api/cameras/{cam_b}")).await?).await?;
    assert_eq!(cam["name"], "B garden");

    for (m, path) in customer_endpoints() {
        assert_eq!(
            call(&anonymous, &m, path, &None).await?.0,
            401,
            "{m} {path}"
        );
        assert_eq!(call(&oscar, &m, path, &None).await?.0, 403, "{m} {path}");
        assert_eq!(call(&alice, &m, path, &None).await?.0, 200, "{m} {path}");
    }
    let (_, list) = status_json(alice.get("/api/cameras").await?).await?;
    let ids: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [cam_a]);
    assert_eq!(
        list[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "alerts",
            "id",
            "model",
            "name",
            "offline_since",
            "online",
            "plan",
            "rights"
        ]
    );

    let (_, history) = status_json(bob.get("/api/history").await?).await?;
    let text = history.to_string();
    assert!(
        text.contains("B garden") && !text.contains("A porch") && !text.contains("renamed"),
        "{text}"
    );

    for (m, path, body) in account_endpoints() {
        assert_eq!(
            call(&anonymous, &m, path, &body).await?.0,
            401,
            "{m} {path}"
        );
    }

    // Alert addresses: Bob can neither see nor remove Alice's.
    let (status, added) = status_json(
        alice
            .post("/api/alert-addresses", &json!({"email": "home@example.jp"}))
            .await?,
    )
    .await?;
    assert_eq!(status, 201, "{added}");
    let id = added["id"].as_i64().unwrap();
    let by_path = format!("/api/alert-addresses/{id}");
    assert_eq!(call(&bob, &Method::DELETE, &by_path, &None).await?.0, 404);
    let body = Some(json!({"id": id}));
    assert_eq!(
        call(&bob, &Method::DELETE, "/api/alert-addresses", &body)
            .await?
            .0,
        404
    );
    assert_eq!(
        call(&anonymous, &Method::DELETE, &by_path, &None).await?.0,
        401
    );
    assert_eq!(call(&oscar, &Method::DELETE, &by_path, &None).await?.0, 403);
    let (_, bobs) = status_json(bob.get("/api/alert-addresses").await?).await?;
    assert_eq!(bobs, json!([]));
    let (_, alices) = status_json(alice.get("/api/alert-addresses").await?).await?;
    assert_eq!(alices[0]["email"], "home@example.jp");
    assert_eq!(alices[0]["confirmed"], false);
    Ok(())
}

#[tokio::test]
async fn dispatch_requests_answer_their_customer_and_their_center_only() -> Result<()> {
    let relay = Relay::start("")?;
    let a = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    relay.customer("b@example.jp", "Bob", "tokyo", PW)?;
    relay.operator("op@example.jp", "Oscar", "tokyo", PW)?;
    relay.operator("west@example.jp", "Wendy", "west", PW)?;
    let cam = relay.camera(a, "A porch", "fixed", "dispatch", "agent")?["id"]
        .as_i64()
        .unwrap();
    let alice = relay.login("a@example.jp", PW).await?;
    let bob = relay.login("b@example.jp", PW).await?;
    let oscar = relay.login("op@example.jp", PW).await?;
    let wendy = relay.login("west@example.jp", PW).await?;
    let anonymous = relay.client();
    let (_, req) = status_json(
        alice
            .post("/api/dispatch-requests", &json!({"camera_id": cam}))
            .await?,
    )
    .await?;
    let id = req["id"].as_i64().unwrap().to_string();

    for (m, tpl, body) in request_endpoints() {
        let path = tpl.replace("{id}", &id);
        assert_eq!(
            call(&anonymous, &m, &path, &body).await?.0,
            401,
            "{m} {tpl}"
        );
        assert_eq!(call(&oscar, &m, &path, &body).await?.0, 403, "{m} {tpl}");
        let (foreign, err) = call(&bob, &m, &path, &body).await?;
        let (missing, none) = call(&bob, &m, &tpl.replace("{id}", "999999"), &body).await?;
        assert_eq!(
            (foreign, missing),
            (404, 404),
            "{m} {tpl}: Bob on Alice's request"
        );
        assert_eq!(
            err, none,
            "a foreign id and a missing id must be indistinguishable"
        );
    }
    for (m, tpl, body) in console_endpoints() {
        let path = tpl.replace("{id}", &id);
        assert_eq!(
            call(&anonymous, &m, &path, &body).await?.0,
            401,
            "{m} {tpl}"
        );
        assert_eq!(call(&alice, &m, &path, &body).await?.0, 403, "{m} {tpl}");
        assert_eq!(
            call(&wendy, &m, &path, &body).await?.0,
            404,
            "{m} {tpl}: west"
        );
    }
    for path in ["/api/ops/dispatch-requests", "/api/ops/guards"] {
        assert_eq!(call(&anonymous, &Method::GET, path, &None).await?.0, 401);
        assert_eq!(call(&alice, &Method::GET, path, &None).await?.0, 403);
    }
    // Nothing the others tried changed the request.
    let (_, mine) = status_json(alice.get(&format!("/api/dispatch-requests/{id}")).await?).await?;
    assert_eq!(mine["request"]["state"], "requested");
    Ok(())
}

#[tokio::test]
async fn unknown_api_paths_and_methods_are_json_errors() -> Result<()> {
    let relay = Relay::start("")?;
    let c = relay.client();
    assert_eq!(status_json(c.get("/api/nothing-here").await?).await?.0, 404);
    assert_eq!(
        status_json(c.request(Method::DELETE, "/api/cameras").send().await?)
            .await?
            .0,
        405
    );
    assert_eq!(
        status_json(c.get("/no-such-page.html").await?).await?.0,
        404
    );
    Ok(())
}
