//! Request extractors: who is calling, JSON bodies and ids, each failing with our JSON errors.

use super::AppState;
use crate::auth::{SessionCheck, hash_token};
use crate::config::ProxyNet;
use crate::error::{Error, ErrorKind};
use crate::revocation::{CameraGrant, Grant};
use crate::store::{Account, Actor, Audit, Camera, Channel, Event};
use crate::whep::Viewer;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::HeaderValue;
use axum::http::header;
use axum::http::request::Parts;
use eyeward::dispatch::DispatchActor;
use eyeward::household::{Access, Membership, Right};
use eyeward::{CameraId, CustomerId, GuardCenter, OperatorId, Role, UnixMillis};
use serde::de::DeserializeOwned;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The name of the session cookie over plain http.
pub const SESSION_COOKIE: &str = "eyeward_session";
/// Its name over https: a `__Host-` cookie is taken by browsers only when Secure, for this
/// host alone and the whole site, so no sibling domain or plain-http page can plant one.
pub const SECURE_SESSION_COOKIE: &str = "__Host-eyeward_session";

/// A logged-in account, from a valid session cookie. Missing or expired: 401.
pub struct Caller {
    pub account: Account,
    pub token_hash: String,
    /// The passkey this session was signed in or checked with, if any.
    pub passkey: Option<i64>,
}

impl Caller {
    /// An audit record of an operation this caller makes through the web at `at`.
    pub fn audit(&self, at: UnixMillis) -> Audit {
        let (id, name) = (self.account.id, self.account.name.clone());
        Audit {
            actor: match self.account.role {
                Role::Customer => Actor::Customer { id, name },
                Role::Operator => Actor::Operator { id, name },
                Role::Member => Actor::Member { id, name },
            },
            channel: Channel::Web,
            at,
        }
    }
}

impl Caller {
    /// The household whose history this caller's operations go to: a customer's own, a
    /// member's holder's; none for an operator.
    pub fn household(&self) -> Option<CustomerId> {
        match self.account.role {
            Role::Customer => Some(CustomerId(self.account.id)),
            Role::Member => self.account.household,
            Role::Operator => None,
        }
    }
}

/// The name of the cookie by which a browser that logged in before is known again.
pub const BROWSER_COOKIE: &str = "eyeward_browser";
/// Its name over https (`__Secure-`: taken only when Secure; its path is the login's).
pub const SECURE_BROWSER_COOKIE: &str = "__Secure-eyeward_browser";

/// The names of the session and browser cookies: prefixed when the relay is reached over
/// https, and then only those are read.
pub fn cookie_names(secure: bool) -> (&'static str, &'static str) {
    if secure {
        (SECURE_SESSION_COOKIE, SECURE_BROWSER_COOKIE)
    } else {
        (SESSION_COOKIE, BROWSER_COOKIE)
    }
}

/// A `Set-Cookie` value for a session token (a person's, or a guard's phone's): this host,
/// every path, HttpOnly, SameSite=Strict, Secure over https, kept `max_age_secs`.
pub fn session_set_cookie(name: &str, value: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    ))
    .expect("a cookie of base64url and fixed words is a valid header value")
}

/// The session token from the `Cookie` header, if any.
pub fn session_token(parts: &Parts, secure: bool) -> Option<&str> {
    cookie(&parts.headers, cookie_names(secure).0)
}

/// Cookie `name`'s value from the `Cookie` headers, if any.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The token of an `Authorization: Bearer` header, if any.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let token =
            session_token(parts, state.secure_cookies).ok_or_else(Error::unauthenticated)?;
        let token_hash = hash_token(token);
        let session = state
            .store
            .session(&token_hash)
            .await?
            .ok_or_else(Error::unauthenticated)?;
        let now = state.clock.now();
        match state
            .sessions
            .check(session.created_at, session.last_seen_at, now)
        {
            SessionCheck::Expired => {
                state.store.delete_session(&token_hash).await?;
                state.metrics.sessions_expired.inc();
                Err(Error::new(
                    ErrorKind::Unauthenticated,
                    "session expired; please log in again",
                ))
            }
            SessionCheck::Valid { .. }
                if session
                    .account
                    .access_until
                    .is_some_and(|until| until <= now) =>
            {
                // A guest's time is up: their sessions end without anyone acting.
                state.store.delete_session(&token_hash).await?;
                Err(super::api::access_ended(
                    session.account.access_until.unwrap_or(now),
                ))
            }
            SessionCheck::Valid { touch } => {
                if touch {
                    state.store.touch_session(&token_hash, now).await?;
                }
                Ok(Caller {
                    account: session.account,
                    token_hash,
                    passkey: session.passkey,
                })
            }
        }
    }
}

