//! The agents' links over HTTP: `GET /agent/v1/link` (one control WebSocket per agent, the
//! camera online for exactly as long as it lasts) and `GET /agent/v1/tunnel/{tunnel}` (a
//! WebSocket carrying one camera's RTSP bytes, handed to [`crate::link`] as a [`Tunnel`]).
//! Agents authenticate with their bearer token ([`AgentCaller`]).

use super::AppState;
use super::extract::bearer_token;
use crate::auth::hash_token;
use crate::error::{Error, ErrorKind};
use crate::link::{TUNNEL_QUEUE, Tunnel, printable};
use crate::revocation::Grant;
use crate::store::{Actor, Audit, Camera, Channel};
use crate::task::{self, Task};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::response::Response;
use bytes::Bytes;
use eyeward::link::{
    self, AgentMessage, MAX_MESSAGE_BYTES, MAX_TUNNEL_FRAME_BYTES, PROTOCOL_VERSION, RelayMessage,
    TunnelId,
};
use eyeward::{CameraId, UnixMillis};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

/// How often agents send heartbeats; a link silent for three of these is dead.
pub const HEARTBEAT: Duration = Duration::from_secs(4);

/// How long an agent has to say hello after connecting.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

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
    Ok(ws
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
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

async fn close(
    socket: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    code: u16,
    reason: &str,
) {
    // A close frame's reason has room for 123 bytes; cut longer ones at a character.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason[..end].into(),
        })))
        .await;
}

