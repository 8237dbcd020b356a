//! Event clips (issue 24), the service: an agent uploads each event's clip after the event,
//! resumably ([`eyeward::clip_upload`]); the relay keeps what arrived in a partial file in
//! `data_dir/clip-uploads` (fsynced as each request ends, so a cut link or a restart costs
//! only the bytes in flight), checks the whole file as an MP4 of the camera's video with
//! GStreamer's demuxer (no decoding), stores it through [`Objects`] like the snapshots, and
//! only then names it on the event's row. Clips older than `[events] clip_retention` go
//! before their events do.

use super::{Events, HOUSEKEEPING};
use crate::error::{Error, ErrorKind};
use crate::objects::ObjectKey;
use crate::store::{Event, Store, StoredClip};
use eyeward::clip_upload::{ClipQuery, ContentRange, MAX_CLIP_MS};
use eyeward::{CameraId, UnixMillis};
use futures_util::{Stream, StreamExt};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long an upload may go without a byte arriving before it ends (what came is kept).
const BODY_IDLE: Duration = Duration::from_secs(20);
/// How long checking a clip may go without the demuxer handing on a frame (it reads, it
/// does not decode: a whole clip takes a fraction of a second).
const CHECK_IDLE: Duration = Duration::from_secs(10);
/// The demuxer's output is looked at this often.
const CHECK_POLL: Duration = Duration::from_millis(100);
/// How far the clip's own length may be from what the agent said.
const LENGTH_SLACK_MS: u64 = 1000;
/// Uploads one camera may have under way at once (each a partial file).
const PARTIALS_PER_CAMERA: usize = 4;
/// How old a partial file must be before it is given up.
const PARTIAL_AGE: Duration = Duration::from_secs(24 * 3600);
/// The largest picture a clip may have (8K).
const MAX_WIDTH: u32 = 7680;
const MAX_HEIGHT: u32 = 4320;

/// The uploads under way, each once.
#[derive(Default)]
pub(super) struct Uploads {
    busy: std::sync::Mutex<HashSet<(i64, String)>>,
}

/// Holds an upload's place until dropped.
struct Busy<'a> {
    uploads: &'a Uploads,
    key: (i64, String),
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        let mut busy = self.uploads.busy.lock().unwrap_or_else(|p| p.into_inner());
        busy.remove(&self.key);
    }
}

impl Uploads {
    /// Takes the upload of `event`'s clip; 409 while another request carries it, 429 past
    /// the camera's uploads at once.
    fn take(&self, event: &Event) -> Result<Busy<'_>, Error> {
        let key = (event.camera_id, event.idempotency_key.clone());
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        if busy.contains(&key) {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                "this clip's upload is under way in another request",
            )
            .with_code("clip_upload_busy")
            .retry_after(Duration::from_secs(1)));
        }
        if busy.iter().filter(|(c, _)| *c == event.camera_id).count() >= PARTIALS_PER_CAMERA {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                "this camera uploads too many clips at once",
            )
            .with_code("too_many_clip_uploads")
            .retry_after(Duration::from_secs(5)));
        }
        busy.insert(key.clone());
        Ok(Busy { uploads: self, key })
    }
}

/// What a clip upload's request did.
pub enum Received {
    /// The clip is whole, checked and stored: the event as it is now, and whether this
    /// request stored it (not an earlier one).
    Stored { event: Box<Event>, now: bool },
    /// The relay holds this many bytes; the rest is to come.
    Partial(u64),
    /// The request's bytes do not start where the relay's end: it holds this many.
    ElsewhereThan(u64),
}

/// What the demuxer found in a clip.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipFacts {
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub frames: u64,
    pub length_ms: u64,
}

impl Events {
    fn partial_path(&self, event: &Event) -> PathBuf {
        self.uploads_dir.join(format!(
            "{}-{}.part",
            event.camera_id, event.idempotency_key
        ))
    }

    /// How many bytes of `event`'s clip the relay holds: all of them once stored.
    pub async fn clip_held(&self, event: &Event) -> u64 {
        if event.clip_bytes > 0 {
            return event.clip_bytes as u64;
        }
        tokio::fs::metadata(self.partial_path(event))
            .await
            .map_or(0, |m| m.len())
    }

