//! The link session's rules, one test each, driven with no socket: time is an `Instant`
//! the test moves on.

use super::super::MAX_MESSAGE_BYTES;
use super::*;
use crate::ptz::PtzCommand;

const CAMERA: CameraId = CameraId(7);
const BEAT: Duration = Duration::from_secs(4);

fn hello(version: u32, path: &str) -> String {
    super::super::encode(&AgentMessage::Hello {
        version,
        agent: "eyeward-agent 0.1.0".into(),
        rtsp_path: path.into(),
    })
}

fn text<T: serde::Serialize>(message: &T) -> String {
    super::super::encode(message)
}

fn drain_relay(s: &mut RelaySession) -> Vec<RelayOutput> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

fn drain_agent(s: &mut AgentSession) -> Vec<AgentOutput> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

/// A relay session past hello, its outputs drained.
fn open_relay(t0: Instant) -> RelaySession {
    let mut s = RelaySession::new(CAMERA, BEAT, t0);
    s.handle_input(Input::Text(&hello(PROTOCOL_VERSION, "/live")), t0);
    drain_relay(&mut s);
    s
}

fn relay_end(outputs: &[RelayOutput]) -> &Ending {
    match outputs.last() {
        Some(RelayOutput::End(e)) => e,
        other => panic!("expected the end, got {other:?}"),
    }
}

fn agent_end(outputs: &[AgentOutput]) -> &Ending {
    match outputs.last() {
        Some(AgentOutput::End(e)) => e,
        other => panic!("expected the end, got {other:?}"),
    }
}

#[test]
fn a_peers_text_cannot_forge_log_lines_or_escape_to_the_terminal() {
    assert_eq!(
        printable("cam\n2026-11-27T00:00:00Z INFO forged\x1b[31m", 100),
        "cam\\n2026-11-27T00:00:00Z INFO forged\\u{1b}[31m"
    );
    assert_eq!(printable("カメラ玄関", 3), "カメラ");
}

#[test]
fn the_relay_welcomes_a_hello_and_puts_the_camera_online() {
    let t0 = Instant::now();
    let mut s = RelaySession::new(CAMERA, BEAT, t0);
    let agent = text(&AgentMessage::Hello {
        version: PROTOCOL_VERSION,
        agent: "evil\r\nlog line".into(),
        rtsp_path: "/Streaming/101".into(),
    });
    s.handle_input(Input::Text(&agent), t0);
    assert_eq!(
        drain_relay(&mut s),
        [
            RelayOutput::Send(RelayMessage::Welcome {
                version: PROTOCOL_VERSION,
                camera_id: CAMERA,
                heartbeat_ms: 4000,
            }),
            RelayOutput::Up {
                agent: r"evil\r\nlog line".into(),
                rtsp_path: "/Streaming/101".into(),
            },
        ]
    );
}

