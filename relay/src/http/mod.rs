//! The HTTP server: the JSON API, the embedded web pages, `/healthz` and `/metrics`.
//!
//! Deny by default: every `/api` route takes a [`extract::Caller`] (a session) and every
//! query is scoped by the account taken from it, never from the path.

mod agent_link;
mod alert_mail;
mod api;
mod arming;
pub(crate) mod clips;
mod dispatch;
mod error;
pub mod extract;
mod household;
mod identity;
mod internal;
pub(crate) mod live_video;
mod middleware;
mod motion_events;
mod pan_tilt;
mod passkeys;
mod push;
mod serve;
pub mod streams;
pub mod tls;
mod web;

#[cfg(test)]
mod tests;

use crate::auth::{LoginLimiter, LoginLimits, RelyingParty, SessionPolicy};
use crate::cluster::{Cluster, Followers};
use crate::config::{Config, HttpConfig, ProxyNet};
use crate::dispatch::Dispatcher;
use crate::error::Error;
use crate::events::Events;
use crate::fanout::Feeds;
use crate::housekeeping::Housekeeping;
use crate::link::Links;
use crate::mail::Mailer;
use crate::metrics::Metrics;
use crate::objects::Objects;
use crate::ptz::PanTilt;
use crate::revocation::Revocations;
use crate::store::Store;
use crate::whep::Whep;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::serve::{Listener, ListenerExt};
use eyeward::clock::Clock;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub limiter: Arc<Mutex<LoginLimiter>>,
    /// Password checks at once: each takes argon2id's 19 MiB on a blocking thread.
    pub password_checks: Arc<tokio::sync::Semaphore>,
    pub sessions: SessionPolicy,
    /// Passkeys: the WebAuthn relying party this relay is at its public URL, if one can be.
    pub relying_party: Arc<RelyingParty>,
    /// `scheme://host[:port]` of `public_url`: the only origin allowed to change state.
    pub origin: String,
    /// The public URL is https: cookies are marked `Secure` and browsers told to keep to
    /// https (HSTS).
    pub secure_cookies: bool,
    /// The one clock (see [`eyeward::clock`]).
    pub clock: Clock,
    /// The pages' `Content-Security-Policy` (it names the map's tile server).
    pub content_security_policy: axum::http::HeaderValue,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<[ProxyNet]>,
    pub metrics_token: Option<String>,
    /// The agents' links and their tunnels.
    pub links: Arc<Links>,
    /// One pull per camera, shared by its viewers.
    pub feeds: Arc<Feeds>,
    /// Live-video sessions.
    pub whep: Arc<Whep>,
    /// Motion events and their snapshots.
    pub events: Arc<Events>,
    /// Alert and confirmation mail.
    pub mailer: Arc<Mailer>,
    /// Pan-tilt commands and the cameras' positions.
    pub ptz: Arc<PanTilt>,
    /// Dispatch requests' settings, shared pictures and live changes.
    pub dispatcher: Arc<Dispatcher>,
    /// Ends long-lived things whose grant was taken away.
    pub revocations: Arc<Revocations>,
    /// The longest a server-sent event stream and a live-video session stay open.
    pub max_event_stream: Duration,
    pub max_live_session: Duration,
    /// Event streams open per account.
    pub streams: Arc<streams::StreamCounts>,
    /// Longest a stopping node of several waits for its agents to link elsewhere.
    pub drain_timeout: Duration,
    /// This node among several, or the whole service.
    pub cluster: Arc<Cluster>,
}

