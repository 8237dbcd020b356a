//! Hostile or broken agents: wrong tokens, oversized and garbage messages, binary frames on
//! the control link, and tunnels for another camera. Each is refused and the relay goes on
//! serving the well-behaved agent beside them.

mod common;

use anyhow::{Context, Result};
use common::{Relay, status_json, wait_online};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

const PW: &str = "correct horse battery";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `path` on the relay as an agent with `token`; the HTTP status if refused.
async fn connect(relay: &Relay, path: &str, token: &str) -> Result<std::result::Result<Ws, u16>> {
    let url = format!("{}{path}", relay.base.replacen("http://", "ws://", 1));
    let mut req = url.into_client_request()?;
    req.headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse()?);
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(Ok(ws)),
        Err(tungstenite::Error::Http(resp)) => Ok(Err(resp.status().as_u16())),
        Err(e) => Err(e.into()),
    }
}

/// Sends `msg` as a fresh link and returns how the relay closed it (code, reason).
async fn close_reason(relay: &Relay, token: &str, first: Message) -> Result<(u16, String)> {
    let mut ws = connect(relay, "/agent/v1/link", token)
        .await?
        .map_err(|s| anyhow::anyhow!("refused {s}"))?;
    let _ = ws.send(first).await;
    loop {
        match tokio::time::timeout(Duration::from_secs(12), ws.next())
            .await
            .context("relay kept a bad link open")?
        {
            Some(Ok(Message::Close(Some(f)))) => return Ok((f.code.into(), f.reason.to_string())),
            Some(Ok(Message::Close(None))) | None => return Ok((1005, String::new())),
            Some(Err(e)) => return Ok((1006, e.to_string())),
            Some(Ok(_)) => {}
        }
    }
}

fn hello() -> Message {
    Message::Text(r#"{"type":"hello","version":1,"agent":"test","rtsp_path":"/live"}"#.into())
}

#[tokio::test]
async fn bad_agents_are_refused_and_the_good_one_stays_online() -> Result<()> {
    let relay = Relay::start("")?;
    let customer = relay.customer("a@example.jp", "Alice", "east", PW)?;
    let good = relay.camera(customer, "Good", "fixed", "dispatch", "agent")?;
    let bad = relay.camera(customer, "Bad", "fixed", "dispatch", "agent")?;
    let good_token = good["agent_token"].as_str().context("token")?;
    let bad_token = bad["agent_token"].as_str().context("token")?.to_owned();
    let agent = relay.start_agent(good_token, "sim://fixed", "good")?;
    let alice = relay.login("a@example.jp", PW).await?;
    let good_id = good["id"].as_i64().context("id")?;
    wait_online(&alice, good_id, true, Duration::from_secs(10))
        .await
        .with_context(|| agent.log())?;

    // Wrong, missing and malformed tokens: 401 before any WebSocket.
    for token in ["", "ewa_nope", &"x".repeat(5000)] {
        assert_eq!(
            connect(&relay, "/agent/v1/link", token).await?.err(),
            Some(401),
            "{token:.10}"
        );
    }
    // A plain GET with a good token but no upgrade is a clean 400, not a hang.
    let plain = reqwest::Client::new()
        .get(relay.url("/agent/v1/link"))
        .bearer_auth(&bad_token)
        .send()
        .await?;
    assert_eq!(status_json(plain).await?.0, 400);

    // Garbage, unknown types, binary frames, oversized messages, a wrong version.
    let oversized = format!(
        r#"{{"type":"hello","version":1,"agent":"{}","rtsp_path":"/live"}}"#,
        "x".repeat(20_000)
    );
    for (first, want) in [
        (
            Message::Text("\u{0}\u{1}garbage".into()),
            "bad link message",
        ),
        (
            Message::Text(r#"{"type":"format_disk"}"#.into()),
            "bad link message",
        ),
        (Message::Binary(vec![0u8; 100].into()), ""),
        (Message::Text(oversized.into()), ""),
        (
            Message::Text(
                r#"{"type":"hello","version":99,"agent":"x","rtsp_path":"/live"}"#.into(),
            ),
            "version 99",
        ),
        (
            Message::Text(
                r#"{"type":"hello","version":1,"agent":"x","rtsp_path":"/a b\r\n"}"#.into(),
            ),
            "RTSP path",
        ),
        (
            Message::Text(r#"{"type":"heartbeat","seq":1}"#.into()),
            "must be hello",
        ),
    ] {
        let (code, reason) = close_reason(&relay, &bad_token, first.clone()).await?;
        assert_ne!(code, 1000, "{first:?}: closed as if normal");
        assert!(reason.contains(want), "{first:?}: {code} {reason}");
    }
    // After hello, bad messages still end the link.
    let mut ws = connect(&relay, "/agent/v1/link", &bad_token)
        .await?
        .map_err(|s| anyhow::anyhow!("{s}"))?;
    ws.send(hello()).await?;
    let welcome = ws.next().await.context("welcome")??;
    assert!(welcome.to_text()?.contains("\"welcome\""), "{welcome:?}");
    ws.send(Message::Binary(vec![1, 2, 3].into())).await?;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Close(f) = m {
                return f.map(|f| f.reason.to_string());
            }
        }
        None
    })
    .await?;
    assert!(
        closed
            .unwrap_or_default()
            .contains("binary frames belong on tunnels")
    );

    // A tunnel nobody asked for, or asked of another camera, is 404; so is a malformed id.
    for path in [
        "/agent/v1/tunnel/0123456789abcdef0123456789abcdef",
        "/agent/v1/tunnel/../../etc/passwd",
        "/agent/v1/tunnel/x",
    ] {
        let status = connect(&relay, path, &bad_token).await?.err();
        assert!(matches!(status, Some(404)), "{path}: {status:?}");
    }

    // Through it all the good camera stayed online.
    let (_, cams) = status_json(alice.get("/api/cameras").await?).await?;
    let online: Vec<_> = cams
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["online"].as_bool().unwrap()))
        .collect();
    assert_eq!(online, [("Good", true), ("Bad", false)]);
    assert!(!relay.log().contains("panicked"));
    Ok(())
}

/// An agent whose name holds a line break and a terminal escape cannot forge a log line: the
/// relay writes them out as escapes.
#[tokio::test]
async fn an_agents_name_cannot_forge_a_log_line() -> Result<()> {
    let relay = Relay::start("")?;
    let customer = relay.customer("a@example.jp", "Alice", "east", PW)?;
    let cam = relay.camera(customer, "Porch", "fixed", "dispatch", "agent")?;
    let token = cam["agent_token"].as_str().context("token")?;
    let mut ws = connect(&relay, "/agent/v1/link", token)
        .await?
        .map_err(|s| anyhow::anyhow!("refused {s}"))?;
    let forged = "cam\nFORGED relay: all cameras removed\u{1b}[2J";
    let hello =
        serde_json::json!({"type": "hello", "version": 1, "agent": forged, "rtsp_path": "/live"});
    ws.send(Message::Text(hello.to_string().into())).await?;
    let alice = relay.login("a@example.jp", PW).await?;
    wait_online(
        &alice,
        cam["id"].as_i64().context("id")?,
        true,
        Duration::from_secs(10),
    )
    .await?;
    let log = relay.log();
    assert!(
        !log.lines().any(|l| l.starts_with("FORGED")),
        "a forged line in the log:\n{log}"
    );
    assert!(!log.contains('\u{1b}'), "a terminal escape in the log");
    assert!(log.contains("cam\\nFORGED"), "{log}");
    Ok(())
}
