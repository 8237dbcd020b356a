//! The relay's one error type, and the one place that maps its kinds to HTTP.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// What went wrong, in the terms a client can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request (or a config value, or a CLI argument) is malformed or not acceptable.
    BadRequest,
    /// No valid session or token.
    Unauthenticated,
    /// Authenticated, but this role or origin may not do this.
    Forbidden,
    /// No such thing, or not the caller's (the two are never told apart).
    NotFound,
    /// The method does not apply to this path.
    MethodNotAllowed,
    /// The request conflicts with what is stored (a taken email address...).
    Conflict,
    /// The body is larger than allowed.
    PayloadTooLarge,
    /// The body did not arrive in time.
    RequestTimeout,
    /// The body is not of a type this endpoint takes.
    UnsupportedMediaType,
    /// A device (a camera) refused what was asked of it.
    Unprocessable,
    /// Too many attempts; retry later.
    TooManyRequests,
    /// Something the request needs (a camera, its agent, the database) did not answer in
    /// time.
    Unavailable,
    /// The relay's disk is full: nothing new can be stored until room is made.
    InsufficientStorage,
    /// A fault on our side; details go to the log, never to the client.
    Internal,
}

/// A relay error: a kind, a message fit for the client, a code the pages translate, and for
/// 429 a retry delay.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct Error {
    kind: ErrorKind,
    msg: String,
    /// What exactly went wrong, for clients that say it in their own words (the web pages,
    /// in the customer's language); without one, the kind's own code.
    code: Option<&'static str>,
    retry_after: Option<Duration>,
}

impl Error {
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Self {
        Error {
            kind,
            msg: msg.into(),
            code: None,
            retry_after: None,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Names this error for clients (`snake_case`, documented in api.md).
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The `code` of the JSON body.
    pub fn code(&self) -> &'static str {
        self.code.unwrap_or(match self.kind {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PayloadTooLarge => "too_large",
            ErrorKind::RequestTimeout => "request_timeout",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::Unprocessable => "unprocessable",
            ErrorKind::TooManyRequests => "too_many_requests",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::InsufficientStorage => "storage_full",
            ErrorKind::Internal => "internal",
        })
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::BadRequest, msg)
    }

    pub fn not_found(what: &str) -> Self {
        Error::new(ErrorKind::NotFound, format!("no such {what}"))
    }

    pub fn unauthenticated() -> Self {
        Error::new(ErrorKind::Unauthenticated, "login required")
    }

    pub fn forbidden(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::Forbidden, msg)
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, msg)
    }

    /// Asks the client to wait `retry_after` (the `Retry-After` header) before trying again.
    pub fn retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = Some(retry_after);
        self
    }

    pub fn too_many_requests(retry_after: Duration) -> Self {
        Error {
            kind: ErrorKind::TooManyRequests,
            msg: "too many failed attempts; try again later".to_owned(),
            code: Some("login_throttled"),
            retry_after: Some(retry_after),
        }
    }

    /// The HTTP status for each kind: the one mapping in the relay.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<eyeward::Error> for Error {
    fn from(e: eyeward::Error) -> Self {
        Error::bad_request(e.to_string()).with_code("invalid_input")
    }
}

/// How long a client should wait after the disk was full or the database busy.
const FULL_RETRY: Duration = Duration::from_secs(30);
const BUSY_RETRY: Duration = Duration::from_secs(2);

impl Error {
    /// The disk is full: a 507 the client retries later; what was stored stays.
    fn disk_full(what: &str) -> Error {
        Error::new(
            ErrorKind::InsufficientStorage,
            format!("the relay's disk is full: {what} was not stored; try again later"),
        )
        .retry_after(FULL_RETRY)
    }

    /// A failed write of `what` (a snapshot, a mail): a full disk is the client's 507 to
    /// retry, anything else our fault.
    pub fn storage(what: &str, e: &std::io::Error) -> Error {
        const ENOSPC: i32 = 28;
        const EDQUOT: i32 = 122;
        if e.kind() == std::io::ErrorKind::StorageFull
            || matches!(e.raw_os_error(), Some(ENOSPC | EDQUOT))
        {
            Error::disk_full(what)
        } else {
            Error::internal(format!("cannot store {what}: {e}"))
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        // SQLite's primary result codes (the low byte of the extended ones).
        const SQLITE_BUSY: u32 = 5;
        const SQLITE_LOCKED: u32 = 6;
        const SQLITE_FULL: u32 = 13;
        let primary = match &e {
            sqlx::Error::Database(db) => db
                .code()
                .and_then(|c| c.parse::<u32>().ok())
                .map(|c| c & 0xff),
            _ => None,
        };
        match (primary, &e) {
            (Some(SQLITE_FULL), _) => Error::disk_full("the change"),
            (Some(SQLITE_BUSY | SQLITE_LOCKED), _) | (None, sqlx::Error::PoolTimedOut) => {
                Error::new(
                    ErrorKind::Unavailable,
                    "the relay's database is busy; try again shortly",
                )
                .retry_after(BUSY_RETRY)
            }
            _ => Error::internal(format!("database: {e}")),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Error::internal(format!("database migration: {e}"))
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let msg = if self.kind == ErrorKind::Internal {
            tracing::error!(error = %self.msg, "internal error");
            "internal error".to_owned()
        } else {
            self.msg
        };
        let mut resp = (
            status,
            axum::Json(serde_json::json!({ "error": msg, "code": code })),
        )
            .into_response();
        if let Some(d) = self.retry_after {
            // Round up so a client that waits exactly this long is let in.
            let secs = d.as_millis().div_ceil(1000).max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_a_507_to_retry_and_other_write_faults_are_ours() {
        let full = Error::storage("the snapshot", &std::io::Error::from_raw_os_error(28));
        assert_eq!(full.status(), StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(full.retry_after, Some(FULL_RETRY));
        assert!(full.to_string().contains("disk is full"), "{full}");
        let denied = Error::storage("the snapshot", &std::io::Error::from_raw_os_error(13));
        assert_eq!(denied.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let busy = Error::from(sqlx::Error::PoolTimedOut);
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.retry_after, Some(BUSY_RETRY));
    }
}
