//! The web pages, embedded in the binary from `web/` so the relay is one file to deploy.

use crate::error::Error;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../web/"]
struct Assets;

/// Serves `web/` files by path (`/` is `index.html`), with an ETag so browsers revalidate
/// cheaply. Anything else is a JSON 404.
pub async fn asset(req: Request) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return Error::new(
            crate::error::ErrorKind::Unimplemented,
            "method not allowed on this path",
        )
        .into_response();
    }
    let path = match req.uri().path().trim_start_matches('/') {
        "" => "index.html",
        p => p,
    };
    let Some(file) = Assets::get(path) else {
        return Error::not_found("page").into_response();
    };
    let etag = format!(
        "\"{}\"",
        URL_SAFE_NO_PAD.encode(&file.metadata.sha256_hash()[..16])
    );
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let etag = HeaderValue::from_str(&etag).expect("base64url is a valid header value");
    let headers = [
        (header::ETAG, etag),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let mime = HeaderValue::from_str(file.metadata.mimetype())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    (headers, [(header::CONTENT_TYPE, mime)], file.data).into_response()
}
