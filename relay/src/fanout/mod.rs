//! Fan-out: one pull per camera, many viewers. A camera's feed starts when its first viewer
//! arrives, keeps the current group of pictures for instant starts, hands every frame to every
//! viewer without copying it, reconnects after camera faults, and stops `linger` after the
//! last viewer left. Its sound is a feed of its own ([`sound`]), pulled only while someone
//! listens.

mod gop;
mod sound;
mod transcoded;

pub use sound::{Listening, SoundCodec, SoundPacket, SoundState};
use transcoded::Transcoded;

/// The codecs viewers get a camera's video in: H.264 (the camera's own, or transcoded from
/// its H.265), the camera's own H.265 for browsers that take it, or VP8 transcoded from the
/// H.264 for browsers without H.264.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    H264,
    H265,
    Vp8,
}

/// How long a viewer that takes H.265 waits to learn whether a camera not read yet sends it
/// (a DESCRIBE); past it, it gets H.264.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

use crate::cluster::{Cluster, PeerFeed};
use crate::config::{CamerasConfig, RtspTransport};
use crate::ingest::{self, CameraVideo, Frame, Ingest};
use crate::link::{self, Links};
use crate::loopback;
use crate::metrics::Metrics;
use crate::store::Camera;
use crate::task::{self, Task};
use crate::transcode::H264Engines;
use eyeward::link::Backoff;
use eyeward::{CameraId, CameraSource, RtspSource, SourcePolicy};
use gop::Gop;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Frames queued per viewer before a slow viewer is told it lagged (then it waits for the
/// next keyframe): about 8 s at 30 fps.
const VIEWER_QUEUE: usize = 256;

/// Who is on a feed: how many, and since when nobody (the feed stops `linger` later).
#[derive(Debug, Default)]
struct Audience {
    count: usize,
    idle_since: Option<Instant>,
}

impl Audience {
    fn join(&mut self) {
        self.count += 1;
        self.idle_since = None;
    }

    fn leave(&mut self) {
        self.count = self.count.saturating_sub(1);
        if self.count == 0 {
            self.idle_since = Some(eyeward::clock::monotonic());
        }
    }

    /// True once nobody has been on the feed for `linger`.
    fn expired(&self, linger: Duration) -> bool {
        self.idle_since.is_some_and(|t| t.elapsed() >= linger)
    }
}

struct Shared {
    gop: Gop,
    viewers: Audience,
    /// Camera sessions so far: a new one (after a reconnect or a contained panic) may restart
    /// the camera's timestamps, which viewers must tell apart.
    epoch: u64,
}

/// One camera's feed, in one codec.
pub struct Feed {
    camera: CameraId,
    codec: VideoCodec,
    shared: Mutex<Shared>,
    frames: broadcast::Sender<Arc<Frame>>,
}

impl Subscription {
    /// The feed's group of pictures as it is now (to answer a viewer's keyframe request).
    pub fn current_gop(&self) -> Vec<Arc<Frame>> {
        self.guard.0.lock().gop.frames().to_vec()
    }
}

/// A viewer's subscription: the cached frames to send first, then the live ones.
pub struct Subscription {
    pub cached: Vec<Arc<Frame>>,
    pub live: broadcast::Receiver<Arc<Frame>>,
    guard: ViewerGuard,
}

struct ViewerGuard(Arc<Feed>);

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.0.lock().viewers.leave();
    }
}

impl Feed {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn subscribe(self: &Arc<Self>) -> Subscription {
        let mut s = self.lock();
        s.viewers.join();
        // Under the lock: no frame can fall between the cached ones and the live ones.
        Subscription {
            cached: s.gop.frames().to_vec(),
            live: self.frames.subscribe(),
            guard: ViewerGuard(self.clone()),
        }
    }

    fn publish(&self, frame: Frame) {
        let frame = Arc::new(frame);
        let mut s = self.lock();
        s.gop.push(frame.clone());
        // No receivers is fine: the feed lingers a while after the last viewer.
        let _ = self.frames.send(frame);
    }

    /// Starts a new camera session: returns its epoch.
    fn new_session(&self) -> u64 {
        let mut s = self.lock();
        s.epoch += 1;
        s.epoch
    }

    /// Forgets the ended session's frames: they may not decode with the next session's
    /// parameter sets.
    fn end_session(&self) {
        self.lock().gop.clear();
    }

    /// True once the feed has had no viewer for `linger`.
    fn expired(&self, linger: Duration) -> bool {
        self.lock().viewers.expired(linger)
    }
}