/// A logged-in customer. Other roles: 403.
pub struct CustomerCaller {
    pub id: CustomerId,
    pub caller: Caller,
}

impl Caller {
    /// What authorises a long-lived thing this caller opens: their session.
    pub fn grant(&self) -> Grant {
        Grant::Session {
            token_hash: self.token_hash.clone(),
            camera: None,
            opened_with: None,
        }
    }
}

impl FromRequestParts<AppState> for CustomerCaller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.account.role != Role::Customer {
            return Err(Error::forbidden("this is for customers only"));
        }
        Ok(CustomerCaller {
            id: CustomerId(caller.account.id),
            caller,
        })
    }
}

/// A logged-in customer, or a member of a customer's household: whose household it is, and
/// what a member was given. Operators: 403. The holder may do everything with the
/// household's cameras; a member what their rights say ([`HouseholdCaller::camera`]).
pub struct HouseholdCaller {
    pub household: CustomerId,
    /// A member's rights; `None` for the holder.
    pub membership: Option<Membership>,
    pub caller: Caller,
}

impl HouseholdCaller {
    /// Who watches, for the live-video sessions: each person their own.
    pub fn viewer(&self) -> Viewer {
        match self.membership {
            None => Viewer::Customer(self.household),
            Some(_) => Viewer::Member {
                id: self.caller.account.id,
                household: self.household,
            },
        }
    }

    /// The household's camera `id`, for a use that needs `right`: 404 for a camera not the
    /// household's or none of a member's, 403 for a right a member was not given.
    pub async fn camera(&self, st: &AppState, id: CameraId, right: Right) -> Result<Camera, Error> {
        let camera = st
            .store
            .camera_of(self.household, id)
            .await?
            .ok_or_else(|| Error::not_found("camera"))?;
        match self.access(&camera, right, st.clock.now()) {
            Access::Allowed => Ok(camera),
            Access::NoCamera => Err(Error::not_found("camera")),
            Access::NotThisRight => Err(Error::forbidden(format!(
                "you were not given the {right} right on this camera"
            ))
            .with_code("not_your_right")),
        }
    }

