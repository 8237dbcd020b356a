//! One connection of the link, both ends, without I/O (the way str0m does it): each side is a
//! state machine that is fed what arrived ([`RelaySession::handle_input`]) and the passing of
//! time ([`RelaySession::handle_timeout`], `now` passed in), and says what to do next
//! ([`RelaySession::poll_output`]) and when to wake it ([`RelaySession::poll_timeout`]). The
//! binaries own the WebSockets, the timers and the services; the protocol's rules (hello
//! first, heartbeats, silence, what may follow what) live here once, and tests drive them with
//! no socket and no sleeping.

use super::{
    AgentMessage, PROTOCOL_VERSION, RelayMessage, TunnelId, check_rtsp_path, decode, link_timeout,
};
use crate::CameraId;
use crate::ptz::{PtzCommand, PtzFailure, PtzState};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long the first exchange may take: the agent's hello after connecting, the relay's
/// welcome after hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// The heartbeat intervals an agent accepts from a relay: faster would be a flood, slower
/// would leave a dead link undetected for minutes.
pub const HEARTBEAT_RANGE: (Duration, Duration) =
    (Duration::from_millis(500), Duration::from_secs(60));

/// How long a pan-tilt `move` may last without a repeat, whatever the relay asks.
pub const DEADMAN_RANGE: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(10));

/// The WebSocket close codes the link uses (RFC 6455, 7.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 1000: the link is done with (replaced by a newer one).
    Normal,
    /// 1002: the peer broke the protocol (a second hello, a version nobody speaks).
    Protocol,
    /// 1003: a kind of data the control link does not take (binary frames).
    Unsupported,
    /// 1008: the peer sent something the rules forbid (a malformed message, a revoked token).
    Policy,
    /// 1013: the relay cannot take the link now (it is stopping, or cannot record it); link
    /// again, to this relay or another.
    TryAgain,
}

impl CloseCode {
    pub fn as_u16(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::Protocol => 1002,
            CloseCode::Unsupported => 1003,
            CloseCode::Policy => 1008,
            CloseCode::TryAgain => 1013,
        }
    }
}

/// What arrived on the control WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    Text(&'a str),
    Binary,
    /// A ping or a pong: no message, but proof the peer is there.
    Control,
    /// The peer closed the link, or the connection ended.
    Closed,
    /// The connection failed, for this reason.
    Failed(&'a str),
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// The close frame to send the peer, if the socket is still open: its code and a short
    /// reason (at most 123 bytes, the most a close frame carries).
    pub close: Option<(CloseCode, String)>,
    /// Why, for the log and the history.
    pub reason: String,
    /// Whether the link ended as the protocol allows (the peer closed it, or it was replaced
    /// or revoked) rather than by a fault (silence, a broken rule).
    pub orderly: bool,
}

/// Text from the other side (an agent's name, why a tunnel or a move failed), fit for a log
/// line and the history: at most `max_chars`, control characters (line breaks, terminal
/// escapes) written out as escapes, so a peer cannot forge log lines or recolour a terminal.
pub fn printable(text: &str, max_chars: usize) -> String {
    text.chars()
        .take(max_chars)
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// The most characters of a reason an agent reports: at four bytes a character, escaped,
/// still far below [`MAX_MESSAGE_BYTES`](super::MAX_MESSAGE_BYTES).
const MAX_REPORTED_REASON: usize = 300;

/// The longest reason a close frame carries: 125 bytes of payload less the code's two.
const MAX_CLOSE_REASON: usize = 123;

fn ending(close: Option<(CloseCode, &str)>, reason: impl Into<String>, orderly: bool) -> Ending {
    let close = close.map(|(code, text)| {
        let mut end = text.len().min(MAX_CLOSE_REASON);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        (code, text[..end].to_owned())
    });
    Ending {
        close,
        reason: reason.into(),
        orderly,
    }
}

/// What an agent reports to the relay once the link is up: typed, checked and made
/// printable, for the service that waits on it.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentReport {
    /// The agent could not open the tunnel the relay asked for.
    TunnelFailed {
        tunnel: TunnelId,
        reason: String,
    },
    Ptz(PtzReport),
}

/// What an agent says of its camera's pan-tilt.
#[derive(Debug, Clone, PartialEq)]
pub enum PtzReport {
    /// Command `id` was carried out; the camera's state after it.
    Done { id: u64, state: PtzState },
    /// Command `id` was not carried out, and why.
    Failed {
        id: u64,
        failure: PtzFailure,
        reason: String,
    },
    /// The camera moved (or stopped) without a command.
    Changed { state: PtzState },
}

