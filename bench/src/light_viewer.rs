//! Light load viewers for the live-video benchmark. Each does ICE and DTLS with webrtc-rs's
//! sans-I/O `rtc`, as a browser would, and from then on only counts the SRTP packets it is
//! sent by their plaintext RTP headers (sequence numbers tell what was lost) without
//! decrypting them. A webrtc-rs 0.17 viewer decrypts and depacketizes every packet on an
//! async path and costs more than the relay it measures; these let the load client drive
//! hundreds of viewers on one core and leave the other to the system under test.
//!
//! A viewer reaches eyeward by one of three [`Route`]s, as browsers do: UDP, ICE-TCP to the
//! relay's TCP port (RFC 6544, datagrams framed by RFC 4571), or through a TURN server's
//! relayed address (rtc's sans-I/O TURN client, with a channel bound as browsers bind one).
//! `rtc` itself always believes it talks UDP to the relay's UDP candidate; the route carries
//! its datagrams.

use crate::viewer::{Eyeward, Janus};
use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};

/// What a viewer counted.
#[derive(Default)]
struct Counts {
    packets: AtomicU64,
    bytes: AtomicU64,
    /// Gaps in the sequence numbers.
    lost: AtomicU64,
}

/// One joined light viewer; dropping it stops it (without telling the server).
pub struct LightViewer {
    counts: Arc<Counts>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    leave: Leave,
}

enum Leave {
    Whep(String),
    Janus(u64),
}

impl LightViewer {
    /// RTP packets received so far.
    pub fn packets(&self) -> u64 {
        self.counts.packets.load(Ordering::Relaxed)
    }

    /// SRTP packet bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.counts.bytes.load(Ordering::Relaxed)
    }

    /// Packets missing from the sequence so far.
    pub fn lost(&self) -> u64 {
        self.counts.lost.load(Ordering::Relaxed)
    }

    /// Joins `camera` over WHEP, from a socket on `ip`, by `route`.
    pub async fn join_eyeward(
        eyeward: &Eyeward,
        camera: i64,
        ip: IpAddr,
        route: Route,
    ) -> Result<LightViewer> {
        let socket = UdpSocket::bind((ip, 0)).await?;
        let mut pc = peer_connection()?;
        pc.add_transceiver_from_kind(RtpCodecKind::Video, None)?;
        let offer = pc.create_offer(None)?;
        pc.set_local_description(Instant::now(), offer)?;
        let sdp = with_candidate(&mut pc, socket.local_addr()?)?;
        let answer = eyeward.whep(camera, sdp).await?;
        let relay = candidate(&answer.sdp, "udp").context("no UDP candidate")?;
        let link = match route {
            Route::Udp => Link::Udp(socket),
            Route::IceTcp => {
                let address = candidate(&answer.sdp, "tcp").context("no ICE-TCP candidate")?;
                Link::tcp(
                    TcpStream::connect(address).await?,
                    socket.local_addr()?,
                    relay,
                )
            }
            Route::Turn => Link::turn(socket, &answer.links, relay).await?,
        };
        pc.set_remote_description(Instant::now(), RTCSessionDescription::answer(answer.sdp)?)?;
        Ok(LightViewer::run(pc, link, Leave::Whep(answer.location)))
    }

    /// Joins Janus streaming `mountpoint`, from a socket on `ip`.
    pub async fn join_janus(janus: &Janus, mountpoint: u64, ip: IpAddr) -> Result<LightViewer> {
        let socket = UdpSocket::bind((ip, 0)).await?;
        let (handle, offer) = janus.watch(mountpoint).await?;
        let mut pc = peer_connection()?;
        pc.set_remote_description(Instant::now(), RTCSessionDescription::offer(offer)?)?;
        let answer = pc.create_answer(None)?;
        pc.set_local_description(Instant::now(), answer)?;
        let sdp = with_candidate(&mut pc, socket.local_addr()?)?;
        janus.start(handle, sdp).await?;
        Ok(LightViewer::run(
            pc,
            Link::Udp(socket),
            Leave::Janus(handle),
        ))
    }

    /// Ends the viewer's session at eyeward.
    pub async fn leave_eyeward(self, eyeward: &Eyeward) -> Result<()> {
        if let Leave::Whep(location) = &self.leave {
            eyeward.end(location).await?;
        }
        self.stop().await;
        Ok(())
    }

    /// Ends the viewer's session at Janus.
    pub async fn leave_janus(self, janus: &Janus) -> Result<()> {
        if let Leave::Janus(handle) = self.leave {
            janus.detach(handle).await?;
        }
        self.stop().await;
        Ok(())
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }

    fn run(pc: RTCPeerConnection, link: Link, leave: Leave) -> LightViewer {
        let counts = Arc::new(Counts::default());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(drive(pc, link, counts.clone(), stopped));
        LightViewer {
            counts,
            stop: Some(stop),
            task,
            leave,
        }
    }
}

