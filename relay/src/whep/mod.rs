//! Live-video sessions (WHEP, the WebRTC-HTTP Egress Protocol, whose HTTP side is
//! `http::live_video`). Each session is one webrtc-rs peer connection fed from the camera's
//! feed (see [`crate::fanout`]); nothing is transcoded.
//!
//! A new session is sent the camera's current group of pictures first, re-stamped a
//! millisecond apart, so the browser has a decodable picture at once and reaches the live
//! edge within a few frames; live frames then keep the camera's own spacing.
//!
//! Frames are cut into RTP payloads once per camera (at ingest); a session only writes its
//! own headers (sequence numbers, timestamps) around the shared payloads, so a viewer costs
//! SRTP and a send per packet, not a copy of the stream.

mod turn;

use crate::config::WebrtcConfig;
use crate::error::{Error, ErrorKind};
use crate::fanout::{Feeds, Subscription};
use crate::ingest::Frame;
use crate::metrics::Metrics;
use crate::store::Camera;
use crate::task::{self, Task};
use eyeward::{CameraId, CustomerId, OperatorId, UnixMillis};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch};
use webrtc::api::media_engine::{MIME_TYPE_H264, MediaEngine};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::{API, APIBuilder};
use webrtc::ice::udp_network::{EphemeralUDP, UDPNetwork};
use webrtc::ice_transport::ice_candidate_type::RTCIceCandidateType;
use webrtc::interceptor::nack::responder::Responder;
use webrtc::interceptor::registry::Registry;
use webrtc::interceptor::report::sender::SenderReport;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtcp;
use webrtc::rtp;
use webrtc::rtp_transceiver::RTCPFeedback;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTPCodecType,
};
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::track::track_local::{TrackLocal, TrackLocalWriter};

/// The H.264 the relay forwards: what cameras send and every browser decodes.
fn h264() -> RTCRtpCodecCapability {
    RTCRtpCodecCapability {
        mime_type: MIME_TYPE_H264.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
            .to_owned(),
        rtcp_feedback: ["nack", "nack pli", "ccm fir"]
            .iter()
            .map(|fb| {
                let (typ, parameter) = fb.split_once(' ').unwrap_or((fb, ""));
                RTCPFeedback {
                    typ: typ.to_owned(),
                    parameter: parameter.to_owned(),
                }
            })
            .collect(),
    }
}

/// RTP clock ticks (90 kHz) between the cached frames a session starts with: 1 ms.
const CACHED_FRAME_TICKS: u32 = 90;
/// Ticks before a frame that follows no frame of the same camera session: 1/15 s.
const DEFAULT_FRAME_TICKS: u32 = 6_000;
/// The longest gap kept between two frames (1 s): a camera's stall is not replayed.
const MAX_FRAME_TICKS: i64 = 90_000;
/// Packets a session keeps to answer NACKs: about two seconds of a 2 Mbit/s camera, older
/// ones would arrive too late to matter.
const NACK_HISTORY_LOG2: u8 = 9;

/// Who watches a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// The camera's owner.
    Customer(CustomerId),
    /// An operator of the customer's guard center, through a dispatch request that shares
    /// the live view: the session ends when the request closes.
    Operator { id: OperatorId, request: i64 },
}

impl Viewer {
    /// The viewer's part of its TURN username (the TURN server logs it): `c<customer id>` or
    /// `o<operator id>`.
    fn turn_name(&self) -> String {
        match self {
            Viewer::Customer(id) => format!("c{}", id.0),
            Viewer::Operator { id, .. } => format!("o{}", id.0),
        }
    }
}

struct Session {
    viewer: Viewer,
    camera: CameraId,
    pc: Arc<RTCPeerConnection>,
    /// The task writing the session's frames, stopped when the session ends.
    sender: Option<tokio::task::AbortHandle>,
    /// The task that ends the session when its grant is taken away, stopped likewise.
    watcher: Option<tokio::task::AbortHandle>,
}

/// The WebRTC side of the relay: the webrtc-rs API set up from config, and the live sessions.
pub struct Whep {
    api: API,
    sessions: Mutex<HashMap<String, Session>>,
    /// Sessions being set up (ICE gathering takes a while), counted against the limits with
    /// the live ones, so that parallel offers cannot all pass a check none of them is in.
    reserved: Mutex<HashMap<u64, (Viewer, CameraId)>>,
    feeds: Arc<Feeds>,
    metrics: Arc<Metrics>,
    config: WebrtcConfig,
}

