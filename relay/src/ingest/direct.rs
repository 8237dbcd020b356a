//! A direct camera's RTSP connection, made by the relay to the address it checked and handed
//! to retina on a loopback port through a [`FrameGuard`] each way. Retina gathers a picture
//! without end, and over UDP sends to, and takes media from, whatever `source=` the SETUP
//! reply names; so
//! - each picture the camera sends interleaved on the connection is bounded;
//! - over UDP, the relay's own sockets stand between the camera and retina ([`UdpMedia`]):
//!   the camera is told the relay's ports, retina the relay's loopback ports; packets are
//!   taken from the checked address only, and each picture is bounded as over TCP;
//! - every other reply names the checked address as its `source=`.

use super::frames::{FrameGuard, MAX_FRAME_BYTES, PictureBound, Refused, pass_head};
use super::transport::{self, Ports};
use crate::error::{Error, ErrorKind};
use crate::loopback::{self, Offered};
use eyeward::{CameraId, RtspSource};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

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
    let unreachable = |why: String| {
        Error::new(
            ErrorKind::FailedPrecondition,
            format!("camera connect: {why}"),
        )
    };
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
        .await
        .map_err(|_| unreachable("timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let offered = loopback::offer(camera, move |local| bridge(local, tcp, ip, camera)).await?;
    let mut url =
        url::Url::parse(source.url()).map_err(|e| Error::internal("camera URL").with_source(e))?;
    // Cannot fail: an rtsp:// URL with a host takes an IP host and a port.
    let _ = url.set_ip_host(IpAddr::from([127, 0, 0, 1]));
    let _ = url.set_port(Some(offered.port));
    Ok((url.into(), offered))
}

/// Passes the RTSP client's requests to the camera and the camera's replies back, each through
/// a guard, putting the relay's own UDP sockets between them when the client asks for UDP;
/// until either side ends or the camera's stream is out of bounds.
async fn bridge(client: TcpStream, camera_tcp: TcpStream, source: IpAddr, camera: CameraId) {
    let Ok(camera_facing) = camera_tcp.local_addr().map(|a| a.ip()) else {
        return;
    };
    let (refusals, mut refused) = mpsc::channel(1);
    // Both ways touch it, never across an await.
    let media = Mutex::new(UdpMedia {
        camera: source,
        camera_facing,
        pending: HashMap::new(),
        forwarders: JoinSet::new(),
        refusals,
    });
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut camera_rx, mut camera_tx) = camera_tcp.into_split();
    let requests = guarded_copy(&mut client_rx, &mut camera_tx, |head, out| {
        media
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .request(head, out)
    });
    let replies = guarded_copy(&mut camera_rx, &mut client_tx, |head, out| {
        media
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reply(head, out)
    });
    let refusal = tokio::select! {
        r = requests => r,
        r = replies => r,
        Some(r) = refused.recv() => Err(r),
    };
    if let Err(refused) = refusal {
        tracing::warn!(camera = camera.0, %refused, "camera connection closed");
    }
}

/// Copies RTSP from `rx` to `tx` through a [`FrameGuard`] whose heads go through `rewrite`,
/// until `rx` ends (`Ok`) or the guard refuses the stream.
async fn guarded_copy(
    rx: &mut OwnedReadHalf,
    tx: &mut OwnedWriteHalf,
    mut rewrite: impl FnMut(&[u8], &mut Vec<u8>) -> Result<(), Refused>,
) -> Result<(), Refused> {
    let mut guard = FrameGuard::new(MAX_FRAME_BYTES);
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(buf.len());
    let ended = loop {
        let n = match rx.read(&mut buf).await {
            Ok(0) | Err(_) => break Ok(()),
            Ok(n) => n,
        };
        out.clear();
        if let Err(refused) = guard.feed_into(&buf[..n], &mut out, &mut rewrite) {
            break Err(refused);
        }
        if tx.write_all(&out).await.is_err() {
            break Ok(());
        }
    };
    let _ = tx.shutdown().await;
    ended
}

/// A UDP stream the client asked for, between its SETUP request and the reply.
struct PendingSetup {
    /// The client's own ports.
    client: Ports,
    /// The relay's sockets facing the camera (named to it as the client's).
    camera_facing: (UdpSocket, UdpSocket),
    /// The relay's sockets facing the client, on loopback (named to it as the camera's).
    client_facing: (UdpSocket, UdpSocket),
}

/// The UDP media of a direct camera's RTSP connection: the relay's sockets stand between the
/// camera and retina, so that what reaches retina comes from the checked address and is
/// bounded per picture, as over TCP.
struct UdpMedia {
    /// The camera's checked address.
    camera: IpAddr,
    /// The relay's address on the way to the camera.
    camera_facing: IpAddr,
    /// By `CSeq`.
    pending: HashMap<String, PendingSetup>,
    /// The packets' ways; they end with the connection.
    forwarders: JoinSet<()>,
    refusals: mpsc::Sender<Refused>,
}

