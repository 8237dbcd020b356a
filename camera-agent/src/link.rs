//! The agent's outbound link to the relay: one control WebSocket kept open with heartbeats
//! and reconnected with backoff, and one WebSocket per RTSP tunnel the relay asks for.
//!
//! The agent connects tunnels only to its own camera's address: nothing the relay sends can
//! make it dial anywhere else.

use crate::error::Error;
use crate::gop::{CodedFrame, GopRing, ParameterSets};
use crate::ptz::{PtzLink, PtzRequest};
use crate::restream::{Event, Restream};
use crate::rtsp_auth::{AuthProxy, Output};
use eyeward::clock::Clock;
use eyeward::link::{
    self, AgentMessage, AgentOutput, AgentSession, Backoff, Input, MAX_MESSAGE_BYTES,
    MAX_TUNNEL_FRAME_BYTES, RelayOrder, TunnelId,
};
use eyeward::ptz::PtzFailure;
use futures_util::{SinkExt, StreamExt};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Where the camera's RTSP server is, as the agent reaches it on the home network.
#[derive(Clone)]
pub struct CameraAddr {
    pub host: String,
    pub port: u16,
    /// Path and query of the stream, e.g. `/live`.
    pub path: String,
    /// The camera's RTSP user name and password: they stay here, and the tunnel answers the
    /// camera's challenges (see [`crate::rtsp_auth`]).
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for CameraAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}{}", self.host, self.port, self.path)?;
        if self.credentials.is_some() {
            f.write_str(" (with credentials)")?;
        }
        Ok(())
    }
}

/// The relays this agent may link to (`--relay`, once or more: the nodes of one service, or
/// its load balancer), tried in turn: the agent moves on to the next when one fails. A name
/// with several addresses is tried address by address when connecting.
#[derive(Clone, Debug)]
pub struct Relays {
    urls: Arc<[url::Url]>,
    current: Arc<AtomicUsize>,
}

impl Relays {
    /// The relays at `urls`, the first one first; at least one.
    pub fn new(urls: Vec<url::Url>) -> Result<Relays, Error> {
        if urls.is_empty() {
            return Err(Error::Config("at least one --relay".into()));
        }
        Ok(Relays {
            urls: urls.into(),
            current: Arc::default(),
        })
    }

    /// The relay to use now, with its place in the list.
    pub fn current(&self) -> (usize, &url::Url) {
        let i = self.current.load(Ordering::Relaxed) % self.urls.len();
        (i, &self.urls[i])
    }

    /// Relay `failed` did not answer: the next one is used from now on (unless another
    /// task has moved on already).
    pub fn move_on(&self, failed: usize) {
        let next = (failed + 1) % self.urls.len();
        let _ = self
            .current
            .compare_exchange(failed, next, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Every relay, for the log.
    pub fn all(&self) -> &[url::Url] {
        &self.urls
    }
}

/// What the link needs.
#[derive(Clone)]
pub struct LinkConfig {
    /// The relays' base URLs, `http://` or `https://` (the link then uses TLS).
    pub relays: Relays,
    pub token: String,
    pub camera: CameraAddr,
    /// How the relay's certificate is checked (`https://` relays).
    pub tls: Arc<rustls::ClientConfig>,
    /// The camera's current group of pictures, when the agent's decoder reads the stream:
    /// tunnels are then served from it rather than by the camera.
    pub gop: Option<Arc<GopRing>>,
}

impl std::fmt::Debug for LinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkConfig")
            .field("relays", &self.relays.all())
            .field("camera", &self.camera)
            .finish_non_exhaustive()
    }
}

const CAMERA_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `ws(s)://relay/<path>` for one of the agent endpoints.
fn ws_url(relay: &url::Url, path: &str) -> Result<url::Url, Error> {
    let mut url = relay
        .join(path)
        .map_err(|e| Error::Config(format!("relay URL: {e}")))?;
    let scheme = match url.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => {
            return Err(Error::Config(format!(
                "relay URL must be http(s)://, not {other}://"
            )));
        }
    };
    url.set_scheme(scheme)
        .map_err(|()| Error::Config("relay URL cannot take a ws scheme".into()))?;
    Ok(url)
}