/// What the relay's side asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum RelayOutput {
    /// Send this to the agent.
    Send(RelayMessage),
    /// The agent said hello and was welcomed: the camera is online from now on (the driver
    /// registers the link). `agent` is printable.
    Up { agent: String, rtsp_path: String },
    /// Deliver this to whoever waits on the camera.
    Report(AgentReport),
    /// The session is over: close the socket (with the frame, if any) and stop.
    End(Ending),
}

#[derive(Debug)]
enum RelayState {
    AwaitingHello { deadline: Instant },
    Open { silent_after: Instant },
    Ended,
}

/// The relay's end of one agent's link.
#[derive(Debug)]
pub struct RelaySession {
    camera: CameraId,
    heartbeat: Duration,
    state: RelayState,
    out: VecDeque<RelayOutput>,
}

impl RelaySession {
    /// A link that just connected, for the camera whose token it showed; agents must send a
    /// heartbeat every `heartbeat`.
    pub fn new(camera: CameraId, heartbeat: Duration, now: Instant) -> RelaySession {
        RelaySession {
            camera,
            heartbeat,
            state: RelayState::AwaitingHello {
                deadline: now + HELLO_TIMEOUT,
            },
            out: VecDeque::new(),
        }
    }

    /// Feeds what arrived from the agent.
    pub fn handle_input(&mut self, input: Input<'_>, now: Instant) {
        match (&self.state, input) {
            (RelayState::Ended, _) => {}
            (_, Input::Closed) => self.end(None, "the agent closed the link", true),
            (_, Input::Failed(e)) => self.end(None, format!("the link failed: {e}"), false),
            (_, Input::Binary) => self.end(
                Some((CloseCode::Unsupported, "binary frames belong on tunnels")),
                "the agent sent binary data on the control link",
                false,
            ),
            (RelayState::AwaitingHello { .. }, Input::Control) => {}
            (RelayState::AwaitingHello { .. }, Input::Text(text)) => self.hello(text, now),
            (RelayState::Open { .. }, Input::Control) => self.alive(now),
            (RelayState::Open { .. }, Input::Text(text)) => {
                self.alive(now);
                self.message(text);
            }
        }
    }

    /// Lets time pass: a link without hello, or silent for [`link_timeout`], ends.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            RelayState::AwaitingHello { deadline } if now >= deadline => {
                self.end(None, "no hello in time", false)
            }
            RelayState::Open { silent_after } if now >= silent_after => {
                self.end(None, "heartbeats stopped", false)
            }
            _ => {}
        }
    }

    /// Queues a message for the agent (a tunnel or pan-tilt order); dropped unless the link
    /// is up.
    pub fn send(&mut self, message: RelayMessage) {
        if matches!(self.state, RelayState::Open { .. }) {
            self.out.push_back(RelayOutput::Send(message));
        }
    }

    /// Ends the link for a reason outside it (the token was revoked, a newer link replaced
    /// this one), telling the agent why.
    pub fn close(&mut self, code: CloseCode, reason: &str) {
        self.end(Some((code, reason)), reason, true);
    }

    /// The next thing to do, in order.
    pub fn poll_output(&mut self) -> Option<RelayOutput> {
        self.out.pop_front()
    }

    /// When to call [`RelaySession::handle_timeout`] next, unless input comes first.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            RelayState::AwaitingHello { deadline } => Some(deadline),
            RelayState::Open { silent_after } => Some(silent_after),
            RelayState::Ended => None,
        }
    }

    fn alive(&mut self, now: Instant) {
        self.state = RelayState::Open {
            silent_after: now + link_timeout(self.heartbeat),
        };
    }

    fn end(&mut self, close: Option<(CloseCode, &str)>, reason: impl Into<String>, orderly: bool) {
        if !matches!(self.state, RelayState::Ended) {
            self.state = RelayState::Ended;
            self.out
                .push_back(RelayOutput::End(ending(close, reason, orderly)));
        }
    }

    fn hello(&mut self, text: &str, now: Instant) {
        let (agent, rtsp_path) = match decode::<AgentMessage>(text) {
            Ok(AgentMessage::Hello {
                version,
                agent,
                rtsp_path,
            }) if version == PROTOCOL_VERSION => (agent, rtsp_path),
            Ok(AgentMessage::Hello { version, .. }) => {
                let reason = format!(
                    "protocol version {version} is not supported; this relay speaks {PROTOCOL_VERSION}"
                );
                return self.end(Some((CloseCode::Protocol, &reason)), reason.clone(), false);
            }
            Ok(_) => {
                let reason = "the first message must be hello";
                return self.end(Some((CloseCode::Protocol, reason)), reason, false);
            }
            Err(e) => {
                let reason = e.to_string();
                return self.end(Some((CloseCode::Policy, &reason)), reason.clone(), false);
            }
        };
        if let Err(e) = check_rtsp_path(&rtsp_path) {
            let reason = e.to_string();
            return self.end(Some((CloseCode::Policy, &reason)), reason.clone(), false);
        }
        self.alive(now);
        self.out.push_back(RelayOutput::Send(RelayMessage::Welcome {
            version: PROTOCOL_VERSION,
            camera_id: self.camera,
            heartbeat_ms: self.heartbeat.as_millis() as u64,
        }));
        self.out.push_back(RelayOutput::Up {
            agent: printable(&agent, 100),
            rtsp_path,
        });
    }

    fn message(&mut self, text: &str) {
        let report = match decode::<AgentMessage>(text) {
            Ok(AgentMessage::Heartbeat { seq }) => {
                return self.send(RelayMessage::HeartbeatAck { seq });
            }
            Ok(AgentMessage::TunnelFailed { tunnel, reason }) => AgentReport::TunnelFailed {
                tunnel,
                reason: printable(&reason, 200),
            },
            Ok(AgentMessage::PtzDone { id, state }) => {
                AgentReport::Ptz(PtzReport::Done { id, state })
            }
            Ok(AgentMessage::PtzFailed {
                id,
                failure,
                reason,
            }) => AgentReport::Ptz(PtzReport::Failed {
                id,
                failure,
                reason: printable(&reason, 300),
            }),
            Ok(AgentMessage::PtzState { state }) => AgentReport::Ptz(PtzReport::Changed { state }),
            Ok(AgentMessage::Hello { .. }) => {
                return self.end(
                    Some((CloseCode::Protocol, "hello was already said")),
                    "the agent broke the protocol",
                    false,
                );
            }
            Err(e) => {
                return self.end(
                    Some((CloseCode::Policy, &e.to_string())),
                    "the agent sent a bad message",
                    false,
                );
            }
        };
        self.out.push_back(RelayOutput::Report(report));
    }
}

