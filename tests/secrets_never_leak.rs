//! Secrets never leak: a sentinel RTSP password, SMTP password, customer password, agent token,
//! metrics token, TURN secret, mailed-link tokens and identity-check passwords are run through
//! the failure paths (wrong and locked-out logins, mailed links opened and pressed, an
//! identity-check password set behind a wrong login password, checked wrong and right, and
//! reset by the company's desk, a mail
//! server that is down, a camera that refuses, one whose name does not resolve, one that never
//! answers, an agent whose camera is unreachable, an agent with a wrong token or no relay), and
//! then looked for in every log line, every answer the clients got and the metrics. None of
//! them may appear anywhere.

mod common;

use anyhow::{Context, Result, ensure};
use common::{Relay, status_json};
use std::time::{Duration, Instant};

const RTSP_PASSWORD: &str = "SENTINEL-rtsp-7f3a";
const SMTP_PASSWORD: &str = "SENTINEL-smtp-2b8d";
const CUSTOMER_PASSWORD: &str = "SENTINEL-pw-9c1e-long enough";
const METRICS_TOKEN: &str = "SENTINEL-metrics-5e6f";
/// The secret shared with a TURN server (viewers get credentials made with it, never it).
const TURN_SECRET: &str = "SENTINEL-turn-4d2a9b0c";
const WRONG_TOKEN: &str = "ewa_SENTINELwrongtoken0123456789abcdef0123456789";
/// Tokens of mailed links, in their paths (mail scanners fetch every link in a mail).
const CONFIRM_TOKEN: &str = "ewc_SENTINELconfirm0123456789abcdef";
const UNSUBSCRIBE_TOKEN: &str = "ewu_SENTINELunsubscribe0123456789abcdef";
/// Identity-check passwords, in the form the relay compares (lower case): the customer's, and
/// the one the company's desk sets.
const IDENTITY_WORD: &str = "sentinel-identity-3b7c";
const IDENTITY_RESET_WORD: &str = "sentinel-identity-reset-8e1d";

/// A port on loopback where nothing listens.
fn closed_port() -> Result<u16> {
    common::free_port()
}