impl Whep {
    pub fn new(
        config: &WebrtcConfig,
        feeds: Arc<Feeds>,
        metrics: Arc<Metrics>,
    ) -> Result<Whep, Error> {
        let internal = |e: webrtc::Error| Error::internal("webrtc set-up").with_source(e);
        let mut media = MediaEngine::default();
        media
            .register_codec(
                RTCRtpCodecParameters {
                    capability: h264(),
                    payload_type: 102,
                    ..Default::default()
                },
                RTPCodecType::Video,
            )
            .map_err(internal)?;
        // Only what a sender needs: answers to NACKs and sender reports. (The defaults add
        // receive-side interceptors, which cost time on every packet sent.)
        let mut registry = Registry::new();
        registry.add(Box::new(
            Responder::builder().with_log2_size(NACK_HISTORY_LOG2),
        ));
        registry.add(Box::new(SenderReport::builder()));
        let mut settings = SettingEngine::default();
        if let Some(addrs) = config.ice_addresses.clone() {
            settings.set_include_loopback_candidate(addrs.iter().any(|a| a.is_loopback()));
            settings.set_ip_filter(Box::new(move |ip| addrs.contains(&ip)));
        }
        if let Some([first, last]) = config.udp_ports {
            let ports = EphemeralUDP::new(first, last)
                .map_err(|e| Error::internal("webrtc.udp_ports").with_source(e))?;
            settings.set_udp_network(UDPNetwork::Ephemeral(ports));
        }
        if !config.public_ips.is_empty() {
            let ips = config.public_ips.iter().map(ToString::to_string).collect();
            settings.set_nat_1to1_ips(ips, RTCIceCandidateType::Host);
        }
        let api = APIBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings)
            .build();
        Ok(Whep {
            api,
            sessions: Mutex::new(HashMap::new()),
            reserved: Mutex::new(HashMap::new()),
            feeds,
            metrics,
            config: config.clone(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The STUN/TURN servers for `viewer`, as WHEP `Link` header values: TURN servers with
    /// a credential of the viewer's own, valid until the longest session it could have
    /// started `now` ends.
    pub fn link_headers(&self, viewer: Viewer, now: UnixMillis) -> Vec<String> {
        let expires = now.plus(self.config.max_session);
        self.config
            .ice_servers
            .iter()
            .flat_map(|s| {
                let credential = s
                    .secret
                    .as_deref()
                    .map(|secret| turn::credential(secret, &viewer.turn_name(), expires));
                s.urls.iter().map(move |u| {
                    let mut v = format!("<{u}>; rel=\"ice-server\"");
                    if let Some(c) = credential.as_ref().filter(|_| !u.starts_with("stun:")) {
                        v.push_str(&format!(
                            "; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
                            c.username, c.password
                        ));
                    }
                    v
                })
            })
            .collect()
    }

    /// Answers a viewer's offer: a new session of `camera` for `viewer`.
    /// Starts a session of `viewer` on `camera` from `offer`, ended when `ended` resolves
    /// (its grant taken away, or its time up); returns its id and the SDP answer.
    pub async fn start(
        self: &Arc<Self>,
        viewer: Viewer,
        camera: &Camera,
        offer: &str,
        ended: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(String, String), Error> {
        let offer = parse_offer(offer)?;
        // Held until the session is registered (or fails).
        let _slot = self.reserve(viewer, camera.id)?;
        let pc = Arc::new(
            self.api
                .new_peer_connection(RTCConfiguration::default())
                .await
                .map_err(|e| Error::internal("peer connection").with_source(e))?,
        );
        let track = Arc::new(TrackLocalStaticRTP::new(
            h264(),
            "video".into(),
            format!("camera-{}", camera.id),
        ));
        let (pli_tx, pli) = mpsc::channel(1);
        let answer = async {
            let sender = pc
                .add_track(track.clone() as Arc<dyn TrackLocal + Send + Sync>)
                .await?;
            // RTCP must be read for the interceptors (NACK, reports) to work; keyframe
            // requests go to the viewer's task.
            tokio::spawn(async move {
                while let Ok((packets, _)) = sender.read_rtcp().await {
                    let wants_key = packets.iter().any(|p| {
                        let any = p.as_any();
                        any.is::<rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication>()
                            || any.is::<rtcp::payload_feedbacks::full_intra_request::FullIntraRequest>()
                    });
                    if wants_key {
                        let _ = pli_tx.try_send(());
                    }
                }
            });
            pc.set_remote_description(offer).await?;
            let answer = pc.create_answer(None).await?;
            let mut gathered = pc.gathering_complete_promise().await;
            pc.set_local_description(answer).await?;
            let _ = gathered.recv().await;
            Ok::<_, webrtc::Error>(pc.local_description().await)
        }
        .await;
        let answer = match answer {
            Ok(Some(a)) => a.sdp,
            Ok(None) => {
                let _ = pc.close().await;
                return Err(Error::internal("no local description"));
            }
            Err(e) => {
                let _ = pc.close().await;
                return Err(Error::bad_request(format!("cannot answer this offer: {e}")));
            }
        };
        let id: String = rand::random::<[u8; 16]>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        // Tests hold a session here, between its checks and its registration.
        #[cfg(feature = "failpoints")]
        if let Some(ms) =
            fail::eval("whep-register", |ms| ms.and_then(|m| m.parse().ok())).flatten()
        {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        self.lock().insert(
            id.clone(),
            Session {
                viewer,
                camera: camera.id,
                pc: pc.clone(),
                sender: None,
                watcher: None,
            },
        );
        let this = self.clone();
        let session_id = id.clone();
        let watcher = tokio::spawn(async move {
            ended.await;
            // Out of the session first, so that ending it does not abort this very task.
            if let Some(s) = this.lock().get_mut(&session_id) {
                s.watcher = None;
            }
            tracing::info!(session = %session_id, "live view ended: its grant is gone or its time is up");
            this.end(&session_id).await;
        });
        if let Some(s) = self.lock().get_mut(&id) {
            s.watcher = Some(watcher.abort_handle());
        }
        self.metrics
            .viewers
            .get_or_create(&crate::metrics::CameraLabels {
                camera: camera.id.0,
            })
            .inc();
        // Joining now starts the camera's feed while ICE and DTLS are still under way.
        let early = self.feeds.watch(camera);
        let (connected_tx, connected) = watch::channel(false);
        let this = self.clone();
        let session_id = id.clone();
        let camera_id = camera.id;
        pc.on_peer_connection_state_change(Box::new(move |state| {
            let this = this.clone();
            let session_id = session_id.clone();
            if state == RTCPeerConnectionState::Connected {
                let _ = connected_tx.send(true);
            }
            Box::pin(async move {
                // "Disconnected" may pass (ICE recovers); "failed" and "closed" do not.
                if matches!(
                    state,
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
                ) {
                    this.end(&session_id).await;
                }
            })
        }));
        let start = Start {
            pli,
            pc: pc.clone(),
            feeds: self.feeds.clone(),
            camera: camera.clone(),
            early,
            connected,
            joined: eyeward::clock::monotonic(),
        };
        let metrics = self.metrics.clone();
        let sender = tokio::spawn(async move {
            let frames = send_frames(track, start, metrics.clone());
            task::contained(&metrics, Task::Viewer, frames).await
        });
        if let Some(s) = self.lock().get_mut(&id) {
            s.sender = Some(sender.abort_handle());
        }
        let this = self.clone();
        let session_id = id.clone();
        tokio::spawn(async move {
            let _ = sender.await;
            this.end(&session_id).await;
        });
        tracing::info!(camera = camera_id.0, session = %id, "viewer joined");
        Ok((id, answer))
    }

    /// Takes a place for a new session of `viewer` on `camera` within the limits, counting
    /// sessions being set up; the place is given back when the returned guard drops.
    fn reserve(&self, viewer: Viewer, camera: CameraId) -> Result<Reservation<'_>, Error> {
        let sessions = self.lock();
        let mut reserved = self.reserved.lock().unwrap_or_else(|p| p.into_inner());
        let of_viewer = sessions.values().filter(|s| s.viewer == viewer).count()
            + reserved.values().filter(|(v, _)| *v == viewer).count();
        if of_viewer >= self.config.max_viewers_per_customer {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                "you have too many live views open; close one first",
            ));
        }
        let of_camera = sessions.values().filter(|s| s.camera == camera).count()
            + reserved.values().filter(|(_, c)| *c == camera).count();
        if of_camera >= self.config.max_viewers_per_camera {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                "this camera has as many viewers as it can take",
            ));
        }
        let key = rand::random::<u64>();
        reserved.insert(key, (viewer, camera));
        Ok(Reservation { whep: self, key })
    }