    /// One request of `event`'s clip upload: `range` of the clip, its bytes in `body`.
    /// Whatever arrives is kept, even when the request is cut; once the clip is whole it is
    /// checked against `query` and the camera's codec (if the relay has read its stream),
    /// stored and named on the event.
    pub async fn receive_clip<S, E>(
        &self,
        store: &Store,
        event: &Event,
        (query, camera_codec): (&ClipQuery, Option<&str>),
        range: ContentRange,
        body: S,
    ) -> Result<Received, Error>
    where
        S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        query
            .check()
            .map_err(|e| Error::bad_request(e.to_string()))?;
        if event.clip_bytes > 0 {
            return Ok(Received::Stored {
                event: Box::new(event.clone()),
                now: false,
            });
        }
        if event.kind != "motion" {
            return Err(Error::bad_request("only a motion event has a clip"));
        }
        if range.total > self.config.max_clip_bytes {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "the clip is {} bytes: more than the {} this relay takes",
                    range.total, self.config.max_clip_bytes
                ),
            )
            .with_code("clip_too_large"));
        }
        let camera = CameraId(event.camera_id);
        if store.clip_bytes_of(camera).await? + range.total > self.config.max_clip_bytes_per_camera
        {
            return Err(Error::new(
                ErrorKind::StorageFull,
                "this camera's share of the relay's disk for clips is full until old clips expire",
            )
            .with_code("camera_clip_quota_full")
            .retry_after(HOUSEKEEPING));
        }
        let _busy = self.uploads.take(event)?;
        let path = self.partial_path(event);
        let held = self.clip_held(event).await;
        if range.first != held {
            return Ok(Received::ElsewhereThan(held));
        }
        let received = append(&path, held, range, body).await?;
        if received < range.total {
            return Ok(Received::Partial(received));
        }
        self.store_clip(store, event, (query, camera_codec), &path, range.total)
            .await
            .map(|event| Received::Stored {
                event: Box::new(event),
                now: true,
            })
    }

    /// Checks the whole clip at `path`, stores it and names it on its event; the partial
    /// file goes either way (a clip that is not what it says is refused whole).
    async fn store_clip(
        &self,
        store: &Store,
        event: &Event,
        (query, camera_codec): (&ClipQuery, Option<&str>),
        path: &Path,
        bytes: u64,
    ) -> Result<Event, Error> {
        let checked = {
            let path = path.to_owned();
            let _turn = self
                .decodes
                .acquire()
                .await
                .map_err(|e| Error::internal("clip checks").with_source(e))?;
            tokio::task::spawn_blocking(move || demux(&path))
                .await
                .map_err(|e| Error::internal("clip check").with_source(e))?
        };
        let facts = match checked
            .and_then(|facts| matches_query(&facts, query, camera_codec).map(|()| facts))
        {
            Ok(facts) => facts,
            Err(e) => {
                let _ = tokio::fs::remove_file(path).await;
                return Err(e);
            }
        };
        let object = ObjectKey::clip(event.camera_id, &event.idempotency_key);
        self.snapshots.put_file(&object, path).await?;
        let clip = StoredClip {
            bytes,
            length_ms: facts.length_ms,
            event_at_ms: query.event_at_ms.min(facts.length_ms),
            codec: facts.codec,
            width: facts.width,
            height: facts.height,
        };
        let _ = tokio::fs::remove_file(path).await;
        match store.set_clip(event, &clip).await? {
            Some(stored) => Ok(stored),
            // Stored meanwhile by another node's request, or its event expired.
            None => store
                .event(event.id)
                .await?
                .ok_or_else(|| Error::not_found("event")),
        }
    }

    /// Deletes clips older than the clip retention (their events stay until theirs), rows
    /// first, then the objects.
    pub async fn expire_clips(&self, store: &Store, now: UnixMillis) -> Result<usize, Error> {
        let cutoff = UnixMillis(
            now.0
                .saturating_sub(self.config.clip_retention().as_millis() as i64),
        );
        let gone = store.drop_clips_before(cutoff).await?;
        self.delete_clips(&gone).await;
        Ok(gone.len())
    }

    /// Deletes the clip objects of `events` (whose rows no longer name them).
    pub(super) async fn delete_clips(&self, events: &[Event]) {
        for e in events.iter().filter(|e| e.clip_bytes > 0) {
            let object = ObjectKey::clip(e.camera_id, &e.idempotency_key);
            if let Err(left) = self.snapshots.delete(&object).await {
                // No row names it any more: the orphan sweep deletes it.
                tracing::warn!(event = e.id, error = %left.chain(), "an expired clip stays for now");
            }
        }
    }

    /// Deletes partial uploads not added to for a day before `now` (their agent gave up or
    /// went).
    pub async fn sweep_partial_clips(&self, now: UnixMillis) -> Result<usize, Error> {
        let dir = self.uploads_dir.clone();
        let before = now.0.saturating_sub(PARTIAL_AGE.as_millis() as i64);
        tokio::task::spawn_blocking(move || {
            let mut removed = 0;
            let Ok(entries) = std::fs::read_dir(&dir) else {
                return 0;
            };
            for entry in entries.flatten() {
                let stale = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .is_some_and(|t| (t.as_millis() as i64) < before);
                if stale && std::fs::remove_file(entry.path()).is_ok() {
                    removed += 1;
                }
            }
            removed
        })
        .await
        .map_err(|e| Error::internal("partial clip sweep").with_source(e))
    }

    /// The bytes `range` of `event`'s clip (which it has).
    pub async fn read_clip(
        &self,
        event: &Event,
        range: std::ops::Range<u64>,
    ) -> Result<crate::objects::ByteStream, Error> {
        self.snapshots
            .read_range(
                &ObjectKey::clip(event.camera_id, &event.idempotency_key),
                range,
            )
            .await
    }
}

