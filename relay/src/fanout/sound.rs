//! A camera's sound for its listeners: pulled in an RTSP session of its own when the first
//! viewer asks to listen, stopped `linger` after the last one stopped, so a camera nobody
//! listens to costs nothing. G.711 passes through as the camera sends it; any other sound the
//! relay can decode is transcoded to Opus once for every listener ([`crate::transcode`]).
//! Every packet carries when the relay had it, which is what viewers' sender reports tie
//! sound and pictures together by.

use super::{Audience, Feeds, RETRY_CEILING};
use crate::error::{Error, ErrorKind};
use crate::ingest::sound::{SoundFormat, SoundIngest};
use crate::store::Camera;
use crate::task::{self, Task};
use crate::transcode::{OPUS_CLOCK_RATE, OpusEncoder};
use eyeward::CameraId;
use eyeward::link::Backoff;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

/// Packets queued per listener: a few seconds of 20 ms packets.
const LISTENER_QUEUE: usize = 256;

/// The formats viewers get a camera's sound in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoundCodec {
    Opus,
    Pcmu,
    Pcma,
}

impl SoundCodec {
    pub const ALL: [SoundCodec; 3] = [SoundCodec::Opus, SoundCodec::Pcmu, SoundCodec::Pcma];

    /// Its name in SDP and its RTP clock rate.
    pub fn rtpmap(self) -> (&'static str, u32) {
        match self {
            SoundCodec::Opus => ("opus", OPUS_CLOCK_RATE),
            SoundCodec::Pcmu => ("PCMU", 8000),
            SoundCodec::Pcma => ("PCMA", 8000),
        }
    }

    pub fn clock_rate(self) -> u32 {
        self.rtpmap().1
    }
}

/// One packet of a camera's sound, shared by every listener.
#[derive(Debug)]
pub struct SoundPacket {
    pub codec: SoundCodec,
    /// Ticks of the codec's clock since the camera's sound session started.
    pub timestamp: i64,
    pub payload: bytes::Bytes,
    /// When the relay had this moment of sound.
    pub received: Instant,
    /// Which sound session of the camera it came from: timestamps restart with each.
    pub epoch: u64,
}

/// Where a camera's sound is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoundState {
    /// Being set up.
    Starting,
    /// Playing, in this format.
    Playing(SoundCodec),
    /// Not to be had, and why (no microphone, a codec the relay cannot decode, the camera
    /// not reachable); it is tried again while someone listens.
    Unavailable(String),
}

/// One camera's sound feed.
pub struct SoundFeed {
    camera: CameraId,
    listeners: Mutex<Audience>,
    packets: broadcast::Sender<Arc<SoundPacket>>,
    state: watch::Sender<SoundState>,
}

impl SoundFeed {
    fn listeners(&self) -> std::sync::MutexGuard<'_, Audience> {
        self.listeners.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn expired(&self, linger: Duration) -> bool {
        self.listeners().expired(linger)
    }

    fn listen(self: &Arc<Self>) -> Listening {
        self.listeners().join();
        Listening {
            packets: self.packets.subscribe(),
            state: self.state.subscribe(),
            _guard: ListenerGuard(self.clone()),
        }
    }

    fn publish(&self, packet: SoundPacket) {
        // No receivers is fine: the feed lingers a while after the last listener.
        let _ = self.packets.send(Arc::new(packet));
    }
}

/// A listener's hold on a camera's sound: its packets, and how the sound is.
pub struct Listening {
    pub packets: broadcast::Receiver<Arc<SoundPacket>>,
    pub state: watch::Receiver<SoundState>,
    _guard: ListenerGuard,
}

struct ListenerGuard(Arc<SoundFeed>);

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        self.0.listeners().leave();
    }
}