impl LinkConfig {
    /// Checks the relay URLs once, at start, so a typo is an error rather than a retry loop.
    pub fn check(&self) -> Result<(), Error> {
        self.relays
            .all()
            .iter()
            .try_for_each(|relay| ws_url(relay, "agent/v1/link").map(|_| ()))
    }

    /// Connects to the current relay's `path`; a failure to connect moves on to the next.
    async fn connect(&self, path: &str, max_message: usize) -> Result<Ws, Error> {
        let (i, relay) = self.relays.current();
        let connected = self.connect_to(relay, path, max_message).await;
        if matches!(connected, Err(Error::Link(_))) {
            self.relays.move_on(i);
        }
        connected
    }

    async fn connect_to(
        &self,
        relay: &url::Url,
        path: &str,
        max_message: usize,
    ) -> Result<Ws, Error> {
        let mut request = ws_url(relay, path)?
            .as_str()
            .into_client_request()
            .map_err(|e| Error::Config(format!("relay URL: {e}")))?;
        let bearer = format!("Bearer {}", self.token).parse().map_err(|_| {
            Error::Config("the agent token has characters a header cannot carry".into())
        })?;
        request.headers_mut().insert("Authorization", bearer);
        let config = WebSocketConfig::default()
            .max_message_size(Some(max_message))
            .max_frame_size(Some(max_message));
        let tls = tokio_tungstenite::Connector::Rustls(self.tls.clone());
        match tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(config),
            true,
            Some(tls),
        )
        .await
        {
            Ok((ws, _)) => Ok(ws),
            Err(tungstenite::Error::Http(resp)) if resp.status() == 401 => Err(Error::Unauthorized),
            Err(tungstenite::Error::Http(resp)) => {
                Err(Error::Link(format!("relay answered {}", resp.status())))
            }
            Err(e) => Err(Error::Link(e.to_string())),
        }
    }
}

/// The first reconnection after a link ends comes anywhere within this (full jitter): the
/// agents of a relay node that died return spread over it, not in one burst.
const FIRST_RETRY_SPREAD: Duration = Duration::from_secs(3);

/// Keeps the link up until `shutdown` resolves, reconnecting with backoff after failures.
/// `ptz` is the pan-tilt driver, if the camera has one.
pub async fn run(
    config: LinkConfig,
    mut ptz: Option<PtzLink>,
    clock: Clock,
    shutdown: impl Future<Output = ()>,
) {
    let mut backoff = Backoff::full_jitter(FIRST_RETRY_SPREAD, Duration::from_secs(30));
    tokio::pin!(shutdown);
    loop {
        let result = tokio::select! {
            r = session(&config, ptz.as_mut(), &mut backoff, clock) => r,
            () = &mut shutdown => return,
        };
        let delay = backoff.next_delay(rand::random());
        match result {
            Err(Error::Unauthorized) => {
                tracing::error!(retry_in = ?delay, "the relay refused this agent's token; ask the administrator for a new one")
            }
            Err(e) => tracing::warn!(error = %e, retry_in = ?delay, "link down"),
            Ok(()) => tracing::info!(retry_in = ?delay, "link closed by the relay"),
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = &mut shutdown => return,
        }
    }
}