    /// The household's event `id` with its camera, for a member given `events` on that camera:
    /// 404 for an event not the household's or of a camera none of a member's, 403 for a
    /// member without the right.
    pub async fn event(&self, st: &AppState, id: i64) -> Result<(Event, Camera), Error> {
        let event = st
            .store
            .event_of(self.household, id)
            .await?
            .ok_or_else(|| Error::not_found("event"))?;
        let camera = self
            .camera(st, CameraId(event.camera_id), Right::Events)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => Error::not_found("event"),
                _ => e,
            })?;
        Ok((event, camera))
    }

    /// The member whose cameras without `events` are left out of the household's event lists.
    pub fn events_viewer(&self) -> Option<i64> {
        self.membership.as_ref().map(|_| self.caller.account.id)
    }

    /// For what a member may use on any camera given `right` (the holder always): 403
    /// `not_your_right` when they were given it on none at `now`.
    pub fn given_on_some_camera(&self, right: Right, now: UnixMillis) -> Result<(), Error> {
        match &self.membership {
            Some(m) if !m.cameras.keys().any(|c| m.rights_on(*c, now).has(right)) => {
                Err(Error::forbidden(format!(
                    "you were not given the {right} right on any camera"
                ))
                .with_code("not_your_right"))
            }
            _ => Ok(()),
        }
    }

    /// What this caller may do with `camera` (one of the household's) at `now`.
    pub fn access(&self, camera: &Camera, right: Right, now: UnixMillis) -> Access {
        match &self.membership {
            None => Access::Allowed,
            Some(m) => m.may(camera.id, camera.plan, right, now),
        }
    }

    /// The household's cameras this caller sees at `now`: all of them for the holder, those
    /// a member has any right on.
    pub async fn cameras(&self, st: &AppState, now: UnixMillis) -> Result<Vec<Camera>, Error> {
        let cameras = st.store.cameras_of(self.household).await?;
        Ok(match &self.membership {
            None => cameras,
            Some(m) => {
                let seen = m.cameras_seen(now);
                cameras
                    .into_iter()
                    .filter(|c| seen.contains(&c.id))
                    .collect()
            }
        })
    }

    /// What authorises a long-lived thing about `camera` that needs `right`: this session,
    /// the camera staying the household's, and a member keeping the right.
    pub fn grant_on(&self, camera: CameraId, right: Right) -> Grant {
        Grant::Session {
            token_hash: self.caller.token_hash.clone(),
            camera: Some(CameraGrant {
                household: self.household,
                camera,
                right,
            }),
            opened_with: None,
        }
    }

    /// What authorises a stream about several of the household's cameras: this session and,
    /// for a member, the rights they have now (a change ends it).
    pub fn grant(&self) -> Grant {
        Grant::Session {
            token_hash: self.caller.token_hash.clone(),
            camera: None,
            opened_with: self.membership.clone(),
        }
    }

    /// The household's request `id`, for the holder or a member given `dispatch` on its
    /// camera: 404 otherwise (a request is seen with its camera's right).
    pub async fn dispatch_request(
        &self,
        st: &AppState,
        id: i64,
    ) -> Result<crate::store::Dispatch, Error> {
        let d = st
            .store
            .dispatch(id)
            .await?
            .filter(|d| {
                d.rules()
                    .visible_to(DispatchActor::Customer(self.household))
            })
            .ok_or_else(|| Error::not_found("dispatch request"))?;
        if self.membership.is_some() {
            // A request whose camera is gone is the holder's alone.
            let camera = d
                .camera_id
                .ok_or_else(|| Error::not_found("dispatch request"))?;
            self.camera(st, CameraId(camera), Right::Dispatch)
                .await
                .map_err(|_| Error::not_found("dispatch request"))?;
        }
        Ok(d)
    }

    /// Whether this caller follows the requests of `camera` at `now`: the holder every one, a
    /// member those of cameras they were given `dispatch` on (not those of a camera gone).
    pub fn follows_dispatch(&self, camera: Option<i64>, now: UnixMillis) -> bool {
        follows_dispatch(self.membership.as_ref(), camera, now)
    }
}

/// [`HouseholdCaller::follows_dispatch`] for a caller given `membership` (`None`: the holder).
pub fn follows_dispatch(
    membership: Option<&Membership>,
    camera: Option<i64>,
    now: UnixMillis,
) -> bool {
    match (membership, camera) {
        (None, _) => true,
        (Some(m), Some(camera)) => m.rights_on(CameraId(camera), now).has(Right::Dispatch),
        (Some(_), None) => false,
    }
}

impl FromRequestParts<AppState> for HouseholdCaller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let (household, membership) = match (caller.account.role, caller.account.household) {
            (Role::Customer, _) => (CustomerId(caller.account.id), None),
            (Role::Member, Some(household)) => {
                let membership = state
                    .store
                    .membership(caller.account.id)
                    .await?
                    .ok_or_else(Error::unauthenticated)?;
                (household, Some(membership))
            }
            _ => {
                return Err(Error::forbidden(
                    "this is for customers and their households only",
                ));
            }
        };
        Ok(HouseholdCaller {
            household,
            membership,
            caller,
        })
    }
}

/// A logged-in guard-center operator, with their center, whose session was signed in or
/// checked with a passkey (where passkeys are offered). Other roles, or no passkey: 403.
pub struct OperatorCaller {
    pub id: OperatorId,
    pub center: GuardCenter,
    pub caller: Caller,
}

impl FromRequestParts<AppState> for OperatorCaller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.account.role != Role::Operator {
            return Err(Error::forbidden("this is for guard-center operators only"));
        }
        // Operators see people's homes: where passkeys can be had, the console opens only to a
        // session signed in or checked with one.
        if state.relying_party.offered() && caller.passkey.is_none() {
            return Err(
                Error::forbidden("the console opens after a check with your passkey")
                    .with_code("passkey_needed"),
            );
        }
        Ok(OperatorCaller {
            id: OperatorId(caller.account.id),
            center: caller.account.guard_center,
            caller,
        })
    }
}

/// The client's address, for throttling and the loopback rule of `/metrics`: the TCP peer, or
/// the client a trusted proxy names (see [`forwarded_client`]). Tests without a socket get
/// `0.0.0.0`.
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Error> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        let forwarded = parts.headers.get_all("x-forwarded-for");
        Ok(ClientAddr(forwarded_client(
            peer,
            forwarded.iter().filter_map(|v| v.to_str().ok()),
            &st.trusted_proxies,
        )))
    }
}