impl Feeds {
    /// Listens to the camera's sound, starting its feed if nobody listens yet.
    pub fn listen(self: &Arc<Self>, camera: &Camera) -> Listening {
        let mut sounds = self.sounds.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(feed) = sounds.get(&camera.id) {
            return feed.listen();
        }
        let feed = Arc::new(SoundFeed {
            camera: camera.id,
            listeners: Mutex::new(Audience::default()),
            packets: broadcast::channel(LISTENER_QUEUE).0,
            state: watch::channel(SoundState::Starting).0,
        });
        let listening = feed.listen();
        sounds.insert(camera.id, feed.clone());
        let this = self.clone();
        let camera = camera.clone();
        tokio::spawn(async move {
            let span = tracing::info_span!("sound", camera = camera.id.0);
            tracing::Instrument::instrument(this.run_sound(feed, camera), span).await;
        });
        listening
    }

    /// Runs the sound feed until nobody has listened for `linger`, then removes it; a panic
    /// ends that pull alone.
    async fn run_sound(self: Arc<Self>, feed: Arc<SoundFeed>, camera: Camera) {
        tracing::info!("sound starting");
        loop {
            let pulled =
                task::contained(&self.metrics, Task::Feed, self.pull_sound(&feed, &camera));
            if pulled.await.is_none() {
                feed.state
                    .send_replace(SoundState::Unavailable("the sound failed".to_owned()));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let mut sounds = self.sounds.lock().unwrap_or_else(|p| p.into_inner());
            // A listener may have come since the last check: then the feed goes on.
            if feed.listeners().count == 0 {
                sounds.remove(&feed.camera);
                tracing::info!("sound stopped: nobody listens");
                return;
            }
        }
    }

    /// Pulls the camera's sound, again after each failure (with backoff), until nobody has
    /// listened for `linger`.
    async fn pull_sound(&self, feed: &SoundFeed, camera: &Camera) {
        let mut backoff = Backoff::new(Duration::from_millis(500), RETRY_CEILING);
        let mut epoch = 0;
        while !feed.expired(self.linger) {
            let played = match self.connect_sound(camera).await {
                // The loopback port carries the session for as long as it plays. Once it
                // played, what stopped it is the camera's or the network's doing, told in
                // general words (their own may quote the camera's path).
                Ok((ingest, _carrier)) => {
                    epoch += 1;
                    self.play_sound(feed, ingest, epoch).await.map_err(|e| {
                        Error::new(
                            ErrorKind::FailedPrecondition,
                            "the camera's sound stopped; trying again",
                        )
                        .with_source(e)
                    })
                }
                Err(e) => Err(e),
            };
            match played {
                Ok(()) => backoff.reset(),
                Err(e) => {
                    let delay = backoff.next_delay(rand::random());
                    tracing::warn!(error = %e.chain(), retry_in = ?delay, "no sound from the camera");
                    feed.state
                        .send_replace(SoundState::Unavailable(e.to_string()));
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Opens an RTSP session of the camera's sound, through its agent to the camera itself
    /// (the agent keeps no sound).
    async fn connect_sound(
        &self,
        camera: &Camera,
    ) -> Result<(SoundIngest, crate::loopback::Offered), Error> {
        let rtsp = self.rtsp(camera, crate::link::TunnelTo::Camera).await?;
        let ingest = SoundIngest::connect(&rtsp.url, rtsp.credentials, rtsp.transport).await?;
        Ok((ingest, rtsp.carrier))
    }

    /// Opens the camera's speaker (its RTSP back-channel), through its agent to the camera
    /// itself, or directly.
    pub async fn backchannel(
        &self,
        camera: &Camera,
    ) -> Result<(crate::talk::Backchannel, crate::loopback::Offered), Error> {
        let rtsp = self.rtsp(camera, crate::link::TunnelTo::Camera).await?;
        let backchannel = crate::talk::Backchannel::open(&rtsp.url, rtsp.credentials).await?;
        Ok((backchannel, rtsp.carrier))
    }

    /// Hands on the session's sound, transcoded when it is not G.711, until the camera ends
    /// it or nobody has listened for `linger`.
    async fn play_sound(
        &self,
        feed: &SoundFeed,
        mut ingest: SoundIngest,
        epoch: u64,
    ) -> Result<(), Error> {
        let (codec, mut encoder) = match &ingest.format {
            SoundFormat::Pcmu => (SoundCodec::Pcmu, None),
            SoundFormat::Pcma => (SoundCodec::Pcma, None),
            SoundFormat::Transcoded { name, caps } => {
                tracing::info!(codec = %name, "transcoding the camera's sound to Opus");
                (SoundCodec::Opus, Some(OpusEncoder::new(caps)?))
            }
        };
        feed.state.send_replace(SoundState::Playing(codec));
        // The last frame in: its media time (Opus clock ticks) and when the relay had it.
        let mut anchor: Option<(i64, Instant)> = None;
        let mut edge = LiveEdge::new(eyeward::clock::monotonic());
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                frame = ingest.next_frame() => match frame? {
                    None => return Ok(()),
                    Some(frame) if !edge.admits(&frame) => {}
                    Some(frame) => match encoder.as_mut() {
                        None => feed.publish(SoundPacket {
                            codec,
                            timestamp: frame.timestamp,
                            payload: frame.data,
                            received: frame.received,
                            epoch,
                        }),
                        Some(encoder) => {
                            encoder.push(frame.timestamp, frame.clock_rate, &frame.data)?;
                            let at = frame.timestamp * i64::from(OPUS_CLOCK_RATE)
                                / i64::from(frame.clock_rate.max(1));
                            anchor = Some((at, frame.received));
                        }
                    },
                },
                packet = next_encoded(&mut encoder) => {
                    let Some(packet) = packet else { return Ok(()) };
                    let received = anchor.map_or_else(eyeward::clock::monotonic, |(at, when)| {
                        shift(when, packet.timestamp - at, OPUS_CLOCK_RATE)
                    });
                    feed.publish(SoundPacket {
                        codec,
                        timestamp: packet.timestamp,
                        payload: packet.data,
                        received,
                        epoch,
                    });
                }
                _ = tick.tick() => if feed.expired(self.linger) { return Ok(()) },
            }
        }
    }
}

/// Keeps a camera's sound at the live edge. A camera sends what its buffers hold at once when
/// a session starts (and a network sends what it held after a stall): a browser given that
/// burst keeps as much sound buffered from then on, behind the pictures. So the first
/// [`SETTLE`] only measures how late the most timely frames come, and a frame later than
/// them by more than [`MAX_LAG`] is dropped. The bar rises by a millisecond a second, for a
/// camera's clock that runs slow, and all at once when frames have come late for
/// [`RESET`]: the way from the camera has become slower, and the sound goes on from there.
struct LiveEdge {
    started: Instant,
    /// The least lateness seen (arrival less media time since `started`), in seconds,
    /// and when it was last lowered or raised.
    best: Option<(f64, Instant)>,
    /// Since when every frame has come too late.
    late_since: Option<Instant>,
}

/// How long a sound session's start is only measured.
const SETTLE: Duration = Duration::from_millis(300);
/// How much later than the most timely frames a frame may come.
const MAX_LAG: f64 = 0.060;
/// How fast the bar rises, in seconds a second.
const DRIFT: f64 = 0.001;
/// How long frames may all come late before the bar is set where they come.
const RESET: Duration = Duration::from_millis(500);

impl LiveEdge {
    fn new(started: Instant) -> LiveEdge {
        LiveEdge {
            started,
            best: None,
            late_since: None,
        }
    }

    fn admits(&mut self, frame: &crate::ingest::sound::SoundFrame) -> bool {
        let media = frame.timestamp as f64 / f64::from(frame.clock_rate.max(1));
        let arrived = frame.received.saturating_duration_since(self.started);
        let lateness = arrived.as_secs_f64() - media;
        let mut best = match self.best {
            None => lateness,
            Some((best, at)) => {
                let risen =
                    best + DRIFT * frame.received.saturating_duration_since(at).as_secs_f64();
                risen.min(lateness)
            }
        };
        if lateness <= best + MAX_LAG {
            self.late_since = None;
        } else {
            let since = *self.late_since.get_or_insert(frame.received);
            if frame.received.saturating_duration_since(since) >= RESET {
                best = lateness;
                self.late_since = None;
            }
        }
        self.best = Some((best, frame.received));
        arrived >= SETTLE && self.late_since.is_none()
    }
}

/// The transcoder's next packet; never, without one.
async fn next_encoded(encoder: &mut Option<OpusEncoder>) -> Option<crate::transcode::OpusPacket> {
    match encoder {
        Some(e) => e.next().await,
        None => std::future::pending().await,
    }
}

/// `at` moved by `ticks` of a `clock_rate` clock.
fn shift(at: Instant, ticks: i64, clock_rate: u32) -> Instant {
    let by = Duration::from_secs_f64(ticks.unsigned_abs() as f64 / f64::from(clock_rate.max(1)));
    if ticks >= 0 {
        at + by
    } else {
        at.checked_sub(by).unwrap_or(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::sound::SoundFrame;

    /// A 20 ms G.711 frame at media time `media_ms`, had `arrived_ms` after `start`.
    fn frame(start: Instant, media_ms: i64, arrived_ms: u64) -> SoundFrame {
        SoundFrame {
            timestamp: media_ms * 8,
            clock_rate: 8000,
            data: bytes::Bytes::from_static(&[0xff; 160]),
            received: start + Duration::from_millis(arrived_ms),
        }
    }

    #[test]
    fn the_first_moments_of_a_sound_session_only_measure() {
        let start = eyeward::clock::monotonic();
        let mut edge = LiveEdge::new(start);
        assert!(!edge.admits(&frame(start, 0, 10)));
        assert!(!edge.admits(&frame(start, 280, 290)));
        assert!(edge.admits(&frame(start, 300, 310)));
    }

    #[test]
    fn a_burst_of_late_sound_is_dropped() {
        let start = eyeward::clock::monotonic();
        let mut edge = LiveEdge::new(start);
        // Timely frames: 10 ms late each.
        for ms in (0..400).step_by(20) {
            edge.admits(&frame(start, ms, ms as u64 + 10));
        }
        // A stall: 200 ms of sound arrives at once at 700 ms, then the sound is timely again.
        let burst = (400..600)
            .step_by(20)
            .filter(|ms| edge.admits(&frame(start, *ms, 700)));
        assert_eq!(burst.count(), 0);
        assert!(edge.admits(&frame(start, 700, 712)));
    }

    #[test]
    fn sound_that_stays_later_goes_on_from_there_after_a_moment() {
        let start = eyeward::clock::monotonic();
        let mut edge = LiveEdge::new(start);
        for ms in (0..400).step_by(20) {
            edge.admits(&frame(start, ms, ms as u64 + 10));
        }
        // From 400 ms on, every frame comes 150 ms late.
        let admitted: Vec<i64> = (400..1400)
            .step_by(20)
            .filter(|ms| edge.admits(&frame(start, *ms, *ms as u64 + 150)))
            .collect();
        assert_eq!(
            admitted.first(),
            Some(&900),
            "after half a second: {admitted:?}"
        );
        assert_eq!(admitted.len(), 25);
    }

    #[test]
    fn the_bar_rises_slowly_for_a_camera_whose_clock_runs_slow() {
        let start = eyeward::clock::monotonic();
        let mut edge = LiveEdge::new(start);
        // The camera's clock runs 0.05 % slow: after 200 s its frames are 100 ms later.
        let admitted = (0..10_000)
            .map(|i| {
                let media = i * 20;
                let arrived = (media as f64 * 1.0005) as u64 + 10;
                edge.admits(&frame(start, media, arrived))
            })
            .filter(|a| *a)
            .count();
        assert!(admitted > 9_900, "{admitted} of 10000 went on");
    }
}
