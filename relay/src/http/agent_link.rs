//! The agents' links over HTTP: `GET /agent/v1/link` (one control WebSocket per agent, the
//! camera online for exactly as long as it lasts) and `GET /agent/v1/tunnel/{tunnel}` (a
//! WebSocket carrying one camera's RTSP bytes, handed to [`crate::link`] as a [`Tunnel`]).
//! Agents authenticate with their bearer token ([`AgentCaller`]).

use super::AppState;
use super::extract::bearer_token;
use crate::auth::hash_token;
use crate::cluster::PeerTunnel;
use crate::error::{Error, ErrorKind};
use crate::link::{PtzReports, Registration, TUNNEL_QUEUE, Tunnel};
use crate::revocation::Grant;
use crate::store::{Actor, Audit, Camera, Channel};
use crate::task::{self, Task};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::response::Response;
use bytes::Bytes;
use eyeward::link::{
    self, AgentReport, CloseCode, Ending, Input, MAX_MESSAGE_BYTES, MAX_TUNNEL_FRAME_BYTES,
    RelayMessage, RelayOutput, RelaySession, TunnelId,
};
use eyeward::{CameraId, UnixMillis};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

/// The read buffer of an agent's control link (its messages are small JSON).
const LINK_READ_BUFFER: usize = 4 * 1024;

/// How often agents send heartbeats; a link silent for three of these is dead.
pub const HEARTBEAT: Duration = Duration::from_secs(4);

/// An agent, authenticated by its bearer token. Anything else: 401, logged without the token.
pub struct AgentCaller {
    pub camera: Camera,
    /// The hash of the token it showed: the link lasts as long as the token is the camera's.
    pub token_hash: String,
}

impl FromRequestParts<AppState> for AgentCaller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let token_hash = bearer_token(parts).map(hash_token);
        let camera = match &token_hash {
            Some(h) => state.store.camera_for_agent_token(h).await?,
            None => None,
        };
        match (camera, token_hash) {
            (Some(camera), Some(token_hash)) => Ok(AgentCaller { camera, token_hash }),
            (_, token_hash) => {
                state.metrics.agent_auth_failures.inc();
                tracing::warn!(
                    path = %parts.uri.path(),
                    token_given = token_hash.is_some(),
                    "agent refused: unknown or revoked token"
                );
                Err(Error::new(
                    ErrorKind::Unauthenticated,
                    "unknown or revoked agent token",
                ))
            }
        }
    }
}

/// `GET /agent/v1/link`: the agent's control WebSocket.
pub async fn link(
    State(st): State<AppState>,
    agent: AgentCaller,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, Error> {
    let ws = ws.map_err(|_| Error::bad_request("expected a WebSocket upgrade"))?;
    if st.cluster.is_draining() {
        // The agent links to another node (through the load balancer, or its next --relay).
        return Err(Error::new(
            ErrorKind::Unavailable,
            "this relay node is stopping; link to another",
        ));
    }
    Ok(ws
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        // Small control messages: buffers of their size, not tungstenite's 128 KiB each way,
        // which an idle linked camera would hold for nothing (bench/cluster.sh); each
        // message written at once.
        .read_buffer_size(LINK_READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(4 * MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            let span = tracing::info_span!("agent_link", camera = agent.camera.id.0);
            // A panic ends this link alone: the registration it leaves counts as offline,
            // and the agent's next link replaces it.
            async move {
                let metrics = st.metrics.clone();
                let grant = Grant::Agent {
                    camera: agent.camera.id,
                    token_hash: agent.token_hash,
                };
                let link = serve_link(st, agent.camera.id, grant, socket);
                task::contained(&metrics, Task::AgentLink, link).await;
            }
            .instrument(span)
        }))
}

fn agent_audit(camera: CameraId, at: UnixMillis) -> Audit {
    Audit {
        actor: Actor::Agent {
            camera_id: camera.0,
        },
        channel: Channel::Agent,
        at,
    }
}

/// Sends the close frame a session ended with, if any.
async fn close(
    socket: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    close: Option<(CloseCode, String)>,
) {
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code: code.as_u16(),
            reason: reason.into(),
        };
        let _ = socket.send(Message::Close(Some(frame))).await;
    }
}

/// What arrived on the socket, as the session takes it (failures apart).
fn input(frame: &Option<Result<Message, axum::Error>>) -> Input<'_> {
    match frame {
        Some(Ok(Message::Text(t))) => Input::Text(t.as_str()),
        Some(Ok(Message::Binary(_))) => Input::Binary,
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Input::Control,
        Some(Ok(Message::Close(_)) | Err(_)) | None => Input::Closed,
    }
}

