//! Live-video sessions (WHEP, the WebRTC-HTTP Egress Protocol, whose HTTP side is
//! `http::live_video`). Each session is one viewer's [`Peer`] (rtc's sans-I/O peer
//! connection) fed from the camera's feed (see [`crate::fanout`]) in the codec its offer
//! takes: the camera's own H.264, or VP8 transcoded once per camera for browsers without it.
//!
//! Every viewer's media goes through one UDP port ([`udp::UdpPort`]), or, where UDP is
//! blocked, one TCP port (ICE-TCP, [`tcp`]); [`demux::Demux`] tells the viewers apart. Each
//! session has one task that owns its `Peer`: it is woken by a frame, a datagram or a timer,
//! never per packet, and hands a frame's packets to the kernel together.
//!
//! Frames are cut into RTP payloads once per camera (at ingest); a session only writes its
//! own headers (sequence numbers, timestamps) around the shared payloads, so a viewer costs
//! SRTP and its share of a send per packet, not a copy of the stream.
//!
//! A viewer hears the camera only once it asks to ([`Whep::listen`]): its session then
//! joins the camera's sound feed, which runs while someone listens. The camera's owner speaks
//! through the camera while they hold "speak" ([`Whep::talk`]): their session's speech goes
//! to the camera's back-channel ([`crate::talk`]).

pub mod demux;
mod ice;
pub mod peer;
pub mod sdp;
pub mod tcp;
mod turn;
pub mod udp;

use crate::config::WebrtcConfig;
use crate::error::{Error, ErrorKind};
use crate::fanout::{Feeds, Listening, SoundCodec, SoundState, Subscription, VideoCodec};
use crate::metrics::Metrics;
use crate::store::Camera;
use crate::talk::Speaking;
use crate::task::{self, Task};
use demux::{Datagram, Demux, TcpLink};
use eyeward::{CameraId, CustomerId, OperatorId, UnixMillis};
use peer::{Delivery, Peer, PeerEvent, PeerSettings, Transmit, TransportProtocol};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, oneshot};
use udp::UdpPort;

/// Who watches a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// The camera's owner.
    Customer(CustomerId),
    /// A member of the owner's household (their rights are checked at the HTTP edge).
    Member { id: i64, household: CustomerId },
    /// An operator of the customer's guard center, through a dispatch request that shares
    /// the live view: the session ends when the request closes.
    Operator { id: OperatorId, request: i64 },
    /// The guard given a dispatch request that shares the live view, on their phone: the
    /// session ends when the request closes, as an operator's.
    Guard { id: i64, request: i64 },
}

impl Viewer {
    /// The viewer's part of its TURN username (the TURN server logs it): `c<customer id>`,
    /// `m<member id>`, `o<operator id>` or `g<guard id>`.
    fn turn_name(&self) -> String {
        match self {
            Viewer::Customer(id) => format!("c{}", id.0),
            Viewer::Member { id, .. } => format!("m{id}"),
            Viewer::Operator { id, .. } => format!("o{}", id.0),
            Viewer::Guard { id, .. } => format!("g{id}"),
        }
    }
}

struct Session {
    viewer: Viewer,
    camera: CameraId,
    /// The sound formats the viewer's answer carries (none: it hears nothing).
    sound_formats: Vec<SoundCodec>,
    /// Hands the session's task the camera's sound, or takes it away (`None`).
    sound: mpsc::Sender<Option<Listening>>,
    /// Whether the viewer's offer sends sound the relay can read (Opus): it can speak.
    speaks: bool,
    /// Hands the session's task a talk to the camera's speaker, or ends it (`None`).
    talk: mpsc::Sender<Option<Speaking>>,
    /// Tells the session's task to close the connection (DTLS close), so the page learns
    /// at once.
    close: Option<oneshot::Sender<()>>,
    /// The task running the session, stopped if it does not end by itself.
    task: Option<tokio::task::AbortHandle>,
    /// The task that ends the session when its grant is taken away, stopped likewise.
    watcher: Option<tokio::task::AbortHandle>,
}

