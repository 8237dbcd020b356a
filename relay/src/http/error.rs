//! The one place an [`Error`] becomes HTTP: its kind picks the status, its code (given, or
//! the kind's own) and message the JSON body `{"error", "code"}`, its retry delay the
//! `Retry-After` header. An internal error is logged with its causes and told to the client
//! as "internal error" only.

use crate::error::{Error, ErrorKind};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The HTTP status of each kind.
pub fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Unimplemented => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::FailedPrecondition => StatusCode::CONFLICT,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::DeadlineExceeded => StatusCode::REQUEST_TIMEOUT,
        ErrorKind::UnsupportedFormat => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::Rejected => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The `code` of the JSON body: the error's own, else its kind's (documented in api.md).
pub fn code(e: &Error) -> &'static str {
    e.given_code().unwrap_or(match e.kind() {
        ErrorKind::InvalidArgument => "bad_request",
        ErrorKind::Unauthenticated => "unauthenticated",
        ErrorKind::PermissionDenied => "forbidden",
        ErrorKind::NotFound => "not_found",
        ErrorKind::Unimplemented => "method_not_allowed",
        ErrorKind::FailedPrecondition => "conflict",
        ErrorKind::TooLarge => "too_large",
        ErrorKind::DeadlineExceeded => "request_timeout",
        ErrorKind::UnsupportedFormat => "unsupported_media_type",
        ErrorKind::Rejected => "unprocessable",
        ErrorKind::ResourceExhausted => "too_many_requests",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::StorageFull => "storage_full",
        ErrorKind::Internal => "internal",
    })
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let code = code(&self);
        let msg = if self.kind() == ErrorKind::Internal {
            tracing::error!(error = %self.chain(), "internal error");
            "internal error".to_owned()
        } else {
            self.to_string()
        };
        let mut resp = (
            status(self.kind()),
            axum::Json(serde_json::json!({ "error": msg, "code": code })),
        )
            .into_response();
        if let Some(d) = self.retry_delay() {
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

    #[tokio::test]
    async fn an_internal_error_tells_the_client_nothing_of_its_cause() {
        let e = Error::internal("database").with_source(std::io::Error::other("/secret/path"));
        let resp = e.into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        assert_eq!(
            &body[..],
            br#"{"code":"internal","error":"internal error"}"#
        );
        let busy = Error::new(ErrorKind::Unavailable, "busy")
            .retry_after(std::time::Duration::from_millis(1500))
            .into_response();
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "2");
    }
}
