//! The agent–relay link protocol, version 1.
//!
//! The agent dials out to the relay (`GET /agent/v1/link`, `Authorization: Bearer <agent
//! token>`) and keeps one WebSocket open. Control messages are JSON text frames, one message
//! per frame, at most [`MAX_MESSAGE_BYTES`]. Video never travels on this socket: for each
//! RTSP session the relay asks for a tunnel ([`RelayMessage::OpenTunnel`]) and the agent opens
//! a second WebSocket (`GET /agent/v1/tunnel/{tunnel}`) that carries the camera's RTSP bytes
//! as binary frames, so a busy video stream can never delay a heartbeat or a command.
//!
//! ```text
//! agent                                   relay
//!   ── Hello {version, agent, rtsp_path} ──▶
//!   ◀── Welcome {camera_id, heartbeat_ms} ──
//!   ── Heartbeat {seq} ─────────────────────▶   every heartbeat_ms
//!   ◀── HeartbeatAck {seq} ─────────────────
//!   ◀── OpenTunnel {tunnel} ────────────────   when a viewer needs video
//!   ══ GET /agent/v1/tunnel/{tunnel} (WebSocket, binary RTSP bytes) ══
//!   ── TunnelFailed {tunnel, reason} ──────▶   if the camera cannot be reached
//!   ◀── Ptz {id, command, deadman_ms} ──────   a pan-tilt command from a viewer
//!   ── PtzDone {id, state} ────────────────▶   carried out: where the camera looks now
//!   ── PtzFailed {id, failure, reason} ───▶   or why not
//!   ── PtzState {state} ──────────────────▶   the camera moved (or stopped) by itself
//! ```
//!
//! Unknown message types, unknown fields and oversized frames are refused: the receiver
//! closes the link with a reason rather than guessing.

mod session;

pub use session::{
    AgentOutput, AgentReport, AgentSession, CloseCode, DEADMAN_RANGE, Ending, HEARTBEAT_RANGE,
    HELLO_TIMEOUT, Input, PtzReport, RelayOrder, RelayOutput, RelaySession, printable,
};

use crate::ptz::{PtzCommand, PtzFailure, PtzState};
use crate::{CameraId, Error};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest control message either side accepts, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// The largest binary frame on a tunnel, in bytes: big enough for a keyframe's worth of
/// RTSP interleaved packets, small enough to bound memory per tunnel.
pub const MAX_TUNNEL_FRAME_BYTES: usize = 256 * 1024;

/// Identifies one tunnel: 128 random bits in hex, chosen by the relay.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TunnelId(String);