impl Drop for LightViewer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn peer_connection() -> Result<RTCPeerConnection> {
    let mut media = MediaEngine::default();
    media.register_default_codecs()?;
    Ok(RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media)
        .build(Instant::now())?)
}

/// Adds the socket's address as the one host candidate; the local SDP with it.
fn with_candidate(pc: &mut RTCPeerConnection, addr: SocketAddr) -> Result<String> {
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()?;
    pc.add_local_candidate(RTCIceCandidate::from(&candidate).to_json()?)?;
    Ok(pc.local_description().context("no local description")?.sdp)
}

/// RTP, not RTCP, STUN or DTLS (RFC 7983: first byte 128–191; RTCP's packet types 192–223).
fn is_rtp(datagram: &[u8]) -> bool {
    matches!(datagram, [128..=191, second, ..] if !(192..=223).contains(second))
        && datagram.len() >= 12
}

/// Runs the connection: everything goes through `rtc` until it is connected, then RTP is
/// only counted.
async fn drive(
    mut pc: RTCPeerConnection,
    mut link: Link,
    counts: Arc<Counts>,
    mut stopped: oneshot::Receiver<()>,
) {
    let Some(local) = link.local_addr() else {
        return;
    };
    let mut buf = vec![0u8; 2048];
    let mut connected = false;
    let mut last_seq: Option<u16> = None;
    loop {
        while let Some(out) = pc.poll_write() {
            link.send(&out.message, out.transport.peer_addr).await;
        }
        while let Some(event) = pc.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                match state {
                    RTCPeerConnectionState::Connected => connected = true,
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => return,
                    _ => {}
                }
            }
        }
        while pc.poll_read().is_some() {}
        let wake = [pc.poll_timeout(), link.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        tokio::select! {
            received = link.recv(&mut buf) => {
                let Some((n, from)) = received else { return };
                let datagram = &buf[..n];
                if connected && is_rtp(datagram) {
                    let seq = u16::from_be_bytes([datagram[2], datagram[3]]);
                    if let Some(last) = last_seq {
                        let gap = seq.wrapping_sub(last).wrapping_sub(1);
                        // A packet resent or reordered comes from behind: not a gap.
                        if gap < 0x8000 {
                            counts.lost.fetch_add(u64::from(gap), Ordering::Relaxed);
                        }
                    }
                    if last_seq.is_none_or(|last| seq.wrapping_sub(last) < 0x8000) {
                        last_seq = Some(seq);
                    }
                    counts.packets.fetch_add(1, Ordering::Relaxed);
                    counts.bytes.fetch_add(n as u64, Ordering::Relaxed);
                    continue;
                }
                if n == 0 {
                    continue; // the route's own traffic (TURN's), nothing for rtc
                }
                let _ = pc.handle_read(TaggedBytesMut {
                    now: Instant::now(),
                    transport: TransportContext {
                        local_addr: local,
                        peer_addr: from,
                        ecn: None,
                        transport_protocol: TransportProtocol::UDP,
                    },
                    message: BytesMut::from(datagram),
                });
            }
            () = sleep_until(wake) => {
                let now = Instant::now();
                let _ = pc.handle_timeout(now);
                link.handle_timeout(now).await;
            }
            _ = &mut stopped => {
                let _ = pc.close();
                while let Some(out) = pc.poll_write() {
                    link.send(&out.message, out.transport.peer_addr).await;
                }
                return;
            }
        }
    }
}