/// The client of a request that reached us from `peer` with these `X-Forwarded-For` values.
///
/// From a peer we do not trust the header counts for nothing: anyone can send one. From a
/// trusted proxy, the hops are read from the right (each proxy appends the address it saw), past
/// the proxies we trust; the first other address is the client. Entries left of it were written
/// by the client itself and are never believed.
pub fn forwarded_client<'a>(
    peer: IpAddr,
    forwarded: impl DoubleEndedIterator<Item = &'a str>,
    trusted: &[ProxyNet],
) -> IpAddr {
    let is_trusted = |a: &IpAddr| trusted.iter().any(|n| n.0.contains(a));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut nearest = peer;
    for value in forwarded.rev() {
        for hop in value.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(addr) if is_trusted(&addr) => nearest = addr,
                Ok(addr) => return addr,
                // A hop we cannot read: the last one we could is as far as we can see.
                Err(_) => return nearest,
            }
        }
    }
    nearest
}

/// A query string whose every failure is one of our JSON errors (400): unknown keys and
/// bad values are named.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned> ApiQuery<T> {
    /// Reads `uri`'s query as the extractor does (tests and fuzzing use it too).
    pub fn from_uri(uri: &axum::http::Uri) -> Result<T, Error> {
        axum::extract::Query::<T>::try_from_uri(uri)
            .map(|axum::extract::Query(v)| v)
            .map_err(|rejection| Error::bad_request(rejection.body_text()))
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        ApiQuery::from_uri(&parts.uri).map(ApiQuery)
    }
}

/// How long a request's whole body may take to arrive (`[http] body_timeout`), put into every
/// request's extensions by the router.
#[derive(Clone, Copy)]
pub struct BodyTimeout(pub std::time::Duration);

/// The largest JSON body a route takes (`[http] max_json_body_bytes`), put into every request's
/// extensions by the router.
#[derive(Clone, Copy)]
pub struct JsonLimit(pub usize);

/// A JSON body whose every failure is one of our JSON errors (400, 413 or 415).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, _: &S) -> Result<Self, Error> {
        let JsonLimit(limit) = req
            .extensions()
            .get::<JsonLimit>()
            .copied()
            .unwrap_or(JsonLimit(
                crate::config::HttpConfig::default().max_json_body_bytes,
            ));
        let bytes = typed_body(req, "application/json", limit).await?;
        // Syntax and data errors: serde's message says where and what ("missing field
        // `email` at line 1 column 2"); it quotes field names, not values.
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| Error::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// The numeric id in a path such as `/api/cameras/{id}`. Anything else names nothing: 404.
pub struct IdPath(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| Error::not_found("resource"))?;
        raw.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(IdPath)
            .ok_or_else(|| Error::not_found("resource"))
    }
}

/// The largest SDP offer accepted (browsers' offers are a few kilobytes).
const SDP_LIMIT: usize = 64 * 1024;

/// An `application/sdp` body (WHEP offers), at most [`SDP_LIMIT`].
pub struct SdpBody(pub String);

impl<S: Send + Sync> FromRequest<S> for SdpBody {
    type Rejection = Error;

    async fn from_request(req: Request, _: &S) -> Result<Self, Error> {
        let bytes = typed_body(req, "application/sdp", SDP_LIMIT).await?;
        String::from_utf8(bytes)
            .map(SdpBody)
            .map_err(|_| Error::bad_request("the SDP offer is not UTF-8"))
    }
}

/// The largest snapshot accepted by default (a 1080p JPEG is well under 1 MiB).
pub const JPEG_LIMIT: usize = 4 * 1024 * 1024;

/// An `image/jpeg` body (snapshots), at most [`JPEG_LIMIT`], or `None` for a request with
/// neither a body nor a `Content-Type`; its content is checked by whoever takes it.
pub struct JpegBody(pub Option<Vec<u8>>);

impl<S: Send + Sync> FromRequest<S> for JpegBody {
    type Rejection = Error;

    async fn from_request(req: Request, _: &S) -> Result<Self, Error> {
        if req.headers().contains_key(header::CONTENT_TYPE) {
            return typed_body(req, "image/jpeg", JPEG_LIMIT)
                .await
                .map(|b| JpegBody(Some(b)));
        }
        if read_capped(req, JPEG_LIMIT).await?.is_empty() {
            Ok(JpegBody(None))
        } else {
            Err(Error::new(
                ErrorKind::UnsupportedFormat,
                "expected a body of type image/jpeg",
            ))
        }
    }
}

