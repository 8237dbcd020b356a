//! Light load viewers for the live-video benchmark. Each does ICE and DTLS with webrtc-rs's
//! sans-I/O `rtc`, as a browser would, and from then on only counts the SRTP packets it is
//! sent by their plaintext RTP headers (sequence numbers tell what was lost) without
//! decrypting them. A webrtc-rs 0.17 viewer decrypts and depacketizes every packet on an
//! async path and costs more than the relay it measures; these let the load client drive
//! hundreds of viewers on one core and leave the other to the system under test.

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
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

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

    /// Joins `camera` over WHEP, from a socket on `ip`.
    pub async fn join_eyeward(eyeward: &Eyeward, camera: i64, ip: IpAddr) -> Result<LightViewer> {
        let socket = UdpSocket::bind((ip, 0)).await?;
        let mut pc = peer_connection()?;
        pc.add_transceiver_from_kind(RtpCodecKind::Video, None)?;
        let offer = pc.create_offer(None)?;
        pc.set_local_description(Instant::now(), offer)?;
        let sdp = with_candidate(&mut pc, socket.local_addr()?)?;
        let answer = eyeward.whep(camera, sdp).await?;
        pc.set_remote_description(Instant::now(), RTCSessionDescription::answer(answer.sdp)?)?;
        Ok(LightViewer::run(pc, socket, Leave::Whep(answer.location)))
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
        Ok(LightViewer::run(pc, socket, Leave::Janus(handle)))
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

    fn run(pc: RTCPeerConnection, socket: UdpSocket, leave: Leave) -> LightViewer {
        let counts = Arc::new(Counts::default());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(drive(pc, socket, counts.clone(), stopped));
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
    socket: UdpSocket,
    counts: Arc<Counts>,
    mut stopped: oneshot::Receiver<()>,
) {
    let local = match socket.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let mut buf = vec![0u8; 2048];
    let mut connected = false;
    let mut last_seq: Option<u16> = None;
    loop {
        while let Some(out) = pc.poll_write() {
            let _ = socket.send_to(&out.message, out.transport.peer_addr).await;
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
        let wake = pc.poll_timeout();
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let Ok((n, from)) = received else { return };
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
                let _ = pc.handle_timeout(Instant::now());
            }
            _ = &mut stopped => {
                let _ = pc.close();
                while let Some(out) = pc.poll_write() {
                    let _ = socket.send_to(&out.message, out.transport.peer_addr).await;
                }
                return;
            }
        }
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
