//! The internal listener (`[cluster] listen`): what the other nodes of the cluster ask of the
//! node that holds a camera. Only here, never on the public router; every call is signed with
//! the cluster's secret (`cluster::signing`) and names the generation it believes holds the
//! camera: a node that holds it no longer answers 409 and the caller looks again.
//! - `GET /internal/v1/cameras/{id}/feed`: the camera's frames, its current group of pictures
//!   first, as `cluster::encode_frame` writes them, for as long as this node holds it;
//! - `POST /internal/v1/cameras/{id}/ptz`: a pan-tilt command through this node's gate and
//!   agent, answered as a `cluster::PtzAnswer`;
//! - `GET /internal/v1/cameras/{id}/tunnels/{tunnel}`: a tunnel this node asked the camera's
//!   agent for, which the load balancer brought to another node (a WebSocket, passed on);
//! - `GET /internal/v1/cameras/{id}/rtsp/{video|camera}`: a new tunnel to the camera through
//!   its agent, for another node's RTSP client (its viewers' sound and speech), the camera's
//!   RTSP path in the answer's `eyeward-rtsp-path` (a WebSocket, passed on).

use super::AppState;
use super::serve::{ConnectionLimits, serve_connections};
use crate::cluster::{GENERATION_HEADER, PtzAnswer, RTSP_PATH_HEADER, encode_frame, moved};
use crate::config::HttpConfig;
use crate::error::Error;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use bytes::BytesMut;
use eyeward::CameraId;
use eyeward::link::TunnelId;
use eyeward::ptz::PtzCommand;
use futures_util::StreamExt;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;

/// The largest internal request body (a pan-tilt command).
const MAX_BODY: usize = 16 * 1024;

/// How often a feed sent to another node checks that this node still holds the camera.
const HOLD_CHECK: Duration = Duration::from_secs(1);

/// The internal router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/internal/v1/cameras/{id}/feed", get(feed))
        .route("/internal/v1/cameras/{id}/ptz", post(ptz))
        .route("/internal/v1/cameras/{id}/tunnels/{tunnel}", get(tunnel))
        .route("/internal/v1/cameras/{id}/rtsp/{to}", get(rtsp))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Binds `listen`, joins the cluster as reachable at `internal_url` (default: the bound
/// address) and serves the internal router until the returned task is aborted.
pub async fn start(
    state: &AppState,
    listen: SocketAddr,
    internal_url: Option<url::Url>,
    http: &HttpConfig,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| Error::internal(format!("cannot listen on cluster.listen {listen}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::internal("internal listener address").with_source(e))?;
    let url = match internal_url {
        Some(url) => url,
        None => url::Url::parse(&format!("http://{bound}/"))
            .map_err(|e| Error::internal("internal URL").with_source(e))?,
    };
    state.cluster.join(&url, &super::followers(state)).await?;
    let app = router(state.clone());
    let limits = ConnectionLimits {
        header_timeout: http.header_timeout,
        max_connections: http.max_connections,
    };
    // A feed's frames leave as they come (see `serve_configured`).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    Ok(tokio::spawn(serve_connections(
        listener,
        app,
        limits,
        std::future::pending(),
    )))
}

/// The camera of an internal call, once its signature holds and this node holds the camera
/// with the generation the caller named.
fn called_for(
    st: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    id: i64,
) -> Result<CameraId, Error> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    st.cluster
        .verify(authorization, method.as_str(), uri.path(), body)?;
    let camera = CameraId(id);
    let generation = headers
        .get(GENERATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    match generation {
        Some(g) if st.cluster.holds(camera, g) => Ok(camera),
        _ => Err(moved()),
    }
}