/// Appends `body` (the bytes `range` says) to the partial file at `path`, which holds
/// `held` bytes, and fsyncs it, however the request ends. How many bytes it holds then.
async fn append<S, E>(
    path: &Path,
    held: u64,
    range: ContentRange,
    mut body: S,
) -> Result<u64, Error>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let parent = path.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|e| Error::storage("a clip upload", &e))?;
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
        .map_err(|e| Error::storage("a clip upload", &e))?;
    let mut received = 0u64;
    let mut ended = None;
    loop {
        let next = match tokio::time::timeout(BODY_IDLE, body.next()).await {
            Ok(next) => next,
            Err(_) => {
                ended = Some(Error::new(
                    ErrorKind::DeadlineExceeded,
                    "the clip's bytes stopped coming",
                ));
                break;
            }
        };
        let chunk = match next {
            None => break,
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => {
                ended = Some(Error::bad_request("the clip's upload was cut off").with_source(e));
                break;
            }
        };
        // Never more than the range said: the rest would not be the clip's.
        let room = range.len() - received;
        let take = (chunk.len() as u64).min(room) as usize;
        use tokio::io::AsyncWriteExt;
        file.write_all(&chunk[..take])
            .await
            .map_err(|e| Error::storage("a clip upload", &e))?;
        received += take as u64;
        if take < chunk.len() {
            ended = Some(Error::bad_request("more bytes than Content-Range says"));
            break;
        }
    }
    file.sync_all()
        .await
        .map_err(|e| Error::storage("a clip upload", &e))?;
    if let Some(e) = ended {
        tracing::info!(kept = held + received, error = %e, "a clip upload ended early; what came is kept");
    }
    Ok(held + received)
}

/// Reads the clip at `path` through GStreamer's MP4 demuxer, without decoding: its codec,
/// picture size, frames and length; an error if it is not an MP4 of one H.264 or H.265
/// video that starts with a keyframe. Blocking.
pub fn demux(path: &Path) -> Result<ClipFacts, Error> {
    let refuse = |why: String| {
        Error::new(
            ErrorKind::UnsupportedFormat,
            format!("not a usable clip: {why}"),
        )
        .with_code("clip_not_mp4")
    };
    gst::init().map_err(|e| Error::internal("GStreamer").with_source(e))?;
    let location = path
        .to_str()
        .filter(|p| !p.contains(['"', '\\']))
        .ok_or_else(|| Error::internal("a clip's path"))?;
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{location}\" ! qtdemux ! \
         appsink name=sink sync=false max-buffers=16 enable-last-sample=false"
    ))
    .map_err(|e| Error::internal("clip check pipeline").with_source(e))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| Error::internal("not a pipeline"))?;
    let stop = scopeguard(pipeline.clone());
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| Error::internal("no appsink"))?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| refuse("it cannot be read".into()))?;
    let mut idle = Duration::ZERO;
    let mut facts: Option<ClipFacts> = None;
    let (mut first, mut end) = (None::<gst::ClockTime>, gst::ClockTime::ZERO);
    loop {
        // In short waits: a demuxer that fails posts an error and sends nothing more.
        let Some(sample) =
            sink.try_pull_sample(gst::ClockTime::from_nseconds(CHECK_POLL.as_nanos() as u64))
        else {
            if sink.is_eos() {
                break;
            }
            let error = pipeline.bus().and_then(|bus| {
                bus.pop_filtered(&[gst::MessageType::Error])
                    .map(|m| match m.view() {
                        gst::MessageView::Error(e) => e.error().to_string(),
                        _ => String::new(),
                    })
            });
            if let Some(error) = error {
                return Err(refuse(error));
            }
            idle += CHECK_POLL;
            if idle > CHECK_IDLE {
                return Err(refuse("it took too long to read".into()));
            }
            continue;
        };
        idle = Duration::ZERO;
        let Some(buffer) = sample.buffer() else {
            continue;
        };
        let facts = match &mut facts {
            Some(f) => f,
            None => {
                let caps = sample
                    .caps()
                    .and_then(|c| c.structure(0).map(|s| s.to_owned()));
                let Some(caps) = caps else {
                    return Err(refuse("no video".into()));
                };
                let codec = match caps.name().as_str() {
                    "video/x-h264" => "h264",
                    "video/x-h265" => "h265",
                    other => return Err(refuse(format!("{other} is not H.264 or H.265"))),
                };
                let size = |name| {
                    caps.get::<i32>(name)
                        .ok()
                        .and_then(|v| u32::try_from(v).ok())
                };
                let (Some(width), Some(height)) = (size("width"), size("height")) else {
                    return Err(refuse("no picture size".into()));
                };
                if width == 0 || height == 0 || width > MAX_WIDTH || height > MAX_HEIGHT {
                    return Err(refuse(format!(
                        "{width}×{height} is not a camera's picture"
                    )));
                }
                if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                    return Err(refuse("it does not start with a keyframe".into()));
                }
                facts.insert(ClipFacts {
                    codec: codec.into(),
                    width,
                    height,
                    frames: 0,
                    length_ms: 0,
                })
            }
        };
        facts.frames += 1;
        if let Some(pts) = buffer.pts() {
            let start = *first.get_or_insert(pts);
            end = end.max(pts.saturating_sub(start));
        }
    }
    drop(stop);
    let mut facts = facts.ok_or_else(|| refuse("no video frames".into()))?;
    facts.length_ms = end.mseconds();
    Ok(facts)
}