/// What the relay asks of an agent, checked and bounded.
#[derive(Debug, Clone, PartialEq)]
pub enum RelayOrder {
    /// Open a tunnel to the camera (to the camera itself with `to_camera`, see
    /// [`RelayMessage::OpenTunnel`]) and connect it to the relay.
    OpenTunnel { tunnel: TunnelId, to_camera: bool },
    /// Carry out a pan-tilt command; a `move` lasts `deadman` unless another follows.
    Ptz {
        id: u64,
        command: PtzCommand,
        deadman: Duration,
    },
}

/// What the agent's side asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentOutput {
    /// Send this to the relay.
    Send(AgentMessage),
    /// The relay welcomed the agent: the link is up (reset the reconnect backoff).
    Up {
        camera: CameraId,
        heartbeat: Duration,
    },
    /// Carry this out.
    Order(RelayOrder),
    /// The session is over: close the socket and reconnect after a backoff.
    End(Ending),
}

#[derive(Debug)]
enum AgentState {
    AwaitingWelcome {
        deadline: Instant,
    },
    Open {
        heartbeat: Duration,
        next_heartbeat: Instant,
        silent_after: Instant,
        seq: u64,
    },
    Ended,
}

/// The agent's end of its link: says hello, keeps heartbeats going, and notices a relay
/// that went silent.
#[derive(Debug)]
pub struct AgentSession {
    state: AgentState,
    out: VecDeque<AgentOutput>,
}

impl AgentSession {
    /// A link that just connected: the first output is the hello. `agent` names the
    /// software, `rtsp_path` is the camera stream's path and query.
    pub fn new(agent: String, rtsp_path: String, now: Instant) -> AgentSession {
        let hello = AgentMessage::Hello {
            version: PROTOCOL_VERSION,
            agent,
            rtsp_path,
        };
        AgentSession {
            state: AgentState::AwaitingWelcome {
                deadline: now + HELLO_TIMEOUT,
            },
            out: VecDeque::from([AgentOutput::Send(hello)]),
        }
    }

