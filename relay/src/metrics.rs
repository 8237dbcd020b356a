//! Prometheus metrics, served as text at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route pattern (`/api/cameras/{id}`), never the concrete path, to bound cardinality.
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CameraLabels {
    pub camera: i64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CenterLabels {
    /// `east`, `tokyo` or `west`.
    pub center: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoginLabels {
    /// `success`, `failure` (wrong email or password) or `throttled`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    /// `feed`, `viewer` or `agent_link`.
    pub task: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabels {
    /// `udp` or `tcp` (ICE-TCP); a TURN relay shows as the TURN server's UDP.
    pub transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    /// `unknown` (no viewer's) or `inbox_full` (the viewer did not keep up).
    pub reason: &'static str,
}

/// Every metric the relay exports.
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_request_seconds: Family<RouteLabels, Histogram>,
    pub logins: Family<LoginLabels, Counter>,
    pub sessions_expired: Counter,
    pub agent_links: Gauge,
    pub agent_auth_failures: Counter,
    pub tunnels_opened: Counter,
    /// Pan-tilt commands carried out.
    pub ptz_commands: Counter,
    /// Dispatch requests made by customers.
    pub dispatch_requests: Counter,
    /// Dispatch requests waiting for their guard center to accept them (read from the
    /// database when scraped, so requests from before a restart count too).
    pub dispatch_waiting: Family<CenterLabels, Gauge>,
    pub ingest_frames: Counter,
    pub viewers: Family<CameraLabels, Gauge>,
    pub frames_forwarded: Counter,
    pub packets_forwarded: Counter,
    pub events_stored: Counter,
    pub clips_stored: Counter,
    pub bytes_forwarded: Counter,
    pub viewer_frames_dropped: Counter,
    pub first_frame_seconds: Histogram,
    pub relay_latency_seconds: Histogram,
    pub keyframe_requests_answered: Counter,
    pub viewer_media_started: Family<TransportLabels, Counter>,
    pub packets_resent: Counter,
    pub viewer_datagrams_dropped: Family<DropLabels, Counter>,
    /// Panics contained in a camera's, a viewer's or an agent link's task.
    pub task_panics: Family<TaskLabels, Counter>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("eyeward");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            http_requests.clone(),
        );
        let http_request_seconds = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "http_request_seconds",
            "Time to answer HTTP requests, by route",
            http_request_seconds.clone(),
        );
        let logins = Family::<LoginLabels, Counter>::default();
        registry.register("logins", "Login attempts, by result", logins.clone());
        let sessions_expired = Counter::default();
        registry.register(
            "sessions_expired",
            "Sessions ended by the idle or age limit",
            sessions_expired.clone(),
        );
        let agent_links = Gauge::default();
        registry.register(
            "agent_links",
            "Agents connected (cameras online)",
            agent_links.clone(),
        );
        let agent_auth_failures = Counter::default();
        registry.register(
            "agent_auth_failures",
            "Agent connections refused for an unknown or revoked token",
            agent_auth_failures.clone(),
        );
        let tunnels_opened = Counter::default();
        registry.register(
            "tunnels_opened",
            "Video tunnels opened by agents at the relay's request",
            tunnels_opened.clone(),
        );
        let ptz_commands = Counter::default();
        registry.register(
            "ptz_commands",
            "Pan-tilt commands carried out by cameras",
            ptz_commands.clone(),
        );
        let dispatch_requests = Counter::default();
        registry.register(
            "dispatch_requests",
            "Dispatch requests made by customers",
            dispatch_requests.clone(),
        );
        let dispatch_waiting = Family::<CenterLabels, Gauge>::default();
        registry.register(
            "dispatch_waiting",
            "Dispatch requests waiting for acceptance, by guard center",
            dispatch_waiting.clone(),
        );
        let ingest_frames = Counter::default();
        registry.register(
            "ingest_frames",
            "Frames received from cameras",
            ingest_frames.clone(),
        );
        let viewers = Family::<CameraLabels, Gauge>::default();
        registry.register("viewers", "Live-video sessions, by camera", viewers.clone());
        let frames_forwarded = Counter::default();
        registry.register(
            "frames_forwarded",
            "Frames sent to viewers (per viewer)",
            frames_forwarded.clone(),
        );
        let events_stored = Counter::default();
        registry.register(
            "events_stored",
            "Motion events stored (repeated uploads not counted)",
            events_stored.clone(),
        );
        let clips_stored = Counter::default();
        registry.register(
            "clips_stored",
            "Event clips stored whole (repeated uploads not counted)",
            clips_stored.clone(),
        );
        let packets_forwarded = Counter::default();
        registry.register(
            "packets_forwarded",
            "RTP packets sent to viewers (per viewer)",
            packets_forwarded.clone(),
        );
        let bytes_forwarded = Counter::default();
        registry.register(
            "bytes_forwarded",
            "H.264 bytes sent to viewers (per viewer)",
            bytes_forwarded.clone(),
        );
        let viewer_frames_dropped = Counter::default();
        registry.register(
            "viewer_frames_dropped",
            "Frames a slow viewer skipped to catch up at the next keyframe",
            viewer_frames_dropped.clone(),
        );
        let first_frame_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        registry.register(
            "first_frame_seconds",
            "From a viewer's offer to its first frame handed to WebRTC",
            first_frame_seconds.clone(),
        );
        let relay_latency_seconds = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register(
            "relay_latency_seconds",
            "The relay's own added latency: a live frame whole from the camera to handed to SRTP",
            relay_latency_seconds.clone(),
        );
        let keyframe_requests_answered = Counter::default();
        registry.register(
            "keyframe_requests_answered",
            "Viewers' keyframe requests (PLI, FIR) answered from the cached group of pictures",
            keyframe_requests_answered.clone(),
        );
        let viewer_media_started = Family::<TransportLabels, Counter>::default();
        registry.register(
            "viewer_media_started",
            "Viewers whose video started, by the transport it took (udp, or tcp where UDP is blocked)",
            viewer_media_started.clone(),
        );
        let packets_resent = Counter::default();
        registry.register(
            "packets_resent",
            "RTP packets sent again because a viewer reported them lost (NACK)",
            packets_resent.clone(),
        );
        let viewer_datagrams_dropped = Family::<DropLabels, Counter>::default();
        registry.register(
            "viewer_datagrams_dropped",
            "Datagrams on the viewers' shared ports dropped: no viewer's, or the viewer's inbox full",
            viewer_datagrams_dropped.clone(),
        );
        let task_panics = Family::<TaskLabels, Counter>::default();
        registry.register(
            "task_panics",
            "Panics that ended one camera's, viewer's or agent link's task (the rest ran on)",
            task_panics.clone(),
        );
        Metrics {
            registry,
            task_panics,
            keyframe_requests_answered,
            viewer_media_started,
            packets_resent,
            viewer_datagrams_dropped,
            relay_latency_seconds,
            ingest_frames,
            viewers,
            frames_forwarded,
            packets_forwarded,
            events_stored,
            clips_stored,
            bytes_forwarded,
            viewer_frames_dropped,
            first_frame_seconds,
            agent_links,
            agent_auth_failures,
            tunnels_opened,
            ptz_commands,
            dispatch_requests,
            dispatch_waiting,
            http_requests,
            http_request_seconds,
            logins,
            sessions_expired,
        }
    }

    pub fn login(&self, result: &'static str) {
        self.logins.get_or_create(&LoginLabels { result }).inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
