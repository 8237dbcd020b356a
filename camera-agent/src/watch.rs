//! Watching in `run`: the camera's stream decoded once ([`crate::capture`]), the detector,
//! a snapshot at the start of each event into the durable [`Queue`], and the uploader that
//! empties the queue into the relay, oldest first, backing off while the relay is away.

use crate::capture::Capture;
use crate::error::Error;
use crate::gop::GopRing;
use crate::link::Relays;
use crate::motion::{Decision, Detector, DetectorConfig};
use crate::ptz::HeadWatch;
use crate::queue::{EventMeta, Queue, Record, new_key};
use crate::snapshot;
use eyeward::UnixMillis;
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
/// stream again with backoff when it fails.
pub fn spawn_detector(
    camera: CameraStream,
    config: DetectorConfig,
    shared: Shared,
    head: Option<Arc<HeadWatch>>,
    stop: Arc<AtomicBool>,
    clock: Clock,
) -> Result<std::thread::JoinHandle<()>, Error> {
    std::thread::Builder::new()
        .name("motion".into())
        .spawn(move || {
            let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
            while !stop.load(Ordering::Relaxed) {
                let result = watch_once(
                    &camera,
                    &config,
                    &shared,
                    head.as_deref(),
                    &stop,
                    &mut backoff,
                    clock,
                );
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let delay = backoff.next_delay(rand::random());
                let why = match result {
                    Ok(()) => "the camera's stream ended".to_owned(),
                    Err(e) => redact(&e.to_string(), camera.secret.as_deref()),
                };
                tracing::warn!(error = %why, retry_in = ?delay, "motion detection paused");
                std::thread::sleep(delay);
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

/// One session of the camera's stream: detect, snapshot, queue.
fn watch_once(
    camera: &CameraStream,
    config: &DetectorConfig,
    shared: &Shared,
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
        let Some(Decision::Started { motion, .. }) = d.process(&picture.luma, picture.at) else {
            continue;
        };
        let captured_at = clock.now();
        let Some(full) = capture.full_picture()? else {
            tracing::warn!("motion, but no full-size frame for its snapshot yet");
            continue;
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
        let jpeg = snapshot::jpeg(&full, config.masks_at(masks_for.1.as_deref()), Some(bbox));
        let meta = EventMeta {
            key: new_key(),
            captured_at: captured_at.0,
            score: (motion.score * 1e4).round() / 1e4,
            bbox,
            snapshot_dropped: false,
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
    }
    Ok(())
}

/// Uploads queued events to `relay` until the future is dropped: oldest first, each once the
/// one before it is stored.
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
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        let next = {
            let queue = shared.clone();
            tokio::task::spawn_blocking(move || queue.lock().oldest())
                .await
                .unwrap_or_else(|e| Err(Error::Media(e.to_string())))
        };
        let (item, jpeg) = match next {
            Ok(Some(next)) => next,
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
        let (relay, relay_url) = relays.current();
        let url = match relay_url.join("agent/v1/events") {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(error = %e, "relay URL");
                return;
            }
        };
        let mut request = http
            .post(url)
            .bearer_auth(&token)
            .query(&upload_of(&item.record).query());
        if !jpeg.is_empty() {
            request = request.header("content-type", "image/jpeg").body(jpeg);
        }
        let sent = request.send().await;
        // How long the relay asked us to wait, if it did (429, 503, 507).
        let asked = sent.as_ref().ok().and_then(|r| {
            r.headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(retry_after)
        });
        let done = match sent {
            Ok(r) if r.status().is_success() => {
                tracing::info!(
                    seq = item.seq,
                    status = r.status().as_u16(),
                    "event uploaded"
                );
                true
            }
            // The relay will never take this one (a bug, not a fault): keep the rest moving.
            // Not so a refused token (401), a body too slow (408) or too many events (429):
            // those are tried again.
            Ok(r)
                if r.status().is_client_error()
                    && !matches!(r.status().as_u16(), 401 | 408 | 429) =>
            {
                let status = r.status();
                let why = r.text().await.unwrap_or_default();
                tracing::error!(seq = item.seq, %status, %why, "the relay refused an event; it is dropped");
                true
            }
            Ok(r) => {
                tracing::warn!(
                    seq = item.seq,
                    status = r.status().as_u16(),
                    "upload not accepted yet"
                );
                false
            }
            Err(e) => {
                tracing::warn!(seq = item.seq, error = %e.without_url(), "relay unreachable");
                relays.move_on(relay);
                false
            }
        };
        if done {
            backoff.reset();
            let queue = shared.clone();
            let removed =
                tokio::task::spawn_blocking(move || queue.lock().uploaded(item.seq, &item.record))
                    .await;
            if let Ok(Err(e)) = removed {
                tracing::error!(error = %e, "cannot remove an uploaded event from the queue");
            }
        } else {
            let delay = backoff.next_delay(rand::random());
            tokio::time::sleep(asked.map_or(delay, |a| a.max(delay))).await;
        }
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

/// What a queued record uploads (the snapshot, if any, is the body).
fn upload_of(record: &Record) -> EventUpload {
    match record {
        Record::Motion(m) => EventUpload::Motion {
            key: m.key.clone(),
            captured_at: UnixMillis(m.captured_at),
            score: m.score,
            bbox: m.bbox,
            with_snapshot: !m.snapshot_dropped,
        },
        Record::Gap(g) => EventUpload::Gap {
            key: g.key.clone(),
            captured_at: UnixMillis(g.first_at),
            until: UnixMillis(g.last_at),
            lost_snapshots: g.snapshots,
            lost_events: g.events,
        },
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
