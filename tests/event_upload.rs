//! Motion events from agents (`POST /agent/v1/events`): stored with their snapshot before
//! they are acknowledged, the same event for a repeated key, visible to the owner only, and
//! every kind of bad upload refused with a 4xx while nothing is stored and nothing else is
//! disturbed.

mod common;

use anyhow::{Context, Result};
use common::{Relay, jpeg, status_json};
use eyeward::UnixMillis;
use eyeward::api::{EventKind, EventView, ListedEvent};
use serde_json::Value;
use std::io::{Read, Write};
use std::time::Duration;

const PW: &str = "correct horse battery";

/// The same JPEG claiming another size in its frame header (SOF0).
fn with_claimed_size(mut jpeg: Vec<u8>, width: u16, height: u16) -> Vec<u8> {
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xff, 0xc0])
        .expect("a baseline JPEG has SOF0");
    jpeg[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    jpeg
}

struct Agent {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Agent {
    /// Posts `body` as `ctype` (an empty `ctype`: no `Content-Type`).
    async fn post(&self, query: &str, body: Vec<u8>, ctype: &str) -> Result<(u16, Value)> {
        let mut req = self
            .http
            .post(format!("{}/agent/v1/events?{query}", self.base))
            .bearer_auth(&self.token)
            .body(body);
        if !ctype.is_empty() {
            req = req.header("content-type", ctype);
        }
        status_json(req.send().await?).await
    }
}

fn query(key: &str, captured_at: i64, bbox: &str) -> String {
    format!("key={key}&captured_at={captured_at}&score=0.04&bbox={bbox}")
}

async fn snapshot_files(relay: &Relay) -> Result<usize> {
    Ok(relay.pictures("snapshots").await?.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_stored_once_and_shown_to_its_owner_only() -> Result<()> {
    let relay = Relay::start("")?;
    let alice_id = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    relay.customer("b@example.jp", "Bob", "tokyo", PW)?;
    let cam = relay.camera(alice_id, "Porch", "fixed", "dispatch", "agent")?;
    let cam_id = cam["id"].as_i64().context("id")?;
    let agent = Agent {
        base: relay.base.clone(),
        token: cam["agent_token"].as_str().context("token")?.to_owned(),
        http: reqwest::Client::new(),
    };
    let picture = jpeg(640, 360);
    let now = UnixMillis::now().0;

    let (status, first) = agent
        .post(
            &query("event-0001", now, "100,50,80,200"),
            picture.clone(),
            "image/jpeg",
        )
        .await?;
    assert_eq!(status, 201, "{first}");
    // The answer is the API's typed event (`eyeward::api`), field for field.
    let typed: EventView = serde_json::from_value(first.clone())?;
    assert_eq!(typed.camera_id, cam_id);
    assert_eq!(typed.kind, EventKind::Motion);
    assert!(!typed.delayed);
    assert_eq!(typed.bbox, Some([100, 50, 80, 200]));
    assert_eq!((typed.width, typed.height), (640, 360));
    // The agent retries (it never saw the answer): the same event, nothing new stored.
    let (status, again) = agent
        .post(
            &query("event-0001", now, "100,50,80,200"),
            picture.clone(),
            "image/jpeg",
        )
        .await?;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], first["id"]);
    // An event that comes a minute late (the relay was away) says so.
    let (status, late) = agent
        .post(
            &query("event-0002", now - 60_000, "0,0,16,16"),
            picture.clone(),
            "image/jpeg",
        )
        .await?;
    assert_eq!(status, 201, "{late}");
    assert_eq!(late["delayed"], true);

    let alice = relay.login("a@example.jp", PW).await?;
    let (status, list) =
        status_json(alice.get(&format!("/api/cameras/{cam_id}/events")).await?).await?;
    assert_eq!(status, 200);
    let list: Vec<ListedEvent> = serde_json::from_value(list)?;
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0].event.id, typed.id, "newest first");
    assert_eq!(list[0].camera_name.as_deref(), Some("Porch"));
    let url = list[0].event.snapshot_url.as_deref().context("url")?;
    let resp = alice.get(url).await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert_eq!(
        resp.bytes().await?.to_vec(),
        picture,
        "the very bytes the agent sent"
    );
    let (_, page) = status_json(
        alice
            .get(&format!(
                "/api/cameras/{cam_id}/events?limit=1&before={now}"
            ))
            .await?,
    )
    .await?;
    assert_eq!(page.as_array().map(Vec::len), Some(1), "{page}");
    assert_eq!(page[0]["id"], late["id"]);

    let bob = relay.login("b@example.jp", PW).await?;
    assert_eq!(
        bob.get(&format!("/api/cameras/{cam_id}/events"))
            .await?
            .status(),
        404
    );
    assert_eq!(bob.get(url).await?.status(), 404);
    let anonymous = relay.client();
    assert_eq!(anonymous.get(url).await?.status(), 401);
    assert_eq!(snapshot_files(&relay).await?, 2);
    Ok(())
}