impl TunnelId {
    /// Makes an id from 16 random bytes (the caller supplies the randomness: no I/O here).
    pub fn from_random(bytes: [u8; 16]) -> TunnelId {
        TunnelId(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn parse(s: &str) -> Result<TunnelId, Error> {
        if s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(TunnelId(s.to_owned()))
        } else {
            Err(Error::invalid("a tunnel id is 32 lower-case hex digits"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TunnelId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        TunnelId::parse(&s)
    }
}

impl From<TunnelId> for String {
    fn from(t: TunnelId) -> String {
        t.0
    }
}

impl fmt::Display for TunnelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Messages from the agent to the relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentMessage {
    /// The first message on a link.
    Hello {
        /// The protocol version the agent speaks.
        version: u32,
        /// The agent's software version, for the relay's records.
        agent: String,
        /// The path (and query) of the camera's RTSP URL, without host or credentials, so
        /// the relay's RTSP client can name the stream it asks for through a tunnel.
        rtsp_path: String,
    },
    /// Proof of life, every `heartbeat_ms`.
    Heartbeat { seq: u64 },
    /// The agent could not open the tunnel the relay asked for.
    TunnelFailed { tunnel: TunnelId, reason: String },
    /// The pan-tilt command `id` was carried out; `state` is the camera's after it.
    PtzDone { id: u64, state: PtzState },
    /// The pan-tilt command `id` was not carried out.
    PtzFailed {
        id: u64,
        failure: PtzFailure,
        reason: String,
    },
    /// The camera's pan-tilt state changed without a command (it is still turning, stopped,
    /// or moved by itself, as on a patrol).
    PtzState { state: PtzState },
}

/// Messages from the relay to the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RelayMessage {
    /// The answer to `Hello`: the link is up.
    Welcome {
        version: u32,
        camera_id: CameraId,
        /// How often the agent must send a heartbeat.
        heartbeat_ms: u64,
    },
    HeartbeatAck {
        seq: u64,
    },
    /// Open a tunnel to the camera's RTSP server and connect it to
    /// `/agent/v1/tunnel/{tunnel}`. Without `to_camera` the agent may answer it from the
    /// video it reads already (its group of pictures); with it, the tunnel must reach the
    /// camera itself (its sound, which the agent does not keep). Sent only when true, so an
    /// agent of before it reads every other tunnel as it did.
    OpenTunnel {
        tunnel: TunnelId,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        to_camera: bool,
    },
    /// Carry out a pan-tilt command and answer `PtzDone` or `PtzFailed` with the same `id`.
    /// A `move` lasts `deadman_ms` unless another command follows.
    Ptz {
        id: u64,
        command: PtzCommand,
        deadman_ms: u64,
    },
}

/// Checks the RTSP path an agent announces: `/` followed by at most 1 KiB of printable
/// ASCII, so it can be put into a URL as it is.
pub fn check_rtsp_path(path: &str) -> Result<(), Error> {
    let printable = path.bytes().all(|b| b.is_ascii_graphic());
    if path.starts_with('/') && path.len() <= 1024 && printable && !path.contains('#') {
        Ok(())
    } else {
        Err(Error::invalid(
            "the RTSP path must start with / and be printable ASCII (at most 1 KiB)",
        ))
    }
}

/// Decodes one control message, refusing oversized, malformed and unknown ones.
pub fn decode<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, Error> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(Error::invalid(format_args!(
            "link message of {} bytes is over the limit of {MAX_MESSAGE_BYTES}",
            text.len()
        )));
    }
    serde_json::from_str(text).map_err(|e| Error::invalid(format_args!("bad link message: {e}")))
}

/// Encodes one control message.
pub fn encode<T: Serialize>(msg: &T) -> String {
    serde_json::to_string(msg).expect("link messages always serialize")
}

/// When a link is considered dead: no message for this many heartbeat intervals.
pub const MISSED_HEARTBEATS: u32 = 3;

/// The silence after which a link is dead, given its heartbeat interval.
pub fn link_timeout(heartbeat: Duration) -> Duration {
    heartbeat * MISSED_HEARTBEATS
}

/// Reconnect delays: exponential from `initial` to `max`, with jitter so that many clients
/// cut off at once do not return at once: "equal jitter" (half the delay fixed, half random)
/// by default, or "full jitter" (anywhere from zero to the delay). No I/O: the caller
/// supplies the randomness and sleeps.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
    /// The share of each delay that is random.
    jitter: f64,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            attempt: 0,
            jitter: 0.5,
        }
    }

    /// Full jitter: each delay anywhere from zero to its ceiling. The agents of a relay node
    /// that died then come back spread over `initial` rather than in one burst (10,000
    /// agents over 3 s: about 3,300 a second), and a retry storm still backs off, since the
    /// ceiling doubles.
    pub fn full_jitter(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            jitter: 1.0,
            ..Backoff::new(initial, max)
        }
    }

    /// The delay before the next attempt; `unit` is a random number in [0, 1).
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(1u32.checked_shl(self.attempt.min(16)).unwrap_or(u32::MAX))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        ceiling.mul_f64(1.0 - self.jitter + self.jitter * unit.clamp(0.0, 1.0))
    }

    /// Call once a connection has proven healthy.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_in_their_documented_shape() {
        let hello = AgentMessage::Hello {
            version: 1,
            agent: "eyeward-agent 0.1.0".into(),
            rtsp_path: "/live".into(),
        };
        let text = encode(&hello);
        assert_eq!(
            text,
            r#"{"type":"hello","version":1,"agent":"eyeward-agent 0.1.0","rtsp_path":"/live"}"#
        );
        assert_eq!(decode::<AgentMessage>(&text).unwrap(), hello);
        let open = RelayMessage::OpenTunnel {
            tunnel: TunnelId::from_random([0xab; 16]),
            to_camera: false,
        };
        assert_eq!(
            encode(&open),
            format!(r#"{{"type":"open_tunnel","tunnel":"{}"}}"#, "ab".repeat(16))
        );
        assert_eq!(decode::<RelayMessage>(&encode(&open)).unwrap(), open);
        let to_camera = RelayMessage::OpenTunnel {
            tunnel: TunnelId::from_random([0xab; 16]),
            to_camera: true,
        };
        assert_eq!(
            encode(&to_camera),
            format!(
                r#"{{"type":"open_tunnel","tunnel":"{}","to_camera":true}}"#,
                "ab".repeat(16)
            )
        );
        assert_eq!(
            decode::<RelayMessage>(&encode(&to_camera)).unwrap(),
            to_camera
        );
        let ptz = RelayMessage::Ptz {
            id: 7,
            command: PtzCommand::Move {
                pan: 1.0,
                tilt: 0.0,
            },
            deadman_ms: 1000,
        };
        assert_eq!(
            encode(&ptz),
            r#"{"type":"ptz","id":7,"command":{"action":"move","pan":1.0,"tilt":0.0},"deadman_ms":1000}"#
        );
        assert_eq!(decode::<RelayMessage>(&encode(&ptz)).unwrap(), ptz);
        let failed = AgentMessage::PtzFailed {
            id: 7,
            failure: PtzFailure::Refused,
            reason: "no preset named door".into(),
        };
        assert_eq!(decode::<AgentMessage>(&encode(&failed)).unwrap(), failed);
    }

    #[test]
    fn unknown_malformed_and_oversized_messages_are_refused() {
        for bad in [
            r#"{"type":"format_disk"}"#,
            r#"{"type":"heartbeat","seq":1,"extra":true}"#,
            r#"{"type":"heartbeat"}"#,
            r#"{"type":"tunnel_failed","tunnel":"../../etc","reason":"x"}"#,
            "not json",
            "",
        ] {
            assert!(decode::<AgentMessage>(bad).is_err(), "{bad} accepted");
        }
        let huge = format!(
            r#"{{"type":"tunnel_failed","tunnel":"{}","reason":"{}"}}"#,
            "a".repeat(32),
            "x".repeat(MAX_MESSAGE_BYTES)
        );
        let err = decode::<AgentMessage>(&huge).unwrap_err();
        assert!(err.to_string().contains("over the limit"), "{err}");
    }

    #[test]
    fn rtsp_paths_are_plain() {
        for ok in [
            "/",
            "/live",
            "/Streaming/Channels/101?transportmode=unicast",
        ] {
            assert!(check_rtsp_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "live",
            "/a b",
            "/a\r\nX: y",
            "/#x",
            &format!("/{}", "a".repeat(1024)),
        ] {
            assert!(check_rtsp_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let ceilings: Vec<_> = (0..10).map(|_| b.next_delay(1.0)).collect();
        assert_eq!(ceilings[0], Duration::from_millis(500));
        assert_eq!(ceilings[1], Duration::from_secs(1));
        assert_eq!(ceilings[3], Duration::from_secs(4));
        assert_eq!(ceilings[9], Duration::from_secs(30), "capped");
        assert_eq!(
            b.next_delay(0.0),
            Duration::from_secs(15),
            "jitter keeps half"
        );
        b.reset();
        assert_eq!(b.next_delay(0.0), Duration::from_millis(250));
        let mut many = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..100 {
            many.next_delay(0.5);
        }
        assert_eq!(many.next_delay(1.0), Duration::from_secs(60), "no overflow");
    }

    #[test]
    fn full_jitter_spreads_each_delay_from_zero_to_its_doubling_ceiling() {
        let mut b = Backoff::full_jitter(Duration::from_secs(3), Duration::from_secs(30));
        assert_eq!(b.next_delay(0.0), Duration::ZERO);
        assert_eq!(b.next_delay(0.5), Duration::from_secs(3));
        assert_eq!(b.next_delay(1.0), Duration::from_secs(12));
        for _ in 0..10 {
            b.next_delay(0.3);
        }
        assert_eq!(b.next_delay(1.0), Duration::from_secs(30), "capped");
        // Spread: 10,000 agents' first delays fill [0, 3 s) evenly, 1,000 per 300 ms.
        let mut per_slot = [0u32; 10];
        for i in 0..10_000 {
            let mut agent = Backoff::full_jitter(Duration::from_secs(3), Duration::from_secs(30));
            let d = agent.next_delay(i as f64 / 10_000.0);
            per_slot[(d.as_millis() / 300) as usize] += 1;
        }
        assert_eq!(per_slot, [1000; 10]);
    }
}
