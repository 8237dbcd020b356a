//! Password guessing and login floods against the real relay: parallel guesses are counted
//! before any is checked; a botnet guessing a guard-center operator's password throttles new
//! browsers but not the operator's own; a flood of logins gets 503 with `Retry-After` past the
//! password checks the relay runs at once, and its memory stays bounded.

mod common;

use anyhow::Result;
use common::{Relay, status_json};
use futures_util::future::join_all;
use serde_json::json;

const PW: &str = "correct horse battery";

/// A login from `address` (through the trusted proxy's `X-Forwarded-For`), as `client`.
async fn login_from(
    client: &common::Client,
    address: &str,
    email: &str,
    password: &str,
) -> Result<reqwest::Response> {
    Ok(client
        .request(reqwest::Method::POST, "/api/login")
        .header("x-forwarded-for", address)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await?)
}

const PROXIED: &str = "[http]\ntrusted_proxies = [\"127.0.0.1\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_parallel_guesses_get_five_checks_and_fifty_five_waits() -> Result<()> {
    let relay = Relay::start("")?;
    relay.customer("a@example.jp", "Alice", "east", PW)?;
    let c = relay.client();
    let answers = join_all((0..60).map(|i| {
        let c = &c;
        async move {
            let body = json!({"email": "a@example.jp", "password": format!("guess {i}")});
            c.post("/api/login", &body)
                .await
                .map(|r| r.status().as_u16())
        }
    }))
    .await;
    let mut statuses: Vec<u16> = answers.into_iter().collect::<Result<_>>()?;
    statuses.sort_unstable();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let waited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, waited), (5, 55), "{statuses:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_botnet_cannot_lock_the_operator_out_of_their_own_browser() -> Result<()> {
    let relay = Relay::start(PROXIED)?;
    relay.operator("op@example.jp", "Oscar", "tokyo", PW)?;
    // The operator's browser logged in before: it carries the account's browser cookie.
    let own = relay.client();
    let office = "203.0.113.7";
    assert_eq!(
        login_from(&own, office, "op@example.jp", PW)
            .await?
            .status(),
        200
    );
    assert_eq!(own.post("/api/logout", &json!({})).await?.status(), 204);

    // The botnet: one wrong guess from each of 40 addresses (the office's among them).
    let mut statuses = Vec::new();
    for i in 0..40 {
        let bot = relay.client();
        let address = if i == 0 {
            office.to_owned()
        } else {
            format!("198.51.100.{i}")
        };
        statuses.push(
            login_from(&bot, &address, "op@example.jp", "guess")
                .await?
                .status()
                .as_u16(),
        );
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        30,
        "new browsers share the account's limit: {statuses:?}"
    );
    // A new browser, even with the right password, waits...
    let stranger = relay.client();
    let resp = login_from(&stranger, "192.0.2.55", "op@example.jp", PW).await?;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    // ...but the operator's own browser gets in, from the office's address too.
    let resp = login_from(&own, office, "op@example.jp", PW).await?;
    assert_eq!(resp.status(), 200, "{}", resp.text().await?);
    assert_eq!(own.get("/api/me").await?.status(), 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_logins_is_told_to_come_back_and_memory_stays_bounded() -> Result<()> {
    let relay = Relay::start(PROXIED)?;
    relay.customer("a@example.jp", "Alice", "east", PW)?;
    let before = relay.peak_rss_mib()?;
    // 300 logins at once, each from an address and for an account of its own, so no limiter
    // stops them: without a cap each would hold argon2id's 19 MiB (5.7 GiB together).
    let answers = join_all((0..300).map(|i| {
        let relay = &relay;
        async move {
            let c = relay.client();
            let resp = login_from(
                &c,
                &format!("10.{}.{}.1", i / 200, i % 200),
                &format!("user{i}@example.jp"),
                "not the password",
            )
            .await?;
            let retry = resp.headers().contains_key("retry-after");
            Ok::<_, anyhow::Error>((resp.status().as_u16(), retry))
        }
    }))
    .await;
    let answers: Vec<(u16, bool)> = answers.into_iter().collect::<Result<_>>()?;
    let wrong = answers.iter().filter(|(s, _)| *s == 401).count();
    let busy = answers
        .iter()
        .filter(|(s, retry)| *s == 503 && *retry)
        .count();
    assert_eq!(
        wrong + busy,
        300,
        "only 401s and 503s with Retry-After: {answers:?}"
    );
    assert!(busy > 0, "some were told to come back");
    let peak = relay.peak_rss_mib()?;
    assert!(
        peak < before + 200,
        "peak resident memory {peak} MiB (at rest {before} MiB)"
    );
    // Honest users are unaffected once it is over.
    let alice = relay.login("a@example.jp", PW).await?;
    let (status, _) = status_json(alice.get("/api/me").await?).await?;
    assert_eq!(status, 200);
    Ok(())
}
