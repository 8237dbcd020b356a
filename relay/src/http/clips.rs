//! Event clips over HTTP: the agents' resumable uploads (`HEAD` and `PUT
//! /agent/v1/events/{key}/clip`, the contract in [`eyeward::clip_upload`]) and the owner's
//! `GET /api/events/{id}/clip`, with HTTP range requests so that the browser's player seeks.
//! The clips themselves are [`crate::events::clips`]'.

use super::AppState;
use super::agent_link::AgentCaller;
use super::extract::{ApiQuery, HouseholdCaller, IdPath};
use crate::error::{Error, ErrorKind};
use crate::events::clips::Received;
use crate::store::Event;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use eyeward::clip_upload::{ClipQuery, ContentRange, UPLOAD_OFFSET};
use serde::Deserialize;
use std::ops::Range;

/// The camera's event with idempotency key `key`: 404 for any other camera's.
async fn agents_event(st: &AppState, agent: &AgentCaller, key: &str) -> Result<Event, Error> {
    st.store
        .event_by_key(agent.camera.id, key)
        .await?
        .ok_or_else(|| Error::not_found("event"))
}

/// An answer that says how many bytes of the clip the relay holds.
fn with_offset(status: StatusCode, held: u64, body: Option<Json<serde_json::Value>>) -> Response {
    let mut response = match body {
        Some(body) => (status, body).into_response(),
        None => status.into_response(),
    };
    response
        .headers_mut()
        .insert(UPLOAD_OFFSET, HeaderValue::from(held));
    response
}

/// `HEAD /agent/v1/events/{key}/clip`: `200` with `Upload-Offset`, the bytes of the event's
/// clip the relay holds (all of them once stored); 404 for an event it does not have.
pub async fn held(
    State(st): State<AppState>,
    agent: AgentCaller,
    Path(key): Path<String>,
) -> Result<Response, Error> {
    let event = agents_event(&st, &agent, &key).await?;
    Ok(with_offset(
        StatusCode::OK,
        st.events.clip_held(&event).await,
        None,
    ))
}

/// `PUT /agent/v1/events/{key}/clip?codec=…&length_ms=…&event_at_ms=…` with `Content-Range:
/// bytes FIRST-LAST/TOTAL` and those bytes of the MP4: `201` with the event once the clip is
/// whole, checked and stored (`200` if it was before), `204` with `Upload-Offset` while
/// bytes are still to come, `409` with `Upload-Offset` when `FIRST` is not where the
/// relay's bytes end; `415` for a file that is not an MP4 clip, `422` for one that is not
/// what the query says (nothing is stored either way).
pub async fn upload(
    State(st): State<AppState>,
    agent: AgentCaller,
    Path(key): Path<String>,
    ApiQuery(query): ApiQuery<ClipQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Error> {
    let range = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::bad_request("Content-Range: bytes FIRST-LAST/TOTAL is missing"))
        .and_then(|v| ContentRange::parse(v).map_err(|e| Error::bad_request(e.to_string())))?;
    let mp4 = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"video/mp4");
    if !mp4 && !range.is_empty() {
        return Err(Error::new(
            ErrorKind::UnsupportedFormat,
            "a clip is sent as video/mp4",
        ));
    }
    let event = agents_event(&st, &agent, &key).await?;
    // The camera's codec, as this node last read its stream: a clip must be of it too.
    let camera_codec = st.feeds.codec_seen(agent.camera.id);
    let received = st
        .events
        .receive_clip(
            &st.store,
            &event,
            (&query, camera_codec),
            range,
            body.into_data_stream(),
        )
        .await?;
    Ok(match received {
        Received::Stored { event, now } => {
            if now {
                st.metrics.clips_stored.inc();
                tracing::info!(
                    camera = event.camera_id,
                    event = event.id,
                    bytes = event.clip_bytes,
                    "clip stored"
                );
                st.events.publish(&event);
            }
            let status = if now {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let held = event.clip_bytes as u64;
            let view = serde_json::to_value(st.events.view(&event)).unwrap_or_default();
            with_offset(status, held, Some(Json(view)))
        }
        Received::Partial(held) => with_offset(StatusCode::NO_CONTENT, held, None),
        Received::ElsewhereThan(held) => with_offset(
            StatusCode::CONFLICT,
            held,
            Some(Json(serde_json::json!({
                "error": format!("the relay holds {held} bytes of this clip: send from there"),
                "code": "clip_offset",
            }))),
        ),
    })
}

/// `GET /api/events/{id}/clip`'s options.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipOptions {
    /// `1`: as a file to save (`Content-Disposition: attachment`).
    download: Option<u8>,
}

/// `GET /api/events/{id}/clip[?download=1]`: the clip of one of the owner's events, as
/// `video/mp4`; a `Range: bytes=…` request gets `206` with those bytes, `416` when they lie
/// past the end. 404 for an event that is not the caller's or has no clip (yet).
pub async fn clip(
    State(st): State<AppState>,
    c: HouseholdCaller,
    IdPath(id): IdPath,
    ApiQuery(options): ApiQuery<ClipOptions>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let (event, camera) = c.event(&st, id).await?;
    if event.clip_bytes == 0 {
        return Err(Error::new(
            ErrorKind::NotFound,
            "this event has no clip (yet): its camera may still be sending it",
        ));
    }
    let download =
        (options.download == Some(1)).then(|| download_name(&camera.name, event.captured_at));
    // Clips never change; they are the customer's own, so private caches only.
    serve(
        &st,
        &event,
        &headers,
        "private, max-age=86400, immutable",
        download,
    )
    .await
    .map(|(response, _)| response)
}

