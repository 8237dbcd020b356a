//! The JSON API handlers: login and sessions, the caller's account, cameras and history.

use super::AppState;
use super::extract::{
    ApiJson, ApiQuery, Caller, ClientAddr, CustomerCaller, HouseholdCaller, IdPath, cookie,
    cookie_names, session_set_cookie,
};
use crate::auth::{Outcome, Token, hash_token, verify_password};
use crate::error::{Error, ErrorKind};
use crate::store::{Account, Camera, HistoryEntry};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use eyeward::arming::CameraAlerts;
use eyeward::household::Rights;
use eyeward::{CameraId, CameraModel, DisplayName, Email, Language, Password, Plan};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
}

/// How long a login waits for a turn at the password check before it is told to come back.
const PASSWORD_CHECK_WAIT: Duration = Duration::from_secs(2);

/// `POST /api/login`: checks the password and sets the session cookie.
pub async fn login(
    State(st): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, Error> {
    let now = st.clock.now();
    let email = Email::parse(&req.email)?;
    if req.password.len() > Password::MAX_BYTES {
        return Err(Error::bad_request("password is too long"));
    }
    let found = st.store.account_for_login(&email).await?;
    // A browser this account logged in from before is throttled on its own count only.
    let browser = browser_cookie_hash(&st, &headers);
    let known = match &found {
        Some(a) => browser_known(&st, &browser, a.account.id, now).await?,
        None => false,
    };
    let known_browser = browser.as_deref().filter(|_| known);
    let hash = found.as_ref().map(|a| a.password_hash.clone());
    let checked = check_password(
        &st,
        email.as_str(),
        addr,
        known_browser,
        hash,
        req.password,
        now,
    )
    .await?;
    let account = match checked {
        Checked::Right => found.map(|a| a.account),
        Checked::Throttled(wait) => {
            st.metrics.login("throttled");
            return Err(Error::too_many_requests(wait));
        }
        Checked::Busy(e) => {
            st.metrics.login("busy");
            return Err(e);
        }
        Checked::Wrong => None,
    };
    let Some(account) = account else {
        st.metrics.login("failure");
        return Err(Error::new(
            ErrorKind::Unauthenticated,
            "wrong email address or password",
        ));
    };
    if let Some(until) = account.access_until.filter(|until| *until <= now) {
        return Err(access_ended(until));
    }
    st.metrics.login("success");
    signed_in(&st, account, known, None, now).await
}

/// What a password check under the login limits came to.
pub(super) enum Checked {
    Right,
    /// A wrong password, or no account to check it against (`hash` was `None`).
    Wrong,
    /// Too many failures on the account from this source: nothing was checked.
    Throttled(Duration),
    /// No turn at the hasher: nothing was checked.
    Busy(Error),
}

/// Checks `password` against `hash` (the decoy's when `None`) for the account `email`, from
/// `addr` or a browser the account knows, counted by the login limits: a wrong password
/// typed where a signed-in person confirms who they are counts as a failed login.
pub(super) async fn check_password(
    st: &AppState,
    email: &str,
    addr: std::net::IpAddr,
    known_browser: Option<&str>,
    hash: Option<String>,
    password: String,
    now: eyeward::UnixMillis,
) -> Result<Checked, Error> {
    let attempt = match lock_limiter(st).begin(email, addr, known_browser, now) {
        Ok(attempt) => attempt,
        Err(wait) => return Ok(Checked::Throttled(wait)),
    };
    let turn = match password_turn(st).await {
        Ok(turn) => turn,
        Err(e) => {
            lock_limiter(st).finish(attempt, Outcome::Abandoned);
            return Ok(Checked::Busy(e));
        }
    };
    let has_account = hash.is_some();
    let ok = tokio::task::spawn_blocking(move || {
        let ok = verify_password(&password, hash.as_deref());
        drop(turn);
        ok
    })
    .await
    .map_err(|e| Error::internal("password check").with_source(e))?;
    let right = ok && has_account;
    let outcome = if right {
        Outcome::Succeeded
    } else {
        Outcome::Failed
    };
    lock_limiter(st).finish(attempt, outcome);
    Ok(if right {
        Checked::Right
    } else {
        Checked::Wrong
    })
}

/// The hash of the cookie that names this browser, if it sent one.
fn browser_cookie_hash(st: &AppState, headers: &HeaderMap) -> Option<String> {
    cookie(headers, cookie_names(st.secure_cookies).1).map(hash_token)
}

/// Whether the browser whose cookie hashes to `browser` signed in to `account` before (and, if
/// so, is seen again now).
async fn browser_known(
    st: &AppState,
    browser: &Option<String>,
    account: i64,
    now: eyeward::UnixMillis,
) -> Result<bool, Error> {
    match browser {
        Some(hash) => st.store.browser_known(account, hash, now).await,
        None => Ok(false),
    }
}

/// `account` signed in at `now` with passkey `passkey`, from the browser that sent `headers`.
pub(super) async fn signed_in_with_passkey(
    st: &AppState,
    headers: &HeaderMap,
    account: Account,
    passkey: i64,
    now: eyeward::UnixMillis,
) -> Result<Response, Error> {
    let browser = browser_cookie_hash(st, headers);
    let known = browser_known(st, &browser, account.id, now).await?;
    st.metrics.login("success");
    signed_in(st, account, known, Some(passkey), now).await
}

/// A guest whose rights ended at `until`: 401, whatever they try.
pub(super) fn access_ended(until: eyeward::UnixMillis) -> Error {
    Error::new(
        ErrorKind::Unauthenticated,
        format!(
            "your access to this household ended at {}",
            until.to_rfc3339()
        ),
    )
    .with_code("access_ended")
}

/// A turn at the password hasher (a few at once, by the cores); 503 after a short wait.
pub(super) async fn password_turn(
    st: &AppState,
) -> Result<tokio::sync::OwnedSemaphorePermit, Error> {
    match tokio::time::timeout(
        PASSWORD_CHECK_WAIT,
        st.password_checks.clone().acquire_owned(),
    )
    .await
    {
        Ok(Ok(turn)) => Ok(turn),
        _ => Err(Error::new(
            ErrorKind::Unavailable,
            "too many logins at once; try again shortly",
        )
        .retry_after(Duration::from_secs(1))),
    }
}

/// `account` signed in at `now` (with `passkey`, if by one) from a browser it used before
/// (`known`) or a new one: a new session and its cookie, the login in their history (one from
/// a new browser also mailed, when the customer wants operation mails, and the browser
/// remembered).
pub(super) async fn signed_in(
    st: &AppState,
    account: Account,
    known: bool,
    passkey: Option<i64>,
    now: eyeward::UnixMillis,
) -> Result<Response, Error> {
    let token = Token::generate("");
    st.store
        .create_session(&token.hash, account.id, passkey, now)
        .await?;
    let caller = Caller {
        account,
        token_hash: token.hash.clone(),
        passkey,
    };
    let with = match passkey {
        Some(_) => json!({ "with": "passkey" }),
        None => json!({}),
    };
    let mut cookies = vec![session_cookie(
        st,
        token.secret(),
        st.sessions.max_age.as_secs(),
    )];
    if known {
        record_own(st, &caller, "login", with).await?;
    } else {
        let browser = Token::generate("");
        st.store
            .remember_browser(caller.account.id, &browser.hash, now)
            .await?;
        record_own(st, &caller, "login.new_browser", with).await?;
        cookies.push(browser_cookie(st, browser.secret()));
    }
    let mut resp = Json(caller.account).into_response();
    for c in cookies {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(resp)
}

/// The cookie that names this browser at its next login: a year, sent to the relay alone.
fn browser_cookie(st: &AppState, value: &str) -> HeaderValue {
    let secure = if st.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{}={value}; Path=/api/login; HttpOnly; SameSite=Strict; Max-Age=31536000{secure}",
        cookie_names(st.secure_cookies).1
    );
    HeaderValue::from_str(&cookie).expect("cookie is visible ASCII")
}

fn lock_limiter(st: &AppState) -> std::sync::MutexGuard<'_, crate::auth::LoginLimiter> {
    // The limiter's state stays consistent even if a holder panicked mid-update.
    st.limiter.lock().unwrap_or_else(|p| p.into_inner())
}