/// Runs one agent's link until it ends; the camera is online for exactly that long.
async fn serve_link(st: AppState, camera: CameraId, grant: Grant, socket: WebSocket) {
    // The camera removed or its token replaced: the link ends (an agent's link has no
    // lifetime of its own).
    let mut revoked = std::pin::pin!(st.revocations.ended(grant, Duration::MAX));
    let (mut tx, mut rx) = socket.split();

    let hello = match tokio::time::timeout(HELLO_TIMEOUT, rx.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => {
            link::decode::<AgentMessage>(&t).map_err(|e| e.to_string())
        }
        Ok(_) => Err("the link closed before hello".to_owned()),
        Err(_) => Err("no hello in time".to_owned()),
    };
    let (agent, rtsp_path) = match hello {
        Ok(AgentMessage::Hello {
            version,
            agent,
            rtsp_path,
        }) if version == PROTOCOL_VERSION => match link::check_rtsp_path(&rtsp_path) {
            Ok(()) => (agent, rtsp_path),
            Err(e) => return close(&mut tx, close_code::POLICY, &e.to_string()).await,
        },
        Ok(AgentMessage::Hello { version, .. }) => {
            let reason = format!(
                "protocol version {version} is not supported; this relay speaks {PROTOCOL_VERSION}"
            );
            return close(&mut tx, close_code::PROTOCOL, &reason).await;
        }
        Ok(_) => {
            return close(
                &mut tx,
                close_code::PROTOCOL,
                "the first message must be hello",
            )
            .await;
        }
        Err(e) => return close(&mut tx, close_code::POLICY, &e).await,
    };
    let welcome = RelayMessage::Welcome {
        version: PROTOCOL_VERSION,
        camera_id: camera,
        heartbeat_ms: HEARTBEAT.as_millis() as u64,
    };
    if tx
        .send(Message::Text(link::encode(&welcome).into()))
        .await
        .is_err()
    {
        return;
    }
    let mut reg = st.links.register(camera, rtsp_path);
    st.metrics.agent_links.set(st.links.online_count() as i64);
    let agent_name = printable(&agent, 100);
    tracing::info!(agent = %agent_name, replaced_older = reg.replaced_older, "camera online");
    if let Err(e) = st
        .store
        .record_camera(
            &agent_audit(camera, st.clock.now()),
            camera,
            "camera.online",
            json!({ "agent": agent_name }),
        )
        .await
    {
        tracing::warn!(error = %e, "cannot record camera.online");
    }

    let reason: String = loop {
        tokio::select! {
            incoming = tokio::time::timeout(link::link_timeout(HEARTBEAT), rx.next()) => {
                let text = match incoming {
                    Err(_) => break "heartbeats stopped".into(),
                    Ok(None) | Ok(Some(Ok(Message::Close(_)))) => break "the agent closed the link".into(),
                    Ok(Some(Err(e))) => break format!("the link failed: {e}"),
                    Ok(Some(Ok(Message::Text(t)))) => t,
                    Ok(Some(Ok(Message::Binary(_)))) => {
                        close(&mut tx, close_code::UNSUPPORTED, "binary frames belong on tunnels").await;
                        break "the agent sent binary data on the control link".into();
                    }
                    Ok(Some(Ok(_))) => continue, // ping, pong
                };
                match link::decode::<AgentMessage>(&text) {
                    Ok(AgentMessage::Heartbeat { seq }) => {
                        #[cfg(feature = "failpoints")]
                        task::fail_point("agent-heartbeat", camera);
                        let ack = link::encode(&RelayMessage::HeartbeatAck { seq });
                        if tx.send(Message::Text(ack.into())).await.is_err() {
                            break "the link failed".into();
                        }
                    }
                    Ok(AgentMessage::TunnelFailed { tunnel, reason }) => {
                        st.links.tunnel_failed(&tunnel, camera, printable(&reason, 200));
                    }
                    Ok(AgentMessage::PtzDone { id, state }) => st.ptz.answered(camera, id, Ok(state)),
                    Ok(AgentMessage::PtzFailed { id, failure, reason }) => {
                        st.ptz.answered(camera, id, Err((failure, printable(&reason, 300))));
                    }
                    Ok(AgentMessage::PtzState { state }) => st.ptz.changed(camera, state),
                    Ok(AgentMessage::Hello { .. }) => {
                        close(&mut tx, close_code::PROTOCOL, "hello was already said").await;
                        break "the agent broke the protocol".into();
                    }
                    Err(e) => {
                        close(&mut tx, close_code::POLICY, &e.to_string()).await;
                        break "the agent sent a bad message".into();
                    }
                }
            }
            () = &mut revoked => {
                close(&mut tx, close_code::POLICY, "the agent token was revoked").await;
                break "the agent token was revoked".into();
            }
            outgoing = reg.to_agent.recv() => match outgoing {
                Some(msg) => {
                    if tx.send(Message::Text(link::encode(&msg).into())).await.is_err() {
                        break "the link failed".into();
                    }
                }
                None => {
                    close(&mut tx, close_code::NORMAL, "replaced by a newer link of this camera").await;
                    break "replaced by a newer link".into();
                }
            },
        }
    };
    if st.links.unregister(camera, reg.conn) {
        st.ptz.offline(camera);
        st.metrics.agent_links.set(st.links.online_count() as i64);
        tracing::info!(%reason, "camera offline");
        if let Err(e) = st
            .store
            .record_camera(
                &agent_audit(camera, st.clock.now()),
                camera,
                "camera.offline",
                json!({ "reason": reason }),
            )
            .await
        {
            tracing::warn!(error = %e, "cannot record camera.offline");
        }
    } else {
        tracing::info!(%reason, "older link closed");
    }
}

/// `GET /agent/v1/tunnel/{tunnel}`: the agent connects a tunnel the relay asked for. A
/// tunnel of another camera, or one nobody asked for, is 404.
pub async fn tunnel(
    State(st): State<AppState>,
    agent: AgentCaller,
    Path(tunnel): Path<String>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, Error> {
    let tunnel = TunnelId::parse(&tunnel).map_err(|_| Error::not_found("tunnel"))?;
    let ws = ws.map_err(|_| Error::bad_request("expected a WebSocket upgrade"))?;
    let deliver = st
        .links
        .claim_tunnel(&tunnel, agent.camera.id)
        .ok_or_else(|| Error::not_found("tunnel"))?;
    st.metrics.tunnels_opened.inc();
    Ok(ws
        .max_message_size(MAX_TUNNEL_FRAME_BYTES)
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
        }))
}

/// Carries a tunnel's WebSocket frames to and from its [`Tunnel`] until either side ends.
async fn carry(
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