impl AppState {
    pub fn new(
        config: &Config,
        bound: SocketAddr,
        store: Store,
        objects: Objects,
    ) -> Result<AppState, Error> {
        let clock = Clock::real();
        let public_url = config.public_url(bound);
        let a = &config.auth;
        let metrics = Arc::new(Metrics::new());
        let links = Arc::new(Links::default());
        let cluster = Arc::new(Cluster::new(store.clone(), config.cluster.as_ref())?);
        let feeds = Arc::new(Feeds::new(
            links.clone(),
            metrics.clone(),
            config.webrtc.linger,
            &config.cameras,
            cluster.clone(),
        ));
        let whep = Arc::new(Whep::new(&config.webrtc, feeds.clone(), metrics.clone())?);
        let relying_party = RelyingParty::for_url(&public_url);
        if let Some(why) = relying_party.why_not_offered() {
            tracing::warn!("{why}: operators open the console with their password alone");
        }
        let sessions = SessionPolicy {
            idle_timeout: a.session_idle_timeout,
            max_age: a.session_max_age,
        };
        Ok(AppState {
            cluster,
            revocations: Arc::new(Revocations::new(store.clone(), sessions, clock)),
            max_event_stream: config.http.max_event_stream,
            streams: Arc::new(streams::StreamCounts::new(
                config.http.max_event_streams_per_account,
            )),
            max_live_session: config.webrtc.max_session,
            drain_timeout: config
                .cluster
                .as_ref()
                .map_or(Duration::ZERO, |c| c.drain_timeout),
            store,
            metrics,
            limiter: Arc::new(Mutex::new(LoginLimiter::new(LoginLimits {
                per_account: a.login_failures_per_account,
                per_address: a.login_failures_per_address,
                per_account_new_browsers: a.login_failures_per_account_new_browsers,
                window: a.login_failure_window,
            }))),
            password_checks: Arc::new(tokio::sync::Semaphore::new(
                crate::auth::password_checks_at_once(),
            )),
            sessions,
            relying_party: Arc::new(relying_party),
            origin: public_url.origin().ascii_serialization(),
            secure_cookies: public_url.scheme() == "https",
            clock,
            content_security_policy: middleware::content_security_policy(
                &config
                    .dispatch
                    .map_tiles_origin()
                    .ok_or_else(|| Error::internal("dispatch.map_tiles is checked at load"))?,
            ),
            trusted_proxies: config.http.trusted_proxies.clone().into(),
            metrics_token: config.metrics.bearer_token.clone(),
            links,
            feeds,
            whep,
            events: Arc::new(Events::new(
                objects.clone(),
                &config.events,
                &config.data_dir,
                clock,
            )),
            mailer: Arc::new(Mailer::new(
                &config.mail,
                &config.push,
                &config.data_dir,
                public_url,
                clock,
            )?),
            ptz: Arc::new(PanTilt::new(config.ptz.clone(), clock)),
            dispatcher: Arc::new(Dispatcher::new(&config.dispatch, objects)),
        })
    }
}