/// The WebRTC side of the relay: the viewers' UDP port, what their connections share, and
/// the live sessions.
pub struct Whep {
    udp: Arc<UdpPort>,
    demux: Arc<Demux>,
    /// Read the viewers' ports; stopped with the relay.
    port_tasks: [tokio::task::AbortHandle; 2],
    settings: Mutex<Certified>,
    candidates: Vec<SocketAddr>,
    tcp_candidates: Vec<SocketAddr>,
    sessions: Mutex<HashMap<String, Session>>,
    /// The cameras someone speaks through, and the session that does.
    talkers: Arc<Mutex<HashMap<CameraId, String>>>,
    /// Sessions being set up, counted against the limits with the live ones, so that
    /// parallel offers cannot all pass a check none of them is in.
    reserved: Mutex<HashMap<u64, (Viewer, CameraId)>>,
    feeds: Arc<Feeds>,
    metrics: Arc<Metrics>,
    config: WebrtcConfig,
}

/// The relay's DTLS certificate and when it was made: it is made again daily, well within
/// its validity.
struct Certified {
    certificate: rtc::peer_connection::certificate::RTCCertificate,
    made: Instant,
}

/// How long one DTLS certificate serves new sessions.
const CERTIFICATE_LIFE: Duration = Duration::from_secs(24 * 3600);

fn new_certificate() -> Result<Certified, Error> {
    Ok(Certified {
        certificate: certificate()?,
        made: eyeward::clock::monotonic(),
    })
}

/// A new self-signed DTLS certificate (ECDSA P-256), as browsers make theirs.
pub fn certificate() -> Result<rtc::peer_connection::certificate::RTCCertificate, Error> {
    use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
    let internal = || Error::internal("DTLS certificate");
    let provider = rtc::crypto::default_provider().map_err(|e| internal().with_source(e))?;
    let params = CertificateParams::new(vec!["eyeward".to_owned()])
        .map_err(|e| internal().with_source(e))?;
    RTCCertificate::generate(
        provider.crypto(),
        rtc::crypto::SignatureScheme::EcdsaP256Sha256,
        params,
    )
    .map_err(|e| internal().with_source(e))
}

impl Drop for Whep {
    fn drop(&mut self) {
        for task in &self.port_tasks {
            task.abort();
        }
    }
}

impl Whep {
    /// Binds the viewers' UDP and TCP ports and starts reading them (inside the runtime).
    pub fn new(
        config: &WebrtcConfig,
        feeds: Arc<Feeds>,
        metrics: Arc<Metrics>,
    ) -> Result<Whep, Error> {
        let (bind, announced) = addresses(config)?;
        let udp = UdpPort::bind(SocketAddr::new(bind, config.udp_port)).map_err(|e| {
            Error::internal(format!(
                "cannot bind the viewers' UDP port {}",
                config.udp_port
            ))
            .with_source(e)
        })?;
        let tcp = std::net::TcpListener::bind(SocketAddr::new(bind, config.tcp_port))
            .and_then(|l| {
                l.set_nonblocking(true)?;
                tokio::net::TcpListener::from_std(l)
            })
            .map_err(|e| {
                Error::internal(format!(
                    "cannot bind the viewers' TCP port {}",
                    config.tcp_port
                ))
                .with_source(e)
            })?;
        let tcp_addr = tcp
            .local_addr()
            .map_err(|e| Error::internal("viewers' TCP port").with_source(e))?;
        let on = |port: u16| -> Vec<SocketAddr> {
            announced
                .iter()
                .map(|ip| SocketAddr::new(*ip, port))
                .collect()
        };
        let (candidates, tcp_candidates) = (on(udp.local_addr().port()), on(tcp_addr.port()));
        tracing::info!(udp = %udp.local_addr(), tcp = %tcp_addr, announced = ?announced, "viewers' media ports");
        let udp = Arc::new(udp);
        let dropped = |reason| {
            metrics
                .viewer_datagrams_dropped
                .get_or_create(&crate::metrics::DropLabels { reason })
                .clone()
        };
        let demux = Arc::new(Demux::new(dropped("unknown"), dropped("inbox_full")));
        let port_tasks = [
            tokio::spawn(udp.clone().run(demux.clone())).abort_handle(),
            tokio::spawn(tcp::run(tcp, demux.clone())).abort_handle(),
        ];
        Ok(Whep {
            udp,
            demux,
            port_tasks,
            settings: Mutex::new(new_certificate()?),
            candidates,
            tcp_candidates,
            sessions: Mutex::new(HashMap::new()),
            talkers: Arc::default(),
            reserved: Mutex::new(HashMap::new()),
            feeds,
            metrics,
            config: config.clone(),
        })
    }