/// Sets `pipeline` to Null when dropped, however the check ends.
fn scopeguard(pipeline: gst::Pipeline) -> impl Drop {
    struct Stop(gst::Pipeline);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.set_state(gst::State::Null);
        }
    }
    Stop(pipeline)
}

/// Whether what the demuxer found is what the agent said, and of the codec the camera sends
/// (when known): 422 otherwise.
pub fn matches_query(
    facts: &ClipFacts,
    query: &ClipQuery,
    camera_codec: Option<&str>,
) -> Result<(), Error> {
    let refuse = |why: String| {
        Error::new(
            ErrorKind::Rejected,
            format!("the clip is not what its upload says: {why}"),
        )
        .with_code("clip_mismatch")
    };
    if facts.codec != query.codec {
        return Err(refuse(format!(
            "it is {}, not {}",
            facts.codec, query.codec
        )));
    }
    if let Some(camera) = camera_codec.filter(|c| *c != facts.codec) {
        return Err(refuse(format!(
            "it is {}, the camera sends {camera}",
            facts.codec
        )));
    }
    if facts.length_ms > MAX_CLIP_MS + LENGTH_SLACK_MS {
        return Err(refuse(format!(
            "{} ms is longer than a clip may be",
            facts.length_ms
        )));
    }
    if facts.length_ms.abs_diff(query.length_ms) > LENGTH_SLACK_MS {
        return Err(refuse(format!(
            "it lasts {} ms, not {} ms",
            facts.length_ms, query.length_ms
        )));
    }
    Ok(())
}

/// Where partial uploads are kept, under `data_dir`.
pub fn uploads_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("clip-uploads")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(codec: &str, length_ms: u64) -> ClipFacts {
        ClipFacts {
            codec: codec.into(),
            width: 1280,
            height: 720,
            frames: 150,
            length_ms,
        }
    }

    fn query(codec: &str, length_ms: u64) -> ClipQuery {
        ClipQuery {
            codec: codec.into(),
            length_ms,
            event_at_ms: 0,
        }
    }

    #[test]
    fn a_clip_must_be_the_codec_and_length_its_upload_says_and_the_cameras_codec() {
        let ok = [
            (facts("h264", 10_000), query("h264", 10_000), None),
            (facts("h264", 10_000), query("h264", 10_900), Some("h264")),
            (facts("h265", 9_100), query("h265", 10_000), Some("h265")),
        ];
        for (f, q, camera) in ok {
            assert!(
                matches_query(&f, &q, camera).is_ok(),
                "{f:?} {q:?} {camera:?}"
            );
        }
        let refused = [
            (
                facts("h264", 10_000),
                query("h265", 10_000),
                None,
                "not h265",
            ),
            (
                facts("h264", 10_000),
                query("h264", 10_000),
                Some("h265"),
                "camera sends h265",
            ),
            (
                facts("h264", 10_000),
                query("h264", 11_001),
                None,
                "not 11001 ms",
            ),
            (
                facts("h264", 301_001),
                query("h264", 300_000),
                None,
                "longer than a clip",
            ),
        ];
        for (f, q, camera, why) in refused {
            let e = matches_query(&f, &q, camera).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Rejected);
            assert!(e.to_string().contains(why), "{e}");
        }
    }
}