#[test]
fn a_link_without_hello_ends_after_the_hello_timeout() {
    let t0 = Instant::now();
    let mut s = RelaySession::new(CAMERA, BEAT, t0);
    assert_eq!(s.poll_timeout(), Some(t0 + HELLO_TIMEOUT));
    s.handle_input(Input::Control, t0 + Duration::from_secs(9));
    s.handle_timeout(t0 + Duration::from_secs(9));
    assert!(drain_relay(&mut s).is_empty(), "a ping is no hello");
    s.handle_timeout(t0 + HELLO_TIMEOUT);
    let out = drain_relay(&mut s);
    let end = relay_end(&out);
    assert_eq!(
        (end.close.clone(), end.reason.as_str()),
        (None, "no hello in time")
    );
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn anything_but_a_good_hello_first_is_refused_with_its_reason() {
    let heartbeat = text(&AgentMessage::Heartbeat { seq: 1 });
    let cases = [
        (
            hello(99, "/live"),
            CloseCode::Protocol,
            "protocol version 99 is not supported",
        ),
        (
            heartbeat,
            CloseCode::Protocol,
            "the first message must be hello",
        ),
        (
            hello(PROTOCOL_VERSION, "live"),
            CloseCode::Policy,
            "the RTSP path must start with /",
        ),
        (
            "{not json".to_owned(),
            CloseCode::Policy,
            "bad link message",
        ),
    ];
    for (first, code, reason) in cases {
        let t0 = Instant::now();
        let mut s = RelaySession::new(CAMERA, BEAT, t0);
        s.handle_input(Input::Text(&first), t0);
        let out = drain_relay(&mut s);
        assert_eq!(out.len(), 1, "{first}: {out:?}");
        let (got_code, got_reason) = relay_end(&out).close.clone().unwrap();
        assert_eq!(got_code, code, "{first}");
        assert!(got_reason.starts_with(reason), "{first}: {got_reason}");
        assert!(!relay_end(&out).orderly);
    }
}

#[test]
fn heartbeats_are_acknowledged_and_keep_the_link_alive() {
    let t0 = Instant::now();
    let mut s = open_relay(t0);
    let mut now = t0;
    for seq in 1..=10 {
        now += BEAT;
        s.handle_timeout(now);
        s.handle_input(Input::Text(&text(&AgentMessage::Heartbeat { seq })), now);
        assert_eq!(
            drain_relay(&mut s),
            [RelayOutput::Send(RelayMessage::HeartbeatAck { seq })]
        );
    }
    assert_eq!(s.poll_timeout(), Some(now + link_timeout(BEAT)));
}

#[test]
fn a_link_silent_for_three_heartbeats_ends() {
    let t0 = Instant::now();
    let mut s = open_relay(t0);
    s.handle_input(Input::Control, t0 + BEAT);
    let dead_at = t0 + BEAT + link_timeout(BEAT);
    s.handle_timeout(dead_at - Duration::from_millis(1));
    assert!(drain_relay(&mut s).is_empty(), "a pong is proof of life");
    s.handle_timeout(dead_at);
    let out = drain_relay(&mut s);
    assert_eq!(relay_end(&out).reason, "heartbeats stopped");
}

#[test]
fn sending_to_the_agent_does_not_count_as_hearing_from_it() {
    let t0 = Instant::now();
    let mut s = open_relay(t0);
    for i in 1..20 {
        s.send(RelayMessage::OpenTunnel {
            tunnel: TunnelId::from_random([i; 16]),
            to_camera: false,
        });
    }
    s.handle_timeout(t0 + link_timeout(BEAT));
    let out = drain_relay(&mut s);
    assert_eq!(relay_end(&out).reason, "heartbeats stopped");
}

#[test]
fn reports_arrive_typed_with_their_text_made_printable() {
    let t0 = Instant::now();
    let mut s = open_relay(t0);
    let tunnel = TunnelId::from_random([1; 16]);
    let state = PtzState {
        pan: 0.5,
        tilt: 0.0,
        moving: false,
        presets: vec![],
    };
    for message in [
        AgentMessage::TunnelFailed {
            tunnel: tunnel.clone(),
            reason: format!("refused\x1b[31m{}", "x".repeat(500)),
        },
        AgentMessage::PtzDone {
            id: 3,
            state: state.clone(),
        },
        AgentMessage::PtzFailed {
            id: 4,
            failure: PtzFailure::Refused,
            reason: "no\npreset".into(),
        },
        AgentMessage::PtzState {
            state: state.clone(),
        },
    ] {
        s.handle_input(Input::Text(&text(&message)), t0);
    }
    let reports: Vec<_> = drain_relay(&mut s)
        .into_iter()
        .map(|o| match o {
            RelayOutput::Report(r) => r,
            other => panic!("{other:?}"),
        })
        .collect();
    let AgentReport::TunnelFailed { reason, .. } = &reports[0] else {
        panic!("{:?}", reports[0]);
    };
    assert!(reason.starts_with(r"refused\u{1b}[31mxxx"), "{reason}");
    assert_eq!(reason.chars().count(), 200 + r"\u{1b}".len() - 1);
    assert_eq!(
        reports[1..],
        [
            AgentReport::Ptz(PtzReport::Done {
                id: 3,
                state: state.clone()
            }),
            AgentReport::Ptz(PtzReport::Failed {
                id: 4,
                failure: PtzFailure::Refused,
                reason: r"no\npreset".into(),
            }),
            AgentReport::Ptz(PtzReport::Changed { state }),
        ]
    );
}

#[test]
fn a_second_hello_binary_data_or_a_bad_message_ends_the_link() {
    let cases = [
        (
            Input::Text(&hello(PROTOCOL_VERSION, "/live")).to_owned_case(),
            CloseCode::Protocol,
        ),
        (OwnedInput::Binary, CloseCode::Unsupported),
        (
            OwnedInput::Text(r#"{"type":"format_disk"}"#.into()),
            CloseCode::Policy,
        ),
    ];
    for (input, code) in cases {
        let t0 = Instant::now();
        let mut s = open_relay(t0);
        s.handle_input(input.as_input(), t0);
        let out = drain_relay(&mut s);
        assert_eq!(out.len(), 1, "{input:?}: {out:?}");
        assert_eq!(relay_end(&out).close.as_ref().unwrap().0, code, "{input:?}");
        s.handle_input(Input::Text(&text(&AgentMessage::Heartbeat { seq: 1 })), t0);
        assert!(drain_relay(&mut s).is_empty(), "nothing after the end");
    }
}

#[derive(Debug)]
enum OwnedInput {
    Text(String),
    Binary,
}

impl OwnedInput {
    fn as_input(&self) -> Input<'_> {
        match self {
            OwnedInput::Text(t) => Input::Text(t),
            OwnedInput::Binary => Input::Binary,
        }
    }
}

trait ToOwnedCase {
    fn to_owned_case(self) -> OwnedInput;
}

impl ToOwnedCase for Input<'_> {
    fn to_owned_case(self) -> OwnedInput {
        match self {
            Input::Text(t) => OwnedInput::Text(t.to_owned()),
            _ => OwnedInput::Binary,
        }
    }
}