/// Reads a server-sent event stream until a message of type `event` arrives; its data.
async fn next_message(stream: &mut reqwest::Response, event: &str) -> Result<Value> {
    let mut text = String::new();
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .with_context(|| format!("no '{event}' message; so far: {text:?}"))??
            .context("the stream ended")?;
        text.push_str(std::str::from_utf8(&chunk)?);
        // Messages end with a blank line; keep-alive comments start with ':'.
        while let Some(end) = text.find("\n\n") {
            let message: String = text.drain(..end + 2).collect();
            let field = |name: &str| {
                message
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(str::trim).map(str::to_owned))
            };
            if field("event:").as_deref() == Some(event) {
                return Ok(serde_json::from_str(&field("data:").context("data")?)?);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_events_reach_the_owner_live_and_a_queue_gap_is_reported() -> Result<()> {
    let mut relay = Relay::start("")?;
    let alice_id = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    relay.customer("b@example.jp", "Bob", "tokyo", PW)?;
    let cam = relay.camera(alice_id, "Porch", "fixed", "dispatch", "agent")?;
    let other = relay.camera(alice_id, "Garden", "fixed", "dispatch", "agent")?;
    let cam_id = cam["id"].as_i64().context("id")?;
    let agent = Agent {
        base: relay.base.clone(),
        token: cam["agent_token"].as_str().context("token")?.to_owned(),
        http: reqwest::Client::new(),
    };
    let garden = Agent {
        base: relay.base.clone(),
        token: other["agent_token"].as_str().context("token")?.to_owned(),
        http: reqwest::Client::new(),
    };
    let alice = relay.login("a@example.jp", PW).await?;
    let live_path = format!("/api/cameras/{cam_id}/events/live");
    let mut live = alice.get(&live_path).await?;
    assert_eq!(live.status(), 200);
    assert_eq!(live.headers()["content-type"], "text/event-stream");
    let bob = relay.login("b@example.jp", PW).await?;
    assert_eq!(bob.get(&live_path).await?.status(), 404, "owner only");
    assert_eq!(relay.client().get(&live_path).await?.status(), 401);

    // Another camera's event is not on this camera's feed; this camera's is, at once.
    let now = UnixMillis::now().0;
    let (status, _) = garden
        .post(
            &query("garden-001", now, "0,0,16,16"),
            jpeg(64, 64),
            "image/jpeg",
        )
        .await?;
    assert_eq!(status, 201);
    let (status, stored) = agent
        .post(
            &query("event-0001", now, "0,0,16,16"),
            jpeg(64, 64),
            "image/jpeg",
        )
        .await?;
    assert_eq!(status, 201);
    let pushed = next_message(&mut live, "event").await?;
    assert_eq!(pushed["id"], stored["id"], "{pushed}");

    // After a long outage the agent's queue kept the event but dropped its picture...
    let (status, dropped) = agent
        .post(
            &format!(
                "{}&snapshot=dropped",
                query("event-0002", now - 1000, "0,0,16,16")
            ),
            Vec::new(),
            "",
        )
        .await?;
    assert_eq!(status, 201, "{dropped}");
    assert_eq!(dropped["snapshot_url"], Value::Null);
    assert_eq!(next_message(&mut live, "event").await?["id"], dropped["id"]);
    let (status, body) = status_json(
        alice
            .get(&format!("/api/events/{}/snapshot", dropped["id"]))
            .await?,
    )
    .await?;
    assert_eq!(status, 404, "{body}");
    // ... and says how much it dropped; the report grows while the outage lasts.
    let gap = |n: u32| {
        format!(
            "kind=gap&key=gap-000001&captured_at={}&until={}&lost_snapshots={n}&lost_events=1",
            now - 5000,
            now - 1000
        )
    };
    let (status, first) = agent.post(&gap(3), Vec::new(), "").await?;
    assert_eq!(status, 201, "{first}");
    assert_eq!(
        (first["kind"].as_str(), first["lost_snapshots"].as_i64()),
        (Some("gap"), Some(3))
    );
    next_message(&mut live, "event").await?;
    let (status, grown) = agent.post(&gap(5), Vec::new(), "").await?;
    assert_eq!((status, grown["id"].clone()), (200, first["id"].clone()));
    assert_eq!(next_message(&mut live, "event").await?["lost_snapshots"], 5);
    let (status, stale) = agent.post(&gap(4), Vec::new(), "").await?;
    assert_eq!(
        (status, stale["lost_snapshots"].as_i64()),
        (200, Some(5)),
        "counts only grow"
    );

    // Each kind with the wrong body, or wrong fields, is refused.
    for (what, q, body, ctype) in [
        (
            "motion without its snapshot",
            query("bad-00001", now, "0,0,1,1"),
            Vec::new(),
            "",
        ),
        (
            "a dropped snapshot with a body",
            format!("{}&snapshot=dropped", query("bad-00002", now, "0,0,1,1")),
            jpeg(64, 64),
            "image/jpeg",
        ),
        (
            "a gap with a body",
            gap(6).replace("gap-000001", "gap-000002"),
            jpeg(64, 64),
            "image/jpeg",
        ),
        (
            "a gap with a score",
            format!("{}&score=0.1", gap(6)),
            Vec::new(),
            "",
        ),
        (
            "a gap that lost nothing",
            gap(0).replace("lost_events=1", "lost_events=0"),
            Vec::new(),
            "",
        ),
        (
            "an unknown kind",
            query("bad-00003", now, "0,0,1,1").replace("key=", "kind=noise&key="),
            jpeg(64, 64),
            "image/jpeg",
        ),
    ] {
        let (status, body) = agent.post(&q, body, ctype).await?;
        assert_eq!(status, 400, "{what}: {body}");
    }
    let (_, list) = status_json(alice.get(&format!("/api/cameras/{cam_id}/events")).await?).await?;
    assert_eq!(list.as_array().map(Vec::len), Some(3), "{list}");

    // An open feed does not hold up the relay's stop.
    let stopping = std::time::Instant::now();
    relay.stop()?;
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopping.elapsed()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_refused_and_store_nothing() -> Result<()> {
    let relay = Relay::start("")?;
    let alice_id = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let cam = relay.camera(alice_id, "Porch", "fixed", "dispatch", "agent")?;
    let cam_id = cam["id"].as_i64().context("id")?;
    let token = cam["agent_token"].as_str().context("token")?.to_owned();
    let agent = Agent {
        base: relay.base.clone(),
        token: token.clone(),
        http: reqwest::Client::new(),
    };
    let good = jpeg(640, 360);
    let now = UnixMillis::now().0;
    let q = |key: &str| query(key, now, "0,0,32,32");

    let mut png = Vec::new();
    image::RgbImage::new(32, 32)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .ok();
    let cases: Vec<(&str, String, Vec<u8>, &str, u16)> = vec![
        ("a PNG", q("bad-00001"), png.clone(), "image/jpeg", 400),
        (
            "not a picture",
            q("bad-00010"),
            b"hello".to_vec(),
            "image/jpeg",
            400,
        ),
        (
            "truncated",
            q("bad-00002"),
            good[..good.len() / 2].to_vec(),
            "image/jpeg",
            400,
        ),
        (
            "huge header",
            q("bad-00003"),
            with_claimed_size(good.clone(), 65000, 65000),
            "image/jpeg",
            400,
        ),
        (
            "wrong type",
            q("bad-00004"),
            good.clone(),
            "application/octet-stream",
            415,
        ),
        ("short key", q("k"), good.clone(), "image/jpeg", 400),
        (
            "key with a path",
            q("..%2F..%2Fetc"),
            good.clone(),
            "image/jpeg",
            400,
        ),
        (
            "bbox outside",
            query("bad-00005", now, "600,300,100,100"),
            good.clone(),
            "image/jpeg",
            400,
        ),
        (
            "from the future",
            query("bad-00006", now + 3_600_000, "0,0,1,1"),
            good.clone(),
            "image/jpeg",
            400,
        ),
        (
            "unknown field",
            format!("{}&camera_id=2", q("bad-00007")),
            good.clone(),
            "image/jpeg",
            400,
        ),
    ];
    for (what, query, body, ctype, want) in cases {
        let (status, body) = agent.post(&query, body, ctype).await?;
        assert_eq!(status, want, "{what}: {body}");
        assert!(body["error"].is_string(), "{what}: a JSON error: {body}");
    }

    // Another camera's token, or none at all.
    let stranger = Agent {
        token: "not-a-token-of-any-camera".into(),
        ..agent
    };
    let (status, _) = stranger
        .post(&q("bad-00008"), good.clone(), "image/jpeg")
        .await?;
    assert_eq!(status, 401);
    let agent = Agent { token, ..stranger };

    // 50 MB announced: refused before it is read.
    let addr = relay.base.trim_start_matches("http://").to_owned();
    let bearer = agent.token.clone();
    let answer = tokio::task::spawn_blocking(move || -> Result<String> {
        let mut s = std::net::TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "POST /agent/v1/events?{} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: image/jpeg\r\nContent-Length: 52428800\r\n\r\n",
            query("bad-00009", now, "0,0,1,1"),
            bearer
        )?;
        s.write_all(&[0u8; 65536])?;
        let mut head = [0u8; 64];
        let n = s.read(&mut head)?;
        Ok(String::from_utf8_lossy(&head[..n]).into_owned())
    })
    .await??;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Nothing of that was stored, and a good upload still works.
    assert_eq!(snapshot_files(&relay).await?, 0);
    let (status, ok) = agent.post(&q("good-0001"), good, "image/jpeg").await?;
    assert_eq!(status, 201, "{ok}");
    let alice = relay.login("a@example.jp", PW).await?;
    let (_, list) = status_json(alice.get(&format!("/api/cameras/{cam_id}/events")).await?).await?;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_older_than_the_retention_go_with_their_snapshots() -> Result<()> {
    let mut relay = Relay::start("[events]\nretention = \"1h\"")?;
    let alice_id = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let cam = relay.camera(alice_id, "Porch", "fixed", "dispatch", "agent")?;
    let cam_id = cam["id"].as_i64().context("id")?;
    let agent = Agent {
        base: relay.base.clone(),
        token: cam["agent_token"].as_str().context("token")?.to_owned(),
        http: reqwest::Client::new(),
    };
    let now = UnixMillis::now().0;
    for (key, at) in [("old-00001", now - 2 * 3_600_000), ("new-00001", now)] {
        let (status, body) = agent
            .post(&query(key, at, "0,0,16,16"), jpeg(320, 180), "image/jpeg")
            .await?;
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(snapshot_files(&relay).await?, 2);
    // Retention runs at start and hourly: a restart runs it now.
    relay.restart()?;
    let alice = relay.login("a@example.jp", PW).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, list) =
            status_json(alice.get(&format!("/api/cameras/{cam_id}/events")).await?).await?;
        let list = list.as_array().context("array")?.clone();
        if list.len() == 1 {
            assert!(list[0]["at"].as_str().is_some());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the old event stays: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        snapshot_files(&relay).await?,
        1,
        "its snapshot went with it"
    );
    Ok(())
}
