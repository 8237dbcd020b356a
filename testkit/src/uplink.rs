//! A home's uplink between an agent and its relay, for tests and benchmarks: a TCP relay that
//! counts the bytes the agent sends by the request they belong to (`POST` events, `HEAD` and
//! `PUT` clips; its link's WebSocket, a `GET`, is not counted), can hold them to a slow
//! uplink's pace, and can cut every connection at once and refuse new ones for a while.

use anyhow::{Context, Result, ensure};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// The most read (and passed on) at once.
const CHUNK: usize = 16 * 1024;

/// The bytes sent in each kind of request.
#[derive(Default)]
struct Counts {
    post: AtomicU64,
    head: AtomicU64,
    put: AtomicU64,
}

/// See the module's documentation. Stops with the test's runtime.
pub struct Uplink {
    /// `http://127.0.0.1:PORT`, for the agent's `--relay`.
    pub base: String,
    counts: Arc<Counts>,
    cut: Arc<Notify>,
    refusing: Arc<AtomicBool>,
}

impl Uplink {
    /// Relays to `upstream` (`http://HOST:PORT`); with `pace`, each 16 KiB the agent sends is
    /// held that long (16 KiB every 40 ms: about 400 kB/s).
    pub async fn start(upstream: &str, pace: Option<Duration>) -> Result<Uplink> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let upstream = upstream
            .strip_prefix("http://")
            .context("an http:// relay")?
            .trim_end_matches('/')
            .to_owned();
        let counts = Arc::new(Counts::default());
        let cut = Arc::new(Notify::new());
        let refusing = Arc::new(AtomicBool::new(false));
        let (c, n, r) = (counts.clone(), cut.clone(), refusing.clone());
        tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                if r.load(Ordering::Relaxed) {
                    continue;
                }
                let Ok(up) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let _ = (down.set_nodelay(true), up.set_nodelay(true));
                tokio::spawn(relay(down, up, c.clone(), n.clone(), pace));
            }
        });
        Ok(Uplink {
            base,
            counts,
            cut,
            refusing,
        })
    }

    /// Bytes sent in event uploads (`POST`).
    pub fn posts(&self) -> u64 {
        self.counts.post.load(Ordering::Relaxed)
    }

    /// Bytes sent in clip uploads: what the relay holds (`HEAD`) and the clips (`PUT`).
    pub fn clip_requests(&self) -> u64 {
        self.counts.head.load(Ordering::Relaxed) + self.puts()
    }

    /// Bytes sent in `PUT`s (clips).
    pub fn puts(&self) -> u64 {
        self.counts.put.load(Ordering::Relaxed)
    }

    /// Bytes sent in every upload.
    pub fn uploads(&self) -> u64 {
        self.posts() + self.clip_requests()
    }

    /// Waits up to `within` until `bytes` more have gone up in `PUT`s.
    pub async fn until_puts(&self, bytes: u64, within: Duration) -> Result<()> {
        let from = self.puts();
        let deadline = Instant::now() + within;
        while self.puts() < from + bytes {
            ensure!(Instant::now() < deadline, "no clip upload under way");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Cuts every connection and refuses new ones for `down`.
    pub async fn cut_for(&self, down: Duration) {
        self.refusing.store(true, Ordering::Relaxed);
        self.cut.notify_waiters();
        tokio::time::sleep(down).await;
        self.refusing.store(false, Ordering::Relaxed);
    }
}

/// One connection, both ways, until either side ends or the uplink is cut.
async fn relay(
    down: tokio::net::TcpStream,
    up: tokio::net::TcpStream,
    counts: Arc<Counts>,
    cut: Arc<Notify>,
    pace: Option<Duration>,
) {
    let ((mut dr, mut dw), (mut ur, mut uw)) = (down.into_split(), up.into_split());
    let upward = async {
        let mut buf = vec![0; CHUNK];
        // The request the bytes belong to: requests on a connection follow one another, and
        // the agent writes each one's head at once.
        let mut counter: Option<&AtomicU64> = None;
        while let Ok(n @ 1..) = dr.read(&mut buf).await {
            let chunk = &buf[..n];
            for (method, count) in [
                (&b"POST "[..], &counts.post),
                (b"HEAD ", &counts.head),
                (b"PUT ", &counts.put),
            ] {
                if chunk.starts_with(method) {
                    counter = Some(count);
                }
            }
            if chunk.starts_with(b"GET ") {
                counter = None;
            }
            if let Some(count) = counter {
                count.fetch_add(n as u64, Ordering::Relaxed);
                if let Some(pace) = pace {
                    tokio::time::sleep(pace).await;
                }
            }
            if uw.write_all(chunk).await.is_err() {
                return;
            }
        }
        let _ = uw.shutdown().await;
    };
    let downward = async {
        let _ = tokio::io::copy(&mut ur, &mut dw).await;
        let _ = dw.shutdown().await;
    };
    tokio::select! {
        _ = async { tokio::join!(upward, downward) } => {}
        () = cut.notified() => {}
    }
}
