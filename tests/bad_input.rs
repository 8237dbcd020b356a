//! Bad input gets a clear JSON error and a 4xx, never a 500, and nothing stored is lost.

mod common;

use anyhow::Result;
use common::{Relay, status_json};
use reqwest::Method;
use serde_json::json;

const PW: &str = "correct horse battery";

#[tokio::test]
async fn malformed_and_oversized_bodies_are_refused_cleanly() -> Result<()> {
    let relay = Relay::start("")?;
    let id = relay.customer("a@example.jp", "Alice", "east", PW)?;
    let cam = relay.camera(id, "Porch", "fixed", "camera-only", "agent")?["id"]
        .as_i64()
        .unwrap();
    let alice = relay.login("a@example.jp", PW).await?;
    let path = format!("/api/cameras/{cam}");

    let send = |body: &'static str, ctype: &'static str| {
        alice
            .request(Method::PATCH, &path)
            .header("content-type", ctype)
            .body(body)
            .send()
    };
    for (body, ctype, want, says) in [
        ("{\"name\": ", "application/json", 400, "EOF"),
        ("[1,2]", "application/json", 400, "invalid type"),
        ("{\"name\": 7}", "application/json", 400, "invalid type"),
        (
            "{\"name\": \"   \"}",
            "application/json",
            400,
            "must not be empty",
        ),
        (
            "{\"nmae\": \"x\"}",
            "application/json",
            400,
            "unknown field",
        ),
        ("{\"name\": \"x\"}", "text/plain", 415, "application/json"),
    ] {
        let (status, err) = status_json(send(body, ctype).await?).await?;
        assert_eq!(status, want, "{body}: {err}");
        assert!(
            err["error"].as_str().unwrap().contains(says),
            "{body}: {err}"
        );
    }
    let huge = json!({ "name": "x".repeat(70 * 1024) });
    let (status, _) = status_json(alice.patch(&path, &huge).await?).await?;
    assert_eq!(status, 413);
    let (status, _) = status_json(
        relay
            .client()
            .post(
                "/api/login",
                &json!({"email": "a@example.jp", "password": "x".repeat(100_000)}),
            )
            .await?,
    )
    .await?;
    assert_eq!(status, 413);

    // Nothing was lost or changed along the way.
    let (status, cam) = status_json(alice.get(&path).await?).await?;
    assert_eq!((status, cam["name"].as_str()), (200, Some("Porch")));
    assert!(!relay.log().contains("panicked"), "{}", relay.log());
    Ok(())
}

#[tokio::test]
async fn wrong_passwords_get_401_then_429_with_retry_after() -> Result<()> {
    let relay = Relay::start("[auth]\nlogin_failures_per_account = 3")?;
    relay.customer("a@example.jp", "Alice", "east", PW)?;
    let c = relay.client();
    let c = &c;
    let attempt = |pw: &str| {
        let body = json!({"email": "A@Example.jp", "password": pw});
        async move { c.post("/api/login", &body).await }
    };
    for _ in 0..3 {
        let (status, err) = status_json(attempt("wrong password").await?).await?;
        assert_eq!(status, 401);
        assert_eq!(err["error"], "wrong email address or password");
    }
    let resp = attempt(PW).await?;
    let retry: u64 = resp.headers()["retry-after"].to_str()?.parse()?;
    assert!((1..=900).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        status_json(resp).await?.0,
        429,
        "even the right password waits while locked"
    );
    // An unknown account answers exactly like a wrong password.
    let (status, err) = status_json(
        c.post(
            "/api/login",
            &json!({"email": "nobody@example.jp", "password": PW}),
        )
        .await?,
    )
    .await?;
    assert_eq!(
        (status, err["error"].as_str()),
        (401, Some("wrong email address or password"))
    );
    let (status, _) = status_json(
        c.post(
            "/api/login",
            &json!({"email": "not an address", "password": PW}),
        )
        .await?,
    )
    .await?;
    assert_eq!(status, 400);

    let metrics = c.get("/metrics").await?.text().await?;
    assert!(
        metrics.contains("eyeward_logins_total{result=\"failure\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("eyeward_logins_total{result=\"throttled\"} 1"),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn markup_and_line_breaks_in_names_are_stored_and_returned_as_text() -> Result<()> {
    let relay = Relay::start("")?;
    let evil = "<script>alert(1)</script>\r\nBcc: x@evil.example";
    let id = relay.customer("a@example.jp", evil, "east", PW)?;
    let cam = relay.camera(id, evil, "fixed", "camera-only", "agent")?["id"]
        .as_i64()
        .unwrap();
    let alice = relay.login("a@example.jp", PW).await?;
    let (_, me) = status_json(alice.get("/api/me").await?).await?;
    assert_eq!(me["name"], evil);
    let (_, cams) = status_json(alice.get("/api/cameras").await?).await?;
    assert_eq!(cams[0]["name"], evil);
    let (status, renamed) = status_json(
        alice
            .patch(
                &format!("/api/cameras/{cam}"),
                &json!({"name": "<img src=x onerror=alert(2)>"}),
            )
            .await?,
    )
    .await?;
    assert_eq!(
        (status, renamed["name"].as_str()),
        (200, Some("<img src=x onerror=alert(2)>"))
    );
    Ok(())
}

#[tokio::test]
async fn cross_site_state_changes_are_refused() -> Result<()> {
    let relay = Relay::start("")?;
    relay.customer("a@example.jp", "Alice", "east", PW)?;
    let alice = relay.login("a@example.jp", PW).await?;
    for (header, value) in [
        ("Origin", "https://evil.example"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let resp = alice
            .http
            .patch(relay.url("/api/me"))
            .header(header, value)
            .json(&json!({"lang": "ja"}))
            .send()
            .await?;
        let (status, err) = status_json(resp).await?;
        assert_eq!(status, 403, "{header}: {value}");
        assert!(err["error"].as_str().unwrap().contains("cross-site"));
    }
    let (_, me) = status_json(alice.get("/api/me").await?).await?;
    assert_eq!(me["lang"], "en", "the refused request changed nothing");
    Ok(())
}