/// Every camera's feed.
pub struct Feeds {
    feeds: Mutex<HashMap<(CameraId, VideoCodec), Arc<Feed>>>,
    /// What each camera read on this node sent when last read.
    videos: Mutex<HashMap<CameraId, CameraVideo>>,
    /// The cameras someone listens to.
    sounds: Mutex<HashMap<CameraId, Arc<sound::SoundFeed>>>,
    links: Arc<Links>,
    metrics: Arc<Metrics>,
    linger: Duration,
    /// How direct cameras are pulled, and which hosts they may have.
    cameras: CamerasConfig,
    /// Agent cameras linked to another node are pulled through it.
    cluster: Arc<Cluster>,
    /// The H.264 encoders the transcodes of H.265 cameras may use.
    h264_engines: Arc<H264Engines>,
}

/// Where a feed's frames come from: the camera's RTSP (directly, or through its agent's
/// tunnel, with the loopback port that carries it), the node that holds the camera, or the
/// camera's H.264 feed through a transcoder.
enum Pulled {
    Rtsp {
        ingest: Ingest,
        /// Kept open while the session plays: dropping it closes the loopback port.
        _carrier: loopback::Offered,
    },
    Peer(PeerFeed),
    Transcoded(Box<Transcoded>),
}

impl Pulled {
    async fn next_frame(&mut self) -> Result<Option<Frame>, crate::error::Error> {
        match self {
            Pulled::Rtsp { ingest, .. } => ingest.next_frame().await,
            Pulled::Peer(peer) => peer.next_frame().await,
            Pulled::Transcoded(transcoded) => transcoded.next_frame().await,
        }
    }
}

/// The longest pause between tries to pull a camera: short through another node, whose
/// camera comes back as soon as its agent links to any node after a failover.
const RETRY_CEILING: Duration = Duration::from_secs(10);
const RETRY_CEILING_ELSEWHERE: Duration = Duration::from_secs(2);

impl Feeds {
    pub fn new(
        links: Arc<Links>,
        metrics: Arc<Metrics>,
        linger: Duration,
        cameras: &CamerasConfig,
        cluster: Arc<Cluster>,
    ) -> Feeds {
        Feeds {
            feeds: Mutex::new(HashMap::new()),
            videos: Mutex::new(HashMap::new()),
            sounds: Mutex::new(HashMap::new()),
            links,
            metrics,
            linger,
            cameras: cameras.clone(),
            cluster,
            h264_engines: Arc::new(H264Engines::of_this_machine()),
        }
    }