/// The body of a request whose `Content-Type` is `mime`, at most `limit` bytes.
async fn typed_body(req: Request, mime: &str, limit: usize) -> Result<Vec<u8>, Error> {
    let typed = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(mime))
        });
    if !typed {
        return Err(Error::new(
            ErrorKind::UnsupportedFormat,
            format!("expected a body of type {mime}"),
        ));
    }
    // Refused before reading when the client says up front that it is far too large; a body
    // that is merely too large is read and dropped so that the client gets the 413.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit.max(DRAIN)) {
        return Err(Error::new(ErrorKind::TooLarge, "request body is too large"));
    }
    read_capped(req, limit).await
}

/// How much of a too-large body is read and dropped before the 413 (see [`read_capped`]).
const DRAIN: usize = 4 * 1024 * 1024;

/// Reads a body of at most `limit` bytes within the body timeout (else 408). A larger one is
/// read on (and dropped) up to a few megabytes before the 413, so that the client, still
/// sending, gets the answer instead of a reset connection.
async fn read_capped(req: Request, limit: usize) -> Result<Vec<u8>, Error> {
    let BodyTimeout(timeout) =
        req.extensions()
            .get::<BodyTimeout>()
            .copied()
            .unwrap_or(BodyTimeout(
                crate::config::HttpConfig::default().body_timeout,
            ));
    tokio::time::timeout(timeout, read_all(req, limit))
        .await
        .unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::DeadlineExceeded,
                "the request body did not arrive in time",
            ))
        })
}

async fn read_all(req: Request, limit: usize) -> Result<Vec<u8>, Error> {
    let mut body = req.into_body().into_data_stream();
    let (mut kept, mut seen) = (Vec::new(), 0usize);
    while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
        let chunk = chunk.map_err(|e| Error::bad_request(format!("reading the body: {e}")))?;
        seen += chunk.len();
        if seen <= limit {
            kept.extend_from_slice(&chunk);
        } else if seen > DRAIN {
            break;
        }
    }
    if seen > limit {
        return Err(Error::new(ErrorKind::TooLarge, "request body is too large"));
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<ProxyNet> {
        list.iter()
            .map(|n| ProxyNet(n.parse().expect("network")))
            .collect()
    }

    fn client(peer: &str, forwarded: &[&str], trusted: &[&str]) -> String {
        forwarded_client(
            peer.parse().expect("peer"),
            forwarded.iter().copied(),
            &nets(trusted),
        )
        .to_string()
    }

    #[test]
    fn the_header_counts_only_from_trusted_proxies() {
        assert_eq!(client("192.0.2.1", &["198.51.100.9"], &[]), "192.0.2.1");
        assert_eq!(
            client("192.0.2.1", &["198.51.100.9"], &["10.0.0.0/8"]),
            "192.0.2.1"
        );
        assert_eq!(
            client("10.0.0.2", &["198.51.100.9"], &["10.0.0.0/8"]),
            "198.51.100.9"
        );
    }

    #[test]
    fn hops_are_read_from_the_right_past_trusted_proxies() {
        let trusted = ["10.0.0.0/8"];
        // What the client wrote itself (left) is never believed.
        assert_eq!(
            client("10.0.0.2", &["127.0.0.1, 198.51.100.9"], &trusted),
            "198.51.100.9"
        );
        // Two proxies, one header each or one list.
        assert_eq!(
            client("10.0.0.2", &["198.51.100.9", "10.0.0.7"], &trusted),
            "198.51.100.9"
        );
        assert_eq!(
            client("10.0.0.2", &["198.51.100.9 , 10.0.0.7"], &trusted),
            "198.51.100.9"
        );
        // No header, or only trusted hops: the nearest hop is the client.
        assert_eq!(client("10.0.0.2", &[], &trusted), "10.0.0.2");
        assert_eq!(client("10.0.0.2", &["10.0.0.7"], &trusted), "10.0.0.7");
        // An unreadable hop ends the walk at the last readable one.
        assert_eq!(
            client("10.0.0.2", &["198.51.100.9, junk, 10.0.0.7"], &trusted),
            "10.0.0.7"
        );
        assert_eq!(client("::1", &["2001:db8::5"], &["::1/128"]), "2001:db8::5");
    }
}