    /// Ends a session of `viewer` (of `camera` if given); 404 when it is not theirs.
    pub async fn stop(
        &self,
        viewer: Viewer,
        camera: Option<CameraId>,
        id: &str,
    ) -> Result<(), Error> {
        let owned = self
            .lock()
            .get(id)
            .is_some_and(|s| s.viewer == viewer && camera.is_none_or(|c| s.camera == c));
        if !owned {
            return Err(Error::not_found("session"));
        }
        self.end(id).await;
        Ok(())
    }

    /// Ends every session watching through dispatch request `request` (it closed).
    pub async fn end_shared(&self, request: i64) {
        let ids: Vec<String> = self
            .lock()
            .iter()
            .filter(
                |(_, s)| matches!(s.viewer, Viewer::Operator { request: r, .. } if r == request),
            )
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.end(&id).await;
        }
    }

    /// Ends every session (this relay node stops: the pages set theirs up again through the
    /// load balancer, on another node).
    pub async fn end_all(&self) {
        let ids: Vec<String> = self.lock().keys().cloned().collect();
        for id in ids {
            self.end(&id).await;
        }
    }

    /// Ends session `id`, if it is still there.
    pub async fn end(&self, id: &str) {
        let session = self.lock().remove(id);
        if let Some(s) = session {
            for task in [&s.sender, &s.watcher].into_iter().flatten() {
                task.abort();
            }
            self.metrics
                .viewers
                .get_or_create(&crate::metrics::CameraLabels { camera: s.camera.0 })
                .dec();
            let _ = s.pc.close().await;
            tracing::info!(camera = s.camera.0, session = %id, "viewer left");
        }
    }
}