#[test]
fn orders_wait_for_the_welcome_and_a_close_tells_the_agent_why() {
    let t0 = Instant::now();
    let mut s = RelaySession::new(CAMERA, BEAT, t0);
    s.send(RelayMessage::HeartbeatAck { seq: 1 });
    assert!(
        drain_relay(&mut s).is_empty(),
        "nothing is sent before hello"
    );
    let mut s = open_relay(t0);
    s.close(CloseCode::Policy, "the agent token was revoked");
    let out = drain_relay(&mut s);
    let end = relay_end(&out);
    assert_eq!(
        end.close,
        Some((CloseCode::Policy, "the agent token was revoked".into()))
    );
    assert!(end.orderly);
    s.close(CloseCode::Normal, "again");
    assert!(drain_relay(&mut s).is_empty(), "a session ends once");
}

#[test]
fn a_close_reason_is_cut_to_what_a_close_frame_carries() {
    let t0 = Instant::now();
    let mut s = open_relay(t0);
    s.close(CloseCode::Policy, &"é".repeat(100));
    let out = drain_relay(&mut s);
    let (_, reason) = relay_end(&out).close.clone().unwrap();
    assert_eq!(reason.len(), 122, "cut on a character boundary");
}

/// An agent session past the welcome (heartbeat `BEAT`), its outputs drained.
fn open_agent(t0: Instant) -> AgentSession {
    let mut s = AgentSession::new("eyeward-agent 0.1.0".into(), "/live".into(), t0);
    let welcome = RelayMessage::Welcome {
        version: PROTOCOL_VERSION,
        camera_id: CAMERA,
        heartbeat_ms: 4000,
    };
    s.handle_input(Input::Text(&text(&welcome)), t0);
    drain_agent(&mut s);
    s
}

#[test]
fn the_agent_says_hello_first_and_beats_from_the_welcome_on() {
    let t0 = Instant::now();
    let mut s = AgentSession::new("eyeward-agent 0.1.0".into(), "/live".into(), t0);
    assert_eq!(
        drain_agent(&mut s),
        [AgentOutput::Send(AgentMessage::Hello {
            version: PROTOCOL_VERSION,
            agent: "eyeward-agent 0.1.0".into(),
            rtsp_path: "/live".into(),
        })]
    );
    let welcome = RelayMessage::Welcome {
        version: PROTOCOL_VERSION,
        camera_id: CAMERA,
        heartbeat_ms: 4000,
    };
    s.handle_input(Input::Text(&text(&welcome)), t0);
    assert_eq!(
        drain_agent(&mut s),
        [
            AgentOutput::Up {
                camera: CAMERA,
                heartbeat: BEAT
            },
            AgentOutput::Send(AgentMessage::Heartbeat { seq: 1 }),
        ]
    );
    assert_eq!(s.poll_timeout(), Some(t0 + BEAT));
    s.handle_timeout(t0 + BEAT - Duration::from_millis(1));
    assert!(drain_agent(&mut s).is_empty());
    s.handle_timeout(t0 + BEAT);
    assert_eq!(
        drain_agent(&mut s),
        [AgentOutput::Send(AgentMessage::Heartbeat { seq: 2 })]
    );
}

