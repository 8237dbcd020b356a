//! Motion events: agents upload them with their snapshot (`POST /agent/v1/events`), owners
//! list them and fetch the pictures. An event exists once its row is committed; its snapshot
//! is written and fsynced to `data_dir/snapshots/<camera>/<key>.jpg` before that, so an
//! acknowledged event always has its picture. A repeated idempotency key is the same event.

use crate::config::EventsConfig;
use crate::error::{Error, ErrorKind};
use crate::http::AppState;
use crate::http::extract::{ApiQuery, CustomerCaller, IdPath, JpegBody};
use crate::link::AgentCaller;
use crate::store::{Event, NewEvent, Store, is_taken_key};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use eyeward::{CameraId, UnixMillis};
use serde::Deserialize;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The largest snapshot picture accepted, in pixels each way (8K).
const MAX_WIDTH: u32 = 7680;
const MAX_HEIGHT: u32 = 4320;

/// Where snapshots live, and the event settings.
pub struct Events {
    dir: PathBuf,
    config: EventsConfig,
}

impl Events {
    pub fn new(data_dir: &Path, config: &EventsConfig) -> Events {
        Events {
            dir: data_dir.join("snapshots"),
            config: config.clone(),
        }
    }

    fn path(&self, camera: i64, key: &str) -> PathBuf {
        self.dir.join(camera.to_string()).join(format!("{key}.jpg"))
    }

    /// Writes the snapshot durably: a temporary file, fsynced, renamed into place, and the
    /// folder fsynced so the name survives a power cut too.
    fn write(&self, camera: i64, key: &str, jpeg: &[u8]) -> std::io::Result<()> {
        let path = self.path(camera, key);
        let folder = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(folder)?;
        let tmp = path.with_extension("jpg.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(jpeg)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(folder)?.sync_all()
    }

    /// Stores an agent's event: the existing one for a repeated key; `true` when new.
    async fn record(
        self: &Arc<Self>,
        store: &Store,
        event: NewEvent,
        jpeg: Vec<u8>,
    ) -> Result<(Event, bool), Error> {
        if let Some(existing) = store
            .event_by_key(event.camera, &event.idempotency_key)
            .await?
        {
            return Ok((existing, false));
        }
        let this = self.clone();
        let (camera, key) = (event.camera.0, event.idempotency_key.clone());
        tokio::task::spawn_blocking(move || this.write(camera, &key, &jpeg))
            .await
            .map_err(|e| Error::internal(format!("snapshot writer: {e}")))?
            .map_err(|e| Error::internal(format!("cannot store a snapshot: {e}")))?;
        match store.insert_event(&event).await {
            Ok(stored) => Ok((stored, true)),
            // The same upload, retried while the first was being stored: one event.
            Err(e) if is_taken_key(&e) => store
                .event_by_key(event.camera, &event.idempotency_key)
                .await?
                .map(|existing| (existing, false))
                .ok_or(e),
            Err(e) => {
                let _ = std::fs::remove_file(self.path(camera, &event.idempotency_key));
                Err(e)
            }
        }
    }

    /// Deletes events older than the retention, rows first (an event without its row does
    /// not exist), then their files.
    pub async fn expire(&self, store: &Store, now: UnixMillis) -> Result<usize, Error> {
        let cutoff = UnixMillis(
            now.0
                .saturating_sub(self.config.retention.as_millis() as i64),
        );
        let gone = store.delete_events_before(cutoff).await?;
        for e in &gone {
            let _ = std::fs::remove_file(self.path(e.camera_id, &e.idempotency_key));
        }
        Ok(gone.len())
    }

    /// Runs [`Events::expire`] every hour, for as long as the server runs.
    pub async fn keep_retention(self: Arc<Self>, store: Store) {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            match self.expire(&store, UnixMillis::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(events = n, "old events deleted"),
                Err(e) => tracing::warn!(error = %e, "cannot delete old events"),
            }
        }
    }

    fn to_json(&self, e: &Event) -> Value {
        let bbox: Value = serde_json::from_str(&e.bbox).unwrap_or(Value::Null);
        let delayed =
            UnixMillis(e.received_at).since(UnixMillis(e.captured_at)) > self.config.delayed_after;
        json!({
            "id": e.id,
            "camera_id": e.camera_id,
            "at": UnixMillis(e.captured_at).to_rfc3339(),
            "received_at": UnixMillis(e.received_at).to_rfc3339(),
            "delayed": delayed,
            "score": e.score,
            "bbox": bbox,
            "width": e.width,
            "height": e.height,
            "snapshot_url": format!("/api/events/{}/snapshot", e.id),
        })
    }
}

/// What an agent says of an event, in the query string; the snapshot is the body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    /// The agent's idempotency key: 8 to 64 of `A-Z a-z 0-9 - _`.
    key: String,
    /// When the picture was taken (Unix milliseconds).
    captured_at: i64,
    /// The share of the picture that moved (0 to 1).
    score: f64,
    /// `x,y,w,h` of the moving region in the snapshot's pixels.
    bbox: String,
}

