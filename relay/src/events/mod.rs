//! Motion events, the service: agents upload them with their snapshot, owners list them,
//! follow new ones live and fetch the pictures (the HTTP side is `http::motion_events`). The
//! upload's checks are plain code ([`accept`]), the camera's rate and disk share are
//! admitted here, and an event exists once its row is
//! committed; its snapshot is written and fsynced to `data_dir/snapshots/<camera>/<key>.jpg`
//! before that, so an acknowledged event always has its picture. A repeated idempotency key
//! is the same event.
//!
//! An agent whose queue overflowed during a long outage sends the events whose snapshots it
//! dropped without a picture, and a gap event saying how many it dropped.

pub mod clips;
mod rate;

use crate::config::EventsConfig;
use crate::error::{Error, ErrorKind};
use crate::objects::{CLIPS, ObjectKey, Objects, SNAPSHOTS};
use crate::store::{AlertPolicy, Camera, Event, Gap, NewEvent, Store, is_taken_key};
use eyeward::api::{ClipView, EventKind, EventView};
use eyeward::clock::Clock;
use eyeward::upload::{EventUpload, UploadQuery};
use eyeward::{CameraId, UnixMillis};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// How often old events and the files of removed cameras and closed requests are deleted
/// (also once at start): see `housekeeping`.
pub const HOUSEKEEPING: Duration = Duration::from_secs(3600);

/// How old a snapshot without its event must be before it counts as left over: older than
/// any upload still in flight.
pub const ORPHAN_AGE: Duration = Duration::from_secs(3600);

/// The largest snapshot picture accepted, in pixels each way (8K).
const MAX_WIDTH: u32 = 7680;
const MAX_HEIGHT: u32 = 4320;

/// New and changed events as they are stored, for the owners watching live: the camera and
/// the event as the API shows it.
pub type LiveEvent = Arc<(i64, EventView)>;

/// Where snapshots live, the event settings, and the live feed.
pub struct Events {
    snapshots: Objects,
    clock: Clock,
    config: EventsConfig,
    live: broadcast::Sender<LiveEvent>,
    /// Set at shutdown: live streams end, so that the server's graceful stop is not held up.
    closing: watch::Sender<bool>,
    /// Pictures decoded at once (one per core): each holds its pixels in memory.
    decodes: Arc<tokio::sync::Semaphore>,
    /// Events each camera may still send.
    rate: std::sync::Mutex<rate::EventRate>,
    /// Several nodes: every node's streams hear of stored events from the database (see
    /// `crate::cluster`), this one's included, rather than from the node that stored them.
    told_by_database: std::sync::atomic::AtomicBool,
    /// Where clips being uploaded are kept until whole.
    uploads_dir: std::path::PathBuf,
    /// The clip uploads under way.
    uploads: clips::Uploads,
}

/// What storing an upload did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stored {
    Created,
    /// A gap that had grown since its last report.
    Updated,
    /// A repeated upload: nothing changed.
    Same,
}