/// The relay's host candidate over `transport` (`udp`, or `tcp`: passive) in its answer.
fn candidate(sdp: &str, transport: &str) -> Option<SocketAddr> {
    sdp.lines().find_map(|l| {
        let fields: Vec<&str> = l.strip_prefix("a=candidate:")?.split(' ').collect();
        match fields.as_slice() {
            [_, "1", t, _, ip, port, "typ", "host", ..] if t.eq_ignore_ascii_case(transport) => {
                Some(SocketAddr::new(ip.parse().ok()?, port.parse().ok()?))
            }
            _ => None,
        }
    })
}

/// How a light viewer reaches the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Udp,
    /// To the relay's TCP port (ICE-TCP), as a browser behind a firewall that drops UDP.
    IceTcp,
    /// Through the TURN server the relay's answer names (its `Link` header), over UDP.
    Turn,
}

/// What carries a viewer's datagrams (see [`Route`]).
enum Link {
    Udp(UdpSocket),
    Tcp {
        /// Datagrams read off the connection, by a task of their own.
        frames: mpsc::Receiver<Vec<u8>>,
        writer: OwnedWriteHalf,
        /// The viewer's UDP candidate, where `rtc` believes its datagrams come from.
        local: SocketAddr,
        /// The relay's UDP candidate, where `rtc` believes its datagrams go.
        relay: SocketAddr,
    },
    Turn(Box<Turn>),
}

/// A TURN allocation the viewer's datagrams go through.
struct Turn {
    socket: UdpSocket,
    client: rtc::turn::client::Client,
    server: SocketAddr,
    relayed: SocketAddr,
}

/// The most datagrams read off an ICE-TCP connection and not yet handled.
const TCP_BACKLOG: usize = 1024;
/// How long a TURN allocation may take to set up.
const TURN_SETUP: std::time::Duration = std::time::Duration::from_secs(10);

impl Link {
    fn tcp(stream: TcpStream, local: SocketAddr, relay: SocketAddr) -> Link {
        let _ = stream.set_nodelay(true);
        let (mut reader, writer) = stream.into_split();
        let (tx, frames) = mpsc::channel(TCP_BACKLOG);
        tokio::spawn(async move {
            let mut frame = vec![0u8; usize::from(u16::MAX)];
            loop {
                let Ok(len) = reader.read_u16().await else {
                    return;
                };
                let frame = &mut frame[..usize::from(len)];
                if reader.read_exact(frame).await.is_err() || tx.send(frame.to_vec()).await.is_err()
                {
                    return;
                }
            }
        });
        Link::Tcp {
            frames,
            writer,
            local,
            relay,
        }
    }

    /// Allocates on the TURN server the `links` name, and lets `relay` send to it.
    async fn turn(socket: UdpSocket, links: &[String], relay: SocketAddr) -> Result<Link> {
        let server = crate::viewer::ice_servers(links)
            .into_iter()
            .find(|s| s.urls.iter().any(|u| u.starts_with("turn:")))
            .context("the answer names no TURN server")?;
        let address = server.urls[0]
            .trim_start_matches("turn:")
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned();
        let client = rtc::turn::client::Client::new(
            rtc::turn::client::ClientConfig {
                turn_serv_addr: address.clone(),
                local_addr: socket.local_addr()?,
                transport_protocol: TransportProtocol::UDP,
                username: server.username,
                password: server.credential,
                ..Default::default()
            },
            rtc::crypto::default_provider()?,
        )?;
        let mut turn = Turn {
            socket,
            client,
            server: address.parse()?,
            // Until the allocation names it.
            relayed: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        tokio::time::timeout(TURN_SETUP, turn.set_up(relay))
            .await
            .context("TURN allocation timed out")??;
        Ok(Link::Turn(Box::new(turn)))
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Link::Udp(socket) => socket.local_addr().ok(),
            Link::Tcp { local, .. } => Some(*local),
            Link::Turn(turn) => turn.socket.local_addr().ok(),
        }
    }