/// A place for a session being set up (see [`Whep::reserve`]).
struct Reservation<'a> {
    whep: &'a Whep,
    key: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.whep
            .reserved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

/// Reads a viewer's SDP offer; offers that cannot work are refused before any WebRTC state
/// is made.
pub fn parse_offer(sdp: &str) -> Result<RTCSessionDescription, Error> {
    check_offer(sdp)?;
    RTCSessionDescription::offer(sdp.to_owned())
        .map_err(|e| Error::bad_request(format!("not an SDP offer: {e}")))
}

fn check_offer(sdp: &str) -> Result<(), Error> {
    if !sdp.starts_with("v=0") {
        return Err(Error::bad_request("the body is not an SDP offer"));
    }
    let video = sdp.lines().any(|l| l.starts_with("m=video"));
    if !video {
        return Err(Error::bad_request("the offer has no video section"));
    }
    if !sdp.to_ascii_lowercase().contains("h264/90000") {
        return Err(Error::bad_request("the offer does not accept H.264 video"));
    }
    Ok(())
}

/// How a session's frames begin.
struct Start {
    /// Keyframe requests (PLI, FIR) from the viewer.
    pli: mpsc::Receiver<()>,
    pc: Arc<RTCPeerConnection>,
    feeds: Arc<Feeds>,
    camera: Camera,
    /// The subscription taken at offer time, which keeps the feed running meanwhile.
    early: Subscription,
    connected: watch::Receiver<bool>,
    joined: Instant,
}

