//! One viewer's WebRTC connection, sans I/O, built on the layers of webrtc-rs's `rtc` that
//! leave the media path to the relay: ICE lite ([`IceLite`], over rtc's STUN), rtc's DTLS
//! endpoint for the handshake, and rtc's SRTP contexts keyed from it. Each RTP packet is
//! written, encrypted and appended to the viewer's batch in one pass, with no queue or
//! handler in between. It opens no socket and reads no clock: datagrams, frames and the time
//! come in through its methods, and what it wants sent comes out of [`Peer::poll_transmit`]
//! as batches of equal-sized datagrams to one address, which the caller hands to the kernel
//! in one system call (UDP GSO).
//!
//! What it sends:
//! - the camera's cached group of pictures first, re-stamped [`CACHED_FRAME_TICKS`] apart, so
//!   the browser has a decodable picture at once and reaches the live edge within a few frames;
//! - live frames with the camera's own spacing, each once, in order, and only when it can be
//!   decoded: after a gap (a lagging viewer, a camera restart) it waits for the next keyframe;
//! - packets the viewer reports lost (NACK), again, from the frames it sent (their payloads
//!   are the camera's, shared by every viewer: the history holds references, not copies);
//! - on a keyframe request (PLI, FIR), which an RTSP camera cannot be asked for, the caller is
//!   told at most once per [`KEYFRAME_REQUEST_INTERVAL`] and answers from the camera's cache;
//! - the camera's sound, while the viewer listens, on a stream of its own;
//! - a sender report for each stream every [`REPORT_INTERVAL`]: each ties its RTP clock to
//!   when the relay had that moment of the camera, on one clock for both, which is what the
//!   browser keeps sound and pictures in step by. A browser begins to once it has two reports
//!   of a stream, so when sound starts (or restarts) a report goes out at once and
//!   [`QUICK_REPORTS`] more follow [`QUICK_REPORT_INTERVAL`] apart.
//!
//! What it takes: the viewer's speech (Opus, on the sound's section when the viewer's offer
//! sends there), decrypted and held for the caller ([`Peer::poll_speech`]), a bounded few.

use super::ice::{IceLite, Path};
use super::sdp::{self, Offer};
use crate::fanout::{SoundCodec, SoundPacket};
use crate::ingest::Frame;
use crate::talk::Speech;
use bytes::BytesMut;
use rtc::crypto::{HashAlgorithm, RTCCryptoProvider};
use rtc::dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType};
use rtc::dtls::endpoint::{Endpoint, EndpointEvent};
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::peer_connection::certificate::RTCCertificate;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
pub use rtc::shared::TransportProtocol;
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// RTP clock ticks (90 kHz) between the cached frames a session starts with: 1 ms.
pub const CACHED_FRAME_TICKS: u32 = 90;
/// Ticks before a frame that follows no frame of the same camera session: 1/15 s.
const DEFAULT_FRAME_TICKS: u32 = 6_000;
/// The longest gap kept between two frames (1 s): a camera's stall is not replayed.
const MAX_FRAME_TICKS: i64 = 90_000;
/// Packets kept to answer NACKs: about two seconds of a 2 Mbit/s camera; older ones would
/// arrive too late to matter.
const HISTORY: usize = 512;
/// How often a viewer's keyframe requests are answered from the cache.
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_secs(1);
/// The most bytes one batch may hold: the kernel's limit for one segmented UDP send.
const MAX_BATCH_BYTES: usize = 65_000;
/// The viewer's speech packets held for the caller at most (a second of 20 ms packets);
/// older ones are dropped.
const SPEECH_HELD: usize = 50;
/// How often each stream's sender report goes out.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Reports that follow the one sent when sound starts quickly, and how far apart.
const QUICK_REPORTS: u8 = 2;
const QUICK_REPORT_INTERVAL: Duration = Duration::from_millis(150);
/// The video's RTP clock.
const VIDEO_CLOCK_RATE: u32 = 90_000;
/// Seconds from NTP's epoch (1900) to Unix's (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// What every viewer's connection shares: the relay's DTLS certificate and where browsers
/// reach it.
#[derive(Clone)]
pub struct PeerSettings {
    pub certificate: RTCCertificate,
    /// The relay's host candidates over UDP: each address browsers may send to, with the port.
    pub candidates: Vec<SocketAddr>,
    /// The same over ICE-TCP (passive: the browser connects).
    pub tcp_candidates: Vec<SocketAddr>,
    /// Datagrams one batch may hold (1 where the kernel cannot segment).
    pub max_segments: usize,
    /// The wall clock at a moment of the monotonic one: sender reports carry wall-clock time.
    pub wall_clock: (Instant, Duration),
}

/// Datagrams for one address, all `segment_size` long but the last, which may be shorter.
#[derive(Debug)]
pub struct Transmit {
    pub to: SocketAddr,
    /// The relay's address it goes out from (the candidate the viewer reached).
    pub from: SocketAddr,
    /// UDP, or ICE-TCP (each datagram framed on the viewer's connection).
    pub protocol: TransportProtocol,
    pub segment_size: usize,
    pub contents: Vec<u8>,
}

impl Transmit {
    /// The datagrams in the batch.
    pub fn datagrams(&self) -> impl Iterator<Item = &[u8]> {
        self.contents.chunks(self.segment_size.max(1))
    }
}

/// What the caller acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerEvent {
    /// Media can flow: send the cached frames.
    Connected,
    /// The connection failed or closed.
    Ended,
    /// The viewer asks for a keyframe: send the camera's current group of pictures.
    KeyframeWanted,
}

/// What became of a live frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Sent already (from the cache), or not decodable here: left out.
    Skipped,
    /// Handed to the caller's batches now.
    Sent,
    /// Waiting behind cached frames the pacer holds back.
    Paced,
}

/// A token bucket over frame bytes: a burst of [`PACE_BURST`] at once (a keyframe and more,
/// the first picture without delay), then [`PACE_RATE`]. It keeps a whole cached group of
/// pictures (a megabyte at 2 Mbit/s and 4 s between keyframes) from arriving in one burst
/// that overflows the viewer's socket buffer or its router's queue, which would lose the very
/// pictures it is meant to show at once. Live frames come at the camera's rate and pass.
struct Pacer {
    tokens: f64,
    at: Instant,
}

/// Bytes sent at once after a pause.
pub const PACE_BURST: usize = 256 * 1024;
/// Bytes a second after the burst: 40 Mbit/s, twenty times a 2 Mbit/s camera, so a 4 s group
/// of pictures is caught up on in about 200 ms.
pub const PACE_RATE: f64 = 5_000_000.0;

impl Pacer {
    fn new(now: Instant) -> Pacer {
        Pacer {
            tokens: PACE_BURST as f64,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * PACE_RATE).min(PACE_BURST as f64);
        self.at = self.at.max(now);
    }

    /// Whether `bytes` may go now (a frame larger than the burst goes when the bucket is
    /// full, and leaves it in debt).
    fn take(&mut self, now: Instant, bytes: usize) -> bool {
        self.refill(now);
        let bytes = bytes as f64;
        if self.tokens >= bytes.min(PACE_BURST as f64) {
            self.tokens -= bytes;
            true
        } else {
            false
        }
    }

    /// When `next` may go.
    fn next_release(&self, next: Option<&Arc<Frame>>) -> Option<Instant> {
        let needed = (next?.data.len() as f64).min(PACE_BURST as f64) - self.tokens;
        Some(self.at + Duration::from_secs_f64(needed.max(0.0) / PACE_RATE))
    }
}

/// A packet sent, kept to be sent again on a NACK.
#[derive(Clone)]
struct Sent {
    sequence_number: u16,
    timestamp: u32,
    frame: Arc<Frame>,
    index: usize,
}

/// The key of the viewer's one DTLS association in rtc's endpoint (which keys associations
/// by address): the viewer's address may change with its nominated path, the association
/// does not.
const DTLS_ASSOCIATION: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
/// Replayed SRTP and SRTCP packets recognised (RFC 3711's default window).
const REPLAY_WINDOW: usize = 64;

/// The SRTP keys of a connection whose handshake is done.
struct Srtp {
    /// Encrypts what the relay sends.
    outbound: Context,
    /// Decrypts the viewer's RTCP, and its speech.
    inbound: Context,
}

