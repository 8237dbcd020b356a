//! Watching in `run`: the camera's stream decoded once ([`crate::capture`]), the detector,
//! a snapshot at the start of each event into the durable [`Queue`], then (with `[clips]`)
//! its clip, and the uploader that empties the queue into the relay, oldest first, backing
//! off while the relay is away; clips resumably ([`crate::clip_upload`]).

use crate::capture::{Capture, DetectionPicture};
use crate::clips::{ClipMaker, ClipsConfig, Motion, Outcome};
use crate::error::Error;
use crate::gop::GopRing;
use crate::link::Relays;
use crate::motion::mask::Polygon;
use crate::motion::{Decision, Detector, DetectorConfig};
use crate::ptz::HeadWatch;
use crate::queue::{ClipMeta, EventMeta, Next, Queue, Record, new_key};
use crate::snapshot;
use eyeward::UnixMillis;
use eyeward::clip_upload::{ClipQuery, ContentRange, UPLOAD_OFFSET};
use eyeward::clock::Clock;
use eyeward::link::Backoff;
use eyeward::upload::EventUpload;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The queue, shared by the detector thread (which fills it) and the uploader (which
/// empties it), and the uploader's wake-up call.
#[derive(Clone)]
pub struct Shared {
    queue: Arc<Mutex<Queue>>,
    wake: Arc<Notify>,
}

impl Shared {
    pub fn new(queue: Queue) -> Shared {
        Shared {
            queue: Arc::new(Mutex::new(queue)),
            wake: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The camera's stream as the detector reads it.
pub struct CameraStream {
    /// The `rtsp://` URL, credentials included.
    pub url: String,
    /// The password, removed from anything logged.
    pub secret: Option<String>,
    /// Where the coded frames are kept for live views through the agent.
    pub gop: Arc<GopRing>,
}

/// Runs the detector on `camera` in a thread of its own until `stop` is set, opening the
/// stream again with backoff when it fails; with `clips`, events get clips.
pub fn spawn_detector(
    camera: CameraStream,
    config: DetectorConfig,
    clips: Option<ClipsConfig>,
    shared: Shared,
    head: Option<Arc<HeadWatch>>,
    stop: Arc<AtomicBool>,
    clock: Clock,
) -> Result<std::thread::JoinHandle<()>, Error> {
    std::thread::Builder::new()
        .name("motion".into())
        .spawn(move || {
            let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
            let mut clips = clips.map(|c| ClipMaker::new(c, &camera.gop));
            while !stop.load(Ordering::Relaxed) {
                let result = watch_once(
                    &camera,
                    &config,
                    &shared,
                    clips.as_mut(),
                    head.as_deref(),
                    &stop,
                    &mut backoff,
                    clock,
                );
                // The clip being made ends with the camera's session.
                if let Some(maker) = &mut clips {
                    let ended =
                        maker.end(&mut |key, codec| shared.lock().begin_clip(key, 0, codec.name()));
                    if let Err(e) = ended.and_then(|ended| file_clips(&shared, ended)) {
                        tracing::error!(error = %e, "a clip could not be queued");
                    }
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let delay = backoff.next_delay(rand::random());
                let why = match result {
                    Ok(()) => "the camera's stream ended".to_owned(),
                    Err(e) => redact(&e.to_string(), camera.secret.as_deref()),
                };
                tracing::warn!(error = %why, retry_in = ?delay, "motion detection paused");
                // In steps, so that a stopping agent is not held up by the wait.
                let step = Duration::from_millis(100);
                for _ in 0..delay.as_millis().div_ceil(step.as_millis()) {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(step);
                }
            }
        })
        .map_err(Error::io("starting the motion thread"))
}

fn redact(message: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() => message.replace(s, "***"),
        _ => message.to_owned(),
    }
}

/// One session of the camera's stream: detect, snapshot, queue, and clips with `clips`.
#[allow(clippy::too_many_arguments)]
fn watch_once(
    camera: &CameraStream,
    config: &DetectorConfig,
    shared: &Shared,
    mut clips: Option<&mut ClipMaker>,
    head: Option<&HeadWatch>,
    stop: &AtomicBool,
    backoff: &mut Backoff,
    clock: Clock,
) -> Result<(), Error> {
    let mut capture = Capture::open(
        &camera.url,
        config.picture_width,
        config.max_fps,
        true,
        true,
        Some(camera.gop.clone()),
    )?;
    let mut detector: Option<Detector> = None;
    // The preset the masks were set for (its change count and name).
    let mut masks_for: (u64, Option<String>) = (0, None);
    while let Some(picture) = capture.next_picture()? {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        backoff.reset();
        let d = match &mut detector {
            Some(d) => d,
            None => detector.insert(
                Detector::new(config, picture.width, picture.height).map_err(Error::Config)?,
            ),
        };
        if let Some(head) = head {
            d.set_head_moving(head.view_moving());
            let preset = head.preset();
            if preset.0 != masks_for.0 {
                d.set_masks(config.masks_at(preset.1.as_deref()))
                    .map_err(Error::Config)?;
                tracing::info!(preset = ?preset.1, "motion: masks for this view");
                masks_for = preset;
            }
        }
        let motion = match d.process(&picture.luma, picture.colour, picture.at) {
            Some(Decision::Started { motion, since, .. }) => {
                let masks = config.masks_at(masks_for.1.as_deref());
                let clip_coming = clips.is_some();
                queue_snapshot(
                    &mut capture,
                    &picture,
                    &motion,
                    masks,
                    clip_coming,
                    shared,
                    clock,
                )?
                .map(|(key, captured_at)| (Motion::Started { key, since }, captured_at))
            }
            Some(Decision::Ended(event)) => Some((Motion::Ended { end: event.end }, 0)),
            None => None,
        };
        if let Some(maker) = clips.as_deref_mut() {
            let captured_at = motion.as_ref().map_or(0, |m| m.1);
            let ended = maker.picture(picture.at, motion.map(|m| m.0), &mut |key, codec| {
                shared.lock().begin_clip(key, captured_at, codec.name())
            })?;
            file_clips(shared, ended)?;
        }
    }
    Ok(())
}

/// The snapshot of an event that began with `picture`, queued: the event's key and capture
/// time, or none when there is no full-size picture yet.
fn queue_snapshot(
    capture: &mut Capture,
    picture: &DetectionPicture,
    motion: &crate::motion::Motion,
    masks: &[Polygon],
    clip_coming: bool,
    shared: &Shared,
    clock: Clock,
) -> Result<Option<(String, i64)>, Error> {
    {
        let captured_at = clock.now();
        let Some(full) = capture.full_picture()? else {
            tracing::warn!("motion, but no full-size frame for its snapshot yet");
            return Ok(None);
        };
        let bbox = motion.bbox.scaled(
            full.width as f64 / picture.width as f64,
            full.height as f64 / picture.height as f64,
        );
        let bbox = [
            bbox[0].min(full.width as u32),
            bbox[1].min(full.height as u32),
            bbox[2].min(full.width as u32 - bbox[0].min(full.width as u32)),
            bbox[3].min(full.height as u32 - bbox[1].min(full.height as u32)),
        ];
        let jpeg = snapshot::jpeg(&full, masks, Some(bbox));
        let meta = EventMeta {
            key: new_key(),
            captured_at: captured_at.0,
            score: (motion.score * 1e4).round() / 1e4,
            bbox,
            snapshot_dropped: false,
            clip_coming,
        };
        let key = meta.key.clone();
        let seq = shared.lock().push(meta, &jpeg)?;
        tracing::info!(
            seq,
            key = %key,
            captured_at = captured_at.0,
            bytes = jpeg.len(),
            "motion: snapshot queued"
        );
        shared.wake.notify_one();
        Ok(Some((key, captured_at.0)))
    }
}

/// Files what became of clips: a whole one may go, one that failed is counted lost.
fn file_clips(shared: &Shared, ended: Vec<Outcome>) -> Result<(), Error> {
    for outcome in ended {
        match outcome {
            Outcome::Finished(clip) => {
                shared
                    .lock()
                    .finish_clip(&clip.path, clip.length, clip.event_at)?;
                tracing::info!(
                    clip = %clip.path.display(),
                    bytes = clip.bytes,
                    length_ms = clip.length.as_millis() as u64,
                    "clip queued"
                );
                shared.wake.notify_one();
            }
            Outcome::Failed { path, error } => {
                tracing::warn!(error = %error, "a clip could not be written");
                shared.lock().abandon_clip(&path)?;
            }
        }
    }
    Ok(())
}

/// Uploads queued events to `relay` until the future is dropped: oldest first, each once the
/// one before it is stored; clips once no event waits, giving way to one that comes.
pub async fn upload(shared: Shared, relays: Relays, token: String, tls: Arc<rustls::ClientConfig>) {
    let http = match reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .timeout(Duration::from_secs(30))
        .build()
    {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client: events stay queued");
            return;
        }
    };
    let uploader = Uploader {
        http,
        relays,
        token,
    };
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        let next = {
            let queue = shared.clone();
            tokio::task::spawn_blocking(move || queue.lock().next())
                .await
                .unwrap_or_else(|e| Err(Error::Media(e.to_string())))
        };
        let (item, sent) = match next {
            Ok(Some(Next::Event(item, jpeg))) => {
                let sent = uploader.event(&item, jpeg).await;
                (item, sent)
            }
            Ok(Some(Next::Clip(item, clip, path))) => {
                let sent = tokio::select! {
                    sent = uploader.clip(&clip, &path) => sent,
                    () = event_waiting(&shared) => Sent::GaveWay,
                };
                (item, sent)
            }
            Ok(None) => {
                // Woken by a new snapshot; the timeout is a safety net.
                let _ = tokio::time::timeout(Duration::from_secs(10), shared.wake.notified()).await;
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the upload queue");
                tokio::time::sleep(backoff.next_delay(rand::random())).await;
                continue;
            }
        };
        match sent {
            Sent::Done => {
                backoff.reset();
                let queue = shared.clone();
                let removed = tokio::task::spawn_blocking(move || {
                    queue.lock().uploaded(item.seq, &item.record)
                })
                .await;
                if let Ok(Err(e)) = removed {
                    tracing::error!(error = %e, "cannot remove an uploaded item from the queue");
                }
            }
            Sent::GaveWay => {
                tracing::info!(seq = item.seq, "a clip's upload gives way to an event");
            }
            Sent::Again { asked } => {
                let delay = backoff.next_delay(rand::random());
                tokio::time::sleep(asked.map_or(delay, |a| a.max(delay))).await;
            }
        }
    }
}

/// Resolves once an event or a gap waits in the queue.
async fn event_waiting(shared: &Shared) {
    loop {
        let notified = shared.wake.notified();
        if shared.lock().has_events() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
    }
}

/// What became of one try.
enum Sent {
    /// Stored (or refused for good): the item leaves the queue.
    Done,
    /// Not yet: again after a backoff, or when the relay asked.
    Again { asked: Option<Duration> },
    /// A clip's upload stopped for an event; it goes on after it.
    GaveWay,
}

/// The relay's answer to an upload, as far as the queue goes.
async fn verdict(
    seq: u64,
    what: &str,
    sent: Result<reqwest::Response, reqwest::Error>,
    relays: &Relays,
    relay: usize,
) -> Sent {
    // How long the relay asked us to wait, if it did (429, 503, 507).
    let asked = sent.as_ref().ok().and_then(|r| {
        r.headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry_after)
    });
    match sent {
        Ok(r) if r.status().is_success() => {
            tracing::info!(seq, status = r.status().as_u16(), "{what} uploaded");
            Sent::Done
        }
        // The relay will never take this one (a bug, not a fault): keep the rest moving.
        // Not so a refused token (401), a body too slow (408), a clip's upload running on
        // elsewhere (409) or too many events (429): those are tried again.
        Ok(r)
            if r.status().is_client_error()
                && !matches!(r.status().as_u16(), 401 | 408 | 409 | 429) =>
        {
            let status = r.status();
            let why = r.text().await.unwrap_or_default();
            tracing::error!(seq, %status, %why, "the relay refused an upload ({what}); it is dropped");
            Sent::Done
        }
        Ok(r) => {
            tracing::warn!(
                seq,
                status = r.status().as_u16(),
                "upload not accepted yet ({what})"
            );
            Sent::Again { asked }
        }
        Err(e) => {
            tracing::warn!(seq, error = %e.without_url(), "relay unreachable");
            relays.move_on(relay);
            Sent::Again { asked: None }
        }
    }
}

/// How long a clip's upload may go without a byte going out, or, all sent, without the
/// relay's answer (it checks and stores the clip).
const CLIP_STALL: Duration = Duration::from_secs(30);
/// The pieces a clip is read and sent in.
const CLIP_CHUNK: usize = 64 * 1024;

/// The relay's HTTP client, with the agent's token.
struct Uploader {
    http: reqwest::Client,
    relays: Relays,
    token: String,
}

impl Uploader {
    fn url(&self, path: &str) -> Option<(usize, url::Url)> {
        let (relay, relay_url) = self.relays.current();
        match relay_url.join(path) {
            Ok(u) => Some((relay, u)),
            Err(e) => {
                tracing::error!(error = %e, "relay URL");
                None
            }
        }
    }

    /// Sends an event or a gap, with its snapshot if any.
    async fn event(&self, item: &crate::queue::Item, jpeg: Vec<u8>) -> Sent {
        let Some((relay, url)) = self.url("agent/v1/events") else {
            return Sent::Again { asked: None };
        };
        let Some(upload) = upload_of(&item.record) else {
            tracing::error!(seq = item.seq, "a clip is not sent as an event");
            return Sent::Done;
        };
        let mut request = self
            .http
            .post(url)
            .bearer_auth(&self.token)
            .query(&upload.query());
        if !jpeg.is_empty() {
            request = request.header("content-type", "image/jpeg").body(jpeg);
        }
        verdict(item.seq, "event", request.send().await, &self.relays, relay).await
    }

    /// Sends what the relay does not hold yet of a clip: it says how much it holds, and the
    /// rest follows from there.
    async fn clip(&self, clip: &ClipMeta, path: &std::path::Path) -> Sent {
        let Some((relay, url)) = self.url(&format!("agent/v1/events/{}/clip", clip.key)) else {
            return Sent::Again { asked: None };
        };
        let file = match tokio::fs::File::open(path).await {
            Ok(f) => f,
            // Dropped to keep the queue within its bound meanwhile (and counted).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Sent::Done,
            Err(e) => {
                tracing::error!(error = %e, "cannot read a queued clip");
                return Sent::Again { asked: None };
            }
        };
        let total = match file.metadata().await {
            Ok(m) => m.len(),
            Err(_) => return Sent::Again { asked: None },
        };
        let held = self
            .http
            .head(url.clone())
            .bearer_auth(&self.token)
            .send()
            .await;
        let offset = match &held {
            Ok(r) if r.status().is_success() => r
                .headers()
                .get(UPLOAD_OFFSET)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|&o| o <= total),
            _ => None,
        };
        let Some(offset) = offset else {
            if held.as_ref().is_ok_and(|r| r.status().is_success()) {
                // Answered, but not how much it holds: nothing to go on from; later.
                tracing::warn!(key = %clip.key, "the relay did not say what it holds of a clip");
                return Sent::Again { asked: None };
            }
            return verdict(0, "clip", held, &self.relays, relay).await;
        };
        let range = ContentRange::rest(offset, total);
        let query = ClipQuery {
            codec: clip.codec.clone(),
            length_ms: clip.length_ms,
            event_at_ms: clip.event_at_ms,
        };
        let progress = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let body = match clip_body(file, offset, progress.clone()).await {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "cannot read a queued clip");
                return Sent::Again { asked: None };
            }
        };
        let put = self
            .http
            .put(url)
            .bearer_auth(&self.token)
            .query(&query)
            .header(reqwest::header::CONTENT_RANGE, range.header())
            .header(reqwest::header::CONTENT_LENGTH, range.len())
            .header(reqwest::header::CONTENT_TYPE, "video/mp4")
            // The stall watch below bounds it instead: a long clip on a slow uplink takes
            // minutes.
            .timeout(Duration::from_secs(24 * 3600))
            .body(body)
            .send();
        let sent = tokio::select! {
            sent = put => sent,
            () = stalled(&progress) => {
                tracing::warn!(key = %clip.key, "a clip's upload stalled; it goes on later");
                return Sent::Again { asked: None };
            }
        };
        let bytes = progress.load(Ordering::Relaxed);
        tracing::info!(key = %clip.key, from = offset, sent = bytes, total, "clip bytes sent");
        verdict(0, "clip", sent, &self.relays, relay).await
    }
}