/// The whole router, for `run` and for in-process tests.
pub fn router(state: AppState, http: &HttpConfig) -> Router {
    let max_json_body = http.max_json_body_bytes;
    let api = Router::new()
        .route("/login", post(api::login))
        .route("/logout", post(api::logout))
        .route("/me", get(api::me).patch(api::update_me))
        .route(
            "/me/identity-password",
            get(identity::get).put(identity::set),
        )
        .route("/cameras", get(api::cameras))
        .route("/cameras/{id}", get(api::camera).patch(api::update_camera))
        .route("/cameras/{id}/whep", post(live_video::offer))
        .route("/cameras/{id}/whep/{session}", delete(live_video::delete))
        .route(
            "/cameras/{id}/whep/{session}/sound",
            post(live_video::sound),
        )
        .route("/cameras/{id}/whep/{session}/talk", post(live_video::talk))
        .route(
            "/cameras/{id}/ptz",
            get(pan_tilt::state).post(pan_tilt::command),
        )
        .route("/cameras/{id}/ptz/live", get(pan_tilt::live))
        .route("/arming", get(arming::get).put(arming::set))
        .route(
            "/home",
            get(dispatch::customer::home).put(dispatch::customer::set_home),
        )
        .route("/arming/schedule", post(arming::add_switch))
        .route("/arming/schedule/{id}", delete(arming::remove_switch))
        .route("/history", get(api::history))
        .route("/cameras/{id}/events", get(motion_events::list))
        .route("/cameras/{id}/events/live", get(motion_events::live))
        .route("/events", get(motion_events::feed))
        .route("/events/{id}", get(motion_events::one))
        .route("/events/{id}/snapshot", get(motion_events::snapshot))
        .route("/events/{id}/clip", get(clips::clip))
        .route(
            "/alert-addresses",
            get(alert_mail::list)
                .post(alert_mail::add)
                .delete(alert_mail::remove_by_body),
        )
        .route("/alert-addresses/{id}", delete(alert_mail::remove))
        .route("/dispatch-terms", get(dispatch::customer::terms))
        .route(
            "/dispatch-requests",
            get(dispatch::customer::list).post(dispatch::customer::create),
        )
        .route("/dispatch-requests/live", get(dispatch::customer::live))
        .route("/dispatch-requests/{id}", get(dispatch::customer::one))
        .route(
            "/dispatch-requests/{id}/cancel",
            post(dispatch::customer::cancel),
        )
        .route(
            "/dispatch-requests/{id}/snapshot",
            get(dispatch::customer::snapshot).put(dispatch::customer::put_snapshot),
        )
        .route("/charges", get(dispatch::customer::charges))
        .route("/ops/dispatch-requests", get(dispatch::ops::queue))
        .route("/ops/dispatch-requests/live", get(dispatch::ops::live))
        .route("/ops/dispatch-requests/{id}", get(dispatch::ops::open))
        .route(
            "/ops/dispatch-requests/{id}/assign",
            post(dispatch::ops::assign),
        )
        .route(
            "/ops/dispatch-requests/{id}/snapshot",
            get(dispatch::ops::snapshot),
        )
        .route("/ops/dispatch-requests/{id}/clip", get(dispatch::ops::clip))
        .route(
            "/ops/dispatch-requests/{id}/whep",
            post(dispatch::ops::watch),
        )
        .route(
            "/ops/dispatch-requests/{id}/whep/{session}",
            delete(dispatch::ops::unwatch),
        )
        .route(
            "/ops/dispatch-requests/{id}/{action}",
            post(dispatch::ops::step),
        )
        .route("/ops/customers/{id}/identity-check", post(identity::check))
        .route("/ops/guards", get(dispatch::ops::guards))
        .route(
            "/ops/guards/{id}/sign-in-link",
            post(dispatch::ops::sign_in_link),
        )
        .route(
            "/ops/guards/{id}/sign-ins",
            delete(dispatch::ops::revoke_sign_ins),
        )
        .route("/ops/map", get(dispatch::ops::map))
        .route(
            "/ops/guards/{id}/position",
            axum::routing::put(dispatch::ops::set_position),
        )
        .route(
            "/mail-settings",
            get(alert_mail::notices).put(alert_mail::set_notices),
        )
        .route(
            "/login/passkey",
            get(passkeys::offered).post(passkeys::sign_in),
        )
        .route("/login/passkey/options", post(passkeys::sign_in_options))
        .route("/passkeys", get(passkeys::list).post(passkeys::register))
        .route("/passkeys/options", post(passkeys::register_options))
        .route("/passkeys/{id}", delete(passkeys::remove))
        .route("/me/passkey-check", post(passkeys::check))
        .route("/me/passkey-check/options", post(passkeys::check_options))
        .route("/push", get(push::get))
        .route("/push/devices", post(push::add))
        .route("/push/devices/{id}", delete(push::remove))
        .route("/household", get(household::get))
        .route("/household/invitations", post(household::invite))
        .route("/household/invitations/{id}", delete(household::withdraw))
        .route(
            "/household/members/{id}",
            axum::routing::put(household::set_rights).delete(household::remove),
        )
        // The invited person's: the token in the body is the authority.
        .route("/invitation", post(household::look))
        .route("/invitation/accept", post(household::accept))
        .fallback(api::no_such_route)
        .layer(DefaultBodyLimit::max(max_json_body))
        .layer(axum::Extension(extract::JsonLimit(max_json_body)));
    Router::new()
        .nest("/api", api)
        .route("/agent/v1/link", get(agent_link::link))
        .route("/agent/v1/tunnel/{tunnel}", get(agent_link::tunnel))
        .route("/agent/v1/events", post(motion_events::upload))
        .route(
            "/agent/v1/events/{key}/clip",
            axum::routing::put(clips::upload).head(clips::held),
        )
        .route("/guard/v1/position", post(dispatch::guard::report_position))
        .route("/guard/v1/sign-in", post(dispatch::guard::sign_in))
        .route("/guard/v1/sign-out", post(dispatch::guard::sign_out))
        .route("/guard/v1/assignment", get(dispatch::guard::current))
        .route("/guard/v1/live", get(dispatch::guard::live))
        .route("/guard/v1/assignments/{id}", get(dispatch::guard::one))
        .route(
            "/guard/v1/assignments/{id}/snapshot",
            get(dispatch::guard::snapshot),
        )
        .route(
            "/guard/v1/assignments/{id}/whep",
            post(dispatch::guard::watch),
        )
        .route(
            "/guard/v1/assignments/{id}/whep/{session}",
            delete(dispatch::guard::unwatch),
        )
        .route(
            "/guard/v1/assignments/{id}/{action}",
            post(dispatch::guard::step),
        )
        // Links in mails, for whoever holds the mail: the token is the authority.
        .route(
            "/confirm/{token}",
            get(alert_mail::confirm_page).post(alert_mail::confirm),
        )
        .route(
            "/unsubscribe/{token}",
            get(alert_mail::unsubscribe_page).post(alert_mail::unsubscribe),
        )
        // The picture in a push, for the device it went to: the token is the authority.
        .route("/push/picture/{token}", get(push::picture))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .fallback(web::asset)
        .layer(axum::Extension(extract::BodyTimeout(http.body_timeout)))
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::refuse_foreign_origin,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::count_requests,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::security_headers,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(middleware::request_span)
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}

