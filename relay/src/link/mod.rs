//! The agents' side of the relay: which agents are linked ([`Links`]), the tunnels they
//! open on request, and the local TCP endpoint that lets the relay's RTSP client talk
//! through a tunnel. The links' WebSockets are the HTTP edge's (`http::agent_link`), which
//! hands each tunnel over as a [`Tunnel`] of byte frames.
//!
//! The relay never dials anything an agent names: tunnels are opened by the agent, towards
//! the relay, and the agent alone knows (and connects to) its camera's address.

mod registry;

pub use registry::{Links, MAX_TUNNELS_PER_CAMERA, Registration, TunnelSlot, camera_offline};

use crate::error::Error;
use crate::ingest::frames::{FrameGuard, MAX_FRAME_BYTES};
use crate::loopback;
use bytes::Bytes;
use eyeward::CameraId;
use eyeward::link::PtzReport;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Frames queued each way in a tunnel before the sender waits.
pub const TUNNEL_QUEUE: usize = 8;

/// One tunnel's byte frames, as the HTTP edge hands it over: what the agent sends, and the
/// way to send to the agent. Dropping either end closes the tunnel.
pub struct Tunnel {
    pub from_agent: mpsc::Receiver<Bytes>,
    pub to_agent: mpsc::Sender<Bytes>,
}

/// Who waits on agents' pan-tilt reports (the pan-tilt service): a link hands each report
/// over through this and knows nothing more of its receiver.
pub trait PtzReports: Send + Sync {
    /// What the camera's agent said of its pan-tilt.
    fn report(&self, camera: CameraId, report: PtzReport);
    /// The camera's agent is gone: nothing it was asked will be answered.
    fn offline(&self, camera: CameraId);
}

/// What a tunnel must reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelTo {
    /// The camera's video: the agent may answer from the video it reads already.
    Video,
    /// The camera itself, for what the agent does not keep (its sound).
    Camera,
}

/// Opens a tunnel to an agent camera and offers it on a loopback port for the RTSP client:
/// returns `rtsp://127.0.0.1:PORT/<camera path>` and the port. The first connection there
/// that this process made (the relay's RTSP client) talks to the camera through the agent.
pub async fn local_tunnel(
    links: Arc<Links>,
    camera: CameraId,
    to: TunnelTo,
) -> Result<(String, loopback::Offered), Error> {
    let path = links
        .rtsp_path(camera)
        .ok_or_else(registry::camera_offline)?;
    let offered = loopback::offer(camera, move |tcp| async move {
        match links.open_tunnel(camera, to).await {
            Ok((tunnel, _slot)) => bridge(tcp, tunnel, camera).await,
            Err(e) => tracing::warn!(camera = camera.0, error = %e, "tunnel not opened"),
        }
    })
    .await?;
    Ok((format!("rtsp://127.0.0.1:{}{path}", offered.port), offered))
}

/// Offers `tunnel` (one this node did not open: carried from the node that holds the camera)
/// on a loopback port for the RTSP client, as [`local_tunnel`] offers its own; `path` is the
/// camera's RTSP path.
pub async fn offer_tunnel(
    camera: CameraId,
    path: &str,
    tunnel: Tunnel,
) -> Result<(String, loopback::Offered), Error> {
    let offered = loopback::offer(camera, move |tcp| bridge(tcp, tunnel, camera)).await?;
    Ok((format!("rtsp://127.0.0.1:{}{path}", offered.port), offered))
}

/// Copies bytes both ways between a TCP connection and a tunnel until either ends, or until
/// the camera's side sends a picture past [`MAX_FRAME_BYTES`].
async fn bridge(tcp: TcpStream, tunnel: Tunnel, camera: CameraId) {
    let (mut tcp_rx, mut tcp_tx) = tcp.into_split();
    let Tunnel {
        mut from_agent,
        to_agent,
    } = tunnel;
    let upstream = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match tcp_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to_agent
                        .send(Bytes::copy_from_slice(&buf[..n]))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    };
    let downstream = async {
        let mut guard = FrameGuard::new(MAX_FRAME_BYTES);
        while let Some(bytes) = from_agent.recv().await {
            if let Err(refused) = guard.feed(&bytes) {
                tracing::warn!(camera = camera.0, %refused, "tunnel closed: the camera's stream is out of bounds");
                break;
            }
            if tcp_tx.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = tcp_tx.shutdown().await;
    };
    tokio::select! {
        () = upstream => {},
        () = downstream => {},
    }
}