/// One viewer's connection (see the module's documentation).
pub struct Peer {
    crypto: Arc<dyn RTCCryptoProvider>,
    ice: IceLite,
    dtls: Endpoint,
    /// Where the viewer's DTLS last came from: where the relay's goes.
    dtls_path: Option<Path>,
    srtp: Option<Srtp>,
    ssrc: u32,
    payload_type: u8,
    sound: SoundTrack,
    /// The payload type of the viewer's speech, if its offer sends any.
    speech_payload_type: Option<u8>,
    speech: VecDeque<Speech>,
    /// The last live frame written: when the relay had it, and its RTP time.
    video_sync: Option<(Instant, u32)>,
    video_counts: Counts,
    /// When the next sender reports are due (once connected).
    next_report: Option<Instant>,
    wall_clock: (Instant, Duration),
    ufrag: String,
    max_segments: usize,
    ended: bool,
    /// The camera session (feed epoch) and timestamp of the last frame sent; `None` while
    /// waiting for a keyframe.
    last: Option<(u64, i64)>,
    sequence_number: u16,
    rtp_time: u32,
    history: Vec<Option<Sent>>,
    last_keyframe_request: Option<Instant>,
    /// Frames waiting for the pacer, with their ticks after the one before, and whether they
    /// are live (with the camera's spacing) rather than from the cache.
    queue: VecDeque<(Arc<Frame>, u32, bool)>,
    pacer: Pacer,
    /// An RTP packet before encryption: one buffer, reused.
    plain: Vec<u8>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<PeerEvent>,
    /// Packets sent again because the viewer reported them lost.
    packets_resent: u64,
}

/// Why an offer cannot be answered.
#[derive(Debug)]
pub struct AnswerError(pub String);

/// What a sender report counts: packets and payload bytes sent (RFC 3550 §6.4.1, modulo
/// 2^32).
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    packets: u32,
    octets: u32,
}

impl Counts {
    fn add(&mut self, payload: usize) {
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload as u32);
    }
}

/// The camera's sound on its way to this viewer.
struct SoundTrack {
    ssrc: u32,
    /// The payload type the viewer gave each format (none: the answer carries no sound).
    payload_types: Vec<(SoundCodec, u8)>,
    sequence_number: u16,
    /// Where the stream's RTP clock starts.
    first_rtp_time: u32,
    last: Option<SoundSent>,
    counts: Counts,
    /// Reports still to go out [`QUICK_REPORT_INTERVAL`] apart.
    quick_reports: u8,
}

/// The last sound packet sent.
#[derive(Debug, Clone, Copy)]
struct SoundSent {
    epoch: u64,
    codec: SoundCodec,
    /// Its timestamp from the feed, and the one it went out with.
    timestamp: i64,
    rtp_time: u32,
    received: Instant,
}