impl Events {
    /// `data_dir` holds the clips being uploaded.
    pub fn new(
        snapshots: Objects,
        config: &EventsConfig,
        data_dir: &std::path::Path,
        clock: Clock,
    ) -> Events {
        Events {
            uploads_dir: clips::uploads_dir(data_dir),
            uploads: clips::Uploads::default(),
            clock,
            snapshots,
            config: config.clone(),
            // Viewers that fall this far behind are told to reload the list.
            live: broadcast::channel(64).0,
            closing: watch::channel(false).0,
            decodes: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, usize::from),
            )),
            rate: std::sync::Mutex::new(rate::EventRate::new(config.max_per_minute_per_camera)),
            told_by_database: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether `camera` may store another event now: 429 past its rate, 507 past its share
    /// of the storage; both with `Retry-After`, the agent keeping the event meanwhile.
    pub(crate) fn admit(&self, camera: &Camera) -> Result<(), Error> {
        let now = self.clock.now();
        let admitted = {
            let mut rate = self.rate.lock().unwrap_or_else(|p| p.into_inner());
            rate.forget_idle(now);
            rate.admit(camera.id, now)
        };
        if let Err(wait) = admitted {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                "this camera sends more events than the relay takes; it keeps them and tries later",
            )
            .with_code("too_many_events")
            .retry_after(wait));
        }
        if camera.snapshot_bytes >= self.config.max_snapshot_bytes_per_camera {
            return Err(Error::new(
                ErrorKind::StorageFull,
                "this camera's share of the relay's disk is full until old events expire",
            )
            .with_code("camera_quota_full")
            .retry_after(HOUSEKEEPING));
        }
        Ok(())
    }

    /// The most pixels a snapshot may have.
    pub fn max_pixels(&self) -> u64 {
        self.config.max_snapshot_pixels
    }

    /// Runs `check` (which decodes a picture) on a blocking thread, once a decoding turn is
    /// free: at most one picture per core is decoded at once, whatever arrives.
    pub async fn decoding<R: Send + 'static>(
        &self,
        check: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, Error> {
        let turn = self
            .decodes
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::internal("the decoder semaphore closed"))?;
        tokio::task::spawn_blocking(move || {
            let checked = check();
            drop(turn);
            checked
        })
        .await
        .map_err(|e| Error::internal("picture check").with_source(e))
    }

    /// Ends every live stream (the server is stopping).
    pub fn close_live(&self) {
        self.closing.send_replace(true);
    }

    /// Turns true when the server stops: every live stream (these events, pan-tilt states)
    /// ends then.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Every event stored or grown from now on, with its camera.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.live.subscribe()
    }

    /// Stores an agent's event (with its snapshot, if it has one): the existing one for a
    /// repeated key, with a gap's counts raised to the new report.
    pub(crate) async fn record(
        self: &Arc<Self>,
        store: &Store,
        event: NewEvent,
        jpeg: Option<Vec<u8>>,
        alerts: &AlertPolicy<'_>,
    ) -> Result<(Event, Stored), Error> {
        let arrival = store
            .arrival(event.camera, &event.idempotency_key, event.received_at)
            .await?;
        let stored = match arrival.stored {
            Some(_) => {
                store
                    .event_by_key(event.camera, &event.idempotency_key)
                    .await?
            }
            None => None,
        };
        let existing = match stored {
            Some(existing) => existing,
            None => {
                let (camera, key) = (event.camera.0, event.idempotency_key.clone());
                let object = ObjectKey::snapshot(camera, &key);
                if let Some(jpeg) = jpeg {
                    self.snapshots.put(&object, jpeg).await?;
                }
                match store.insert_arrived(&event, &arrival, alerts).await {
                    Ok(stored) => return Ok((stored, Stored::Created)),
                    // The same upload, retried while the first was being stored: one event.
                    Err(e) if is_taken_key(&e) => store
                        .event_by_key(event.camera, &event.idempotency_key)
                        .await?
                        .ok_or(e)?,
                    Err(e) => {
                        if event.snapshot_bytes > 0
                            && let Err(left) = self.snapshots.delete(&object).await
                        {
                            // The hourly sweep deletes it (see `sweep_orphans`).
                            tracing::warn!(camera, error = %left.chain(), "a refused event's snapshot stays for now");
                        }
                        return Err(e);
                    }
                }
            }
        };
        if let Some(gap) = event.gap
            && let Some(grown) = store.grow_gap(existing.id, gap).await?
        {
            return Ok((grown, Stored::Updated));
        }
        Ok((existing, Stored::Same))
    }

    /// The snapshot of a stored event that has one.
    pub async fn read_snapshot(&self, event: &Event) -> Result<Vec<u8>, Error> {
        self.snapshots.get(&ObjectKey::snapshot_of(event)).await
    }

    /// Where the snapshots are, for whoever reads them besides (the mail sender).
    pub fn snapshots(&self) -> Objects {
        self.snapshots.clone()
    }

    /// From now on, streams hear of events only through [`Events::publish_told`].
    pub fn tell_by_database(&self) {
        self.told_by_database
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether any live stream listens here (else a change need not even be read).
    pub fn is_followed(&self) -> bool {
        self.live.receiver_count() > 0
    }

    /// The live feed of stored events, for the owners' live streams (`http::motion_events`).
    pub(crate) fn publish(&self, event: &Event) {
        if !self
            .told_by_database
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            self.publish_told(event);
        }
    }

    /// An event stored on some node, as the database told it.
    pub fn publish_told(&self, event: &Event) {
        if !self.is_followed() {
            return;
        }
        // A viewer gone meanwhile is fine.
        let _ = self
            .live
            .send(Arc::new((event.camera_id, self.view(event))));
    }

    /// Deletes events older than the retention, rows first (an event without its row does
    /// not exist), then their files.
    pub async fn expire(&self, store: &Store, now: UnixMillis) -> Result<usize, Error> {
        let cutoff = UnixMillis(
            now.0
                .saturating_sub(self.config.retention.as_millis() as i64),
        );
        let gone = store.delete_events_before(cutoff).await?;
        for e in gone.iter().filter(|e| e.snapshot_bytes > 0) {
            let object = ObjectKey::snapshot_of(e);
            if let Err(left) = self.snapshots.delete(&object).await {
                // No row names it any more: the orphan sweep deletes it.
                tracing::warn!(event = e.id, error = %left.chain(), "an expired snapshot stays for now");
            }
        }
        self.delete_clips(&gone).await;
        Ok(gone.len())
    }

    /// Deletes the snapshot and clip folders of cameras that were removed (their rows went
    /// with the camera; ids are never reused, so a folder without a camera is no one's);
    /// returns how many.
    pub async fn sweep_removed_cameras(&self, store: &Store) -> Result<usize, Error> {
        let cameras = store.camera_ids().await?;
        let mut removed = 0;
        for kind in [Media::Snapshots, Media::Clips] {
            for camera in self.snapshots.folders(kind.folder()).await? {
                let Ok(id) = camera.parse::<i64>() else {
                    continue;
                };
                if cameras.contains(&id) {
                    continue;
                }
                match self.snapshots.delete_folder(&kind.camera_folder(id)).await {
                    Ok(()) => removed += 1,
                    Err(e) => {
                        tracing::warn!(camera = id, error = %e.chain(), "cannot delete a removed camera's files")
                    }
                }
            }
        }
        Ok(removed)
    }

    /// Deletes the snapshots and clips no event names (the relay stopped between storing
    /// one and its row, or an expired event's deletion failed) once older than
    /// [`ORPHAN_AGE`], so that an upload in flight keeps its own; returns how many.
    pub async fn sweep_orphans(&self, store: &Store, now: UnixMillis) -> Result<usize, Error> {
        let before = now.0.saturating_sub(ORPHAN_AGE.as_millis() as i64);
        let mut removed = 0;
        for kind in [Media::Snapshots, Media::Clips] {
            for camera in self.snapshots.folders(kind.folder()).await? {
                let Ok(id) = camera.parse::<i64>() else {
                    continue;
                };
                let folder = kind.camera_folder(id);
                let old: Vec<_> = self
                    .snapshots
                    .list(&folder)
                    .await?
                    .into_iter()
                    .filter(|o| {
                        o.modified
                            .duration_since(std::time::UNIX_EPOCH)
                            .is_ok_and(|t| (t.as_millis() as i64) < before)
                    })
                    .collect();
                if old.is_empty() {
                    continue;
                }
                let named = match kind {
                    Media::Snapshots => store.snapshot_keys_of(CameraId(id)).await?,
                    Media::Clips => store.clip_keys_of(CameraId(id)).await?,
                };
                for object in old {
                    let key = object
                        .name
                        .strip_suffix(kind.extension())
                        .unwrap_or(&object.name);
                    if !named.contains(key) {
                        self.snapshots
                            .delete(&ObjectKey::listed(&folder, &object))
                            .await?;
                        removed += 1;
                    }
                }
            }
        }
        Ok(removed)
    }

    /// An event as the API shows it.
    pub(crate) fn view(&self, e: &Event) -> EventView {
        let at = |t: i64| UnixMillis(t).to_rfc3339();
        let gap = e.kind == "gap";
        EventView {
            id: e.id,
            camera_id: e.camera_id,
            kind: if gap {
                EventKind::Gap
            } else {
                EventKind::Motion
            },
            at: at(e.captured_at),
            received_at: at(e.received_at),
            delayed: UnixMillis(e.received_at).since(UnixMillis(e.captured_at))
                > self.config.delayed_after,
            score: e.score,
            bbox: serde_json::from_str(&e.bbox).ok(),
            // Checked as u32 when stored.
            width: e.width.try_into().unwrap_or_default(),
            height: e.height.try_into().unwrap_or_default(),
            snapshot_url: (e.snapshot_bytes > 0).then(|| format!("/api/events/{}/snapshot", e.id)),
            armed: e.armed,
            lost_snapshots: gap.then_some(e.lost_snapshots),
            lost_events: gap.then_some(e.lost_events),
            until: e.until_at.filter(|_| gap).map(at),
            lost_clips: (gap && e.lost_clips > 0).then_some(e.lost_clips),
            clip_coming: e.clip_coming && e.clip_bytes == 0,
            clip: (e.clip_bytes > 0).then(|| ClipView {
                url: format!("/api/events/{}/clip", e.id),
                bytes: e.clip_bytes.try_into().unwrap_or_default(),
                length_ms: e.clip_ms.try_into().unwrap_or_default(),
                event_at_ms: e.clip_event_at_ms.try_into().unwrap_or_default(),
                codec: e.clip_codec.clone().unwrap_or_default(),
                width: e.clip_width.try_into().unwrap_or_default(),
                height: e.clip_height.try_into().unwrap_or_default(),
            }),
        }
    }
}