/// The camera's registration's next message for the agent; never, before hello.
async fn next_order(registration: &mut Option<Registration>) -> Option<RelayMessage> {
    match registration {
        Some(r) => r.to_agent.recv().await,
        None => std::future::pending().await,
    }
}

/// Runs one agent's link until it ends; the camera is online for exactly that long. The
/// protocol is [`RelaySession`]'s; this drives it with the socket, the clock, the link
/// registry and the services that wait on the agent's reports.
async fn serve_link(st: AppState, camera: CameraId, grant: Grant, socket: WebSocket) {
    // The camera removed or its token replaced: the link ends (an agent's link has no
    // lifetime of its own).
    let mut revoked = std::pin::pin!(st.revocations.ended(grant, Duration::MAX));
    // The node stopping: the agent links to another, which takes the camera over.
    let mut draining = st.cluster.draining();
    let mut stopping = std::pin::pin!(async move {
        let _ = draining.wait_for(|d| *d).await;
    });
    let (mut tx, mut rx) = socket.split();
    let mut session = RelaySession::new(camera, HEARTBEAT, st.clock.instant());
    // The pan-tilt service, seen only as the link's trait: the link hands it reports.
    let ptz_reports: &dyn PtzReports = &*st.ptz;
    let mut registration: Option<Registration> = None;
    // The fencing generation this node holds the camera with (see `crate::cluster`).
    let mut generation = 0;
    let ending = 'link: loop {
        while let Some(output) = session.poll_output() {
            match output {
                RelayOutput::Send(message) => {
                    #[cfg(feature = "failpoints")]
                    if matches!(message, RelayMessage::HeartbeatAck { .. }) {
                        task::fail_point("agent-heartbeat", camera);
                    }
                    let text = link::encode(&message);
                    if let Err(e) = tx.send(Message::Text(text.into())).await {
                        // At once: what is still queued (the camera up after a welcome that
                        // never left) must not happen.
                        break 'link Ending {
                            close: None,
                            reason: format!("the link failed: {e}"),
                            orderly: false,
                        };
                    }
                }
                RelayOutput::Up { agent, rtsp_path } => {
                    generation = match st.cluster.claim(camera).await {
                        Ok(g) => g,
                        Err(e) => {
                            // The agent links again, here or on another node.
                            break 'link Ending {
                                close: Some((CloseCode::TryAgain, "try again later".into())),
                                reason: format!("cannot take the camera over: {e}"),
                                orderly: false,
                            };
                        }
                    };
                    let r = st.links.register(camera, rtsp_path);
                    st.metrics.agent_links.set(st.links.online_count() as i64);
                    tracing::info!(%agent, replaced_older = r.replaced_older, "camera online");
                    registration = Some(r);
                    record(&st, camera, "camera.online", json!({ "agent": agent })).await;
                }
                RelayOutput::Report(AgentReport::TunnelFailed { tunnel, reason }) => {
                    st.links.tunnel_failed(&tunnel, camera, reason);
                }
                RelayOutput::Report(AgentReport::Ptz(report)) => {
                    ptz_reports.report(camera, report);
                }
                RelayOutput::End(ending) => break 'link ending,
            }
        }
        tokio::select! {
            frame = rx.next() => match frame {
                Some(Err(e)) => session.handle_input(Input::Failed(&e.to_string()), st.clock.instant()),
                frame => session.handle_input(input(&frame), st.clock.instant()),
            },
            () = st.clock.sleep_until(session.poll_timeout()) => {
                session.handle_timeout(st.clock.instant());
            }
            () = &mut revoked => session.close(CloseCode::Policy, "the agent token was revoked"),
            () = &mut stopping => session.close(CloseCode::TryAgain, "this relay node is stopping"),
            order = next_order(&mut registration) => match order {
                Some(message) => session.send(message),
                None => session.close(CloseCode::Normal, "replaced by a newer link of this camera"),
            },
        }
    };
    close(&mut tx, ending.close).await;
    let reason = ending.reason;
    let Some(registration) = registration else {
        return tracing::info!(%reason, "link refused before hello");
    };
    if !st.links.unregister(camera, registration.conn) {
        return tracing::info!(%reason, "older link closed");
    }
    ptz_reports.offline(camera);
    st.metrics.agent_links.set(st.links.online_count() as i64);
    if st.cluster.is_draining() {
        st.cluster.hand_over(camera, generation);
        return tracing::info!(%reason, "link closed: the camera is left to the next node");
    }
    // Among several nodes, the camera is offline only if no other node took it meanwhile.
    if st.cluster.release(camera, generation).await {
        tracing::info!(%reason, "camera offline");
        record(&st, camera, "camera.offline", json!({ "reason": reason })).await;
    } else {
        tracing::info!(%reason, "link closed: the camera is held by another node");
    }
}