/// Makes the server on `listener`: it serves, once awaited, until `shutdown` resolves, then
/// finishes the requests in flight. With `[tls]`, it serves HTTPS and reloads the certificate
/// on SIGHUP. Whatever can fail at start (the certificate, say) fails here, before anyone is
/// told that the server is ready.
pub fn run(
    listener: TcpListener,
    config: &Config,
    store: Store,
    objects: Objects,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<impl Future<Output = Result<(), Error>> + Send + 'static, Error> {
    let bound = listener
        .local_addr()
        .map_err(|e| Error::internal("listener address").with_source(e))?;
    let state = AppState::new(config, bound, store, objects)?;
    serve_configured(listener, config, state, shutdown)
}

/// Opens the store and the pictures' place, binds `config.listen` and serves in a background task until `shutdown`
/// resolves. Returns the bound address and the state, for in-process tests and benchmarks
/// that look inside (the agents' links, say).
pub async fn spawn(
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, AppState), Error> {
    let store = Store::open(&config.data_dir, &config.database).await?;
    let objects = Objects::open(&config.data_dir, &config.storage).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::internal(format!("cannot listen on {}: {e}", config.listen)))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::internal("listener address").with_source(e))?;
    let state = AppState::new(config, bound, store, objects)?;
    tokio::spawn(serve_configured(listener, config, state.clone(), shutdown)?);
    Ok((bound, state))
}