    /// Whether `camera` sends H.265 this node can pass through to a viewer that takes it:
    /// known from the camera's last session here, or asked of the camera (a DESCRIBE, at most
    /// [`PROBE_TIMEOUT`]). An agent's camera read through another node is not.
    pub async fn sends_h265(&self, camera: &Camera) -> bool {
        if self.held_elsewhere(camera) {
            return false;
        }
        if let Some(video) = self.learned(camera.id) {
            return video == CameraVideo::H265;
        }
        let probe = async {
            let rtsp = self.rtsp(camera, link::TunnelTo::Video).await?;
            ingest::describe_video(&rtsp.url, rtsp.credentials).await
        };
        match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
            Ok(Ok(video)) => {
                self.learn(camera.id, video);
                video == CameraVideo::H265
            }
            Ok(Err(e)) => {
                tracing::info!(camera = camera.id.0, error = %e, "cannot tell the camera's codec");
                false
            }
            Err(_) => false,
        }
    }

    /// Whether `camera`'s agent is linked to another node: its feed is pulled through that
    /// node, its sound and speaker are reached through tunnels that node carries (an agent
    /// that is offline everywhere gets the tunnel's own "offline").
    fn held_elsewhere(&self, camera: &Camera) -> bool {
        matches!(camera.source, CameraSource::Agent)
            && !self.links.is_online(camera.id)
            && self.cluster.is_clustered()
    }

    /// The codec `camera` sent when this node last read it (`h264`, `h265`), if it did.
    pub fn codec_seen(&self, camera: CameraId) -> Option<&'static str> {
        self.learned(camera).map(CameraVideo::encoding_name)
    }

    fn learned(&self, camera: CameraId) -> Option<CameraVideo> {
        let videos = self.videos.lock().unwrap_or_else(|p| p.into_inner());
        videos.get(&camera).copied()
    }

    fn learn(&self, camera: CameraId, video: CameraVideo) {
        let mut videos = self.videos.lock().unwrap_or_else(|p| p.into_inner());
        videos.insert(camera, video);
    }

    /// Joins the camera's feed in `codec`, starting it if nobody watches yet (a VP8 feed
    /// watches the camera's H.264 feed while it runs, and the H.264 feed of a camera known to
    /// send H.265 its H.265 feed).
    pub fn watch(self: &Arc<Self>, camera: &Camera, codec: VideoCodec) -> Subscription {
        let mut feeds = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(feed) = feeds.get(&(camera.id, codec)) {
            return feed.subscribe();
        }
        let (frames, _) = broadcast::channel(VIEWER_QUEUE);
        let feed = Arc::new(Feed {
            camera: camera.id,
            codec,
            shared: Mutex::new(Shared {
                gop: Gop::default(),
                viewers: Audience::default(),
                epoch: 0,
            }),
            frames,
        });
        let sub = feed.subscribe();
        feeds.insert((camera.id, codec), feed.clone());
        let this = self.clone();
        let camera = camera.clone();
        tokio::spawn(async move {
            let span = tracing::info_span!("feed", camera = camera.id.0, codec = ?codec);
            let _ = tracing::Instrument::instrument(this.run(feed, camera), span).await;
        });
        sub
    }

    /// Runs the feed until it has had no viewer for `linger`, then removes it. A panic while
    /// pulling ends that pull alone: the camera is pulled again after a pause, and its viewers
    /// stay and go on at the next keyframe.
    async fn run(self: Arc<Self>, feed: Arc<Feed>, camera: Camera) {
        tracing::info!("feed starting");
        let mut after_panic = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        loop {
            let pulled = task::contained(&self.metrics, Task::Feed, self.pull(&feed, &camera));
            if pulled.await.is_none() {
                feed.end_session();
                let delay = after_panic.next_delay(rand::random());
                tracing::warn!(retry_in = ?delay, "pulling the camera again after a panic");
                tokio::time::sleep(delay).await;
            }
            let mut feeds = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
            // A viewer may have joined since the last check: then the feed goes on.
            if feed.lock().viewers.count == 0 {
                feeds.remove(&(feed.camera, feed.codec));
                tracing::info!("feed stopped: nobody watches");
                return;
            }
        }
    }

    /// Pulls the camera, reconnecting with backoff, until the feed is idle for `linger`.
    async fn pull(self: &Arc<Self>, feed: &Feed, camera: &Camera) {
        let ceiling = match camera.source {
            CameraSource::Agent if self.cluster.is_clustered() => RETRY_CEILING_ELSEWHERE,
            _ => RETRY_CEILING,
        };
        let mut backoff = Backoff::new(Duration::from_millis(250), ceiling);
        while !feed.expired(self.linger) {
            let mut ingest = match self.connect(camera, feed.codec).await {
                Ok(session) => session,
                Err(e) => {
                    let delay = backoff.next_delay(rand::random());
                    tracing::warn!(error = %e, retry_in = ?delay, "camera not reachable");
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            backoff.reset();
            let epoch = feed.new_session();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    frame = ingest.next_frame() => match frame {
                        Ok(Some(mut frame)) => {
                            #[cfg(feature = "failpoints")]
                            task::fail_point("feed-frame", feed.camera);
                            self.metrics.ingest_frames.inc();
                            frame.epoch = epoch;
                            feed.publish(frame);
                        }
                        Ok(None) => { tracing::warn!("camera ended the session"); break; }
                        Err(e) => { tracing::warn!(error = %e, "camera stream failed"); break; }
                    },
                    _ = tick.tick() => if feed.expired(self.linger) { return; },
                }
            }
            feed.end_session();
        }
    }

    /// Opens an RTSP session to the camera's video, directly or through its agent's tunnel,
    /// or pulls it through the node its agent is linked to; or, for VP8, joins its H.264 feed
    /// and starts a transcoder, as it does for H.264 of a camera known to send H.265 (whose
    /// viewers that take H.265 share that session). A camera not known to is read as it
    /// comes: its H.265, if so, transcoded in the H.264 feed's session of its own.
    async fn connect(
        self: &Arc<Self>,
        camera: &Camera,
        codec: VideoCodec,
    ) -> Result<Pulled, crate::error::Error> {
        let unavailable =
            |why: &str| crate::error::Error::new(crate::error::ErrorKind::FailedPrecondition, why);
        if codec == VideoCodec::Vp8 {
            let source = self.watch(camera, VideoCodec::H264);
            return Ok(Pulled::Transcoded(Box::new(Transcoded::vp8(source)?)));
        }
        if self.held_elsewhere(camera) {
            if codec == VideoCodec::H265 {
                return Err(unavailable("the camera's H.265 is read by another node"));
            }
            return Ok(Pulled::Peer(self.cluster.pull_elsewhere(camera.id).await?));
        }
        if codec == VideoCodec::H264 && self.learned(camera.id) == Some(CameraVideo::H265) {
            let source = self.watch(camera, VideoCodec::H265);
            return Ok(Pulled::Transcoded(Box::new(Transcoded::h264_of(
                source,
                self.h264_engines.clone(),
            )?)));
        }
        let prefer = match codec {
            VideoCodec::H265 => CameraVideo::H265,
            _ => CameraVideo::H264,
        };
        let rtsp = self.rtsp(camera, link::TunnelTo::Video).await?;
        let ingest =
            Ingest::connect_preferring(&rtsp.url, rtsp.credentials, rtsp.transport, prefer).await?;
        self.learn(camera.id, ingest.video);
        match (codec, ingest.video) {
            (VideoCodec::H264, CameraVideo::H265) => {
                let transcoded = Transcoded::h264(ingest, rtsp.carrier, self.h264_engines.clone())?;
                Ok(Pulled::Transcoded(Box::new(transcoded)))
            }
            // Its viewers were answered with H.265: they see nothing until they join again.
            (VideoCodec::H265, CameraVideo::H264) => {
                Err(unavailable("the camera sends H.264 now, not H.265"))
            }
            _ => Ok(Pulled::Rtsp {
                ingest,
                _carrier: rtsp.carrier,
            }),
        }
    }

    /// Where the relay's RTSP client reads the camera: the camera itself (past a guard that
    /// bounds its pictures and checks its replies' source) or its agent's tunnel to `to`,
    /// opened here or, when the agent is linked to another node, through that node.
    async fn rtsp(&self, camera: &Camera, to: link::TunnelTo) -> Result<Rtsp, crate::error::Error> {
        match &camera.source {
            CameraSource::Rtsp(r) => {
                let r = checked_source(r, self.cameras.source_policy()).await?;
                let credentials = r
                    .username()
                    .map(|u| (u.to_owned(), r.password().unwrap_or_default().to_owned()));
                let (url, carrier) = ingest::direct_connection(camera.id, &r).await?;
                Ok(Rtsp {
                    url,
                    credentials,
                    transport: self.cameras.rtsp_transport,
                    carrier,
                })
            }
            CameraSource::Agent if self.held_elsewhere(camera) => {
                let (tunnel, path) = self.cluster.rtsp_elsewhere(camera.id, to).await?;
                let (url, carrier) = link::offer_tunnel(camera.id, &path, tunnel).await?;
                Ok(Rtsp {
                    url,
                    credentials: None,
                    transport: RtspTransport::Tcp,
                    carrier,
                })
            }
            CameraSource::Agent => {
                let (url, carrier) = link::local_tunnel(self.links.clone(), camera.id, to).await?;
                Ok(Rtsp {
                    url,
                    credentials: None,
                    transport: RtspTransport::Tcp,
                    carrier,
                })
            }
        }
    }
}