fn session_cookie(st: &AppState, value: &str, max_age_secs: u64) -> HeaderValue {
    let name = cookie_names(st.secure_cookies).0;
    session_set_cookie(name, value, max_age_secs, st.secure_cookies)
}

/// Records an operation in the caller's own history (customers only have one).
async fn record_own(
    st: &AppState,
    caller: &Caller,
    action: &str,
    detail: serde_json::Value,
) -> Result<(), Error> {
    st.store
        .record(
            &caller.audit(st.clock.now()),
            caller.household(),
            action,
            detail,
        )
        .await
}

/// `POST /api/logout`: ends the session and clears the cookie.
pub async fn logout(State(st): State<AppState>, caller: Caller) -> Result<Response, Error> {
    st.store.delete_session(&caller.token_hash).await?;
    record_own(&st, &caller, "logout", json!({})).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session_cookie(&st, "", 0))],
    )
        .into_response())
}

/// `GET /api/me`.
pub async fn me(caller: Caller) -> Json<Account> {
    Json(caller.account)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    lang: Language,
}

/// `PATCH /api/me`: the caller's own settings (today: the language).
pub async fn update_me(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<UpdateMe>,
) -> Result<Json<Account>, Error> {
    let a = &caller.account;
    if a.lang != req.lang {
        st.store
            .set_language(a.id, a.role, req.lang, &caller.audit(st.clock.now()))
            .await?;
    }
    let mut account = caller.account;
    account.lang = req.lang;
    Ok(Json(account))
}