/// What events keep besides their rows, each in a folder per camera.
#[derive(Clone, Copy)]
enum Media {
    Snapshots,
    Clips,
}

impl Media {
    fn folder(self) -> &'static str {
        match self {
            Media::Snapshots => SNAPSHOTS,
            Media::Clips => CLIPS,
        }
    }

    fn camera_folder(self, camera: i64) -> String {
        format!("{}/{camera}", self.folder())
    }

    fn extension(self) -> &'static str {
        match self {
            Media::Snapshots => ".jpg",
            Media::Clips => ".mp4",
        }
    }
}

/// Checks that `jpeg` is one whole JPEG picture of a sensible size, at most `max_pixels`
/// (read from its header before anything is decoded); returns its size. Slow: call it
/// through [`Events::decoding`].
pub fn check_jpeg(jpeg: &[u8], max_pixels: u64) -> Result<(u32, u32), Error> {
    use image::{ImageFormat, ImageReader, Limits};
    let bad = |m: &str| Error::bad_request(format!("the snapshot is not a usable JPEG: {m}"));
    if !jpeg.starts_with(&[0xff, 0xd8]) {
        return Err(bad("it does not start like one"));
    }
    if !jpeg.ends_with(&[0xff, 0xd9]) {
        return Err(bad("it is truncated"));
    }
    let reader = || ImageReader::with_format(std::io::Cursor::new(jpeg), ImageFormat::Jpeg);
    let (w, h) = reader()
        .into_dimensions()
        .map_err(|e| bad(&e.to_string()))?;
    if w < 16 || h < 16 || w > MAX_WIDTH || h > MAX_HEIGHT {
        return Err(bad(&format!(
            "{w}×{h} is outside 16×16 to {MAX_WIDTH}×{MAX_HEIGHT}"
        )));
    }
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!("the snapshot is {w}×{h}: more than the {max_pixels} pixels this relay takes"),
        )
        .with_code("snapshot_too_large"));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_WIDTH);
    limits.max_image_height = Some(MAX_HEIGHT);
    limits.max_alloc = Some(256 * 1024 * 1024);
    let mut decoder = reader();
    decoder.limits(limits);
    decoder.decode().map_err(|e| bad(&e.to_string()))?;
    Ok((w, h))
}