/// How long a viewer may take to connect (ICE, DTLS) before its session is dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Once the viewer is connected, writes the cached frames, then the live ones, to its track
/// until it ends. Frames written before the connection is up would be lost.
async fn send_frames(track: Arc<TrackLocalStaticRTP>, start: Start, metrics: Arc<Metrics>) {
    let Start {
        pc,
        feeds,
        camera,
        early,
        mut connected,
        mut pli,
        joined,
    } = start;
    let ready = async {
        let _ = connected.wait_for(|c| *c).await;
        srtp_ready(&pc).await;
    };
    if tokio::time::timeout(CONNECT_TIMEOUT, ready).await.is_err() {
        return;
    }
    // A fresh subscription: the group of pictures as it is now, not as it was at offer time.
    let mut sub = feeds.watch(&camera);
    drop(early);
    let mut out = ViewerStream {
        track,
        metrics,
        last: None,
        joined,
        first_sent: false,
        sequence_number: rand::random(),
        rtp_time: rand::random(),
    };
    if out
        .send_cached(&std::mem::take(&mut sub.cached))
        .await
        .is_err()
    {
        return;
    }
    let mut last_refresh: Option<Instant> = None;
    loop {
        tokio::select! {
            frame = sub.live.recv() => match frame {
                Ok(frame) => {
                    #[cfg(feature = "failpoints")]
                    crate::task::fail_point("viewer-frame", camera.id);
                    if out.send_live(&frame).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    out.metrics.viewer_frames_dropped.inc_by(n);
                    out.wait_for_key();
                }
                Err(RecvError::Closed) => return,
            },
            Some(()) = pli.recv() => {
                // The viewer lost a picture and asks for a keyframe, which an RTSP camera
                // cannot be asked for: answer from the cache, at most once a second.
                if last_refresh.is_some_and(|t| t.elapsed() < PLI_INTERVAL) {
                    continue;
                }
                last_refresh = Some(eyeward::clock::monotonic());
                let gop = sub.current_gop();
                if !gop.is_empty() {
                    out.metrics.keyframe_requests_answered.inc();
                    if out.send_cached(&gop).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// How often a viewer's keyframe requests are answered from the cache.
const PLI_INTERVAL: Duration = Duration::from_secs(1);

/// One viewer's outgoing frames: which camera session and timestamp it is at, so every frame
/// goes out once, in order, and only when it can be decoded; and the viewer's own RTP
/// sequence numbers and clock, continuous across the cached and the live frames.
struct ViewerStream {
    track: Arc<TrackLocalStaticRTP>,
    metrics: Arc<Metrics>,
    /// The camera session (feed epoch) and timestamp of the last frame sent; `None` while
    /// waiting for a keyframe.
    last: Option<(u64, i64)>,
    joined: Instant,
    first_sent: bool,
    sequence_number: u16,
    rtp_time: u32,
}

impl ViewerStream {
    fn wait_for_key(&mut self) {
        self.last = None;
    }

    /// Sends cached frames (a keyframe and those after it) 1 ms apart: the decoder shows the
    /// newest at once.
    async fn send_cached(&mut self, frames: &[Arc<Frame>]) -> Result<(), webrtc::Error> {
        for frame in frames {
            self.write(frame, CACHED_FRAME_TICKS).await?;
            self.sent(frame);
        }
        Ok(())
    }

    /// Sends a live frame with the camera's own spacing, unless it was sent already (from
    /// the cache) or cannot be decoded (no keyframe since the last gap).
    async fn send_live(&mut self, frame: &Frame) -> Result<(), webrtc::Error> {
        let ticks = match self.last {
            Some((epoch, ts)) if epoch == frame.epoch => {
                if frame.timestamp <= ts {
                    return Ok(()); // sent from the cache already
                }
                (frame.timestamp - ts).min(MAX_FRAME_TICKS) as u32
            }
            // A new camera session (it restarted) or a gap: only a keyframe can start again.
            _ if !frame.is_key => return Ok(()),
            _ => DEFAULT_FRAME_TICKS,
        };
        self.write(frame, ticks).await?;
        self.metrics
            .relay_latency_seconds
            .observe(frame.received.elapsed().as_secs_f64());
        self.metrics.frames_forwarded.inc();
        self.metrics
            .packets_forwarded
            .inc_by(frame.rtp_payloads.len() as u64);
        self.metrics.bytes_forwarded.inc_by(frame.data.len() as u64);
        self.sent(frame);
        Ok(())
    }

    /// Writes `frame`'s shared payloads with this viewer's headers, `ticks` after the last.
    async fn write(&mut self, frame: &Frame, ticks: u32) -> Result<(), webrtc::Error> {
        self.rtp_time = self.rtp_time.wrapping_add(ticks);
        let last = frame.rtp_payloads.len().saturating_sub(1);
        for (i, payload) in frame.rtp_payloads.iter().enumerate() {
            let packet = rtp::packet::Packet {
                header: rtp::header::Header {
                    version: 2,
                    // The track sets the negotiated payload type and its SSRC.
                    marker: i == last,
                    sequence_number: self.sequence_number,
                    timestamp: self.rtp_time,
                    ..Default::default()
                },
                payload: payload.clone(),
            };
            self.sequence_number = self.sequence_number.wrapping_add(1);
            self.track.write_rtp(&packet).await?;
        }
        Ok(())
    }

    fn sent(&mut self, frame: &Frame) {
        self.last = Some((frame.epoch, frame.timestamp));
        if !self.first_sent {
            self.first_sent = true;
            self.metrics
                .first_frame_seconds
                .observe(self.joined.elapsed().as_secs_f64());
        }
    }
}

/// Waits until media can be sent. webrtc-rs reports the connection up a moment before its
/// SRTP keys are in place, and drops media written in between; an SRTCP write tells the two
/// apart (an empty receiver report: every peer ignores it).
async fn srtp_ready(pc: &RTCPeerConnection) {
    let probe: Vec<Box<dyn rtcp::packet::Packet + Send + Sync>> =
        vec![Box::new(rtcp::receiver_report::ReceiverReport::default())];
    while !matches!(pc.dtls_transport().write_rtcp(&probe).await, Ok(n) if n > 0) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_without_h264_video_are_refused_early() {
        assert!(check_offer("garbage").is_err());
        assert!(check_offer("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n").is_err());
        assert!(
            check_offer("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n")
                .is_err()
        );
        assert!(
            check_offer("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=rtpmap:102 H264/90000\r\n")
                .is_ok()
        );
    }
}