/// `event`'s clip (it has one) as `video/mp4`: the range `headers` ask for (`206`), `416`
/// past the end, or whole; saved as `download` if named. Also whether the answer starts at
/// the clip's first byte (a player's first request: a new look, rather than a seek).
pub async fn serve(
    st: &AppState,
    event: &Event,
    headers: &HeaderMap,
    cache: &'static str,
    download: Option<String>,
) -> Result<(Response, bool), Error> {
    let size = event.clip_bytes as u64;
    let requested = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| byte_range(v, size));
    let header_value =
        |v: String| HeaderValue::from_str(&v).map_err(|e| Error::internal("header").with_source(e));
    let (status, range) = match requested {
        Some(Err(Unsatisfiable)) => {
            let mut response = Error::new(
                ErrorKind::InvalidArgument,
                "the range asked for lies past the clip's end",
            )
            .with_code("range_not_satisfiable")
            .into_response();
            *response.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(format!("bytes */{size}"))?,
            );
            return Ok((response, false));
        }
        Some(Ok(Some(range))) => (StatusCode::PARTIAL_CONTENT, range),
        // No range, or one this does not serve in part (several): the whole clip.
        Some(Ok(None)) | None => (StatusCode::OK, 0..size),
    };
    let stream = st.events.read_clip(event, range.clone()).await?;
    let from_start = range.start == 0;
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(range.end - range.start),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            header_value(format!("bytes {}-{}/{size}", range.start, range.end - 1))?,
        );
    }
    if let Some(name) = download {
        h.insert(
            header::CONTENT_DISPOSITION,
            header_value(format!("attachment; filename=\"{name}\""))?,
        );
    }
    Ok((response, from_start))
}

/// A clip's file name when saved: the camera's name (letters and digits of it) and the
/// event's time, e.g. `front-door-2026-11-29T06-05-28Z.mp4`.
pub fn download_name(camera: &str, captured_at: i64) -> String {
    let mut name: String = camera
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    name = name.trim_matches('-').to_owned();
    if name.is_empty() {
        name = "camera".into();
    }
    let at = eyeward::UnixMillis(captured_at)
        .to_rfc3339()
        .replace(':', "-");
    let at = at.split('.').next().unwrap_or(&at).trim_end_matches('Z');
    format!("{name}-{at}Z.mp4")
}

/// A `Range` the clip cannot satisfy: it starts past the end.
#[derive(Debug, PartialEq)]
pub struct Unsatisfiable;

/// The one byte range a `Range` header asks of `size` bytes: `None` for what this does not
/// serve in part (several ranges, another unit, a malformed value: the whole clip, as HTTP
/// allows), [`Unsatisfiable`] past the end.
pub fn byte_range(value: &str, size: u64) -> Result<Option<Range<u64>>, Unsatisfiable> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (number(first), number(last), last.is_empty()) {
        // The last N bytes.
        (None, Some(n), _) if first.is_empty() => {
            if n == 0 {
                return Err(Unsatisfiable);
            }
            Ok(Some(size.saturating_sub(n)..size))
        }
        (Some(start), _, true) => {
            if start >= size {
                return Err(Unsatisfiable);
            }
            Ok(Some(start..size))
        }
        (Some(start), Some(last), false) if start <= last => {
            if start >= size {
                return Err(Unsatisfiable);
            }
            Ok(Some(start..(last + 1).min(size)))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_served_in_part_past_the_end_refused_and_otherwise_whole() {
        let size = 1000;
        assert_eq!(byte_range("bytes=0-", size), Ok(Some(0..1000)));
        assert_eq!(byte_range("bytes=0-99", size), Ok(Some(0..100)));
        assert_eq!(byte_range("bytes=900-5000", size), Ok(Some(900..1000)));
        assert_eq!(byte_range("bytes=-100", size), Ok(Some(900..1000)));
        assert_eq!(byte_range("bytes=-5000", size), Ok(Some(0..1000)));
        assert_eq!(byte_range("bytes=999-999", size), Ok(Some(999..1000)));
        assert_eq!(byte_range("bytes=1000-", size), Err(Unsatisfiable));
        assert_eq!(byte_range("bytes=1000-2000", size), Err(Unsatisfiable));
        assert_eq!(byte_range("bytes=-0", size), Err(Unsatisfiable));
        for whole in [
            "bytes=0-1,5-9",
            "items=0-9",
            "bytes=9-1",
            "bytes=a-b",
            "bytes=",
            "0-9",
        ] {
            assert_eq!(byte_range(whole, size), Ok(None), "{whole}");
        }
    }

    #[test]
    fn a_saved_clip_is_named_after_its_camera_and_time() {
        assert_eq!(
            download_name("Front door", 1_795_932_328_215),
            "front-door-2026-11-29T06-05-28Z.mp4"
        );
        assert_eq!(
            download_name("玄関", 1_795_932_328_215),
            "camera-2026-11-29T06-05-28Z.mp4"
        );
    }
}