#[test]
fn a_late_driver_gets_one_heartbeat_not_a_burst() {
    let t0 = Instant::now();
    let mut s = open_agent(t0);
    s.handle_input(Input::Control, t0 + 2 * BEAT);
    s.handle_timeout(t0 + 2 * BEAT);
    assert_eq!(
        drain_agent(&mut s),
        [AgentOutput::Send(AgentMessage::Heartbeat { seq: 2 })]
    );
    assert_eq!(s.poll_timeout(), Some(t0 + 3 * BEAT));
}

#[test]
fn the_agent_takes_only_heartbeats_a_link_can_live_with() {
    for (asked_ms, got) in [
        (1, HEARTBEAT_RANGE.0),
        (3_600_000, HEARTBEAT_RANGE.1),
        (4000, BEAT),
    ] {
        let t0 = Instant::now();
        let mut s = AgentSession::new("a".into(), "/live".into(), t0);
        let welcome = RelayMessage::Welcome {
            version: PROTOCOL_VERSION,
            camera_id: CAMERA,
            heartbeat_ms: asked_ms,
        };
        s.handle_input(Input::Text(&text(&welcome)), t0);
        assert!(
            drain_agent(&mut s).contains(&AgentOutput::Up {
                camera: CAMERA,
                heartbeat: got
            }),
            "{asked_ms}"
        );
    }
}

#[test]
fn an_agent_without_welcome_or_with_a_silent_relay_gives_up() {
    let t0 = Instant::now();
    let mut s = AgentSession::new("a".into(), "/live".into(), t0);
    drain_agent(&mut s);
    s.handle_timeout(t0 + HELLO_TIMEOUT);
    assert_eq!(agent_end(&drain_agent(&mut s)).reason, "no welcome in time");

    let mut s = open_agent(t0);
    let mut now = t0;
    for seq in 1..=5 {
        now += BEAT;
        s.handle_timeout(now);
        s.handle_input(Input::Text(&text(&RelayMessage::HeartbeatAck { seq })), now);
    }
    let silent = now + link_timeout(BEAT);
    s.handle_timeout(silent - Duration::from_millis(1));
    assert!(
        !drain_agent(&mut s)
            .iter()
            .any(|o| matches!(o, AgentOutput::End(_)))
    );
    s.handle_timeout(silent);
    let out = drain_agent(&mut s);
    let end = agent_end(&out);
    assert_eq!(end.reason, "the relay went silent");
    assert!(!end.orderly);
}

#[test]
fn the_relays_orders_are_passed_on_with_the_deadman_bounded() {
    let t0 = Instant::now();
    let mut s = open_agent(t0);
    let tunnel = TunnelId::from_random([2; 16]);
    let command = PtzCommand::Move {
        pan: 1.0,
        tilt: 0.0,
    };
    for deadman_ms in [1, 1000, 3_600_000] {
        s.handle_input(
            Input::Text(&text(&RelayMessage::Ptz {
                id: deadman_ms,
                command: command.clone(),
                deadman_ms,
            })),
            t0,
        );
    }
    s.handle_input(
        Input::Text(&text(&RelayMessage::OpenTunnel {
            tunnel: tunnel.clone(),
            to_camera: true,
        })),
        t0,
    );
    let ptz = |id, deadman| {
        AgentOutput::Order(RelayOrder::Ptz {
            id,
            command: command.clone(),
            deadman,
        })
    };
    assert_eq!(
        drain_agent(&mut s),
        [
            ptz(1, DEADMAN_RANGE.0),
            ptz(1000, Duration::from_secs(1)),
            ptz(3_600_000, DEADMAN_RANGE.1),
            AgentOutput::Order(RelayOrder::OpenTunnel {
                tunnel,
                to_camera: true
            }),
        ]
    );
}