    /// What a new session's connection is made with, `now` on the wall clock.
    fn peer_settings(&self, now: UnixMillis) -> Result<PeerSettings, Error> {
        let mut current = self.settings.lock().unwrap_or_else(|p| p.into_inner());
        if current.made.elapsed() > CERTIFICATE_LIFE {
            *current = new_certificate()?;
        }
        Ok(PeerSettings {
            certificate: current.certificate.clone(),
            candidates: self.candidates.clone(),
            tcp_candidates: self.tcp_candidates.clone(),
            max_segments: self.udp.max_segments(),
            wall_clock: (
                eyeward::clock::monotonic(),
                Duration::from_millis(u64::try_from(now.0).unwrap_or(0)),
            ),
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

    /// Starts a session of `viewer` on `camera` from `offer` at `now`, ended when `ended`
    /// resolves (its grant taken away, or its time up); returns its id and the SDP answer.
    pub async fn start(
        self: &Arc<Self>,
        viewer: Viewer,
        camera: &Camera,
        offer: &str,
        now: UnixMillis,
        ended: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(String, String), Error> {
        let mut offer = parse_offer(offer)?;
        // Held until the session is registered (or fails).
        let _slot = self.reserve(viewer, camera.id)?;
        if offer.takes_h265() && self.feeds.sends_h265(camera).await {
            offer.choose_h265();
        }
        let settings = self.peer_settings(now)?;
        let (peer, answer) = Peer::answer(&settings, &offer, eyeward::clock::monotonic())
            .map_err(|e| Error::bad_request(format!("cannot answer this offer: {}", e.0)))?;
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
        let (close, closed) = oneshot::channel();
        let (sound, sound_orders) = mpsc::channel(4);
        let (talk, talk_orders) = mpsc::channel(4);
        self.lock().insert(
            id.clone(),
            Session {
                viewer,
                camera: camera.id,
                sound_formats: SoundCodec::ALL
                    .into_iter()
                    .filter(|c| offer.sound_payload_type(*c).is_some())
                    .collect(),
                sound,
                speaks: offer.speech_payload_type().is_some(),
                talk,
                close: Some(close),
                task: None,
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
        let inbox = Routed::new(self.demux.clone(), peer.ufrag());
        let session = ViewerTask {
            // Joining now starts the camera's feed while ICE and DTLS are still under way.
            early: Some(self.feeds.watch(camera, offer.video_codec)),
            codec: offer.video_codec,
            peer,
            inbox,
            sound_orders,
            sound: None,
            talk_orders,
            speaking: None,
            udp: self.udp.clone(),
            tcp_links: HashMap::new(),
            closed,
            feeds: self.feeds.clone(),
            camera: camera.clone(),
            metrics: self.metrics.clone(),
            joined: eyeward::clock::monotonic(),
            first_sent: false,
            transport_counted: false,
            resent: 0,
            latency_of: None,
        };
        let metrics = self.metrics.clone();
        let task =
            tokio::spawn(
                async move { task::contained(&metrics, Task::Viewer, session.run()).await },
            );
        if let Some(s) = self.lock().get_mut(&id) {
            s.task = Some(task.abort_handle());
        }
        let this = self.clone();
        let session_id = id.clone();
        tokio::spawn(async move {
            let _ = task.await;
            this.end(&session_id).await;
        });
        tracing::info!(camera = camera.id.0, session = %id, "viewer joined");
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

    /// Starts (`on`) or stops the sound of `camera` in session `id` of `viewer` (404 when it
    /// is not theirs, or not on that camera). Starting waits until the sound plays, and says
    /// in which format; when the camera has none the viewer can hear, the answer says why.
    pub async fn listen(
        &self,
        viewer: Viewer,
        camera: &Camera,
        id: &str,
        on: bool,
    ) -> Result<Option<SoundCodec>, Error> {
        let found = self
            .lock()
            .get(id)
            .filter(|s| s.viewer == viewer && s.camera == camera.id)
            .map(|s| (s.sound_formats.clone(), s.sound.clone()));
        let Some((formats, orders)) = found else {
            return Err(Error::not_found("session"));
        };
        if !on {
            let _ = orders.send(None).await;
            return Ok(None);
        }
        if formats.is_empty() {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                "this live view was set up without sound",
            ));
        }
        let listening = self.feeds.listen(camera);
        let mut state = listening.state.clone();
        let settled = tokio::time::timeout(
            SOUND_START_TIMEOUT,
            state.wait_for(|s| *s != SoundState::Starting),
        )
        .await
        .ok()
        .and_then(|r| r.ok().map(|s| s.clone()));
        let codec = match settled {
            Some(SoundState::Playing(codec)) => codec,
            Some(SoundState::Unavailable(why)) => {
                return Err(Error::new(ErrorKind::FailedPrecondition, why));
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "the camera's sound did not start in time; try again",
                ));
            }
        };
        if !formats.contains(&codec) {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                format!(
                    "the camera's sound is {}, which this browser did not offer to play",
                    codec.rtpmap().0
                ),
            ));
        }
        orders
            .send(Some(listening))
            .await
            .map_err(|_| Error::not_found("session"))?;
        Ok(Some(codec))
    }

    /// Starts (`on`) or ends talk through `camera` in session `id` of `viewer` (404 when it is
    /// not theirs, or not on that camera). Only a camera's owner speaks through it, one person
    /// at a time. Starting waits until the camera's speaker is set up, and gives the codec it
    /// takes and a receiver told how long the talk lasted when it ends; asking again while
    /// talking changes nothing (`None`).
    pub async fn talk(
        &self,
        viewer: Viewer,
        camera: &Camera,
        id: &str,
        on: bool,
    ) -> Result<Option<(String, oneshot::Receiver<Duration>)>, Error> {
        let found = self
            .lock()
            .get(id)
            .filter(|s| s.viewer == viewer && s.camera == camera.id)
            .map(|s| (s.speaks, s.talk.clone()));
        let Some((speaks, orders)) = found else {
            return Err(Error::not_found("session"));
        };
        if !on {
            let _ = orders.send(None).await;
            return Ok(None);
        }
        let of_the_household = match viewer {
            Viewer::Customer(id) | Viewer::Member { household: id, .. } => id == camera.customer_id,
            Viewer::Operator { .. } | Viewer::Guard { .. } => false,
        };
        if !of_the_household {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "only the camera's household speaks through it",
            ));
        }
        if !speaks {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                "this live view was set up without a microphone (its browser sends no Opus)",
            ));
        }
        let slot = TalkSlot::take(&self.talkers, camera.id, id)?;
        let Some(slot) = slot else {
            return Ok(None);
        };
        let (backchannel, carrier) = self.feeds.backchannel(camera).await?;
        let (speaking, ended) = Speaking::open(backchannel, Box::new((carrier, slot)));
        let codec = speaking.codec().to_owned();
        orders
            .send(Some(speaking))
            .await
            .map_err(|_| Error::not_found("session"))?;
        Ok(Some((codec, ended)))
    }

    /// Ends every session watching through dispatch request `request` (it closed).
    pub async fn end_shared(&self, request: i64) {
        let ids: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, s)| {
                matches!(s.viewer, Viewer::Operator { request: r, .. }
                    | Viewer::Guard { request: r, .. } if r == request)
            })
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

    /// Ends session `id`, if it is still there: its task closes the connection, or is
    /// stopped if it has not within [`CLOSE_TIMEOUT`].
    pub async fn end(&self, id: &str) {
        let session = self.lock().remove(id);
        if let Some(mut s) = session {
            if let Some(watcher) = &s.watcher {
                watcher.abort();
            }
            let closing = s.close.take().is_some_and(|close| close.send(()).is_ok());
            if let Some(task) = s.task.take() {
                if closing {
                    tokio::spawn(async move {
                        tokio::time::sleep(CLOSE_TIMEOUT).await;
                        task.abort();
                    });
                } else {
                    task.abort();
                }
            }
            self.metrics
                .viewers
                .get_or_create(&crate::metrics::CameraLabels { camera: s.camera.0 })
                .dec();
            tracing::info!(camera = s.camera.0, session = %id, "viewer left");
        }
    }
}