/// One connection of the link, from hello until it fails or the relay closes it. The
/// protocol is [`AgentSession`]'s; this drives it with the socket, tokio's clock, the
/// tunnels and the pan-tilt driver.
async fn session(
    config: &LinkConfig,
    mut ptz: Option<&mut PtzLink>,
    backoff: &mut Backoff,
    clock: Clock,
) -> Result<(), Error> {
    let ws = config.connect("agent/v1/link", MAX_MESSAGE_BYTES).await?;
    let (mut tx, mut rx) = ws.split();
    let agent = format!("eyeward-agent {}", env!("CARGO_PKG_VERSION"));
    let mut session = AgentSession::new(agent, config.camera.path.clone(), clock.instant());
    let (report_tx, mut report_rx) = mpsc::channel::<AgentMessage>(16);
    let ending = 'link: loop {
        while let Some(output) = session.poll_output() {
            match output {
                AgentOutput::Send(message) => {
                    let text = link::encode(&message);
                    if let Err(e) = tx.send(Message::Text(text.into())).await {
                        return Err(Error::Link(e.to_string()));
                    }
                }
                AgentOutput::Up { camera, .. } => {
                    tracing::info!(camera = camera.0, "link up");
                    backoff.reset();
                    if let Some(p) = &ptz {
                        p.link_up();
                    }
                }
                AgentOutput::Order(RelayOrder::OpenTunnel { tunnel, to_camera }) => {
                    let report = report_tx.clone();
                    tokio::spawn(open_tunnel(config.clone(), tunnel, to_camera, report));
                }
                AgentOutput::Order(RelayOrder::Ptz {
                    id,
                    command,
                    deadman,
                }) => {
                    let request = PtzRequest {
                        id,
                        command,
                        deadman,
                    };
                    let refused = match &ptz {
                        None => Some(
                            "this camera has no pan-tilt driver (the agent runs without --onvif)",
                        ),
                        Some(p) => p
                            .commands
                            .try_send(request)
                            .err()
                            .map(|_| "the camera is busy with earlier commands"),
                    };
                    if let Some(reason) = refused {
                        session.report(AgentMessage::PtzFailed {
                            id,
                            failure: PtzFailure::Unavailable,
                            reason: reason.into(),
                        });
                    }
                }
                AgentOutput::End(ending) => break 'link ending,
            }
        }
        let wake = session.poll_timeout();
        tokio::select! {
            frame = rx.next() => {
                if let Some(Ok(Message::Close(Some(f)))) = &frame {
                    tracing::info!(code = %f.code, reason = %f.reason, "relay closed the link");
                }
                match frame {
                    Some(Err(e)) => session.handle_input(Input::Failed(&e.to_string()), clock.instant()),
                    frame => session.handle_input(input(&frame), clock.instant()),
                }
            }
            () = clock.sleep_until(wake) => session.handle_timeout(clock.instant()),
            Some(report) = report_rx.recv() => session.report(report),
            Some(report) = ptz_report(&mut ptz) => session.report(report),
        }
    };
    if let Some((code, reason)) = ending.close {
        let frame = CloseFrame {
            code: code.as_u16().into(),
            reason: reason.into(),
        };
        let _ = tx.send(Message::Close(Some(frame))).await;
    }
    if ending.orderly {
        Ok(())
    } else {
        Err(Error::Link(ending.reason))
    }
}

/// What arrived on the socket, as the session takes it (failures apart).
fn input(frame: &Option<Result<Message, tungstenite::Error>>) -> Input<'_> {
    match frame {
        Some(Ok(Message::Text(t))) => Input::Text(t.as_str()),
        Some(Ok(Message::Binary(_))) => Input::Binary,
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Input::Control,
        Some(Ok(Message::Close(_)) | Err(_)) | None => Input::Closed,
    }
}

/// The pan-tilt driver's next report; never, without a driver.
async fn ptz_report(ptz: &mut Option<&mut PtzLink>) -> Option<AgentMessage> {
    match ptz {
        Some(p) => p.reports.recv().await,
        None => std::future::pending().await,
    }
}