impl UdpMedia {
    /// A request on its way to the camera: a SETUP asking for UDP names the relay's ports.
    fn request(&mut self, head: &[u8], out: &mut Vec<u8>) -> Result<(), Refused> {
        let Some((cseq, client)) = transport::udp_setup_request(head) else {
            return pass_head(head, out);
        };
        // At most one stream is set up at a time: the client waits for each reply.
        self.pending.clear();
        let no_ports = |e: std::io::Error| Refused::NoUdpPorts(e.to_string());
        let camera_facing = udp_pair(self.camera_facing).map_err(no_ports)?;
        let client_facing = udp_pair(Ipv4Addr::LOCALHOST.into()).map_err(no_ports)?;
        out.extend(transport::with_client_ports(
            head,
            ports_of(&camera_facing).map_err(no_ports)?,
        ));
        self.pending.insert(
            cseq,
            PendingSetup {
                client,
                camera_facing,
                client_facing,
            },
        );
        Ok(())
    }

    /// A reply on its way to the client: the answer to a UDP SETUP names the relay's loopback
    /// ports, and the packets start their way; every reply names the checked address.
    fn reply(&mut self, head: &[u8], out: &mut Vec<u8>) -> Result<(), Refused> {
        let answered = transport::udp_setup_reply(head)
            .and_then(|(cseq, server)| Some((self.pending.remove(&cseq)?, server)));
        let Some((setup, server)) = answered else {
            out.extend(transport::with_source(head, self.camera, None));
            return Ok(());
        };
        let no_ports = |e: std::io::Error| Refused::NoUdpPorts(e.to_string());
        let loopback: IpAddr = Ipv4Addr::LOCALHOST.into();
        let client_facing_ports = ports_of(&setup.client_facing).map_err(no_ports)?;
        let start = || -> std::io::Result<()> {
            let (to_camera_rtp, to_camera_rtcp) = &setup.camera_facing;
            to_camera_rtp.connect((self.camera, server.rtp))?;
            to_camera_rtcp.connect((self.camera, server.rtcp))?;
            let (to_client_rtp, to_client_rtcp) = &setup.client_facing;
            to_client_rtp.connect((loopback, setup.client.rtp))?;
            to_client_rtcp.connect((loopback, setup.client.rtcp))?;
            Ok(())
        };
        start().map_err(no_ports)?;
        let tokio_socket = |s: UdpSocket| -> Result<Arc<tokio::net::UdpSocket>, Refused> {
            Ok(Arc::new(
                tokio::net::UdpSocket::from_std(s).map_err(no_ports)?,
            ))
        };
        let (camera_rtp, camera_rtcp) = setup.camera_facing;
        let (client_rtp, client_rtcp) = setup.client_facing;
        let (camera_rtp, camera_rtcp) = (tokio_socket(camera_rtp)?, tokio_socket(camera_rtcp)?);
        let (client_rtp, client_rtcp) = (tokio_socket(client_rtp)?, tokio_socket(client_rtcp)?);
        let refusals = self.refusals.clone();
        let mut pictures = PictureBound::new(MAX_FRAME_BYTES);
        let to_client = {
            let (from, to) = (camera_rtp.clone(), client_rtp.clone());
            forward(from, to, move |packet| {
                pictures.count(0, packet, packet.len())
            })
        };
        self.forwarders.spawn(async move {
            if let Err(refused) = to_client.await {
                let _ = refusals.try_send(refused);
            }
        });
        for (from, to) in [
            (camera_rtcp.clone(), client_rtcp.clone()),
            (client_rtp, camera_rtp),
            (client_rtcp, camera_rtcp),
        ] {
            self.forwarders.spawn(async move {
                let _ = forward(from, to, |_| Ok(())).await;
            });
        }
        out.extend(transport::with_source(
            head,
            loopback,
            Some((setup.client, client_facing_ports)),
        ));
        Ok(())
    }
}

/// Passes each datagram `from` receives on `to`, once `check` takes it; ends when `check`
/// refuses one. Sending or receiving may fail for a while (ICMP errors of a peer not yet
/// listening); that is no reason to stop.
async fn forward(
    from: Arc<tokio::net::UdpSocket>,
    to: Arc<tokio::net::UdpSocket>,
    mut check: impl FnMut(&[u8]) -> Result<(), Refused>,
) -> Result<(), Refused> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let Ok(n) = from.recv(&mut buf).await else {
            continue;
        };
        check(&buf[..n])?;
        let _ = to.send(&buf[..n]).await;
    }
}

/// Two UDP sockets on `ip` at neighbouring ports, the first even (RTP's, RFC 3550 §11), both
/// non-blocking.
fn udp_pair(ip: IpAddr) -> std::io::Result<(UdpSocket, UdpSocket)> {
    let mut last = None;
    for _ in 0..32 {
        let rtp = UdpSocket::bind((ip, 0))?;
        let port = rtp.local_addr()?.port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        match UdpSocket::bind((ip, port + 1)) {
            Ok(rtcp) => {
                rtp.set_nonblocking(true)?;
                rtcp.set_nonblocking(true)?;
                return Ok((rtp, rtcp));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no neighbouring even and odd ports")))
}

fn ports_of((rtp, rtcp): &(UdpSocket, UdpSocket)) -> std::io::Result<Ports> {
    Ok(Ports {
        rtp: rtp.local_addr()?.port(),
        rtcp: rtcp.local_addr()?.port(),
    })
}