/// Waits until `log()` contains `needle`: the failure path really ran.
async fn ran(what: &str, needle: &str, log: impl Fn() -> String) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !log().contains(needle) {
        ensure!(
            Instant::now() < deadline,
            "{what}: no {needle:?} in the log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_an_answer_or_the_metrics() -> Result<()> {
    let smtp_port = closed_port()?;
    let relay = Relay::start(&format!(
        "[mail]\nsmtp_url = \"smtp://mailer:{SMTP_PASSWORD}@127.0.0.1:{smtp_port}\"\n\
         [cameras]\nallow_private_sources = true\n\
         [metrics]\nbearer_token = \"{METRICS_TOKEN}\"\n\
         [webrtc]\nice_addresses = [\"127.0.0.1\"]\n\
         [[webrtc.ice_servers]]\nurls = [\"turn:127.0.0.1:3478\"]\nsecret = \"{TURN_SECRET}\"\n"
    ))?;
    let alice_id = relay.customer("a@example.jp", "Alice", "tokyo", CUSTOMER_PASSWORD)?;
    let mut answers = Vec::new();

    // Logins: right, wrong (with the password almost right), locked out, unknown account.
    let alice = relay.login("a@example.jp", CUSTOMER_PASSWORD).await?;
    for (email, password) in [
        ("a@example.jp", format!("{CUSTOMER_PASSWORD}!")),
        ("a@example.jp", format!("{CUSTOMER_PASSWORD}!")),
        ("a@example.jp", format!("{CUSTOMER_PASSWORD}!")),
        ("a@example.jp", format!("{CUSTOMER_PASSWORD}!")),
        ("a@example.jp", format!("{CUSTOMER_PASSWORD}!")),
        ("a@example.jp", CUSTOMER_PASSWORD.to_owned()),
        ("nobody@example.jp", CUSTOMER_PASSWORD.to_owned()),
    ] {
        let resp = relay
            .client()
            .post(
                "/api/login",
                &serde_json::json!({"email": email, "password": password}),
            )
            .await?;
        let headers = format!("{:?}", resp.headers());
        answers.push(format!("{headers} {}", resp.text().await?));
    }
    ensure!(
        answers.iter().any(|a| a.contains("retry-after")),
        "the lockout path did not run: {answers:?}"
    );

    // The mail server is down: the confirmation mail fails and waits for a retry.
    let (status, body) = status_json(
        alice
            .post(
                "/api/alert-addresses",
                &serde_json::json!({"email": "alice@example.jp"}),
            )
            .await?,
    )
    .await?;
    ensure!(status == 201, "{status} {body}");
    answers.push(body.to_string());
    ran("SMTP down", "mail not sent yet", || relay.log()).await?;

    // Direct cameras that refuse, do not resolve, and never answer.
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let silent_port = silent.local_addr()?.port();
    let refused_port = closed_port()?;
    let mut cameras = Vec::new();
    for host in [
        format!("127.0.0.1:{refused_port}"),
        "camera.invalid".to_owned(),
        format!("127.0.0.1:{silent_port}"),
    ] {
        let cam = relay.camera(
            alice_id,
            "Direct",
            "fixed",
            "camera-only",
            &format!("rtsp://admin:{RTSP_PASSWORD}@{host}/live"),
        )?;
        answers.push(cam.to_string());
        cameras.push(cam["id"].as_i64().context("id")?);
    }
    // An agent camera whose agent cannot reach the camera it was given.
    let agent_cam = relay.camera(alice_id, "Porch", "fixed", "dispatch", "agent")?;
    let token = agent_cam["agent_token"]
        .as_str()
        .context("token")?
        .to_owned();
    cameras.push(agent_cam["id"].as_i64().context("id")?);
    let camera_url = format!("rtsp://admin:{RTSP_PASSWORD}@127.0.0.1:{refused_port}/live");
    let agent = relay.start_agent(&token, &camera_url, "agent")?;
    common::wait_online(&alice, cameras[3], true, Duration::from_secs(10))
        .await
        .with_context(|| agent.log())?;
    // A wrong token, and the right one with no relay there.
    let wrong = relay.start_agent(WRONG_TOKEN, "sim://fixed", "wrong")?;
    let nowhere = common::start_agent(
        &format!("http://127.0.0.1:{}", closed_port()?),
        relay.dir.path(),
        &token,
        &camera_url,
        "nowhere",
    )?;

    // Watching each camera makes the relay pull it (and the agent open a tunnel).
    for cam in &cameras {
        let pc = eyeward_bench::viewer::recvonly(&eyeward_bench::viewer::loopback_api()?).await?;
        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer.clone()).await?;
        let resp = alice
            .request(reqwest::Method::POST, &format!("/api/cameras/{cam}/whep"))
            .header("content-type", "application/sdp")
            .body(offer.sdp)
            .send()
            .await?;
        let headers = format!("{:?}", resp.headers());
        answers.push(format!("{headers} {}", resp.text().await?));
        pc.close().await?;
    }
    ensure!(
        answers.iter().any(|a| a.contains("credential-type")),
        "no live view was handed a TURN credential: {answers:?}"
    );
    ran("camera refused", "camera not reachable", || relay.log()).await?;
    ran("name not resolved", "camera.invalid", || relay.log()).await?;
    ran(
        "tunnel to an unreachable camera",
        "cannot reach the camera",
        || agent.log(),
    )
    .await?;
    ran("wrong token", "refused", || wrong.log()).await?;
    ran("no relay", "Connection refused", || nowhere.log()).await?;

    // Metrics, with the token and with a wrong one (from loopback the token is not needed,
    // so a wrong one must not be echoed either).
    for bearer in [METRICS_TOKEN, WRONG_TOKEN] {
        let resp = relay
            .client()
            .request(reqwest::Method::GET, "/metrics")
            .bearer_auth(bearer)
            .send()
            .await?;
        answers.push(resp.text().await?);
    }
    // An event upload with a wrong token.
    let resp = relay
        .client()
        .http
        .post(relay.url("/agent/v1/events?key=leak-0001&captured_at=1&score=0.1&bbox=0,0,1,1"))
        .bearer_auth(WRONG_TOKEN)
        .header("content-type", "image/jpeg")
        .body(common::jpeg(32, 24))
        .send()
        .await?;
    answers.push(resp.text().await?);
    // Mailed links, opened and pressed (the tokens are made up: the path is what matters).
    for path in [
        format!("/confirm/{CONFIRM_TOKEN}"),
        format!("/unsubscribe/{UNSUBSCRIBE_TOKEN}"),
    ] {
        let page = relay.client().get(&path).await?;
        ensure!(page.status() == 200, "{path}: {}", page.status());
        let pressed = relay.client().post(&path, &serde_json::json!({})).await?;
        ensure!(pressed.status() == 404, "{path}: {}", pressed.status());
    }
    // The identity-check password: set behind a wrong login password, then the right one;
    // checked by an operator with an almost-right word and the right one; reset by the desk.
    let bob_id = relay.customer("b@example.jp", "Bob", "tokyo", CUSTOMER_PASSWORD)?;
    let bob = relay.login("b@example.jp", CUSTOMER_PASSWORD).await?;
    for password in [
        format!("{CUSTOMER_PASSWORD}!"),
        CUSTOMER_PASSWORD.to_owned(),
    ] {
        let resp = bob
            .request(reqwest::Method::PUT, "/api/me/identity-password")
            .json(&serde_json::json!({"password": password, "identity_password": IDENTITY_WORD}))
            .send()
            .await?;
        answers.push(format!("{} {}", resp.status(), resp.text().await?));
    }
    relay.operator("op@example.jp", "Oscar", "tokyo", CUSTOMER_PASSWORD)?;
    let op = relay.login("op@example.jp", CUSTOMER_PASSWORD).await?;
    for word in [format!("{IDENTITY_WORD}!"), IDENTITY_WORD.to_owned()] {
        let resp = op
            .post(
                &format!("/api/ops/customers/{bob_id}/identity-check"),
                &serde_json::json!({ "identity_password": word }),
            )
            .await?;
        answers.push(resp.text().await?);
    }
    ensure!(
        answers.iter().any(|a| a.contains("\"match\"")),
        "the identity check did not match: {answers:?}"
    );
    let (ok, out, stderr) = relay.admin_raw(
        &[
            "customer",
            "set-identity-password",
            "--id",
            &bob_id.to_string(),
        ],
        &format!("{IDENTITY_RESET_WORD}\n"),
    )?;
    ensure!(ok, "{out} {stderr}");
    answers.push(format!("{out} {stderr}"));
    let history = bob.get("/api/history").await?.text().await?;
    ensure!(history.contains("identity.checked"), "{history}");
    answers.push(history);
    drop(silent);

    let logs = [
        ("relay log", relay.log()),
        ("agent log", agent.log()),
        ("wrong-token agent log", wrong.log()),
        ("relay-less agent log", nowhere.log()),
        ("answers", answers.join("\n")),
    ];
    for (name, text) in &logs {
        for secret in [
            RTSP_PASSWORD,
            SMTP_PASSWORD,
            CUSTOMER_PASSWORD,
            METRICS_TOKEN,
            TURN_SECRET,
            WRONG_TOKEN,
            CONFIRM_TOKEN,
            UNSUBSCRIBE_TOKEN,
            IDENTITY_WORD,
            IDENTITY_RESET_WORD,
            token.as_str(),
        ] {
            ensure!(
                !text.contains(secret),
                "{secret:?} leaked into the {name}:\n{text}"
            );
        }
    }
    Ok(())
}