    /// Feeds what arrived from the relay.
    pub fn handle_input(&mut self, input: Input<'_>, now: Instant) {
        if matches!(self.state, AgentState::Ended) {
            return;
        }
        let text = match input {
            Input::Closed => return self.end(None, "the relay closed the link", true),
            Input::Failed(e) => return self.end(None, e, false),
            Input::Binary => {
                return self.end(
                    Some((CloseCode::Unsupported, "binary frames belong on tunnels")),
                    "binary data on the control link",
                    false,
                );
            }
            Input::Control => return self.alive(now),
            Input::Text(text) => text,
        };
        self.alive(now);
        let message = match decode::<RelayMessage>(text) {
            Ok(message) => message,
            Err(e) => {
                let reason = e.to_string();
                return self.end(Some((CloseCode::Policy, &reason)), reason.clone(), false);
            }
        };
        match (&self.state, message) {
            (
                AgentState::AwaitingWelcome { .. },
                RelayMessage::Welcome {
                    camera_id,
                    heartbeat_ms,
                    ..
                },
            ) => {
                let heartbeat =
                    Duration::from_millis(heartbeat_ms).clamp(HEARTBEAT_RANGE.0, HEARTBEAT_RANGE.1);
                self.state = AgentState::Open {
                    heartbeat,
                    next_heartbeat: now,
                    silent_after: now + link_timeout(heartbeat),
                    seq: 0,
                };
                self.out.push_back(AgentOutput::Up {
                    camera: camera_id,
                    heartbeat,
                });
                self.handle_timeout(now);
            }
            (AgentState::AwaitingWelcome { .. }, other) => {
                let reason = format!("expected welcome, got {}", message_type(&other));
                self.end(Some((CloseCode::Protocol, &reason)), reason.clone(), false);
            }
            (_, RelayMessage::Welcome { .. }) => self.end(
                Some((CloseCode::Protocol, "welcome was already said")),
                "the relay said welcome twice",
                false,
            ),
            (_, RelayMessage::HeartbeatAck { .. }) => {}
            (_, RelayMessage::OpenTunnel { tunnel, to_camera }) => {
                self.out
                    .push_back(AgentOutput::Order(RelayOrder::OpenTunnel {
                        tunnel,
                        to_camera,
                    }))
            }
            (
                _,
                RelayMessage::Ptz {
                    id,
                    command,
                    deadman_ms,
                },
            ) => self.out.push_back(AgentOutput::Order(RelayOrder::Ptz {
                id,
                command,
                deadman: Duration::from_millis(deadman_ms).clamp(DEADMAN_RANGE.0, DEADMAN_RANGE.1),
            })),
        }
    }

    /// Lets time pass: heartbeats fall due, and a relay silent for [`link_timeout`] (or one
    /// that never welcomes) ends the session.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.state {
            AgentState::AwaitingWelcome { deadline } if now >= *deadline => {
                self.end(None, "no welcome in time", false)
            }
            AgentState::Open { silent_after, .. } if now >= *silent_after => {
                self.end(None, "the relay went silent", false)
            }
            AgentState::Open {
                heartbeat,
                next_heartbeat,
                seq,
                ..
            } if now >= *next_heartbeat => {
                *seq += 1;
                // Due again one interval from now: a late driver gets one heartbeat, not a
                // burst to catch up.
                *next_heartbeat = now + *heartbeat;
                let beat = AgentMessage::Heartbeat { seq: *seq };
                self.out.push_back(AgentOutput::Send(beat));
            }
            _ => {}
        }
    }

    /// Queues a report for the relay (a tunnel that failed, pan-tilt news); dropped unless
    /// the link is up. Reasons (a camera's words, often) are cut so the message always fits
    /// in [`MAX_MESSAGE_BYTES`](super::MAX_MESSAGE_BYTES).
    pub fn report(&mut self, mut message: AgentMessage) {
        if let AgentMessage::TunnelFailed { reason, .. } | AgentMessage::PtzFailed { reason, .. } =
            &mut message
        {
            *reason = printable(reason, MAX_REPORTED_REASON);
        }
        if matches!(self.state, AgentState::Open { .. }) {
            self.out.push_back(AgentOutput::Send(message));
        }
    }

    /// The next thing to do, in order.
    pub fn poll_output(&mut self) -> Option<AgentOutput> {
        self.out.pop_front()
    }

    /// When to call [`AgentSession::handle_timeout`] next, unless input comes first.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            AgentState::AwaitingWelcome { deadline } => Some(deadline),
            AgentState::Open {
                next_heartbeat,
                silent_after,
                ..
            } => Some(next_heartbeat.min(silent_after)),
            AgentState::Ended => None,
        }
    }

    fn alive(&mut self, now: Instant) {
        if let AgentState::Open {
            heartbeat,
            silent_after,
            ..
        } = &mut self.state
        {
            *silent_after = now + link_timeout(*heartbeat);
        }
    }

    fn end(&mut self, close: Option<(CloseCode, &str)>, reason: impl Into<String>, orderly: bool) {
        if !matches!(self.state, AgentState::Ended) {
            self.state = AgentState::Ended;
            self.out
                .push_back(AgentOutput::End(ending(close, reason, orderly)));
        }
    }
}

/// A relay message's type, for an error that must not echo the whole message.
fn message_type(message: &RelayMessage) -> &'static str {
    match message {
        RelayMessage::Welcome { .. } => "welcome",
        RelayMessage::HeartbeatAck { .. } => "heartbeat_ack",
        RelayMessage::OpenTunnel { .. } => "open_tunnel",
        RelayMessage::Ptz { .. } => "ptz",
    }
}

#[cfg(test)]
mod tests;
