//! Upstream bytes from an agent to the relay, counted on the link's own TCP connections:
//! with nobody watching (heartbeats only), and with one viewer pulling video through a
//! tunnel. The peer, measured in the same run, is the camera's own RTSP stream pulled
//! directly: the tunnel's overhead is the ratio between the two.
//!
//! Run `bench/run.sh` (builds release binaries first). Goal: at most 2 KB/s idle, and at most
//! 3% over the camera's own stream while someone watches.

use anyhow::{Context, Result, bail};
use eyeward::CameraId;
use eyeward_bench::process::{Running, provision_relay, start_simulator, target_bin};
use eyeward_relay::config::{Config, RtspTransport};
use eyeward_relay::http::{self};
use eyeward_relay::ingest::Ingest;
use eyeward_relay::link::{self, Links};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Which direction of a forwarded connection to count.
#[derive(Clone, Copy)]
enum Count {
    /// What the connecting client sends (the agent's upstream, towards the relay).
    FromClient,
    /// What the target sends back (the camera's upstream, towards its RTSP client).
    FromTarget,
}

/// A TCP forwarder to `target` that counts the bytes of one direction.
async fn counting_proxy(target: SocketAddr, count: Count) -> Result<(SocketAddr, Arc<AtomicU64>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let counted = Arc::new(AtomicU64::new(0));
    let counter = counted.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(target).await else {
                    return;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let (up, down) = match count {
                    Count::FromClient => (Some(&*counter), None),
                    Count::FromTarget => (None, Some(&*counter)),
                };
                tokio::select! {
                    () = pump(cr, sw, up) => {},
                    () = pump(sr, cw, down) => {},
                }
            });
        }
    });
    Ok((addr, counted))
}

/// Copies until either side ends, adding what passes to `counter`.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    counter: Option<&AtomicU64>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        if let Some(c) = counter {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// Reads frames for `secs`; returns the frames' payload bytes.
async fn watch(ingest: &mut Ingest, secs: Duration) -> Result<u64> {
    let end = Instant::now() + secs;
    let mut bytes = 0;
    while Instant::now() < end {
        let frame = tokio::time::timeout(Duration::from_secs(10), ingest.next_frame())
            .await
            .context("frames stopped")??
            .context("stream ended")?;
        bytes += frame.data.len() as u64;
    }
    Ok(bytes)
}

fn rate(bytes: u64, over: Duration) -> f64 {
    bytes as f64 / over.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let secs = Duration::from_secs(
        std::env::args()
            .nth(1)
            .map_or(Ok(20), |s| s.parse())
            .context("seconds per phase")?,
    );
    let dir = std::env::temp_dir().join(format!("eyeward-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    // The camera: a simulator at its defaults (1280×720, 15 fps, 2000 kbit/s, GOP 4 s).
    let (_sim, camera_url) = start_simulator("fixed", "127.0.0.1:0", &[], &dir.join("sim.log"))?;

    // The relay, in-process, behind a counting proxy that the agent dials.
    let (config_file, cam) = provision_relay(&dir, "", "fixed", "agent")?;
    let config = Config::parse(&std::fs::read_to_string(&config_file)?)?;
    let (relay_addr, state) = http::spawn(&config, std::future::pending()).await?;
    let links: Arc<Links> = state.links.clone();
    let token = cam["agent_token"].as_str().context("token")?;
    std::fs::write(dir.join("agent.token"), token)?;
    let cam = CameraId(1);

    let (proxy, upstream) = counting_proxy(relay_addr, Count::FromClient).await?;
    let agent = Command::new(target_bin("eyeward-agent")?)
        .args([
            "run",
            "--relay",
            &format!("http://{proxy}"),
            "--camera",
            &camera_url,
            "--token-file",
        ])
        .arg(dir.join("agent.token"))
        .stderr(Stdio::null())
        .spawn()?;
    let _agent = Running(agent);
    let start = Instant::now();
    while !links.is_online(cam) {
        if start.elapsed() > Duration::from_secs(10) {
            bail!("the agent never came online");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Idle: heartbeats only.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = upstream.load(Ordering::Relaxed);
    tokio::time::sleep(secs).await;
    let idle = rate(upstream.load(Ordering::Relaxed) - before, secs);

    // One viewer, through the tunnel.
    let (url, tunnel) = link::local_tunnel(links.clone(), cam, link::TunnelTo::Video).await?;
    let mut ingest = Ingest::connect(&url, None, RtspTransport::Tcp).await?;
    watch(&mut ingest, Duration::from_secs(2)).await?;
    let before = upstream.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let tunnel_payload = watch(&mut ingest, secs).await?;
    let elapsed = t0.elapsed();
    let viewing = rate(upstream.load(Ordering::Relaxed) - before, elapsed);
    drop(ingest);
    drop(tunnel);

    // The peer: the same camera pulled directly over RTSP, counted the same way.
    let camera_addr: SocketAddr = camera_url
        .trim_start_matches("rtsp://")
        .split('/')
        .next()
        .context("camera address")?
        .parse()?;
    let (direct_proxy, direct_up) = counting_proxy(camera_addr, Count::FromTarget).await?;
    let direct_url = camera_url.replace(&camera_addr.to_string(), &direct_proxy.to_string());
    let mut direct = Ingest::connect(&direct_url, None, RtspTransport::Tcp).await?;
    watch(&mut direct, Duration::from_secs(2)).await?;
    let before = direct_up.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let direct_payload = watch(&mut direct, secs).await?;
    let elapsed = t0.elapsed();
    let direct_rate = rate(direct_up.load(Ordering::Relaxed) - before, elapsed);

    println!(
        "link upstream, {} s per phase, camera 1280x720 15 fps 2000 kbit/s",
        secs.as_secs()
    );
    println!(
        "  idle (heartbeats only):      {:>10.0} B/s   goal <= 2048 B/s   {}",
        idle,
        if idle <= 2048.0 { "ok" } else { "OVER" }
    );
    println!(
        "  one viewer, through tunnel:  {:>10.0} B/s   (H.264 payload {:.0} B/s)",
        viewing,
        rate(tunnel_payload, secs)
    );
    println!(
        "  peer, direct RTSP from cam:  {:>10.0} B/s   (H.264 payload {:.0} B/s)",
        direct_rate,
        rate(direct_payload, secs)
    );
    let overhead = (viewing / direct_rate - 1.0) * 100.0;
    println!(
        "  tunnel / direct:             {:>10.3}        overhead {overhead:+.2}%   goal <= +3%   {}",
        viewing / direct_rate,
        if overhead <= 3.0 { "ok" } else { "OVER" }
    );
    println!(
        "  vs the service's 8 Mbit/s per megapixel: viewing uses {:.1}% of the {:.0} B/s asked of a 0.92 MP camera",
        viewing / (8e6 / 8.0 * 0.9216) * 100.0,
        8e6 / 8.0 * 0.9216
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