#[test]
fn an_agent_ends_on_a_second_welcome_an_early_order_or_the_relays_close() {
    let t0 = Instant::now();
    let welcome = text(&RelayMessage::Welcome {
        version: PROTOCOL_VERSION,
        camera_id: CAMERA,
        heartbeat_ms: 4000,
    });
    let mut s = open_agent(t0);
    s.handle_input(Input::Text(&welcome), t0);
    assert_eq!(
        agent_end(&drain_agent(&mut s)).reason,
        "the relay said welcome twice"
    );

    let mut s = AgentSession::new("a".into(), "/live".into(), t0);
    drain_agent(&mut s);
    let ack = text(&RelayMessage::HeartbeatAck { seq: 1 });
    s.handle_input(Input::Text(&ack), t0);
    assert_eq!(
        agent_end(&drain_agent(&mut s)).reason,
        "expected welcome, got heartbeat_ack"
    );

    let mut s = open_agent(t0);
    s.handle_input(Input::Closed, t0);
    let out = drain_agent(&mut s);
    assert!(agent_end(&out).orderly, "the relay may close the link");

    let mut s = open_agent(t0);
    s.handle_input(Input::Failed("connection reset"), t0);
    let out = drain_agent(&mut s);
    assert_eq!(agent_end(&out).reason, "connection reset");
    assert!(!agent_end(&out).orderly, "a failure is no close");
}

#[test]
fn reports_wait_for_the_link_and_long_reasons_are_cut() {
    let t0 = Instant::now();
    let failed = |reason: String| AgentMessage::PtzFailed {
        id: 1,
        failure: PtzFailure::Unavailable,
        reason,
    };
    let mut s = AgentSession::new("a".into(), "/live".into(), t0);
    drain_agent(&mut s);
    s.report(failed("early".into()));
    assert!(drain_agent(&mut s).is_empty(), "nothing before the welcome");

    let mut s = open_agent(t0);
    s.report(failed("\u{1}".repeat(MAX_MESSAGE_BYTES)));
    let out = drain_agent(&mut s);
    let [AgentOutput::Send(sent)] = &out[..] else {
        panic!("{out:?}");
    };
    assert!(super::super::encode(sent).len() <= MAX_MESSAGE_BYTES);
}

#[test]
fn both_ends_keep_a_link_up_for_an_hour_and_the_relay_notices_a_dead_agent() {
    let t0 = Instant::now();
    let mut relay = RelaySession::new(CAMERA, BEAT, t0);
    let mut agent = AgentSession::new("a".into(), "/live".into(), t0);
    let mut now = t0;
    let mut online = false;
    let mut agent_alive = true;
    while now < t0 + Duration::from_secs(3600 + 60) {
        if now >= t0 + Duration::from_secs(3600) {
            agent_alive = false;
        }
        let mut moved = true;
        while moved {
            moved = false;
            while agent_alive && let Some(out) = agent.poll_output() {
                moved = true;
                match out {
                    AgentOutput::Send(m) => relay.handle_input(Input::Text(&text(&m)), now),
                    AgentOutput::Up { .. } => {}
                    other => panic!("{other:?}"),
                }
            }
            while let Some(out) = relay.poll_output() {
                moved = true;
                match out {
                    RelayOutput::Send(m) => agent.handle_input(Input::Text(&text(&m)), now),
                    RelayOutput::Up { .. } => online = true,
                    RelayOutput::End(end) => {
                        assert!(!agent_alive, "ended while the agent beat: {end:?}");
                        assert_eq!(end.reason, "heartbeats stopped");
                        assert!(now <= t0 + Duration::from_secs(3600) + link_timeout(BEAT));
                        return;
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        assert!(online);
        let agent_wakes = agent.poll_timeout().filter(|_| agent_alive);
        now = [relay.poll_timeout(), agent_wakes]
            .into_iter()
            .flatten()
            .min()
            .unwrap()
            .max(now);
        relay.handle_timeout(now);
        if agent_alive {
            agent.handle_timeout(now);
        }
    }
    panic!("the relay never noticed the agent was gone");
}