/// How long a session's task may take to close its connection once told to.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a viewer who asks to listen waits for the camera's sound to start.
const SOUND_START_TIMEOUT: Duration = Duration::from_secs(10);

/// A camera's place in the list of cameras spoken through, held by one session while it
/// talks; given back when dropped.
struct TalkSlot {
    talkers: Arc<Mutex<HashMap<CameraId, String>>>,
    camera: CameraId,
    session: String,
}

impl TalkSlot {
    /// Takes `camera`'s place for `session`: `None` when that session has it already, 409's
    /// kind when another has.
    fn take(
        talkers: &Arc<Mutex<HashMap<CameraId, String>>>,
        camera: CameraId,
        session: &str,
    ) -> Result<Option<TalkSlot>, Error> {
        let mut held = talkers.lock().unwrap_or_else(|p| p.into_inner());
        match held.get(&camera) {
            Some(s) if s == session => Ok(None),
            Some(_) => Err(Error::new(
                ErrorKind::FailedPrecondition,
                "someone else is speaking through this camera",
            )),
            None => {
                held.insert(camera, session.to_owned());
                Ok(Some(TalkSlot {
                    talkers: talkers.clone(),
                    camera,
                    session: session.to_owned(),
                }))
            }
        }
    }
}

impl Drop for TalkSlot {
    fn drop(&mut self) {
        let mut held = self.talkers.lock().unwrap_or_else(|p| p.into_inner());
        if held.get(&self.camera) == Some(&self.session) {
            held.remove(&self.camera);
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
pub fn parse_offer(sdp: &str) -> Result<sdp::Offer, Error> {
    sdp::Offer::parse(sdp).map_err(|e| Error::bad_request(e.0))
}

/// A viewer's datagrams from the shared ports, routed to it until this is dropped.
struct Routed {
    demux: Arc<Demux>,
    ufrag: String,
    datagrams: mpsc::Receiver<Datagram>,
}

impl Routed {
    fn new(demux: Arc<Demux>, ufrag: &str) -> Routed {
        let datagrams = demux.register(ufrag);
        Routed {
            demux,
            ufrag: ufrag.to_owned(),
            datagrams,
        }
    }
}

impl Drop for Routed {
    fn drop(&mut self) {
        self.demux.unregister(&self.ufrag);
    }
}

/// ICE-TCP connections one viewer may have (a browser opens one per candidate pair).
const MAX_TCP_LINKS_PER_VIEWER: usize = 4;

/// How long a viewer may take to connect (ICE, DTLS) before its session is dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// One session's task: the only owner of its [`Peer`], which it feeds with datagrams,
/// frames and time, and whose batches it sends.
struct ViewerTask {
    peer: Peer,
    inbox: Routed,
    /// The camera's sound given to or taken from the session ([`Whep::listen`]).
    sound_orders: mpsc::Receiver<Option<Listening>>,
    /// The camera's sound, while the viewer listens.
    sound: Option<Listening>,
    /// A talk given to or taken from the session ([`Whep::talk`]).
    talk_orders: mpsc::Receiver<Option<Speaking>>,
    /// The talk to the camera's speaker, while the viewer speaks.
    speaking: Option<Speaking>,
    udp: Arc<UdpPort>,
    /// The viewer's ICE-TCP connections, by its address.
    tcp_links: HashMap<SocketAddr, TcpLink>,
    /// Told when the session ends from outside.
    closed: oneshot::Receiver<()>,
    feeds: Arc<Feeds>,
    camera: Camera,
    /// The codec the viewer gets the camera's video in.
    codec: VideoCodec,
    /// The subscription taken at offer time, which keeps the feed running until connected.
    early: Option<Subscription>,
    metrics: Arc<Metrics>,
    joined: Instant,
    first_sent: bool,
    /// Whether the transport the video took is counted yet.
    transport_counted: bool,
    /// Packets resent so far, as counted in the metrics.
    resent: u64,
    /// When the live frame just handed to the peer was whole at the relay.
    latency_of: Option<Instant>,
}

impl ViewerTask {
    async fn run(mut self) {
        let connect_by = tokio::time::Instant::from_std(self.joined + CONNECT_TIMEOUT);
        let mut live: Option<Subscription> = None;
        loop {
            // Everything the last input caused: events first (they may send), then batches.
            while let Some(event) = self.peer.poll_event() {
                match event {
                    PeerEvent::Connected => {
                        tracing::info!(
                            camera = self.camera.id.0,
                            after_ms = self.joined.elapsed().as_millis() as u64,
                            "viewer connected (ICE and DTLS up)"
                        );
                        // A fresh subscription: the group of pictures as it is now, not as it
                        // was at offer time.
                        let mut sub = self.feeds.watch(&self.camera, self.codec);
                        self.early = None;
                        let cached = std::mem::take(&mut sub.cached);
                        self.send_cached(&cached);
                        live = Some(sub);
                    }
                    PeerEvent::Ended => return,
                    PeerEvent::KeyframeWanted => {
                        // The viewer lost a picture and asks for a keyframe, which an RTSP
                        // camera cannot be asked for: answer from the cache.
                        let gop = live.as_ref().map(Subscription::current_gop);
                        if let Some(gop) = gop.filter(|g| !g.is_empty()) {
                            self.metrics.keyframe_requests_answered.inc();
                            self.send_cached(&gop);
                        }
                    }
                }
            }
            self.send_transmits().await;
            let timer = self.peer.poll_timeout().map(tokio::time::Instant::from_std);
            let connected = live.is_some();
            tokio::select! {
                datagram = self.inbox.datagrams.recv() => match datagram {
                    Some(d) => self.receive(d),
                    None => return,
                },
                order = self.sound_orders.recv() => match order {
                    Some(sound) => self.sound = sound,
                    // The session is gone from the relay's list: it is ending.
                    None => return,
                },
                order = self.talk_orders.recv() => match order {
                    Some(talk) => self.speaking = talk,
                    None => return,
                },
                packet = next_sound(&mut self.sound) => match packet {
                    Ok(packet) => self.peer.send_sound(&packet),
                    // A listener that fell behind skips what it missed.
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => self.sound = None,
                },
                frame = next_frame(&mut live) => match frame {
                    Ok(frame) => {
                        #[cfg(feature = "failpoints")]
                        crate::task::fail_point("viewer-frame", self.camera.id);
                        self.send_live(&frame);
                    }
                    Err(RecvError::Lagged(n)) => {
                        self.metrics.viewer_frames_dropped.inc_by(n);
                        self.peer.skip_to_keyframe();
                    }
                    Err(RecvError::Closed) => return,
                },
                () = sleep_until(timer) => self.peer.handle_timeout(eyeward::clock::monotonic()),
                () = tokio::time::sleep_until(connect_by), if !connected => return,
                _ = &mut self.closed => {
                    self.peer.close(eyeward::clock::monotonic());
                    self.send_transmits().await;
                    return;
                }
            }
        }
    }

    fn receive(&mut self, datagram: Datagram) {
        let protocol = match datagram.tcp {
            Some(link) => {
                if self.tcp_links.len() < MAX_TCP_LINKS_PER_VIEWER {
                    self.tcp_links.insert(datagram.from, link);
                }
                TransportProtocol::TCP
            }
            None if self.tcp_links.contains_key(&datagram.from) => TransportProtocol::TCP,
            None => TransportProtocol::UDP,
        };
        let now = eyeward::clock::monotonic();
        self.peer
            .handle_datagram(now, protocol, datagram.local, datagram.from, &datagram.data);
        // The viewer's speech goes to the camera while it talks; otherwise it is dropped.
        while let Some(speech) = self.peer.poll_speech() {
            let Some(speaking) = self.speaking.as_mut() else {
                continue;
            };
            if let Err(e) = speaking.say(&speech) {
                tracing::warn!(camera = self.camera.id.0, error = %e.chain(), "talk ended");
                self.speaking = None;
            }
        }
    }

    /// Hands the peer's batches to the kernel: UDP straight to the shared socket, ICE-TCP
    /// framed to the viewer's connection (dropped if it is not keeping up).
    async fn send_transmits(&mut self) {
        let resent = self.peer.packets_resent();
        if resent > self.resent {
            self.metrics.packets_resent.inc_by(resent - self.resent);
            self.resent = resent;
        }
        let latency_of = self.latency_of.take();
        while let Some(transmit) = self.peer.poll_transmit() {
            if self.first_sent && !self.transport_counted {
                self.transport_counted = true;
                let transport = match transmit.protocol {
                    TransportProtocol::TCP => "tcp",
                    _ => "udp",
                };
                self.metrics
                    .viewer_media_started
                    .get_or_create(&crate::metrics::TransportLabels { transport })
                    .inc();
            }
            match transmit.protocol {
                TransportProtocol::TCP => self.send_tcp(&transmit),
                _ => self.udp.send(&transmit).await,
            }
        }
        if let Some(received) = latency_of {
            self.metrics
                .relay_latency_seconds
                .observe(received.elapsed().as_secs_f64());
        }
    }

    fn send_tcp(&mut self, transmit: &Transmit) {
        let Some(link) = self.tcp_links.get(&transmit.to) else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Closed(_)) =
            link.try_send(tcp::frame(transmit.datagrams()))
        {
            self.tcp_links.remove(&transmit.to);
        }
    }

    fn send_cached(&mut self, frames: &[Arc<crate::ingest::Frame>]) {
        if frames.is_empty() {
            return;
        }
        self.peer.send_cached(eyeward::clock::monotonic(), frames);
        self.first_frame_sent();
    }

    fn send_live(&mut self, frame: &Arc<crate::ingest::Frame>) {
        match self.peer.send_live(eyeward::clock::monotonic(), frame) {
            Delivery::Skipped => return,
            // Its latency is taken once its packets are handed to the kernel.
            Delivery::Sent => self.latency_of = Some(frame.received),
            Delivery::Paced => {}
        }
        self.metrics.frames_forwarded.inc();
        self.metrics
            .packets_forwarded
            .inc_by(frame.rtp_payloads.len() as u64);
        self.metrics.bytes_forwarded.inc_by(frame.data.len() as u64);
        self.first_frame_sent();
    }

    fn first_frame_sent(&mut self) {
        if !self.first_sent {
            self.first_sent = true;
            self.metrics
                .first_frame_seconds
                .observe(self.joined.elapsed().as_secs_f64());
        }
    }
}

/// The next live frame, once there is a subscription (never before).
async fn next_frame(
    live: &mut Option<Subscription>,
) -> Result<Arc<crate::ingest::Frame>, RecvError> {
    match live {
        Some(sub) => sub.live.recv().await,
        None => std::future::pending().await,
    }
}

/// The next packet of the camera's sound, while the viewer listens (never otherwise).
async fn next_sound(
    sound: &mut Option<Listening>,
) -> Result<Arc<crate::fanout::SoundPacket>, RecvError> {
    match sound {
        Some(listening) => listening.packets.recv().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`, or for ever.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Where the viewers' port listens, and the addresses announced to browsers as its host
/// candidates: `ice_addresses` (one: listen on it; several: on every address), else every
/// interface's IPv4 address but loopback; `public_ips` instead when the relay is behind a 1:1
/// NAT.
fn addresses(config: &WebrtcConfig) -> Result<(IpAddr, Vec<IpAddr>), Error> {
    let local: Vec<IpAddr> = match &config.ice_addresses {
        Some(addresses) => addresses.clone(),
        None => if_addrs::get_if_addrs()
            .map_err(|e| Error::internal("listing network interfaces").with_source(e))?
            .into_iter()
            .map(|i| i.ip())
            .filter(|ip| ip.is_ipv4() && !ip.is_loopback())
            .collect(),
    };
    if local.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "webrtc: no address to announce to browsers (set webrtc.ice_addresses)",
        ));
    }
    let bind = match local.as_slice() {
        [one] => *one,
        many if many.iter().all(IpAddr::is_ipv4) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "webrtc.ice_addresses: give one IPv6 address, or IPv4 addresses only",
            ));
        }
    };
    let announced = if config.public_ips.is_empty() {
        local
    } else {
        config.public_ips.clone()
    };
    Ok((bind, announced))
}