impl Peer {
    /// Answers a viewer's SDP `offer` (read by the caller): the connection and the SDP
    /// answer. The answer carries the relay's candidates (ICE lite: the browser checks, the
    /// relay answers), so there is nothing to gather and no wait.
    pub fn answer(
        settings: &PeerSettings,
        offer: &Offer,
        now: Instant,
    ) -> Result<(Peer, String), AnswerError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| AnswerError(format!("{what}: {e}"));
        let crypto = rtc::crypto::default_provider().map_err(|e| fail("crypto", &e))?;
        let certificate = &settings.certificate.dtls_certificate;
        let fingerprint = certificate
            .certificate
            .first()
            .ok_or_else(|| AnswerError("the relay has no certificate".to_owned()))
            .and_then(|c| {
                crypto
                    .crypto()
                    .hash(HashAlgorithm::Sha256, c.as_ref())
                    .map_err(|e| fail("fingerprint", &e))
            })?;
        let handshake = ConfigBuilder::default()
            .with_crypto_provider(crypto.clone())
            .with_certificates(vec![certificate.clone()])
            .with_srtp_protection_profiles(vec![
                SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
                SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
            ])
            // The viewer proves it holds the certificate its offer names: no one else can
            // take over the session with the ICE credentials alone.
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_insecure_skip_verify(true)
            .with_verify_peer_certificate(Some(certificate_check(
                crypto.clone(),
                offer.fingerprints.clone(),
            )))
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .build(false, None)
            .map_err(|e| fail("DTLS", &e))?;
        let ufrag = random_ice_chars(16);
        let pwd = random_ice_chars(32);
        let ssrc = rand::random::<u32>();
        let sound_ssrc = rand::random::<u32>();
        let answer = sdp::answer(
            offer,
            &sdp::Local {
                ice_ufrag: &ufrag,
                ice_pwd: &pwd,
                fingerprint: &fingerprint,
                ssrc,
                sound_ssrc,
                udp: &settings.candidates,
                tcp: &settings.tcp_candidates,
            },
        );
        let peer = Peer {
            ice: IceLite::new(now, &ufrag, &pwd, &offer.ice_ufrag),
            crypto,
            dtls: Endpoint::new(
                DTLS_ASSOCIATION,
                TransportProtocol::UDP,
                Some(Arc::new(handshake)),
            ),
            dtls_path: None,
            srtp: None,
            ssrc,
            payload_type: offer.payload_type,
            sound: SoundTrack {
                ssrc: sound_ssrc,
                payload_types: SoundCodec::ALL
                    .into_iter()
                    .filter_map(|c| Some((c, offer.sound_payload_type(c)?)))
                    .collect(),
                sequence_number: rand::random(),
                first_rtp_time: rand::random(),
                last: None,
                counts: Counts::default(),
                quick_reports: 0,
            },
            speech_payload_type: offer.speech_payload_type(),
            speech: VecDeque::new(),
            video_sync: None,
            video_counts: Counts::default(),
            next_report: None,
            wall_clock: settings.wall_clock,
            ufrag,
            max_segments: settings.max_segments.max(1),
            ended: false,
            last: None,
            sequence_number: rand::random(),
            rtp_time: rand::random(),
            history: vec![None; HISTORY],
            last_keyframe_request: None,
            queue: VecDeque::new(),
            pacer: Pacer::new(now),
            plain: Vec::with_capacity(1500),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            packets_resent: 0,
        };
        Ok((peer, answer))
    }

    /// The relay's ICE username fragment for this viewer: the viewer's connectivity checks
    /// carry it, which is how a shared socket tells viewers apart.
    pub fn ufrag(&self) -> &str {
        &self.ufrag
    }

    /// Packets sent again so far because the viewer reported them lost.
    pub fn packets_resent(&self) -> u64 {
        self.packets_resent
    }

    /// A datagram from the viewer at `from`, received on the relay's `local` address. What
    /// it is follows from its first byte (RFC 7983); what the relay cannot use (garbage, a
    /// replay, a stray, DTLS or RTCP from an address that passed no check) changes nothing.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        protocol: TransportProtocol,
        local: SocketAddr,
        from: SocketAddr,
        data: &[u8],
    ) {
        let path = Path {
            protocol,
            local,
            remote: from,
        };
        match data.first() {
            Some(0..=3) => {
                if let Some(response) = self.ice.handle_check(now, path, data, self.crypto.crypto())
                {
                    self.batch(path, &response);
                }
            }
            Some(20..=63) if self.ice.checked(path) => {
                self.dtls_path = Some(path);
                self.read_dtls(now, data);
            }
            Some(128..=191) if self.ice.checked(path) => match data.get(1) {
                Some(192..=223) => self.read_rtcp(now, data),
                Some(_) => self.read_rtp(data),
                None => {}
            },
            _ => {}
        }
    }

    /// When [`Peer::handle_timeout`] is due next.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if self.ended {
            return None;
        }
        let paced = self
            .pacer
            .next_release(self.queue.front().map(|(f, _, _)| f));
        [
            self.dtls.poll_timeout(&DTLS_ASSOCIATION),
            paced,
            Some(self.ice.expires()),
            self.next_report,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ended {
            return;
        }
        if now >= self.ice.expires() {
            // No nomination, or the browser's consent lapsed: it is gone.
            self.end();
            return;
        }
        // No association yet (or no more) has nothing to time out.
        let _ = self.dtls.handle_timeout(DTLS_ASSOCIATION, now);
        self.take_dtls_transmits();
        self.release(now);
        if self.next_report.is_some_and(|at| now >= at) {
            self.send_reports(now);
            let interval = if self.sound.quick_reports > 0 {
                self.sound.quick_reports -= 1;
                QUICK_REPORT_INTERVAL
            } else {
                REPORT_INTERVAL
            };
            self.next_report = Some(now + interval);
        }
    }

    /// The next batch to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<PeerEvent> {
        self.events.pop_front()
    }

    /// The next packet of the viewer's speech, oldest first.
    pub fn poll_speech(&mut self) -> Option<Speech> {
        self.speech.pop_front()
    }

    /// Sends cached frames (a keyframe and those after it) [`CACHED_FRAME_TICKS`] apart: the
    /// decoder shows the newest at once. They go out as fast as the [`Pacer`] lets them.
    pub fn send_cached(&mut self, now: Instant, frames: &[Arc<Frame>]) {
        for frame in frames {
            self.enqueue(frame, CACHED_FRAME_TICKS, false);
        }
        self.release(now);
    }

    /// Sends a live frame with the camera's own spacing, unless it was sent already (from the
    /// cache) or cannot be decoded (no keyframe since the last gap). It waits its turn behind
    /// cached frames the pacer holds back.
    pub fn send_live(&mut self, now: Instant, frame: &Arc<Frame>) -> Delivery {
        let ticks = match self.last {
            Some((epoch, ts)) if epoch == frame.epoch => {
                if frame.timestamp <= ts {
                    return Delivery::Skipped; // sent from the cache already
                }
                (frame.timestamp - ts).min(MAX_FRAME_TICKS) as u32
            }
            // A new camera session (it restarted) or a gap: only a keyframe can start again.
            _ if !frame.is_key => return Delivery::Skipped,
            _ => DEFAULT_FRAME_TICKS,
        };
        self.enqueue(frame, ticks, true);
        self.release(now);
        if self.queue.is_empty() {
            Delivery::Sent
        } else {
            Delivery::Paced
        }
    }

    /// Frames were lost on the way to this viewer (it lagged): what waits is dropped too,
    /// and the next frame sent is a keyframe.
    pub fn skip_to_keyframe(&mut self) {
        self.last = None;
        self.queue.clear();
    }

    fn enqueue(&mut self, frame: &Arc<Frame>, ticks: u32, live: bool) {
        self.queue.push_back((frame.clone(), ticks, live));
        self.last = Some((frame.epoch, frame.timestamp));
    }

    /// Writes the waiting frames the pacer lets through now.
    fn release(&mut self, now: Instant) {
        while let Some((frame, ticks, live)) = self.queue.front() {
            if !self.pacer.take(now, frame.data.len()) {
                break;
            }
            let (frame, ticks, live) = (frame.clone(), *ticks, *live);
            self.queue.pop_front();
            self.write(&frame, ticks);
            // Cached frames go out closer together than the camera made them: only live
            // ones say when a moment of the camera's video was.
            if live {
                self.video_sync = Some((frame.received, self.rtp_time));
            }
        }
    }

    /// Ends the connection (DTLS close); what that sends comes out of `poll_transmit`.
    pub fn close(&mut self, now: Instant) {
        let _ = self.dtls.close(now);
        self.take_dtls_transmits();
        self.end();
    }

    fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            self.queue.clear();
            self.events.push_back(PeerEvent::Ended);
        }
    }

    /// Writes `frame`'s shared payloads with this viewer's headers, `ticks` after the last.
    fn write(&mut self, frame: &Arc<Frame>, ticks: u32) {
        self.rtp_time = self.rtp_time.wrapping_add(ticks);
        for index in 0..frame.rtp_payloads.len() {
            let sent = Sent {
                sequence_number: self.sequence_number,
                timestamp: self.rtp_time,
                frame: frame.clone(),
                index,
            };
            self.sequence_number = self.sequence_number.wrapping_add(1);
            self.write_packet(&sent);
            let slot = usize::from(sent.sequence_number) % HISTORY;
            self.history[slot] = Some(sent);
        }
    }

    /// Writes packet `sent` of a frame with this viewer's video header.
    fn write_packet(&mut self, sent: &Sent) {
        let header = rtc::rtp::header::Header {
            version: 2,
            marker: sent.index + 1 == sent.frame.rtp_payloads.len(),
            payload_type: self.payload_type,
            sequence_number: sent.sequence_number,
            timestamp: sent.timestamp,
            ssrc: self.ssrc,
            ..Default::default()
        };
        let payload = &sent.frame.rtp_payloads[sent.index];
        if self.send_rtp(&header, payload) {
            self.video_counts.add(payload.len());
        }
    }

    /// Sends a packet of the camera's sound, if the viewer listens in its format: with the
    /// sound's own spacing, each once; after a new sound session (or another format) its
    /// clock goes on by the time between them.
    pub fn send_sound(&mut self, packet: &SoundPacket) {
        let Some(payload_type) = self
            .sound
            .payload_types
            .iter()
            .find(|(c, _)| *c == packet.codec)
            .map(|(_, pt)| *pt)
        else {
            return;
        };
        let (rtp_time, marker) = match self.sound.last {
            Some(last) if last.epoch == packet.epoch && last.codec == packet.codec => {
                if packet.timestamp <= last.timestamp {
                    return;
                }
                let ticks = (packet.timestamp - last.timestamp) as u32;
                (last.rtp_time.wrapping_add(ticks), false)
            }
            Some(last) => {
                let gap = packet.received.saturating_duration_since(last.received);
                let ticks = gap.as_secs_f64() * f64::from(packet.codec.clock_rate());
                (last.rtp_time.wrapping_add(ticks as u32), true)
            }
            // The first packet of a talkspurt is marked (RFC 3551 §4.1).
            None => (self.sound.first_rtp_time, true),
        };
        if marker {
            // The browser has this stream's reports soon (only once connected: before, the
            // reports' first time is still to be set).
            self.sound.quick_reports = QUICK_REPORTS;
            self.next_report = self.next_report.map(|at| at.min(packet.received));
        }
        let header = rtc::rtp::header::Header {
            version: 2,
            marker,
            payload_type,
            sequence_number: self.sound.sequence_number,
            timestamp: rtp_time,
            ssrc: self.sound.ssrc,
            ..Default::default()
        };
        self.sound.sequence_number = self.sound.sequence_number.wrapping_add(1);
        self.sound.last = Some(SoundSent {
            epoch: packet.epoch,
            codec: packet.codec,
            timestamp: packet.timestamp,
            rtp_time,
            received: packet.received,
        });
        if self.send_rtp(&header, &packet.payload) {
            self.sound.counts.add(packet.payload.len());
        }
    }

    /// Encrypts one packet into the batch for the viewer's path: the one it nominated, or
    /// until it has (a browser starts DTLS on the first pair that answers, and nominates a
    /// moment later) the one its DTLS came on. Before the handshake is done there is nowhere
    /// to send it: it is left out, as if lost on the wire (false).
    fn send_rtp(&mut self, header: &rtc::rtp::header::Header, payload: &[u8]) -> bool {
        let path = self.ice.nominated().or(self.dtls_path);
        let (Some(srtp), Some(path)) = (self.srtp.as_mut(), path) else {
            return false;
        };
        // The fixed header (RFC 3550 §5.1: no padding, extension or CSRC), then the payload.
        self.plain.clear();
        self.plain.push(0x80);
        self.plain
            .push(u8::from(header.marker) << 7 | header.payload_type & 0x7f);
        self.plain
            .extend_from_slice(&header.sequence_number.to_be_bytes());
        self.plain
            .extend_from_slice(&header.timestamp.to_be_bytes());
        self.plain.extend_from_slice(&header.ssrc.to_be_bytes());
        self.plain.extend_from_slice(payload);
        // Refused only past 2^48 packets under one key; the viewer would see it as loss.
        match srtp.outbound.encrypt_rtp_with_header(&self.plain, header) {
            Ok(packet) => {
                self.batch(path, &packet);
                true
            }
            Err(_) => false,
        }
    }

    /// A sender report for each stream that has sent a moment the relay knows the time of:
    /// its RTP clock carried on to `now`, and `now` on the wall clock.
    fn send_reports(&mut self, now: Instant) {
        let mut reports: Vec<Box<dyn rtc::rtcp::Packet>> = Vec::new();
        let ntp_time = self.ntp(now);
        let report = |ssrc, (at, rtp_time): (Instant, u32), clock_rate, counts: Counts| {
            let ticks = now.saturating_duration_since(at).as_secs_f64() * f64::from(clock_rate);
            Box::new(SenderReport {
                ssrc,
                ntp_time,
                rtp_time: rtp_time.wrapping_add(ticks as u32),
                packet_count: counts.packets,
                octet_count: counts.octets,
                ..Default::default()
            }) as Box<dyn rtc::rtcp::Packet>
        };
        if let Some(sync) = self.video_sync {
            reports.push(report(self.ssrc, sync, VIDEO_CLOCK_RATE, self.video_counts));
        }
        if let Some(last) = self.sound.last {
            let sync = (last.received, last.rtp_time);
            let rate = last.codec.clock_rate();
            reports.push(report(self.sound.ssrc, sync, rate, self.sound.counts));
        }
        let path = self.ice.nominated().or(self.dtls_path);
        let (Some(srtp), Some(path)) = (self.srtp.as_mut(), path) else {
            return;
        };
        if reports.is_empty() {
            return;
        }
        let Ok(plain) = rtc::rtcp::packet::marshal(&reports) else {
            return;
        };
        if let Ok(packet) = srtp.outbound.encrypt_rtcp(&plain) {
            self.batch(path, &packet);
        }
    }

    /// `at` on the wall clock, in NTP's format (RFC 3550 §4: seconds since 1900, then a
    /// binary fraction).
    fn ntp(&self, at: Instant) -> u64 {
        let (origin, wall) = self.wall_clock;
        let since = if at >= origin {
            wall + (at - origin)
        } else {
            wall.saturating_sub(origin - at)
        };
        let fraction = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
        ((since.as_secs() + NTP_UNIX_OFFSET) << 32) | fraction
    }

    fn read_dtls(&mut self, now: Instant, data: &[u8]) {
        let events = self
            .dtls
            .read(now, DTLS_ASSOCIATION, None, BytesMut::from(data))
            .unwrap_or_default();
        for event in events {
            match event {
                EndpointEvent::HandshakeComplete if self.srtp.is_none() => match self.keys() {
                    Some(srtp) => {
                        self.srtp = Some(srtp);
                        self.next_report = Some(now + REPORT_INTERVAL);
                        self.events.push_back(PeerEvent::Connected);
                    }
                    None => self.end(),
                },
                EndpointEvent::PeerClosed => self.end(),
                _ => {}
            }
        }
        self.take_dtls_transmits();
    }

    /// The SRTP keys exported from the finished handshake (RFC 5764 §4.2), with their
    /// profile.
    fn keying(&self) -> Option<(rtc::srtp::config::Config, ProtectionProfile)> {
        let state = self.dtls.get_connection_state(DTLS_ASSOCIATION)?;
        let profile = match state.srtp_protection_profile() {
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => ProtectionProfile::AeadAes128Gcm,
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => {
                ProtectionProfile::Aes128CmHmacSha1_80
            }
            _ => return None,
        };
        let mut config = rtc::srtp::config::Config {
            profile,
            ..Default::default()
        };
        let material = state
            .export_keying_material(
                rtc::srtp::config::LABEL_EXTRACTOR_DTLS_SRTP,
                &[],
                config.keying_material_len(),
            )
            .ok()?;
        config
            .set_session_keys_from_keying_material(material.as_ref(), state.is_client())
            .ok()?;
        Some((config, profile))
    }

    /// The SRTP contexts of the connection, once its handshake is done.
    fn keys(&self) -> Option<Srtp> {
        let (config, profile) = self.keying()?;
        let keys = &config.keys;
        let crypto = self.crypto.crypto();
        Some(Srtp {
            outbound: Context::new(
                &keys.local_master_key,
                &keys.local_master_salt,
                profile,
                None,
                None,
                crypto,
            )
            .ok()?,
            inbound: Context::new(
                &keys.remote_master_key,
                &keys.remote_master_salt,
                profile,
                Some(rtc::srtp::option::srtp_replay_protection(REPLAY_WINDOW)),
                Some(rtc::srtp::option::srtcp_replay_protection(REPLAY_WINDOW)),
                crypto,
            )
            .ok()?,
        })
    }

    /// Moves the DTLS endpoint's datagrams into batches, to where the viewer's DTLS is.
    fn take_dtls_transmits(&mut self) {
        while let Some(out) = self.dtls.poll_transmit() {
            if let Some(path) = self.dtls_path {
                self.batch(path, &out.message);
            }
        }
    }

    /// RTP from the viewer: its speech, if its offer said it would send some, is kept (the
    /// oldest dropped past [`SPEECH_HELD`]); anything else is left.
    fn read_rtp(&mut self, data: &[u8]) {
        let Some(pt) = self.speech_payload_type else {
            return;
        };
        if data.get(1).is_none_or(|b| b & 0x7f != pt) {
            return;
        }
        let Some(srtp) = self.srtp.as_mut() else {
            return;
        };
        let Ok(plain) = srtp.inbound.decrypt_rtp(data) else {
            return;
        };
        let Ok(packet) = <rtc::rtp::packet::Packet as rtc::shared::marshal::Unmarshal>::unmarshal(
            &mut plain.freeze(),
        ) else {
            return;
        };
        if packet.payload.is_empty() {
            return;
        }
        if self.speech.len() == SPEECH_HELD {
            self.speech.pop_front();
        }
        self.speech.push_back(Speech {
            timestamp: packet.header.timestamp,
            sequence_number: packet.header.sequence_number,
            payload: packet.payload,
        });
    }

    /// The viewer's RTCP: its requests are acted on, the rest (receiver reports) is read
    /// and left.
    fn read_rtcp(&mut self, now: Instant, data: &[u8]) {
        let Some(srtp) = self.srtp.as_mut() else {
            return;
        };
        let Ok(plain) = srtp.inbound.decrypt_rtcp(data) else {
            return;
        };
        let Ok(packets) = rtc::rtcp::packet::unmarshal(&mut plain.freeze()) else {
            return;
        };
        self.feedback(now, &packets);
    }

    /// Acts on the viewer's requests: NACKs are answered here, keyframe requests passed on.
    fn feedback(&mut self, now: Instant, packets: &[Box<dyn rtc::rtcp::Packet>]) {
        for packet in packets {
            let any = packet.as_any();
            if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                for pair in &nack.nacks {
                    for sequence_number in pair.packet_list() {
                        self.resend(sequence_number);
                    }
                }
            } else if any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() {
                let recent = self
                    .last_keyframe_request
                    .is_some_and(|t| now.saturating_duration_since(t) < KEYFRAME_REQUEST_INTERVAL);
                if !recent {
                    self.last_keyframe_request = Some(now);
                    self.events.push_back(PeerEvent::KeyframeWanted);
                }
            }
        }
    }

    /// Sends packet `sequence_number` again, if it is still in the history.
    fn resend(&mut self, sequence_number: u16) {
        let slot = usize::from(sequence_number) % HISTORY;
        let Some(sent) = self.history[slot]
            .as_ref()
            .filter(|s| s.sequence_number == sequence_number)
            .cloned()
        else {
            return;
        };
        self.write_packet(&sent);
        self.packets_resent += 1;
    }

    /// Appends a datagram to the last batch when it may go in the same send: same addresses,
    /// no longer than the batch's segments, the batch not closed by a shorter one, within the
    /// kernel's limits.
    fn batch(&mut self, path: Path, datagram: &[u8]) {
        let (from, to, protocol) = (path.local, path.remote, path.protocol);
        if let Some(last) = self.transmits.back_mut() {
            let segments = last.contents.len().div_ceil(last.segment_size.max(1));
            let open = last.contents.len() % last.segment_size.max(1) == 0;
            if last.to == to
                && last.from == from
                && last.protocol == protocol
                && open
                && datagram.len() <= last.segment_size
                && segments < self.max_segments
                && last.contents.len() + datagram.len() <= MAX_BATCH_BYTES
            {
                last.contents.extend_from_slice(datagram);
                return;
            }
        }
        let mut contents = Vec::with_capacity(datagram.len() * self.max_segments.min(8));
        contents.extend_from_slice(datagram);
        self.transmits.push_back(Transmit {
            to,
            from,
            protocol,
            segment_size: datagram.len(),
            contents,
        });
    }
}