/// Checks an upload's query and body, received at `now`, before anything is stored: the
/// event to store and its snapshot, or a 400 that says what is wrong. Plain code: the time
/// is given.
pub fn accept(
    camera: CameraId,
    upload: &UploadQuery,
    jpeg: Option<Vec<u8>>,
    max_pixels: u64,
    now: UnixMillis,
) -> Result<(NewEvent, Option<Vec<u8>>), Error> {
    let upload = upload
        .check(now)
        .map_err(|e| Error::bad_request(e.to_string()))?;
    let mut event = NewEvent {
        camera,
        idempotency_key: upload.key().to_owned(),
        captured_at: upload.captured_at(),
        received_at: now,
        score: 0.0,
        bbox: [0; 4],
        width: 0,
        height: 0,
        snapshot_bytes: 0,
        gap: None,
        clip_coming: false,
    };
    let jpeg = match (upload, jpeg) {
        (
            EventUpload::Motion {
                with_snapshot: true,
                ..
            },
            None,
        ) => {
            return Err(Error::bad_request("the snapshot (image/jpeg) is missing"));
        }
        (
            EventUpload::Motion {
                with_snapshot: false,
                ..
            }
            | EventUpload::Gap { .. },
            Some(_),
        ) => {
            return Err(Error::bad_request(
                "this event has no snapshot: send no body",
            ));
        }
        (
            EventUpload::Motion {
                score,
                bbox,
                clip_coming,
                ..
            },
            None,
        ) => {
            (event.score, event.bbox, event.clip_coming) = (score, bbox, clip_coming);
            None
        }
        (
            EventUpload::Gap {
                until,
                lost_snapshots,
                lost_events,
                lost_clips,
                ..
            },
            None,
        ) => {
            event.gap = Some(Gap {
                lost_snapshots,
                lost_events,
                lost_clips,
                until,
            });
            None
        }
        (
            EventUpload::Motion {
                score,
                bbox,
                clip_coming,
                ..
            },
            Some(jpeg),
        ) => {
            event.clip_coming = clip_coming;
            let (width, height) = check_jpeg(&jpeg, max_pixels)?;
            let [x, y, w, h] = bbox;
            if x.saturating_add(w) > width || y.saturating_add(h) > height {
                return Err(Error::bad_request("bbox reaches outside the snapshot"));
            }
            (event.score, event.bbox, event.width, event.height) = (score, bbox, width, height);
            event.snapshot_bytes = jpeg.len();
            Some(jpeg)
        }
    };
    Ok((event, jpeg))
}
