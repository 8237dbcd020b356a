//! A direct camera's RTSP connection, made by the relay to the address it checked and handed
//! to retina on a loopback port through a [`FrameGuard`], which
//! - bounds each picture the camera sends interleaved on the connection (over TCP, retina
//!   would gather a picture without end), and
//! - names the checked address as the `source=` of every reply: over UDP, retina sends its
//!   packets to, and takes media only from, the `source=` of the SETUP reply, and a camera
//!   could name any address there, past the source policy.

use super::frames::{FrameGuard, MAX_FRAME_BYTES};
use crate::error::{Error, ErrorKind};
use crate::loopback::{self, Offered};
use eyeward::{CameraId, RtspSource};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long connecting to the camera may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `source` (already checked and resolved to an address) and offers the
/// connection on a loopback port; returns the URL to give retina, and the port's keeper.
pub async fn direct_connection(
    camera: CameraId,
    source: &RtspSource,
) -> Result<(String, Offered), Error> {
    let ip: IpAddr = match source.host() {
        url::Host::Ipv4(a) => a.into(),
        url::Host::Ipv6(a) => a.into(),
        url::Host::Domain(_) => return Err(Error::internal("camera host not resolved")),
    };
    let address = SocketAddr::new(ip, source.port());
    let unreachable =
        |why: String| Error::new(ErrorKind::Conflict, format!("camera connect: {why}"));
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
        .await
        .map_err(|_| unreachable("timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let offered = loopback::offer(camera, move |local| bridge(local, tcp, ip, camera)).await?;
    let mut url =
        url::Url::parse(source.url()).map_err(|e| Error::internal(format!("camera URL: {e}")))?;
    // Cannot fail: an rtsp:// URL with a host takes an IP host and a port.
    let _ = url.set_ip_host(IpAddr::from([127, 0, 0, 1]));
    let _ = url.set_port(Some(offered.port));
    Ok((url.into(), offered))
}

/// Copies the RTSP client's bytes to the camera as they are, and the camera's back through
/// a guard pinning `source`, until either side ends or the camera's stream is out of bounds.
async fn bridge(client: TcpStream, camera_tcp: TcpStream, source: IpAddr, camera: CameraId) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut camera_rx, mut camera_tx) = camera_tcp.into_split();
    let requests = async {
        let _ = tokio::io::copy(&mut client_rx, &mut camera_tx).await;
    };
    let replies = async {
        let mut guard = FrameGuard::pinning_source(MAX_FRAME_BYTES, source);
        let mut buf = vec![0u8; 64 * 1024];
        let mut out = Vec::with_capacity(buf.len());
        loop {
            let n = match camera_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            out.clear();
            if let Err(refused) = guard.feed_into(&buf[..n], &mut out) {
                tracing::warn!(camera = camera.0, %refused, "camera connection closed: its stream is out of bounds");
                break;
            }
            if client_tx.write_all(&out).await.is_err() {
                break;
            }
        }
        let _ = client_tx.shutdown().await;
    };
    tokio::select! {
        () = requests => {},
        () = replies => {},
    }
}