/// A clip's bytes from `offset`, counted into `progress` as they go.
async fn clip_body(
    mut file: tokio::fs::File,
    offset: u64,
    progress: Arc<std::sync::atomic::AtomicU64>,
) -> std::io::Result<reqwest::Body> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let chunks = futures_util::stream::unfold(file, move |mut file| {
        let progress = progress.clone();
        async move {
            let mut chunk = vec![0; CLIP_CHUNK];
            match file.read(&mut chunk).await {
                Ok(0) => None,
                Ok(n) => {
                    chunk.truncate(n);
                    progress.fetch_add(n as u64, Ordering::Relaxed);
                    Some((Ok::<_, std::io::Error>(chunk), file))
                }
                Err(e) => Some((Err(e), file)),
            }
        }
    });
    Ok(reqwest::Body::wrap_stream(chunks))
}

/// Resolves once `progress` has not moved for [`CLIP_STALL`].
async fn stalled(progress: &std::sync::atomic::AtomicU64) {
    let mut seen = progress.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(CLIP_STALL).await;
        let now = progress.load(Ordering::Relaxed);
        if now == seen {
            return;
        }
        seen = now;
    }
}

/// The longest wait a relay's `Retry-After` is followed for: past it the agent asks again
/// anyway (a relay's clock or config gone wrong must not silence a camera for days).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A `Retry-After` of delay-seconds (the form the relay sends), at most [`MAX_RETRY_AFTER`].
fn retry_after(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// What a queued event or gap uploads (the snapshot, if any, is the body); a clip goes
/// its own way.
fn upload_of(record: &Record) -> Option<EventUpload> {
    match record {
        Record::Motion(m) => Some(EventUpload::Motion {
            key: m.key.clone(),
            captured_at: UnixMillis(m.captured_at),
            score: m.score,
            bbox: m.bbox,
            with_snapshot: !m.snapshot_dropped,
            clip_coming: m.clip_coming,
        }),
        Record::Gap(g) => Some(EventUpload::Gap {
            key: g.key.clone(),
            captured_at: UnixMillis(g.first_at),
            until: UnixMillis(g.last_at),
            lost_snapshots: g.snapshots,
            lost_events: g.events,
            lost_clips: g.clips,
        }),
        Record::Clip(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relays_retry_after_is_followed_within_an_hour() {
        assert_eq!(retry_after("30"), Some(Duration::from_secs(30)));
        assert_eq!(retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(retry_after("86400"), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(retry_after("-1"), None);
    }
}