/// A camera as its owner sees it: no source, no credentials.
#[derive(Serialize)]
pub struct CameraView {
    id: CameraId,
    name: String,
    model: CameraModel,
    plan: Plan,
    online: bool,
    /// Since when an agent camera's link has been down (RFC 3339), if it was ever up.
    offline_since: Option<String>,
    /// In which of the household's modes it mails alerts.
    alerts: CameraAlerts,
    /// What a member may do with it; `null` for the holder, who may do everything.
    rights: Option<Rights>,
}

impl CameraView {
    /// An agent camera is online while its agent's link is up (on any node: `online` holds
    /// those). A direct RTSP camera has no link; it counts as online until pulling it fails
    /// (that state comes with live video).
    fn new(c: Camera, online: &HashSet<CameraId>, rights: Option<Rights>) -> Self {
        let online = match c.source {
            eyeward::CameraSource::Agent => online.contains(&c.id),
            eyeward::CameraSource::Rtsp(_) => false,
        };
        CameraView {
            id: c.id,
            name: c.name,
            model: c.model,
            plan: c.plan,
            online,
            offline_since: c.offline_since.filter(|_| !online).map(|t| t.to_rfc3339()),
            alerts: c.alerts,
            rights,
        }
    }
}

/// What `c` may do with `camera`: `None` for the holder, a member's rights at `now`.
fn rights_of(c: &HouseholdCaller, camera: CameraId, now: eyeward::UnixMillis) -> Option<Rights> {
    c.membership.as_ref().map(|m| m.rights_on(camera, now))
}

/// Which of `cameras` (their agents) are linked, to any node.
async fn online(st: &AppState, cameras: &[Camera]) -> Result<HashSet<CameraId>, Error> {
    let agents: Vec<CameraId> = cameras
        .iter()
        .filter(|c| matches!(c.source, eyeward::CameraSource::Agent))
        .map(|c| c.id)
        .collect();
    st.cluster.online(&st.links, &agents).await
}

/// `GET /api/cameras`: the household's cameras (a member's: those they have any right on,
/// each with those rights).
pub async fn cameras(
    State(st): State<AppState>,
    c: HouseholdCaller,
) -> Result<Json<Vec<CameraView>>, Error> {
    let now = st.clock.now();
    let cams = c.cameras(&st, now).await?;
    let online = online(&st, &cams).await?;
    Ok(Json(
        cams.into_iter()
            .map(|cam| {
                let rights = rights_of(&c, cam.id, now);
                CameraView::new(cam, &online, rights)
            })
            .collect(),
    ))
}