    /// Sends `datagram` on to `to` (the relay); a failure is a loss, as on the wire.
    async fn send(&mut self, datagram: &[u8], to: SocketAddr) {
        match self {
            Link::Udp(socket) => {
                let _ = socket.send_to(datagram, to).await;
            }
            Link::Tcp { writer, .. } => {
                let Ok(len) = u16::try_from(datagram.len()) else {
                    return;
                };
                let mut framed = Vec::with_capacity(2 + datagram.len());
                framed.extend_from_slice(&len.to_be_bytes());
                framed.extend_from_slice(datagram);
                let _ = writer.write_all(&framed).await;
            }
            Link::Turn(turn) => {
                let now = Instant::now();
                if let Ok(mut relay) = turn.client.relay(turn.relayed) {
                    let _ = relay.send_to(now, datagram, to);
                }
                turn.flush().await;
            }
        }
    }

    /// The next datagram for `rtc` into `buf`: its length and who sent it (length 0: the
    /// route's own traffic, handled). `None` once the route is gone. Cancel-safe.
    async fn recv(&mut self, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
        match self {
            Link::Udp(socket) => socket.recv_from(buf).await.ok(),
            Link::Tcp { frames, relay, .. } => {
                let frame = frames.recv().await?;
                let n = frame.len().min(buf.len());
                buf[..n].copy_from_slice(&frame[..n]);
                Some((n, *relay))
            }
            Link::Turn(turn) => turn.recv(buf).await,
        }
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        match self {
            Link::Turn(turn) => turn.client.poll_timeout(),
            _ => None,
        }
    }

    async fn handle_timeout(&mut self, now: Instant) {
        if let Link::Turn(turn) = self {
            let _ = turn.client.handle_timeout(now);
            turn.flush().await;
        }
    }
}

impl Turn {
    /// Allocates, then permits `peer`; the relayed address is kept.
    async fn set_up(&mut self, peer: SocketAddr) -> Result<()> {
        use rtc::turn::client::Event;
        self.client.allocate(Instant::now())?;
        let mut buf = vec![0u8; 2048];
        loop {
            self.flush().await;
            while let Some(event) = self.client.poll_event() {
                match event {
                    Event::AllocateResponse(_, relayed) => {
                        self.relayed = relayed;
                        self.client
                            .relay(relayed)?
                            .create_permission(Instant::now(), peer)?;
                    }
                    Event::CreatePermissionResponse(..) => return Ok(()),
                    Event::AllocateError(_, e) | Event::CreatePermissionError(_, e) => {
                        bail!("TURN: {e}")
                    }
                    Event::TransactionTimeout(_) => bail!("TURN: no answer"),
                    _ => {}
                }
            }
            self.flush().await;
            let wake = self.client.poll_timeout();
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => {
                    let (n, from) = received?;
                    self.handle(&buf[..n], from);
                }
                () = sleep_until(wake) => {
                    self.client.handle_timeout(Instant::now())?;
                }
            }
        }
    }

    fn handle(&mut self, datagram: &[u8], from: SocketAddr) {
        let _ = self.client.handle_read(TaggedBytesMut {
            now: Instant::now(),
            transport: TransportContext {
                local_addr: self.socket.local_addr().unwrap_or(from),
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(datagram),
        });
    }

    /// Sends what the TURN client has for the server.
    async fn flush(&mut self) {
        while let Some(out) = self.client.poll_write() {
            let _ = self.socket.send_to(&out.message, self.server).await;
        }
    }

    /// A datagram from the server: what a peer sent, unwrapped into `buf`.
    async fn recv(&mut self, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
        let (n, from) = self.socket.recv_from(buf).await.ok()?;
        // The client copies what it keeps: `buf` is free for the unwrapped datagram after.
        self.handle(&buf[..n], from);
        self.flush().await;
        while let Some(event) = self.client.poll_event() {
            if let rtc::turn::client::Event::DataIndicationOrChannelData(_, peer, data) = event {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                return Some((n, peer));
            }
        }
        Some((0, from))
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// Fails unless every one of `viewers` has received video within `within`.
pub async fn all_receiving(viewers: &[LightViewer], within: std::time::Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while viewers.iter().any(|v| v.packets() == 0) {
        if Instant::now() > deadline {
            let silent = viewers.iter().filter(|v| v.packets() == 0).count();
            bail!("{silent} of {} viewers got no video", viewers.len());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(())
}