/// Connects the camera's RTSP server to the relay through a new tunnel WebSocket, or, when
/// the agent reads a fresh stream from the camera already, serves the tunnel itself (unless
/// the relay asked for the camera itself: `to_camera`, for what the agent does not keep,
/// such as the camera's sound).
async fn open_tunnel(
    config: LinkConfig,
    tunnel: TunnelId,
    to_camera: bool,
    report: mpsc::Sender<AgentMessage>,
) {
    let gop = config.gop.as_ref().filter(|_| !to_camera);
    let servable = gop.and_then(|g| {
        let ps = g.servable(eyeward::clock::monotonic())?;
        Some((g.clone(), ps))
    });
    if let Some((gop, parameter_sets)) = servable {
        let Some(ws) = connect_tunnel(&config, &tunnel).await else {
            return;
        };
        tracing::info!(%tunnel, "tunnel open, served from the agent's group of pictures");
        let end = restream(ws, &gop, &parameter_sets).await;
        tracing::info!(%tunnel, reason = %end, "tunnel closed");
        return;
    }
    let addr = (config.camera.host.as_str(), config.camera.port);
    let tcp = match tokio::time::timeout(CAMERA_CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return tunnel_failed(&report, tunnel, e.to_string()).await,
        Err(_) => return tunnel_failed(&report, tunnel, "timed out".into()).await,
    };
    let _ = tcp.set_nodelay(true);
    let Some(ws) = connect_tunnel(&config, &tunnel).await else {
        return;
    };
    tracing::info!(%tunnel, "tunnel open");
    let proxy = config
        .camera
        .credentials
        .clone()
        .map(|(user, password)| AuthProxy::new(user, password));
    bridge(tcp, ws, proxy).await;
    tracing::info!(%tunnel, "tunnel closed");
}

/// The tunnel's WebSocket to the relay; `None` (logged) when it cannot be had.
async fn connect_tunnel(config: &LinkConfig, tunnel: &TunnelId) -> Option<Ws> {
    match config
        .connect(&format!("agent/v1/tunnel/{tunnel}"), MAX_TUNNEL_FRAME_BYTES)
        .await
    {
        Ok(ws) => Some(ws),
        Err(e) => {
            tracing::warn!(error = %e, "cannot connect the tunnel to the relay");
            None
        }
    }
}

async fn tunnel_failed(report: &mpsc::Sender<AgentMessage>, tunnel: TunnelId, reason: String) {
    tracing::warn!(%tunnel, %reason, "cannot reach the camera for a tunnel");
    let _ = report
        .send(AgentMessage::TunnelFailed { tunnel, reason })
        .await;
}

/// Copies bytes both ways between the camera's TCP connection and the tunnel, answering the
/// camera's authentication challenges on the way when the agent holds credentials.
async fn bridge(tcp: TcpStream, ws: Ws, mut proxy: Option<AuthProxy>) {
    let (mut tcp_rx, mut tcp_tx) = tcp.into_split();
    let (mut ws_tx, mut ws_rx) = ws.split();
    let mut buf = vec![0u8; 64 * 1024];
    let end = loop {
        tokio::select! {
            read = tcp_rx.read(&mut buf) => {
                let n = match read {
                    Ok(0) => break "the camera closed the connection".to_owned(),
                    Err(e) => break format!("camera: {e}"),
                    Ok(n) => n,
                };
                let out = match &mut proxy {
                    None => Output { to_client: buf[..n].to_vec(), to_camera: Vec::new() },
                    Some(p) => match p.camera_bytes(&buf[..n]) {
                        Ok(out) => out,
                        Err(e) => break format!("camera sent bad RTSP: {e}"),
                    },
                };
                if !out.to_camera.is_empty() && tcp_tx.write_all(&out.to_camera).await.is_err() {
                    break "camera write failed".into();
                }
                if !out.to_client.is_empty()
                    && ws_tx.send(Message::Binary(out.to_client.into())).await.is_err()
                {
                    break "relay write failed".into();
                }
            }
            msg = ws_rx.next() => {
                let bytes = match msg {
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Close(_))) | None => break "the relay closed the tunnel".into(),
                    Some(Err(e)) => break format!("relay: {e}"),
                    Some(Ok(_)) => continue,
                };
                let to_camera = match &mut proxy {
                    None => bytes.to_vec(),
                    Some(p) => match p.client_bytes(&bytes) {
                        Ok(out) => out.to_camera,
                        Err(e) => break format!("relay sent bad RTSP: {e}"),
                    },
                };
                if tcp_tx.write_all(&to_camera).await.is_err() {
                    break "camera write failed".into();
                }
            }
        }
    };
    tracing::debug!(reason = %end, "tunnel ending");
    let _ = ws_tx.close().await;
    let _ = tcp_tx.shutdown().await;
}