/// A camera's RTSP as the relay's client reads it (see [`Feeds::rtsp`]).
struct Rtsp {
    url: String,
    credentials: Option<(String, String)>,
    transport: RtspTransport,
    /// Kept open while the session plays: dropping it closes the loopback port.
    carrier: loopback::Offered,
}

/// A direct source that passes `policy`, resolved: every address its name resolves to must
/// pass, and the source returned names the first of them, so that a name cannot resolve to
/// one address when checked and to another (the relay's loopback, say) when connected to.
async fn checked_source(
    source: &RtspSource,
    policy: SourcePolicy,
) -> Result<RtspSource, crate::error::Error> {
    policy.check_source(source)?;
    let url::Host::Domain(name) = source.host() else {
        return Ok(source.clone());
    };
    let unreachable = |why: String| {
        crate::error::Error::new(
            crate::error::ErrorKind::FailedPrecondition,
            format!("camera host {name}: {why}"),
        )
    };
    let addrs: Vec<std::net::IpAddr> = tokio::net::lookup_host((name, source.port()))
        .await
        .map_err(|e| unreachable(e.to_string()))?
        .map(|a| a.ip())
        .collect();
    for ip in &addrs {
        policy.check_resolved(name, *ip)?;
    }
    let first = addrs
        .first()
        .ok_or_else(|| unreachable("resolves to no address".into()))?;
    Ok(source.pinned_to(*first))
}
