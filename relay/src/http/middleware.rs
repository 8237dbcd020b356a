//! Middleware around every request: the CSRF origin check, metrics, security headers and a
//! tracing span with a request id.

use super::AppState;
use crate::error::Error;
use crate::metrics::{HttpLabels, RouteLabels};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicU64, Ordering};

/// Refuses state-changing requests that a browser sent from another site.
///
/// Browsers send `Origin` on every POST, PUT, PATCH and DELETE; it must be the relay's own
/// (`public_url`). Requests without one come from non-browser clients (the CLI, agents,
/// scripts), which cannot ride on a victim's cookie. `Sec-Fetch-Site: cross-site` is refused
/// too, for browsers that omit `Origin`.
///
/// The mailed links' pages ([`is_mail_link`]) are exempt: the token in their path is their
/// whole authority and no cookie is read, so a forged request gains nothing a holder of the
/// mail lacks; and their own button's form is posted with `Origin: null` (the pages are
/// served with `Referrer-Policy: no-referrer`), which a strict check would refuse.
pub async fn refuse_foreign_origin(
    State(st): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !is_mail_link(req.uri().path()) {
        let headers = req.headers();
        let origin = headers.get(header::ORIGIN).map(HeaderValue::as_bytes);
        let cross_site = headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"cross-site");
        let foreign = origin.is_some_and(|o| o != st.origin.as_bytes());
        if foreign || cross_site {
            return Error::forbidden(
                "cross-site request refused: the Origin is not this server's public_url",
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// The paths of links in mails, authorised by the token in the path alone.
pub fn is_mail_link(path: &str) -> bool {
    ["/confirm/", "/unsubscribe/"]
        .iter()
        .any(|prefix| path.starts_with(prefix))
}

/// The route a request matched (`/confirm/{token}`), never its path: paths can hold tokens
/// (the mailed links') that logs and metrics must not.
fn route_of(req: &Request) -> String {
    req.extensions().get::<MatchedPath>().map_or_else(
        || {
            if req.uri().path().starts_with("/api/") {
                "/api/(unmatched)".to_owned()
            } else {
                "(static)".to_owned()
            }
        },
        |m| m.as_str().to_owned(),
    )
}

/// A request's method as a metric label: the methods of HTTP, else `other`, so that made-up
/// methods cannot make new label values without end.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Counts requests by route pattern, method and status, and times them.
pub async fn count_requests(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let route = route_of(&req);
    let method = method_label(req.method()).to_owned();
    let start = st.clock.instant();
    let resp = next.run(req).await;
    st.metrics
        .http_request_seconds
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(start.elapsed().as_secs_f64());
    st.metrics
        .http_requests
        .get_or_create(&HttpLabels {
            route,
            method,
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}

/// The pages' content security policy: their own scripts and styles only (no inline code),
/// pictures from the relay and from the map's tile server (`tiles_origin`), nothing framed.
pub fn content_security_policy(tiles_origin: &str) -> HeaderValue {
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; \
         img-src 'self' data: blob: {tiles_origin}; media-src 'self' blob:; connect-src 'self'; \
         manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    // An origin is ASCII without controls: always a valid header value.
    HeaderValue::from_str(&policy).expect("an origin is a valid header value")
}

/// The browser protections every response carries. The pages load only their own scripts and
/// styles (no inline code), may not be framed, API answers are never cached, and a relay
/// reached over https tells browsers to keep to it.
pub async fn security_headers(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let is_api = req.uri().path().starts_with("/api/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        st.content_security_policy.clone(),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if st.secure_cookies {
        // Reached over https: browsers are to use nothing else for two years.
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    if is_api {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

static NEXT_REQUEST_ID: AtomicU64 = AtomicU64::new(1);

/// The span of one request: an id, the method and the route it matched (not the path, which
/// may hold a token).
pub fn request_span(req: &Request) -> tracing::Span {
    tracing::info_span!(
        "request",
        id = NEXT_REQUEST_ID.fetch_add(1, Ordering::Relaxed),
        method = %req.method(),
        route = %route_of(req),
    )
}