/// How long a served tunnel waits for the camera's next frame before it gives up (the
/// relay then pulls again, from the camera if the agent's stream is still down).
const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves one tunnel from the group of pictures until the relay tears it down or goes, or the
/// camera's frames stop; says why it ended.
async fn restream(ws: Ws, gop: &GopRing, parameter_sets: &ParameterSets) -> String {
    let (mut ws_tx, mut ws_rx) = ws.split();
    let mut server = Restream::new(parameter_sets, rand::random());
    let mut live: Option<broadcast::Receiver<Arc<CodedFrame>>> = None;
    loop {
        let frames = async {
            match &mut live {
                Some(live) => Some(tokio::time::timeout(FRAME_TIMEOUT, live.recv()).await),
                None => std::future::pending().await,
            }
        };
        // The frame's wait borrows `live`, which PLAY sets: decide first, act after.
        let (msg, frame) = tokio::select! {
            msg = ws_rx.next() => (Some(msg), None),
            frame = frames => (None, frame),
        };
        if let Some(msg) = msg {
            let bytes = match msg {
                Some(Ok(Message::Binary(b))) => b,
                Some(Ok(Message::Close(_))) | None => return "the relay closed the tunnel".into(),
                Some(Err(e)) => return format!("relay: {e}"),
                Some(Ok(_)) => continue,
            };
            match server.handle_bytes(&bytes) {
                Err(e) => return format!("relay sent bad RTSP: {e}"),
                Ok(events) if events.contains(&Event::Play) => {
                    let subscription = gop.subscribe();
                    server.send_cached(&subscription.cached);
                    live = Some(subscription.live);
                }
                Ok(_) => {}
            }
        }
        match frame {
            None => {}
            Some(Ok(Ok(frame))) => server.send_live(&frame),
            Some(Ok(Err(broadcast::error::RecvError::Lagged(_)))) => server.skip_to_keyframe(),
            Some(Ok(Err(broadcast::error::RecvError::Closed)) | Err(_)) => {
                return "the camera's frames stopped".into();
            }
        }
        // A group of pictures is megabytes: sent in pieces the relay takes (views of one
        // buffer, not copies).
        let out = tungstenite::Bytes::from(server.take_output());
        for start in (0..out.len()).step_by(MAX_TUNNEL_FRAME_BYTES) {
            let piece = out.slice(start..out.len().min(start + MAX_TUNNEL_FRAME_BYTES));
            if ws_tx.send(Message::Binary(piece)).await.is_err() {
                return "relay write failed".into();
            }
        }
        if server.ended() {
            let _ = ws_tx.close().await;
            return "the relay ended the session".into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_moves_on_to_the_next_relay_when_one_fails_and_comes_round_again() {
        let urls: Vec<url::Url> = ["http://a.example.jp/", "http://b.example.jp/"]
            .iter()
            .map(|u| u.parse().unwrap())
            .collect();
        let relays = Relays::new(urls).unwrap();
        assert_eq!(relays.current().1.as_str(), "http://a.example.jp/");
        relays.move_on(0);
        assert_eq!(relays.current(), (1, &relays.all()[1]));
        // The uploader also saw a fail: it does not skip b.
        relays.move_on(0);
        assert_eq!(relays.current().0, 1);
        relays.move_on(1);
        assert_eq!(relays.current().0, 0, "round again");
        assert!(Relays::new(Vec::new()).is_err());
    }
}