/// Accepts the viewer's DTLS certificate only if its SHA-256 is one its offer named.
fn certificate_check(
    crypto: Arc<dyn RTCCryptoProvider>,
    fingerprints: Vec<Vec<u8>>,
) -> rtc::dtls::config::VerifyPeerCertificateFn {
    use rtc::shared::error::Error;
    Arc::new(
        move |certificates: &[Vec<u8>], _: &[rustls::pki_types::CertificateDer<'static>]| {
            let first = certificates.first().ok_or(Error::ErrNonCertificate)?;
            let hash = crypto
                .crypto()
                .hash(HashAlgorithm::Sha256, first)
                .map_err(|e| Error::Crypto(e.to_string()))?;
            if fingerprints.contains(&hash) {
                Ok(())
            } else {
                Err(Error::ErrNoMatchingCertificateFingerprint)
            }
        },
    )
}

/// `n` random characters of the ICE alphabet (RFC 8445 `ice-char`: letters and digits here).
fn random_ice_chars(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..n)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    //! The peer driven by hand: a browser-side rtc connection in the same thread, datagrams
    //! carried between the two by the test, time moved by the test. No socket, no sleep.

    use super::*;
    use rtc::peer_connection::configuration::RTCConfigurationBuilder;
    use rtc::peer_connection::configuration::media_engine::{
        MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_PCMU, MediaEngine,
    };
    use rtc::peer_connection::event::RTCPeerConnectionEvent;
    use rtc::peer_connection::message::RTCMessage;
    use rtc::peer_connection::sdp::RTCSessionDescription;
    use rtc::peer_connection::state::RTCPeerConnectionState;
    use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
    use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::NackPair;
    use rtc::rtp_transceiver::RTCRtpReceiverId;
    use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
    use rtc::sansio::Protocol;
    use rtc::shared::{TaggedBytesMut, TransportContext};

    /// A browser's media engine that takes H.264 (what Chromium offers first for it).
    fn h264_engine() -> MediaEngine {
        let mut media = MediaEngine::default();
        media
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: RTCRtpCodec {
                        mime_type: MIME_TYPE_H264.to_owned(),
                        clock_rate: 90_000,
                        channels: 0,
                        sdp_fmtp_line:
                            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
                                .to_owned(),
                        rtcp_feedback: ["nack", "pli"]
                            .iter()
                            .map(|fb| rtc::rtp_transceiver::rtp_sender::RTCPFeedback {
                                typ: "nack".to_owned(),
                                parameter: if *fb == "pli" { "pli" } else { "" }.to_owned(),
                            })
                            .collect(),
                    },
                    payload_type: 102,
                },
                RtpCodecKind::Video,
            )
            .expect("codec");
        media
    }

    /// The wall clock when the test starts (late 2027).
    const WALL_CLOCK: Duration = Duration::from_secs(1_820_000_000);

    /// An audio format at the payload type browsers give it: G.711 µ-law (0), which every
    /// browser takes, or Opus (111).
    fn add_audio(media: &mut MediaEngine, mime_type: &str, clock_rate: u32, payload_type: u8) {
        media
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: RTCRtpCodec {
                        mime_type: mime_type.to_owned(),
                        clock_rate,
                        channels: if mime_type == MIME_TYPE_OPUS { 2 } else { 0 },
                        sdp_fmtp_line: String::new(),
                        rtcp_feedback: Vec::new(),
                    },
                    payload_type,
                },
                RtpCodecKind::Audio,
            )
            .expect("codec");
    }

    const RELAY: &str = "10.0.0.1:3478";
    const BROWSER: &str = "10.0.0.2:50000";

    /// The relay's peer, a browser's connection to it, and the test's clock.
    struct Call {
        peer: Peer,
        browser: RTCPeerConnection,
        receiver: RTCRtpReceiverId,
        now: Instant,
        /// RTP the browser decrypted, in arrival order.
        received: Vec<rtc::rtp::Packet>,
        /// Sender reports seen on the wire (rtc's browser keeps them to itself), decrypted
        /// with the relay's own keys.
        reports: Vec<SenderReport>,
        /// Batches the peer handed out since the test last looked.
        batches: Vec<(usize, usize)>,
        events: Vec<PeerEvent>,
        /// Datagram numbers (counted over the whole call) the network loses.
        lose: Vec<usize>,
        carried: usize,
        browser_state: RTCPeerConnectionState,
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    fn frame(epoch: u64, timestamp: i64, is_key: bool, payloads: &[usize]) -> Arc<Frame> {
        let rtp_payloads: Vec<bytes::Bytes> = payloads
            .iter()
            .enumerate()
            .map(|(i, &len)| bytes::Bytes::from(vec![i as u8; len]))
            .collect();
        Arc::new(Frame {
            timestamp,
            is_key,
            data: bytes::Bytes::from(vec![0; payloads.iter().sum()]),
            rtp_payloads,
            received: eyeward::clock::monotonic(),
            epoch,
        })
    }

    impl Call {
        /// A browser offers to receive H.264; the peer answers; ICE and DTLS run to the end.
        fn connected() -> Call {
            Call::connected_with(false)
        }

        /// The same, the browser offering to receive sound too (`sound`, in G.711 µ-law).
        fn connected_with(sound: bool) -> Call {
            Call::connected_with_audio(if sound {
                &[(MIME_TYPE_PCMU, 8000, 0)]
            } else {
                &[]
            })
        }

        /// The same, the browser's audio section sending and receiving Opus and G.711 µ-law:
        /// it may speak.
        fn connected_speaking() -> Call {
            Call::connected_with_audio(&[(MIME_TYPE_OPUS, 48_000, 111), (MIME_TYPE_PCMU, 8000, 0)])
        }

        /// A browser offering video and, in an audio section that sends and receives, the
        /// `audio` formats (MIME type, clock rate, payload type).
        fn connected_with_audio(audio: &[(&str, u32, u8)]) -> Call {
            let now = eyeward::clock::monotonic();
            let mut media = h264_engine();
            for (mime_type, rate, pt) in audio {
                add_audio(&mut media, mime_type, *rate, *pt);
            }
            let sound = !audio.is_empty();
            let mut browser = RTCPeerConnectionBuilder::new()
                .with_configuration(RTCConfigurationBuilder::new().build())
                .with_media_engine(media)
                .build(now)
                .expect("browser");
            browser
                .add_transceiver_from_kind(RtpCodecKind::Video, None)
                .expect("transceiver");
            if sound {
                browser
                    .add_transceiver_from_kind(RtpCodecKind::Audio, None)
                    .expect("transceiver");
            }
            let offer = browser.create_offer(None).expect("offer");
            browser
                .set_local_description(now, offer)
                .expect("local offer");
            let candidate = CandidateHostConfig {
                base_config: CandidateConfig {
                    network: "udp".to_owned(),
                    address: addr(BROWSER).ip().to_string(),
                    port: addr(BROWSER).port(),
                    component: 1,
                    ..Default::default()
                },
                ..Default::default()
            }
            .new_candidate_host()
            .expect("candidate");
            browser
                .add_local_candidate(RTCIceCandidate::from(&candidate).to_json().expect("json"))
                .expect("add candidate");
            let offer = browser.local_description().expect("offer").sdp;
            let settings = PeerSettings {
                certificate: crate::whep::certificate().expect("certificate"),
                candidates: vec![addr(RELAY)],
                tcp_candidates: Vec::new(),
                max_segments: 64,
                wall_clock: (now, WALL_CLOCK),
            };
            // rtc's browser offers to send only with a track of its own: a speaking browser's
            // offer says it sends, and the answer it is given that the relay only does.
            let speaks = audio
                .iter()
                .any(|(mime_type, ..)| *mime_type == MIME_TYPE_OPUS);
            let offer = if speaks {
                offer.replace("a=recvonly", "a=sendrecv")
            } else {
                offer
            };
            let offer = Offer::parse(&offer).expect("offer sdp");
            let (peer, answer) = Peer::answer(&settings, &offer, now).expect("answer");
            assert!(answer.contains("a=ice-lite"), "{answer}");
            let answer = answer.replace("a=sendrecv", "a=sendonly");
            browser
                .set_remote_description(
                    now,
                    RTCSessionDescription::answer(answer).expect("answer sdp"),
                )
                .expect("remote answer");
            let receiver = browser.get_receivers().next().expect("receiver");
            let mut call = Call {
                peer,
                browser,
                receiver,
                now,
                received: Vec::new(),
                reports: Vec::new(),
                batches: Vec::new(),
                events: Vec::new(),
                lose: Vec::new(),
                carried: 0,
                browser_state: RTCPeerConnectionState::New,
            };
            for _ in 0..400 {
                call.advance(Duration::from_millis(5));
                if call.events.contains(&PeerEvent::Connected)
                    && call.browser_state == RTCPeerConnectionState::Connected
                {
                    call.events.clear();
                    call.batches.clear();
                    return call;
                }
            }
            panic!("no connection");
        }

        /// Carries every datagram both ways until neither side has more.
        fn carry(&mut self) {
            loop {
                let mut moved = false;
                while let Some(out) = self.browser.poll_write() {
                    moved = true;
                    self.peer.handle_datagram(
                        self.now,
                        TransportProtocol::UDP,
                        addr(RELAY),
                        addr(BROWSER),
                        &out.message,
                    );
                }
                while let Some(event) = self.peer.poll_event() {
                    self.events.push(event);
                }
                while let Some(t) = self.peer.poll_transmit() {
                    moved = true;
                    assert_eq!((t.to, t.from), (addr(BROWSER), addr(RELAY)));
                    self.batches.push((t.datagrams().count(), t.segment_size));
                    for datagram in t.datagrams() {
                        self.carried += 1;
                        self.read_reports(datagram);
                        if self.lose.contains(&self.carried) {
                            continue;
                        }
                        let message = TaggedBytesMut {
                            now: self.now,
                            transport: TransportContext {
                                local_addr: addr(BROWSER),
                                peer_addr: addr(RELAY),
                                ecn: None,
                                transport_protocol: TransportProtocol::UDP,
                            },
                            message: BytesMut::from(datagram),
                        };
                        let _ = self.browser.handle_read(message);
                    }
                }
                while let Some(event) = self.browser.poll_event() {
                    if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                        self.browser_state = state;
                    }
                }
                while let Some(m) = self.browser.poll_read() {
                    if let RTCMessage::RtpPacket(_, packet) = m.message {
                        self.received.push(packet);
                    }
                }
                if !moved {
                    return;
                }
            }
        }

        /// Reads the relay's sender reports off the wire.
        fn read_reports(&mut self, datagram: &[u8]) {
            if datagram.get(1) != Some(&200) {
                return;
            }
            let (config, profile) = self.peer.keying().expect("keys");
            let mut relays = Context::new(
                &config.keys.local_master_key,
                &config.keys.local_master_salt,
                profile,
                None,
                None,
                self.peer.crypto.crypto(),
            )
            .expect("context");
            let plain = relays.decrypt_rtcp(datagram).expect("SRTCP");
            let packets = rtc::rtcp::packet::unmarshal(&mut plain.freeze()).expect("RTCP");
            self.reports.extend(
                packets
                    .iter()
                    .filter_map(|p| p.as_any().downcast_ref::<SenderReport>().cloned()),
            );
        }

        fn advance(&mut self, by: Duration) {
            self.now += by;
            let _ = self.browser.handle_timeout(self.now);
            self.peer.handle_timeout(self.now);
            self.carry();
        }

        /// Moves the clock to `until`, stopping at every moment the peer asked to be woken.
        fn run_until(&mut self, until: Instant) {
            while let Some(due) = self.peer.poll_timeout().filter(|d| *d <= until) {
                let step = due.saturating_duration_since(self.now);
                self.advance(step.max(Duration::from_micros(1)));
            }
            self.advance(until.saturating_duration_since(self.now));
        }

        fn send_rtcp(&mut self, packet: Box<dyn rtc::rtcp::Packet>) {
            self.browser
                .rtp_receiver(self.receiver)
                .expect("receiver")
                .write_rtcp(self.now, vec![packet])
                .expect("rtcp");
            self.carry();
        }

        /// (timestamp, marker) of each packet received, and the sequence numbers.
        fn stamps(&self) -> Vec<(u32, bool)> {
            self.received
                .iter()
                .map(|p| (p.header.timestamp, p.header.marker))
                .collect()
        }
    }

    #[test]
    fn the_viewers_speech_is_held_for_the_caller_decrypted_once_each_and_bounded() {
        let mut call = Call::connected_speaking();
        let (config, profile) = call.peer.keying().expect("keys");
        // The browser's own keys: the relay's remote ones.
        let mut browsers = Context::new(
            &config.keys.remote_master_key,
            &config.keys.remote_master_salt,
            profile,
            None,
            None,
            call.peer.crypto.crypto(),
        )
        .expect("context");
        let mut packet = |sequence_number: u16, payload_type: u8| -> Vec<u8> {
            use rtc::shared::marshal::Marshal;
            let plain = rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    payload_type,
                    sequence_number,
                    timestamp: u32::from(sequence_number) * 960,
                    ssrc: 42,
                    ..Default::default()
                },
                payload: bytes::Bytes::from(vec![sequence_number as u8; 40]),
            };
            let plain = plain.marshal().expect("RTP");
            browsers.encrypt_rtp(&plain).expect("SRTP").to_vec()
        };
        let say = |call: &mut Call, datagram: &[u8]| {
            call.peer.handle_datagram(
                call.now,
                TransportProtocol::UDP,
                addr(RELAY),
                addr(BROWSER),
                datagram,
            );
        };
        assert_eq!(call.peer.speech_payload_type, Some(111));
        let first = packet(1, 111);
        say(&mut call, &first);
        let heard = call.peer.poll_speech().expect("speech");
        assert_eq!((heard.sequence_number, heard.timestamp), (1, 960));
        assert_eq!(heard.payload.as_ref(), [1; 40]);
        // The same packet again (a replay), or one in another format: nothing.
        say(&mut call, &first);
        say(&mut call, &packet(2, 0));
        assert!(call.peer.poll_speech().is_none());
        // A caller that does not read keeps the newest second only.
        for n in 3..63 {
            say(&mut call, &packet(n, 111));
        }
        let held: Vec<u16> = std::iter::from_fn(|| call.peer.poll_speech())
            .map(|s| s.sequence_number)
            .collect();
        assert_eq!(held, (13..63).collect::<Vec<u16>>());
        // From an address that passed no check: nothing.
        call.peer.handle_datagram(
            call.now,
            TransportProtocol::UDP,
            addr(RELAY),
            addr("10.0.0.9:50000"),
            &packet(63, 111),
        );
        assert!(call.peer.poll_speech().is_none());
    }

    #[test]
    fn a_viewer_whose_offer_has_no_opus_has_no_speech_held() {
        let mut call = Call::connected_with(true);
        assert_eq!(call.peer.speech_payload_type, None);
        call.peer
            .read_rtp(&[0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42, 1, 2, 3]);
        assert!(call.peer.poll_speech().is_none());
    }

    #[test]
    fn the_cached_group_of_pictures_goes_first_a_millisecond_apart_then_live_frames_keep_the_cameras_spacing()
     {
        let mut call = Call::connected();
        let gop = [
            frame(1, 0, true, &[1000, 1000, 400]),
            frame(1, 6000, false, &[300]),
            frame(1, 12000, false, &[300]),
        ];
        call.peer.send_cached(call.now, &gop);
        call.carry();
        // Sent from the cache already: not again.
        assert_eq!(call.peer.send_live(call.now, &gop[2]), Delivery::Skipped);
        let live = frame(1, 15000, false, &[200]);
        assert_eq!(call.peer.send_live(call.now, &live), Delivery::Sent);
        call.carry();
        let stamps = call.stamps();
        assert_eq!(stamps.len(), 6);
        let t0 = stamps[0].0;
        let relative: Vec<(u32, bool)> = stamps
            .iter()
            .map(|(t, m)| (t.wrapping_sub(t0), *m))
            .collect();
        // The cached frames 90 ticks (1 ms) apart, the live one the camera's 3000 later; the
        // marker on each frame's last packet.
        assert_eq!(
            relative,
            [
                (0, false),
                (0, false),
                (0, true),
                (90, true),
                (180, true),
                (3180, true)
            ]
        );
        let first = call.received[0].header.sequence_number;
        for (i, p) in call.received.iter().enumerate() {
            assert_eq!(p.header.sequence_number, first.wrapping_add(i as u16));
        }
        assert_eq!(
            &call.received[1].payload[..],
            &[1u8; 1000][..],
            "payloads as cut"
        );
        // The keyframe's three packets went to the kernel as one batch of 1,000-byte
        // payloads (the shorter last one closes it).
        let (segments, _) = call.batches[0];
        assert_eq!(segments, 3, "{:?}", call.batches);
    }

    #[test]
    fn a_lost_packet_is_sent_again_from_the_history_when_the_viewer_asks() {
        let mut call = Call::connected();
        call.lose = vec![call.carried + 2];
        call.peer
            .send_cached(call.now, &[frame(1, 0, true, &[1000, 1000, 400])]);
        call.carry();
        assert_eq!(call.received.len(), 2, "one packet lost");
        let ssrc = call.received[0].header.ssrc;
        let lost = call.received[0].header.sequence_number.wrapping_add(1);
        call.send_rtcp(Box::new(TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: ssrc,
            nacks: vec![NackPair {
                packet_id: lost,
                lost_packets: 0,
            }],
        }));
        let again = call.received.last().expect("resent");
        assert_eq!(again.header.sequence_number, lost);
        assert_eq!(&again.payload[..], &[1u8; 1000][..]);
        assert_eq!(call.peer.packets_resent(), 1);
        // A packet never sent, or long gone from the history, is not made up.
        call.send_rtcp(Box::new(TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: ssrc,
            nacks: vec![NackPair {
                packet_id: lost.wrapping_add(1000),
                lost_packets: 0,
            }],
        }));
        assert_eq!(call.peer.packets_resent(), 1);
    }

    /// A browser as Chromium behaves, driven by hand with rtc's DTLS client: it offers
    /// `offered`'s fingerprint, checks a pair without nominating it, then runs DTLS at once
    /// presenting `presented`. The relay's peer and what it reported.
    fn dtls_before_nomination(
        offered: &RTCCertificate,
        presented: &RTCCertificate,
    ) -> (Peer, Vec<PeerEvent>) {
        let now = eyeward::clock::monotonic();
        let crypto = rtc::crypto::default_provider().expect("crypto");
        let fingerprint: Vec<String> = crypto
            .crypto()
            .hash(
                HashAlgorithm::Sha256,
                &offered.dtls_certificate.certificate[0],
            )
            .expect("hash")
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        let offer = format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
             a=ice-ufrag:viewer\r\na=ice-pwd:viewerpasswordviewerpassword\r\n\
             a=fingerprint:sha-256 {}\r\na=setup:actpass\r\na=recvonly\r\na=rtcp-mux\r\n\
             a=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1\r\n",
            fingerprint.join(":")
        );
        let settings = PeerSettings {
            certificate: crate::whep::certificate().expect("certificate"),
            candidates: vec![addr(RELAY)],
            tcp_candidates: Vec::new(),
            max_segments: 64,
            wall_clock: (now, WALL_CLOCK),
        };
        let offer = Offer::parse(&offer).expect("offer");
        let (mut peer, answer) = Peer::answer(&settings, &offer, now).expect("answer");
        let password = answer
            .lines()
            .find_map(|l| l.strip_prefix("a=ice-pwd:"))
            .expect("password");
        let check =
            super::super::ice::tests::check(&format!("{}:viewer", peer.ufrag()), password, false);
        let from_browser = |peer: &mut Peer, datagram: &[u8]| {
            peer.handle_datagram(
                now,
                TransportProtocol::UDP,
                addr(RELAY),
                addr(BROWSER),
                datagram,
            )
        };
        from_browser(&mut peer, &check);
        while peer.poll_transmit().is_some() {} // the check's answer
        let mut browser = Endpoint::new(addr(BROWSER), TransportProtocol::UDP, None);
        let client = ConfigBuilder::default()
            .with_crypto_provider(crypto.clone())
            .with_certificates(vec![presented.dtls_certificate.clone()])
            .with_srtp_protection_profiles(vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm])
            .with_insecure_skip_verify(true)
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .build(true, None)
            .expect("client");
        browser
            .connect(now, addr(RELAY), Arc::new(client), None)
            .expect("connect");
        let mut events = Vec::new();
        for _ in 0..10 {
            while let Some(out) = browser.poll_transmit() {
                from_browser(&mut peer, &out.message);
            }
            events.extend(std::iter::from_fn(|| peer.poll_event()));
            while let Some(transmit) = peer.poll_transmit() {
                for datagram in transmit.datagrams() {
                    let _ = browser.read(now, addr(RELAY), None, BytesMut::from(datagram));
                }
            }
        }
        (peer, events)
    }

    #[test]
    fn media_goes_out_before_the_nomination_on_the_path_the_viewers_dtls_came_on() {
        let browser = crate::whep::certificate().expect("certificate");
        let (mut peer, events) = dtls_before_nomination(&browser, &browser);
        assert_eq!(events, [PeerEvent::Connected]);
        peer.send_cached(
            eyeward::clock::monotonic(),
            &[frame(1, 0, true, &[1000, 1000, 400])],
        );
        let transmit = peer.poll_transmit().expect("the keyframe");
        assert_eq!(transmit.to, addr(BROWSER));
        assert_eq!(transmit.datagrams().count(), 3);
        assert!(transmit.datagrams().all(|d| d[0] == 0x80), "RTP");
    }

    /// Someone who learnt the session's ICE credentials cannot take it over: the DTLS
    /// certificate must be the one the offer named.
    #[test]
    fn a_viewer_presenting_another_certificate_than_its_offer_named_never_connects() {
        let offered = crate::whep::certificate().expect("certificate");
        let other = crate::whep::certificate().expect("certificate");
        let (mut peer, events) = dtls_before_nomination(&offered, &other);
        assert!(!events.contains(&PeerEvent::Connected), "{events:?}");
        peer.send_cached(
            eyeward::clock::monotonic(),
            &[frame(1, 0, true, &[1000, 1000, 400])],
        );
        assert!(
            std::iter::from_fn(|| peer.poll_transmit())
                .all(|t| t.datagrams().all(|d| d[0] != 0x80)),
            "no media"
        );
    }

    #[test]
    fn a_lagging_viewer_skips_to_the_next_keyframe() {
        let mut call = Call::connected();
        let now = call.now;
        let peer = &mut call.peer;
        peer.send_cached(now, &[frame(1, 0, true, &[500])]);
        let steps = [
            (frame(1, 3000, false, &[500]), Delivery::Sent),
            (frame(1, 6000, false, &[500]), Delivery::Skipped),
            (frame(1, 9000, true, &[500]), Delivery::Sent),
            (frame(1, 12000, false, &[500]), Delivery::Sent),
            // The camera restarted (a new session): its timestamps mean nothing to the old
            // ones, and only its keyframe can start again.
            (frame(2, 99, false, &[500]), Delivery::Skipped),
            (frame(2, 3099, true, &[500]), Delivery::Sent),
        ];
        for (i, (frame, delivery)) in steps.iter().enumerate() {
            if i == 1 {
                // Frames were lost on the way (the viewer lagged).
                peer.skip_to_keyframe();
            }
            assert_eq!(peer.send_live(now, frame), *delivery, "step {i}");
        }
        call.carry();
        assert_eq!(call.received.len(), 5);
    }

    #[test]
    fn a_large_cached_group_of_pictures_goes_out_in_one_burst_then_at_the_pacers_rate() {
        let mut call = Call::connected();
        // A 100 KB keyframe and nineteen 50 KB frames: about 1 MB, four bursts' worth.
        let packets = |kb: usize| vec![1000; kb];
        let mut gop = vec![frame(1, 0, true, &packets(100))];
        gop.extend((1..20).map(|i| frame(1, i * 6000, false, &packets(50))));
        let start = call.now;
        call.peer.send_cached(start, &gop);
        call.carry();
        let frames_received =
            |call: &Call| call.received.iter().filter(|p| p.header.marker).count();
        // The keyframe and what else fits the burst at once: 100 + 3 × 50 KB of 256 KiB.
        assert_eq!(frames_received(&call), 4);
        // A live frame meanwhile waits its turn behind them.
        let live = frame(1, 20 * 6000, false, &[1000]);
        assert_eq!(call.peer.send_live(start, &live), Delivery::Paced);
        // The rest at 5 MB/s, each frame when its bytes are due: the next once the 12,144
        // bytes left of the burst and what came since make 50,000.
        let left = (PACE_BURST - 250_000) as f64;
        let due = call.peer.poll_timeout().expect("a release is due");
        let wait = Duration::from_secs_f64((50_000.0 - left) / PACE_RATE);
        assert!(due.saturating_duration_since(start).abs_diff(wait) < Duration::from_micros(10));
        call.run_until(start + Duration::from_millis(100));
        assert_eq!(frames_received(&call), 4 + 10, "500 KB in 100 ms");
        call.run_until(start + Duration::from_millis(180));
        assert_eq!(frames_received(&call), 21, "all of it, the live frame last");
        let stamps = call.stamps();
        let (first, last) = (stamps[0].0, stamps.last().expect("packets").0);
        assert_eq!(last.wrapping_sub(first), 19 * 90 + 6000);
    }

    #[test]
    fn keyframe_requests_are_passed_on_at_most_once_a_second() {
        let mut call = Call::connected();
        call.peer
            .send_cached(call.now, &[frame(1, 0, true, &[500])]);
        call.carry();
        let ssrc = call.received[0].header.ssrc;
        let pli = || {
            Box::new(PictureLossIndication {
                sender_ssrc: 1,
                media_ssrc: ssrc,
            })
        };
        call.send_rtcp(pli());
        call.advance(Duration::from_millis(300));
        call.send_rtcp(pli());
        assert_eq!(call.events, [PeerEvent::KeyframeWanted]);
        call.advance(KEYFRAME_REQUEST_INTERVAL);
        call.send_rtcp(pli());
        assert_eq!(
            call.events,
            [PeerEvent::KeyframeWanted, PeerEvent::KeyframeWanted]
        );
    }

    fn sound(epoch: u64, timestamp: i64, received: Instant) -> SoundPacket {
        SoundPacket {
            codec: SoundCodec::Pcmu,
            timestamp,
            payload: bytes::Bytes::from(vec![0xff; 160]),
            received,
            epoch,
        }
    }

    #[test]
    fn a_listeners_sound_goes_out_on_its_own_stream_with_its_own_spacing() {
        let mut call = Call::connected_with(true);
        let t0 = call.now;
        for i in 0..3 {
            call.peer.send_sound(&sound(
                1,
                160 * i,
                t0 + Duration::from_millis(20 * i as u64),
            ));
        }
        // The camera's sound session starts again (its timestamps too) 1 s later.
        call.peer
            .send_sound(&sound(2, 0, t0 + Duration::from_millis(1040)));
        // Sent already: left out.
        call.peer
            .send_sound(&sound(2, 0, t0 + Duration::from_millis(1040)));
        call.carry();
        let got: Vec<(u8, u32, bool)> = call
            .received
            .iter()
            .map(|p| (p.header.payload_type, p.header.timestamp, p.header.marker))
            .collect();
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(
            got.iter().all(|(pt, _, _)| *pt == 0),
            "PCMU's payload type: {got:?}"
        );
        let first = got[0].1;
        let after: Vec<u32> = got
            .iter()
            .map(|(_, ts, _)| ts.wrapping_sub(first))
            .collect();
        assert_eq!(after, [0, 160, 320, 320 + 8 * 1000]);
        let markers: Vec<bool> = got.iter().map(|(_, _, m)| *m).collect();
        assert_eq!(
            markers,
            [true, false, false, true],
            "each new talkspurt is marked"
        );
        assert_eq!(call.received[0].payload.len(), 160);
    }

    #[test]
    fn a_viewer_without_sound_in_its_answer_gets_none() {
        let mut call = Call::connected();
        call.peer.send_sound(&sound(1, 0, call.now));
        call.carry();
        assert!(call.received.is_empty());
    }

    #[test]
    fn sender_reports_put_sound_and_pictures_the_relay_had_at_one_moment_at_one_time() {
        let mut call = Call::connected_with(true);
        let t0 = call.now;
        call.peer
            .send_cached(call.now, &[frame(1, 0, true, &[500])]);
        // A live frame and a moment of sound the relay had at the same time, 100 ms in.
        let at = t0 + Duration::from_millis(100);
        let live = Arc::new(Frame {
            received: at,
            ..(*frame(1, 9000, false, &[300])).clone()
        });
        call.advance(Duration::from_millis(100));
        call.peer.send_live(call.now, &live);
        call.peer.send_sound(&sound(1, 800, at));
        call.carry();
        let video_ssrc = call.received[0].header.ssrc;
        let (video_rtp, sound_rtp) = {
            let last = |ssrc_is_video: bool| {
                call.received
                    .iter()
                    .rev()
                    .find(|p| (p.header.ssrc == video_ssrc) == ssrc_is_video)
                    .map(|p| p.header.timestamp)
                    .expect("packet")
            };
            (last(true), last(false))
        };
        // The reports go out when the sound starts.
        call.advance(Duration::from_millis(1));
        assert_eq!(call.reports.len(), 2, "{:?}", call.reports);
        // Where each report puts its stream's packet on the wall clock, in seconds.
        let wall = |ssrc: u32, rtp: u32, rate: f64| {
            let r = call
                .reports
                .iter()
                .find(|r| r.ssrc == ssrc)
                .expect("report");
            let ntp = (r.ntp_time >> 32) as f64 + (r.ntp_time & 0xffff_ffff) as f64 / 2f64.powi(32);
            ntp - f64::from(r.rtp_time.wrapping_sub(rtp)) / rate
        };
        let sound_ssrc = call
            .reports
            .iter()
            .map(|r| r.ssrc)
            .find(|s| *s != video_ssrc);
        let picture = wall(video_ssrc, video_rtp, 90_000.0);
        let heard = wall(sound_ssrc.expect("a sound report"), sound_rtp, 8000.0);
        assert!((picture - heard).abs() < 0.001, "{picture} against {heard}");
        // And that time is the wall clock's when the relay had them.
        let (origin, wall) = call.peer.wall_clock;
        let expected = (wall + (at - origin)).as_secs_f64() + NTP_UNIX_OFFSET as f64;
        assert!(
            (picture - expected).abs() < 0.001,
            "{picture} against {expected}"
        );
        let video_report = call.reports.iter().find(|r| r.ssrc == video_ssrc);
        assert_eq!(video_report.map(|r| r.packet_count), Some(2));
    }

    #[test]
    fn sound_that_starts_or_restarts_is_reported_at_once_and_quickly_again() {
        let mut call = Call::connected_with(true);
        let t0 = call.now;
        let live = Arc::new(Frame {
            received: t0,
            ..(*frame(1, 0, true, &[500])).clone()
        });
        call.peer.send_live(call.now, &live);
        // Before any sound, only the video's reports, a second apart.
        call.run_until(t0 + Duration::from_millis(2500));
        let times = |call: &Call| -> Vec<u64> {
            let mut at: Vec<u64> = call.reports.iter().map(|r| r.ntp_time).collect();
            at.dedup();
            at
        };
        assert_eq!(call.reports.len(), 2);
        let sound_ssrc = |call: &Call| call.peer.sound.ssrc;
        // Sound starts: a report of it now, then two more 150 ms apart, then each second.
        let start = |call: &mut Call, epoch| {
            call.reports.clear();
            let at = call.now;
            call.peer.send_sound(&sound(epoch, 0, at));
            call.run_until(at + Duration::from_millis(1000));
            let sound_reports = call
                .reports
                .iter()
                .filter(|r| r.ssrc == sound_ssrc(call))
                .count();
            (sound_reports, times(call).len())
        };
        assert_eq!(start(&mut call, 1), (3, 3));
        call.run_until(call.now + Duration::from_millis(2000));
        // A new sound session (after the camera's restarted) is a new start.
        assert_eq!(start(&mut call, 2), (3, 3));
        // Sound that goes on is not.
        call.reports.clear();
        call.peer
            .send_sound(&sound(2, 160, call.now + Duration::from_millis(20)));
        call.run_until(call.now + Duration::from_millis(900));
        assert!(call.reports.len() <= 2, "{:?}", call.reports);
    }
}