/// `GET /internal/v1/cameras/{id}/feed`.
async fn feed(
    State(st): State<AppState>,
    Path(id): Path<i64>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let camera = called_for(&st, &method, &uri, &headers, b"", id)?;
    let held = st
        .store
        .camera(camera)
        .await?
        .ok_or_else(|| Error::not_found("camera"))?;
    let mut subscription = st.feeds.watch(&held, crate::fanout::VideoCodec::H264);
    let cached = std::mem::take(&mut subscription.cached);
    let mut out = BytesMut::new();
    for frame in &cached {
        encode_frame(frame, &mut out);
    }
    let first = out.split().freeze();
    let state = (st, subscription, held.id);
    let live = futures_util::stream::unfold(state, |(st, mut sub, camera)| async move {
        let mut check = tokio::time::interval(HOLD_CHECK);
        loop {
            tokio::select! {
                frame = sub.live.recv() => match frame {
                    Ok(frame) => {
                        let mut out = BytesMut::new();
                        encode_frame(&frame, &mut out);
                        return Some((Ok::<_, std::io::Error>(out.freeze()), (st, sub, camera)));
                    }
                    // The pulling node fell behind, or the feed ended: it pulls again and
                    // starts at a keyframe.
                    Err(RecvError::Lagged(_) | RecvError::Closed) => return None,
                },
                _ = check.tick() => if !st.cluster.may_act(camera) { return None },
            }
        }
    });
    let body = futures_util::stream::once(async move { Ok(first) }).chain(live);
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(body),
    )
        .into_response())
}

/// `GET /internal/v1/cameras/{id}/tunnels/{tunnel}`.
async fn tunnel(
    State(st): State<AppState>,
    Path((id, tunnel)): Path<(i64, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, Error> {
    let camera = called_for(&st, &method, &uri, &headers, b"", id)?;
    let ws = ws.map_err(|_| Error::bad_request("expected a WebSocket upgrade"))?;
    let tunnel = TunnelId::parse(&tunnel).map_err(|_| Error::not_found("tunnel"))?;
    let deliver = st
        .links
        .claim_tunnel(&tunnel, camera)
        .ok_or_else(|| Error::not_found("tunnel"))?;
    Ok(super::agent_link::hand_over(&st, ws, deliver))
}

/// `GET /internal/v1/cameras/{id}/rtsp/{to}`.
async fn rtsp(
    State(st): State<AppState>,
    Path((id, to)): Path<(i64, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, Error> {
    let camera = called_for(&st, &method, &uri, &headers, b"", id)?;
    let to = match to.as_str() {
        "video" => crate::link::TunnelTo::Video,
        "camera" => crate::link::TunnelTo::Camera,
        _ => return Err(Error::not_found("route")),
    };
    let ws = ws.map_err(|_| Error::bad_request("expected a WebSocket upgrade"))?;
    let path = st
        .links
        .rtsp_path(camera)
        .ok_or_else(crate::link::camera_offline)?;
    let path = header::HeaderValue::from_str(&path)
        .map_err(|_| Error::internal("the camera's RTSP path"))?;
    let links = st.links.clone();
    let mut response = ws
        .max_message_size(eyeward::link::MAX_TUNNEL_FRAME_BYTES)
        .max_frame_size(eyeward::link::MAX_TUNNEL_FRAME_BYTES)
        .on_upgrade(move |socket| async move {
            match links.open_tunnel(camera, to).await {
                Ok((tunnel, _slot)) => {
                    super::agent_link::carry(socket, tunnel.to_agent, tunnel.from_agent).await;
                }
                Err(e) => {
                    tracing::warn!(camera = camera.0, error = %e, "tunnel for another node not opened");
                }
            }
        });
    response.headers_mut().insert(RTSP_PATH_HEADER, path);
    Ok(response)
}

/// `POST /internal/v1/cameras/{id}/ptz`.
async fn ptz(
    State(st): State<AppState>,
    Path(id): Path<i64>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<PtzAnswer>, Error> {
    let camera = called_for(&st, &method, &uri, &headers, &body, id)?;
    let command: PtzCommand = serde_json::from_slice(&body)
        .map_err(|e| Error::bad_request(format!("a pan-tilt command: {e}")))?;
    command.check()?;
    Ok(axum::Json(
        match st.ptz.command(&st.links, camera, command).await {
            Ok(done) => PtzAnswer::Done {
                state: done.state,
                record: done.record,
            },
            Err(e) => PtzAnswer::failed(&e),
        },
    ))
}