/// Writes a camera's coming and going into its owner's history.
pub(super) async fn record(st: &AppState, camera: CameraId, kind: &str, detail: serde_json::Value) {
    let audit = agent_audit(camera, st.clock.now());
    if let Err(e) = st.store.record_camera(&audit, camera, kind, detail).await {
        tracing::warn!(error = %e, kind, "cannot record the camera's link");
    }
}

/// `GET /agent/v1/tunnel/{tunnel}`: the agent connects a tunnel the relay asked for. A
/// tunnel of another camera, or one nobody asked for, is 404. Among several nodes, a tunnel
/// the load balancer brought to a node that did not ask for it is carried on to the node that
/// holds its camera.
pub async fn tunnel(
    State(st): State<AppState>,
    agent: AgentCaller,
    Path(tunnel): Path<String>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, Error> {
    let tunnel = TunnelId::parse(&tunnel).map_err(|_| Error::not_found("tunnel"))?;
    let ws = ws.map_err(|_| Error::bad_request("expected a WebSocket upgrade"))?;
    let camera = agent.camera.id;
    if let Some(deliver) = st.links.claim_tunnel(&tunnel, camera) {
        return Ok(hand_over(&st, ws, deliver));
    }
    if !st.cluster.is_clustered() || st.links.is_online(camera) {
        return Err(Error::not_found("tunnel"));
    }
    let upstream = st
        .cluster
        .tunnel_elsewhere(camera, tunnel.as_str(), MAX_TUNNEL_FRAME_BYTES)
        .await
        .map_err(|e| {
            tracing::info!(camera = camera.0, error = %e, "a tunnel nobody here asked for");
            Error::not_found("tunnel")
        })?;
    Ok(ws
        .max_message_size(MAX_TUNNEL_FRAME_BYTES)
        .max_frame_size(MAX_TUNNEL_FRAME_BYTES)
        .on_upgrade(move |socket| pass_on(socket, upstream)))
}

/// Takes a tunnel this node asked for: its frames go to whoever waits on `deliver`.
pub(super) fn hand_over(
    st: &AppState,
    ws: WebSocketUpgrade,
    deliver: tokio::sync::oneshot::Sender<Result<Tunnel, String>>,
) -> Response {
    st.metrics.tunnels_opened.inc();
    ws.max_message_size(MAX_TUNNEL_FRAME_BYTES)
        .max_frame_size(MAX_TUNNEL_FRAME_BYTES)
        .on_upgrade(move |socket| async move {
            let (from_agent_tx, from_agent) = mpsc::channel(TUNNEL_QUEUE);
            let (to_agent, to_agent_rx) = mpsc::channel(TUNNEL_QUEUE);
            if deliver
                .send(Ok(Tunnel {
                    from_agent,
                    to_agent,
                }))
                .is_ok()
            {
                carry(socket, from_agent_tx, to_agent_rx).await;
            }
        })
}

/// Passes a tunnel's frames between the agent and the node that holds its camera until
/// either side ends.
async fn pass_on(agent: WebSocket, node: PeerTunnel) {
    use tokio_tungstenite::tungstenite::Message as NodeMessage;
    let (mut agent_tx, mut agent_rx) = agent.split();
    let (mut node_tx, mut node_rx) = node.split();
    let up = async {
        while let Some(Ok(Message::Binary(b))) = agent_rx.next().await {
            if node_tx.send(NodeMessage::Binary(b)).await.is_err() {
                break;
            }
        }
        let _ = node_tx.close().await;
    };
    let down = async {
        while let Some(Ok(NodeMessage::Binary(b))) = node_rx.next().await {
            if agent_tx.send(Message::Binary(b)).await.is_err() {
                break;
            }
        }
        let _ = agent_tx.close().await;
    };
    tokio::select! {
        () = up => {},
        () = down => {},
    }
}

/// Carries a tunnel's WebSocket frames to and from its [`Tunnel`] until either side ends.
pub(super) async fn carry(
    socket: WebSocket,
    from_agent: mpsc::Sender<Bytes>,
    mut to_agent: mpsc::Receiver<Bytes>,
) {
    let (mut ws_tx, mut ws_rx) = socket.split();
    let incoming = async {
        while let Some(Ok(msg)) = ws_rx.next().await {
            let frame = match msg {
                Message::Binary(b) => b,
                Message::Close(_) => break,
                _ => continue,
            };
            if from_agent.send(frame).await.is_err() {
                break;
            }
        }
    };
    let outgoing = async {
        while let Some(b) = to_agent.recv().await {
            if ws_tx.send(Message::Binary(b)).await.is_err() {
                break;
            }
        }
        let _ = ws_tx.close().await;
    };
    tokio::select! {
        () = incoming => {},
        () = outgoing => {},
    }
}