impl Upload {
    fn check(&self, width: u32, height: u32) -> Result<[u32; 4], Error> {
        let key_ok = (8..=64).contains(&self.key.len())
            && self
                .key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !key_ok {
            return Err(Error::bad_request(
                "key must be 8 to 64 letters, digits, '-' or '_'",
            ));
        }
        if !(0.0..=1.0).contains(&self.score) {
            return Err(Error::bad_request("score is a share, from 0 to 1"));
        }
        // Not before 2020, not more than a minute ahead of the relay's clock.
        if self.captured_at < 1_577_836_800_000
            || self.captured_at > UnixMillis::now().plus(Duration::from_secs(60)).0
        {
            return Err(Error::bad_request(
                "captured_at must be the capture time in Unix milliseconds",
            ));
        }
        let parts: Vec<u32> = self
            .bbox
            .split(',')
            .map(|p| p.trim().parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| Error::bad_request("bbox must be x,y,w,h in pixels"))?;
        let [x, y, w, h] = parts[..] else {
            return Err(Error::bad_request("bbox must be x,y,w,h in pixels"));
        };
        if x.saturating_add(w) > width || y.saturating_add(h) > height {
            return Err(Error::bad_request("bbox reaches outside the snapshot"));
        }
        Ok([x, y, w, h])
    }
}

/// Checks that `jpeg` is one whole JPEG picture of a sensible size; returns its size.
fn check_jpeg(jpeg: &[u8]) -> Result<(u32, u32), Error> {
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
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_WIDTH);
    limits.max_image_height = Some(MAX_HEIGHT);
    limits.max_alloc = Some(256 * 1024 * 1024);
    let mut decoder = reader();
    decoder.limits(limits);
    decoder.decode().map_err(|e| bad(&e.to_string()))?;
    Ok((w, h))
}

/// `POST /agent/v1/events?key=…&captured_at=…&score=…&bbox=x,y,w,h` with the JPEG as the
/// body: `201` with the event once it is stored, `200` with the same event for a repeated
/// key.
pub async fn upload(
    State(st): State<AppState>,
    agent: AgentCaller,
    ApiQuery(upload): ApiQuery<Upload>,
    JpegBody(jpeg): JpegBody,
) -> Result<Response, Error> {
    let jpeg = tokio::task::spawn_blocking(move || check_jpeg(&jpeg).map(|size| (size, jpeg)))
        .await
        .map_err(|e| Error::internal(format!("JPEG check: {e}")))?;
    let ((width, height), jpeg) = jpeg?;
    let bbox = upload.check(width, height)?;
    let event = NewEvent {
        camera: agent.camera.id,
        idempotency_key: upload.key,
        captured_at: UnixMillis(upload.captured_at),
        received_at: UnixMillis::now(),
        score: upload.score,
        bbox,
        width,
        height,
        snapshot_bytes: jpeg.len(),
    };
    let (stored, created) = st.events.record(&st.store, event, jpeg).await?;
    if created {
        st.metrics.events_stored.inc();
        tracing::info!(
            camera = stored.camera_id,
            event = stored.id,
            "motion event stored"
        );
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(st.events.to_json(&stored))).into_response())
}

/// Paging of an event list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// At most this many (1 to 200; default 50).
    limit: Option<u32>,
    /// Only events captured before this instant (Unix milliseconds), for the next page.
    before: Option<i64>,
}

/// `GET /api/cameras/{id}/events`: the owner's events of that camera, newest first.
pub async fn list(
    State(st): State<AppState>,
    c: CustomerCaller,
    IdPath(id): IdPath,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Value>>, Error> {
    st.store
        .camera_of(c.id, CameraId(id))
        .await?
        .ok_or_else(|| Error::not_found("camera"))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Error::bad_request("limit must be 1 to 200"));
    }
    let events = st
        .store
        .events_of(c.id, CameraId(id), q.before.map(UnixMillis), limit)
        .await?;
    Ok(Json(events.iter().map(|e| st.events.to_json(e)).collect()))
}

/// `GET /api/events/{id}/snapshot`: the picture of one of the owner's events.
pub async fn snapshot(
    State(st): State<AppState>,
    c: CustomerCaller,
    IdPath(id): IdPath,
) -> Result<Response, Error> {
    let event = st
        .store
        .event_of(c.id, id)
        .await?
        .ok_or_else(|| Error::not_found("event"))?;
    let path = st.events.path(event.camera_id, &event.idempotency_key);
    let jpeg = tokio::fs::read(&path).await.map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("snapshot of event {id} unreadable: {e}"),
        )
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
            // Snapshots never change; they are the customer's own, so private caches only.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=86400, immutable"),
            ),
        ],
        jpeg,
    )
        .into_response())
}