/// `GET /api/cameras/{id}`: one of the household's cameras; 404 for one a member has no right
/// on.
pub async fn camera(
    State(st): State<AppState>,
    c: HouseholdCaller,
    IdPath(id): IdPath,
) -> Result<Json<CameraView>, Error> {
    let now = st.clock.now();
    let cam = c
        .cameras(&st, now)
        .await?
        .into_iter()
        .find(|cam| cam.id == CameraId(id))
        .ok_or_else(|| Error::not_found("camera"))?;
    let online = online(&st, std::slice::from_ref(&cam)).await?;
    let rights = rights_of(&c, cam.id, now);
    Ok(Json(CameraView::new(cam, &online, rights)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateCamera {
    name: Option<DisplayName>,
    alerts: Option<CameraAlerts>,
}

/// `PATCH /api/cameras/{id} {"name"?, "alerts"?: {"away", "home"}}`: the owner renames a
/// camera, or sets in which modes it mails alerts.
pub async fn update_camera(
    State(st): State<AppState>,
    c: CustomerCaller,
    IdPath(id): IdPath,
    ApiJson(req): ApiJson<UpdateCamera>,
) -> Result<Json<CameraView>, Error> {
    let id = CameraId(id);
    if req.name.is_none() && req.alerts.is_none() {
        return Err(Error::bad_request(
            "nothing to change: give a name or alerts",
        ));
    }
    let audit = c.caller.audit(st.clock.now());
    let found = match &req.name {
        Some(name) => st.store.rename_camera(c.id, id, name, &audit).await?,
        None => true,
    } && match req.alerts {
        Some(alerts) => st.store.set_camera_alerts(c.id, id, alerts, &audit).await?,
        None => true,
    };
    if !found {
        return Err(Error::not_found("camera"));
    }
    let cam = st
        .store
        .camera_of(c.id, id)
        .await?
        .ok_or_else(|| Error::not_found("camera"))?;
    let online = online(&st, std::slice::from_ref(&cam)).await?;
    Ok(Json(CameraView::new(cam, &online, None)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only entries older than this id (paging).
    before: Option<i64>,
    /// At most this many (1–200, default 50).
    limit: Option<u32>,
}

/// `GET /api/history`: the caller's operation history, newest first.
pub async fn history(
    State(st): State<AppState>,
    c: CustomerCaller,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<Vec<HistoryEntry>>, Error> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    Ok(Json(st.store.history_of(c.id, q.before, limit).await?))
}

/// `GET /healthz`: the process answers and its database does.
pub async fn healthz(State(st): State<AppState>) -> Result<Json<serde_json::Value>, Error> {
    // A stopping node gets nothing new from the load balancer.
    if st.cluster.is_draining() {
        return Err(Error::new(
            ErrorKind::Unavailable,
            "this relay node is stopping",
        ));
    }
    st.store.ping().await?;
    Ok(Json(json!({ "status": "ok" })))
}

/// `GET /metrics`: for clients on loopback, or with the configured bearer token.
pub async fn metrics(
    State(st): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token_ok = match (&st.metrics_token, bearer) {
        (Some(want), Some(got)) => crate::auth::hash_token(want) == crate::auth::hash_token(got),
        _ => false,
    };
    if !addr.is_loopback() && !token_ok {
        return Err(Error::new(
            ErrorKind::Unauthenticated,
            "metrics are served to loopback clients or with the metrics bearer token",
        ));
    }
    st.dispatcher.count_waiting(&st.store, &st.metrics).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.encode(),
    )
        .into_response())
}

/// Unknown paths under `/api`.
pub async fn no_such_route() -> Error {
    Error::not_found("API route")
}

/// A known path with a method it does not take.
pub async fn method_not_allowed() -> Error {
    Error::new(ErrorKind::Unimplemented, "method not allowed on this path")
}
