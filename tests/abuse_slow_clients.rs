//! Slow clients cannot starve the relay: connections that never finish their headers, or a
//! body, are closed within the configured timeouts, and past the connection cap new clients
//! wait rather than taking descriptors; honest requests are answered meanwhile.

mod common;

use anyhow::Result;
use common::Relay;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the relay closes the connection (or `limit` passes); returns what it sent and
/// how long that took.
async fn until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((start + limit).into(), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_never_end_are_cut_off_and_honest_clients_are_served() -> Result<()> {
    let relay = Relay::start("[http]\nheader_timeout = \"2s\"\nmax_connections = 50\n")?;
    let addr = relay.base.trim_start_matches("http://").to_owned();
    // 120 clients send a request's first lines and never the blank line that ends them.
    let mut slow = Vec::new();
    for _ in 0..120 {
        let mut s = TcpStream::connect(&addr).await?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await?;
        slow.push(s);
    }
    // An honest client is answered meanwhile (at worst after a slow one's slot frees).
    let started = Instant::now();
    let health = relay.client().get("/healthz").await?;
    assert_eq!(health.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "answered after {:?}",
        started.elapsed()
    );
    // Every slow connection is closed, none held open for ever.
    let closed = futures_util::future::join_all(
        slow.iter_mut()
            .map(|s| until_closed(s, Duration::from_secs(20))),
    )
    .await;
    let held = closed
        .iter()
        .filter(|(_, took)| *took >= Duration::from_secs(20))
        .count();
    assert_eq!(held, 0, "{held} slow connections still open after 20 s");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_gets_408() -> Result<()> {
    let relay = Relay::start("[http]\nbody_timeout = \"2s\"\n")?;
    let addr = relay.base.trim_start_matches("http://").to_owned();
    let mut s = TcpStream::connect(&addr).await?;
    s.write_all(
        b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{\"email\": \"a@",
    )
    .await?;
    let (answer, took) = until_closed(&mut s, Duration::from_secs(20)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert!(took < Duration::from_secs(10), "after {took:?}");
    Ok(())
}