/// Plain HTTP or, with `[tls]`, HTTPS on `listener`. The certificate is loaded before this
/// returns, so a bad one is an error at start rather than a server that never answers.
fn serve_configured(
    listener: TcpListener,
    config: &Config,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<impl Future<Output = Result<(), Error>> + Send + 'static, Error> {
    let http = config.http.clone();
    let tls = config.tls.as_ref().map(tls::Tls::load).transpose()?;
    let cluster = config
        .cluster
        .as_ref()
        .map(|c| (c.listen, c.internal_url.clone()));
    Ok(async move {
        // A node joins its cluster before it takes any agent or viewer.
        let internal = match cluster {
            Some((listen, url)) => Some(internal::start(&state, listen, url, &http).await?),
            None => None,
        };
        let served = match tls {
            // Small writes (an event stream's next event, a WebSocket message) leave at
            // once rather than waiting for the peer's delayed acknowledgement (Nagle).
            None => {
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                serve(listener, state, &http, shutdown).await
            }
            Some(tls) => {
                let reloader = tokio::spawn(tls.clone().reload_on_sighup());
                let listener = tls
                    .listen(listener)
                    .map_err(|e| Error::internal("listener address").with_source(e))?;
                let result = serve(listener, state, &http, shutdown).await;
                reloader.abort();
                result
            }
        };
        if let Some(internal) = internal {
            internal.abort();
        }
        served
    })
}

/// Like [`run`], with a state the caller made (tests keep a clone to look inside), on any
/// listener (plain TCP or [`tls::TlsListener`]).
pub async fn serve<L: Listener<Addr = SocketAddr>>(
    listener: L,
    state: AppState,
    http: &HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let revocations = tokio::spawn(state.revocations.clone().follow());
    let housekeeping = Housekeeping {
        events: state.events.clone(),
        dispatcher: state.dispatcher.clone(),
        store: state.store.clone(),
        sessions: state.sessions,
        metrics: state.metrics.clone(),
        cluster: state.cluster.clone(),
    };
    let housekeeping = tokio::spawn(housekeeping.keep(state.clock));
    let mailer = tokio::spawn(state.mailer.clone().run(
        state.store.clone(),
        state.events.snapshots(),
        state.cluster.clone(),
    ));
    let cluster = tokio::spawn(state.cluster.clone().keep(followers(&state)));
    let stopping = state.clone();
    let shutdown = async move {
        shutdown.await;
        if stopping.cluster.is_clustered() {
            drain(&stopping).await;
        }
        stopping.events.close_live();
    };
    let app = router(state, http);
    serve::serve_connections(
        listener,
        app,
        serve::ConnectionLimits {
            header_timeout: http.header_timeout,
            max_connections: http.max_connections,
        },
        shutdown,
    )
    .await;
    revocations.abort();
    housekeeping.abort();
    mailer.abort();
    cluster.abort();
    Ok(())
}

/// A node of several stopping (see `docs/cluster.md`): the load balancer is told to send it
/// nothing new, its agents to link to other nodes, which take their cameras over, and its
/// pages to reconnect (through the load balancer, to other nodes); it stops once its agents
/// are gone, or after `[cluster] drain_timeout`.
async fn drain(st: &AppState) {
    tracing::info!(links = st.links.online_count(), "draining");
    st.cluster.start_draining().await;
    // Streams end with a hint the pages follow at once; their video sessions end too.
    st.events.close_live();
    st.whep.end_all().await;
    // Until its agents' new links on other nodes have taken every camera over.
    let deadline = st.clock.instant() + st.drain_timeout;
    while st.clock.instant() < deadline
        && (st.links.online_count() > 0 || !st.cluster.holds_none().await)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its agents' new links took their cameras over; any other camera is now offline.
    for camera in st.cluster.leave().await {
        agent_link::record(
            st,
            camera,
            "camera.offline",
            serde_json::json!({ "reason": "its relay node stopped" }),
        )
        .await;
    }
    tracing::info!(links_left = st.links.online_count(), "drained");
}

/// What this node's streams are, for the changes other nodes make.
fn followers(state: &AppState) -> Followers {
    Followers {
        links: state.links.clone(),
        events: state.events.clone(),
        dispatcher: state.dispatcher.clone(),
        ptz: state.ptz.clone(),
    }
}
