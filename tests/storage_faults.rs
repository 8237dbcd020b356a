//! The storage servers failing under a running relay (issue 20): PostgreSQL restarted while
//! agents upload and customers read, and an S3 `PUT` cut off half-way. Requests meet a 503
//! with `Retry-After`, never a 500; nothing acknowledged is lost; nothing half-stored stays;
//! the relay recovers by itself. (The object store down with a real agent keeping its queue
//! is in `snapshot_delivery.rs`.)

mod common;

use anyhow::{Context, Result, ensure};
use common::{Relay, status_json};
use eyeward_testkit::garage::Garage;
use eyeward_testkit::postgres::Postgres;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PW: &str = "correct horse battery";

/// No per-camera rate limit in the way of the load.
const UNLIMITED: &str = "[events]\nmax_per_minute_per_camera = 1000000\n";

/// What one uploader saw: the keys acknowledged (201), and every other answer.
#[derive(Default)]
struct Seen {
    acknowledged: Vec<String>,
    refused: Vec<String>,
    unavailable: usize,
}

/// Uploads events with fresh keys until `stop`; every answer must be a 201 or a 503 that
/// says when to come back.
async fn upload_until(relay: &Relay, token: &str, who: usize, stop: &AtomicBool) -> Result<Seen> {
    let jpeg = common::jpeg(320, 180);
    let mut seen = Seen::default();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("load-{who}-{n:05}");
        match common::upload_event(relay, token, &key, &jpeg).await {
            Ok(r) if r.status() == 201 => seen.acknowledged.push(key),
            Ok(r) if r.status() == 503 && r.headers().contains_key("retry-after") => {
                seen.unavailable += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(r) => seen
                .refused
                .push(format!("{key}: {} {}", r.status(), r.text().await?)),
            // The relay itself stays up: a connection it refused would be a crash.
            Err(e) => seen.refused.push(format!("{key}: {e}")),
        }
    }
    Ok(seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_answers_503_loses_nothing_acknowledged_and_recovers()
-> Result<()> {
    let pg = Arc::new(Postgres::start()?);
    let url = pg.database()?;
    let relay = Arc::new(Relay::start(&format!(
        "{UNLIMITED}[database]\nurl = {url:?}\ntls = \"disable\"\nconnect_timeout = \"1s\"\n"
    ))?);
    let owner = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let cam = relay.camera(owner, "Porch", "fixed", "dispatch", "agent")?;
    let cam_id = cam["id"].as_i64().context("id")?;
    let token = cam["agent_token"].as_str().context("token")?.to_owned();
    let alice = relay.login("a@example.jp", PW).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let uploaders: Vec<_> = (0..3)
        .map(|who| {
            let (relay, token, stop) = (relay.clone(), token.clone(), stop.clone());
            tokio::spawn(async move { upload_until(&relay, &token, who, &stop).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // A fast shutdown (every session ended), three seconds down (longer than the relay
    // waits for a connection), and a start on the same data, all under the load.
    let stopping = pg.clone();
    tokio::task::spawn_blocking(move || stopping.stop()).await??;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let resuming = pg.clone();
    tokio::task::spawn_blocking(move || resuming.resume()).await??;
    let restarted = Instant::now();
    // The relay recovers by itself: the customer's reads work again, and so do uploads.
    loop {
        let (status, body) = status_json(
            alice
                .get(&format!("/api/cameras/{cam_id}/events?limit=1"))
                .await?,
        )
        .await?;
        if status == 200 {
            break;
        }
        ensure!(status == 503, "a read during the restart: {status} {body}");
        ensure!(
            restarted.elapsed() < Duration::from_secs(30),
            "reads did not recover: {}",
            relay.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    let mut unavailable = 0;
    for uploader in uploaders {
        let seen = uploader.await??;
        ensure!(
            seen.refused.is_empty(),
            "{:?}\n{}",
            seen.refused,
            relay.log()
        );
        acknowledged.extend(seen.acknowledged);
        unavailable += seen.unavailable;
    }
    assert!(
        unavailable > 0,
        "the restart was never seen: the test did not test it"
    );
    assert!(
        acknowledged.len() > 50,
        "too little load: {} events",
        acknowledged.len()
    );

    // Every acknowledged event is stored: uploaded again, each is the one already there.
    let jpeg = common::jpeg(320, 180);
    for key in &acknowledged {
        let again = common::upload_event(&relay, &token, key, &jpeg).await?;
        assert_eq!(again.status(), 200, "{key} was acknowledged, then lost");
    }
    assert!(
        !relay.log().contains("internal error"),
        "a restarting database is not an internal error:\n{}",
        relay.log()
    );
    Ok(())
}

/// A proxy in front of the object store that, while `cut` is set, passes the first `limit`
/// bytes a connection sends and then closes it: each request bigger than that (a `PUT` of a
/// picture) stops half-way.
async fn cutting_proxy(upstream: String, limit: usize, cut: Arc<AtomicBool>) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (upstream, cut) = (upstream.clone(), cut.clone());
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let answers = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                });
                let mut passed = 0;
                let mut buf = vec![0u8; 4096];
                while let Ok(read) = client_read.read(&mut buf).await
                    && read > 0
                {
                    let n = if cut.load(Ordering::Relaxed) {
                        read.min(limit.saturating_sub(passed))
                    } else {
                        read
                    };
                    if n == 0 || server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    passed += n;
                }
                // Both ways closed: the request ends where it was cut.
                answers.abort();
            });
        }
    });
    Ok(address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_cut_off_half_way_stores_no_row_and_no_object_and_a_retry_stores_one_of_each()
-> Result<()> {
    let garage = Garage::start()?;
    let place = garage.place();
    let cut = Arc::new(AtomicBool::new(true));
    let proxy = cutting_proxy(format!("127.0.0.1:{}", garage.port), 2048, cut.clone()).await?;
    let keys = tempfile::tempdir()?;
    let through_proxy = eyeward_testkit::garage::Place {
        endpoint: proxy,
        timeout: Some("3s".into()),
        ..place.clone()
    };
    let relay = Relay::start(&format!(
        "{UNLIMITED}{}",
        through_proxy.config(keys.path())?
    ))?;
    let owner = relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    let cam = relay.camera(owner, "Porch", "fixed", "dispatch", "agent")?;
    let cam_id = cam["id"].as_i64().context("id")?;
    let token = cam["agent_token"].as_str().context("token")?;
    let alice = relay.login("a@example.jp", PW).await?;
    // Many times the proxy's limit: its PUT is cut well before its end.
    let jpeg = common::jpeg(1280, 720);
    ensure!(jpeg.len() > 8 * 2048, "picture of {} bytes", jpeg.len());

    let cut_off = common::upload_event(&relay, token, "half-0001", &jpeg).await?;
    assert_eq!(cut_off.status(), 503, "{}", relay.log());
    assert!(cut_off.headers().contains_key("retry-after"));
    let (status, list) =
        status_json(alice.get(&format!("/api/cameras/{cam_id}/events")).await?).await?;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(0), "no row: {list}");
    // The store itself, not through the proxy: nothing was stored, not even half.
    let direct = eyeward_relay::objects::Objects::bucket(&relay_s3(&place, keys.path())?)?;
    assert!(direct.list("snapshots").await?.is_empty());

    // The agent's retry, once the path is whole: one row, one object, the picture intact.
    cut.store(false, Ordering::Relaxed);
    let retried = common::upload_event(&relay, token, "half-0001", &jpeg).await?;
    assert_eq!(retried.status(), 201, "{}", relay.log());
    let stored = direct.list("snapshots").await?;
    assert_eq!(stored.len(), 1, "{stored:?}");
    let (_, list) = status_json(alice.get(&format!("/api/cameras/{cam_id}/events")).await?).await?;
    let events = list.as_array().context("events")?;
    assert_eq!(events.len(), 1, "{list}");
    let url = events[0]["snapshot_url"].as_str().context("snapshot url")?;
    let picture = alice.get(url).await?;
    assert_eq!(picture.status(), 200);
    assert_eq!(picture.bytes().await?.as_ref(), jpeg.as_slice());
    assert!(!relay.log().contains("internal error"), "{}", relay.log());
    Ok(())
}

/// The relay's S3 settings for `place`, keys in files under `dir`.
fn relay_s3(
    place: &eyeward_testkit::garage::Place,
    dir: &std::path::Path,
) -> Result<eyeward_relay::config::S3Config> {
    let text = place.config(dir)?;
    let config = eyeward_relay::config::Config::parse(&text)?;
    config.storage.s3.context("s3")
}
