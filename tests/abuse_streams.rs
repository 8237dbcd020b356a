//! One account cannot hold the relay's connections with event streams: past
//! `http.max_event_streams_per_account` a new one is refused with 429, and a stream closed
//! gives its place back; another account is not affected.

mod common;

use anyhow::Result;
use common::Relay;
use std::time::Duration;

const PW: &str = "correct horse battery";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_holds_at_most_its_share_of_event_streams() -> Result<()> {
    let relay = Relay::start("[http]\nmax_event_streams_per_account = 4\n")?;
    relay.customer("a@example.jp", "Alice", "tokyo", PW)?;
    relay.customer("b@example.jp", "Bob", "tokyo", PW)?;
    let alice = relay.login("a@example.jp", PW).await?;
    let mut open = Vec::new();
    for _ in 0..4 {
        let s = alice.get("/api/dispatch-requests/live").await?;
        assert_eq!(s.status(), 200);
        open.push(s);
    }
    let refused = alice.get("/api/dispatch-requests/live").await?;
    assert_eq!(refused.status(), 429);
    assert!(refused.text().await?.contains("too_many_streams"));
    // Bob is not affected.
    let bob = relay.login("b@example.jp", PW).await?;
    assert_eq!(bob.get("/api/dispatch-requests/live").await?.status(), 200);
    // A stream closed gives its place back (the relay notices the closed connection at its
    // next write: the keep-alive comment within 15 s).
    drop(open.pop());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = alice.get("/api/dispatch-requests/live").await?;
        if s.status() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the place was not given back"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}
