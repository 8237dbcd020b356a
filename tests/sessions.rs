//! Logging in and out, session cookies and their expiry, and the server's own life cycle.

mod common;

use anyhow::Result;
use common::{Relay, status_json};
use serde_json::json;
use std::time::Duration;

const PW: &str = "correct horse battery";

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_and_logout_ends_the_session() -> Result<()> {
    let relay = Relay::start("")?;
    relay.customer("a@example.jp", "Alice", "east", PW)?;
    let c = relay.client();
    let resp = c
        .post(
            "/api/login",
            &json!({"email": "a@example.jp", "password": PW}),
        )
        .await?;
    let cookie = resp.headers()["set-cookie"].to_str()?.to_owned();
    assert!(cookie.starts_with("eyeward_session="), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(attr), "{attr} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    let (status, me) = status_json(resp).await?;
    assert_eq!(
        (status, me["role"].as_str(), me["email"].as_str()),
        (200, Some("customer"), Some("a@example.jp"))
    );
    assert!(me.get("password_hash").is_none());

    let old_cookie = cookie.split(';').next().unwrap().to_owned();
    let resp = c.post("/api/logout", &json!({})).await?;
    assert_eq!(resp.status(), 204);
    assert!(resp.headers()["set-cookie"].to_str()?.contains("Max-Age=0"));
    assert_eq!(status_json(c.get("/api/me").await?).await?.0, 401);
    // The old cookie, replayed, is dead on the server too.
    let replay = reqwest::Client::new()
        .get(relay.url("/api/me"))
        .header("cookie", old_cookie)
        .send()
        .await?;
    assert_eq!(replay.status(), 401);
    // The customer's history shows both, through the web.
    let c = relay.login("a@example.jp", PW).await?;
    let (_, h) = status_json(c.get("/api/history").await?).await?;
    let actions: Vec<_> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["channel"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions[..3],
        [
            ("login.new_browser", "web"),
            ("logout", "web"),
            ("login.new_browser", "web")
        ]
    );
    // The same browser logging in again is known: recorded, not news.
    c.post(
        "/api/login",
        &json!({"email": "a@example.jp", "password": PW}),
    )
    .await?;
    let (_, h) = status_json(c.get("/api/history").await?).await?;
    assert_eq!(h[0]["action"], "login");
    Ok(())
}

#[tokio::test]
async fn idle_sessions_expire() -> Result<()> {
    let relay = Relay::start("[auth]\nsession_idle_timeout = \"1s\"")?;
    relay.customer("a@example.jp", "Alice", "east", PW)?;
    let c = relay.login("a@example.jp", PW).await?;
    assert_eq!(c.get("/api/me").await?.status(), 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (status, err) = status_json(c.get("/api/me").await?).await?;
    assert_eq!(status, 401);
    assert!(err["error"].as_str().unwrap().contains("expired"), "{err}");
    Ok(())
}

#[tokio::test]
async fn https_public_url_marks_cookies_secure() -> Result<()> {
    let relay = Relay::start("public_url = \"https://cam.example.jp\"")?;
    relay.customer("a@example.jp", "Alice", "east", PW)?;
    let resp = reqwest::Client::new()
        .post(relay.url("/api/login"))
        .header("Origin", "https://cam.example.jp")
        .json(&json!({"email": "a@example.jp", "password": PW}))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["set-cookie"].to_str()?.contains("; Secure"));
    Ok(())
}

#[tokio::test]
async fn a_password_reset_by_the_admin_ends_old_sessions() -> Result<()> {
    let relay = Relay::start("")?;
    let id = relay.customer("a@example.jp", "Alice", "east", PW)?;
    let c = relay.login("a@example.jp", PW).await?;
    relay.admin(
        &["customer", "set-password", "--id", &id.to_string()],
        "a brand new password\n",
    )?;
    assert_eq!(c.get("/api/me").await?.status(), 401);
    assert_eq!(
        relay
            .client()
            .post(
                "/api/login",
                &json!({"email": "a@example.jp", "password": PW})
            )
            .await?
            .status(),
        401
    );
    relay.login("a@example.jp", "a brand new password").await?;
    Ok(())
}

#[tokio::test]
async fn health_metrics_pages_and_graceful_stop() -> Result<()> {
    let mut relay = Relay::start("")?;
    let c = relay.client();
    let (status, health) = status_json(c.get("/healthz").await?).await?;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));

    let page = c.get("/").await?;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()?
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let etag = page.headers()["etag"].clone();
    assert!(
        page.text()
            .await?
            .contains("<script type=\"module\" src=\"/app.js\">")
    );
    let again = c
        .request(reqwest::Method::GET, "/")
        .header("if-none-match", etag)
        .send()
        .await?;
    assert_eq!(again.status(), 304);
    let js = c.get("/app.js").await?;
    assert!(
        js.headers()["content-type"]
            .to_str()?
            .contains("javascript")
    );

    // Made-up methods are counted as "other", not as label values of their own.
    for m in ["FOOBAR1", "FOOBAR2", "FOOBAR3"] {
        let method = reqwest::Method::from_bytes(m.as_bytes())?;
        c.request(method, "/healthz").send().await?;
    }
    let metrics = c.get("/metrics").await?.text().await?;
    assert!(
        metrics.contains(
            "eyeward_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    assert!(!metrics.contains("FOOBAR"), "{metrics}");
    assert!(metrics.contains("method=\"other\""), "{metrics}");
    assert!(
        metrics.contains("# TYPE eyeward_logins counter"),
        "{metrics}"
    );

    let status = relay.stop()?;
    assert!(
        status.success(),
        "SIGTERM ends the relay cleanly: {status:?}\n{}",
        relay.log()
    );
    assert!(relay.log().contains("SIGTERM: shutting down"));
    Ok(())
}
