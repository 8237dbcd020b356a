//! What each fuzz target does with its input: call one of eyeward's parsers the way the
//! service does, and check what must hold of whatever it accepts. `cargo fuzz` runs these
//! (`fuzz_targets/`), and the main workspace's `tests/fuzz_corpora.rs` replays every kept
//! input through the very same functions in `.ci/run`.

use axum::http::Uri;
use eyeward::CameraId;
use eyeward::link::{AgentMessage, RelayMessage, decode, encode};
use std::str;

/// A fuzz target's body: one input, which it must take without panicking.
pub type Target = fn(&[u8]);

/// Every target: its name (the corpus folder) and its body.
pub const TARGETS: &[(&str, Target)] = &[
    ("link_message", link_message),
    ("event_upload", event_upload),
    ("whep_offer", whep_offer),
    ("config", config),
    ("onvif_reply", onvif_reply),
    ("h264", h264),
    ("camera_source", camera_source),
    ("camera_stream", camera_stream),
    ("viewer_datagram", viewer_datagram),
    ("viewer_connection", viewer_connection),
    ("agent_rtsp_server", agent_rtsp_server),
];

/// A message on the agent-relay link, either way; whatever decodes re-encodes to itself.
pub fn link_message(data: &[u8]) {
    let Ok(text) = str::from_utf8(data) else {
        return;
    };
    if let Ok(msg) = decode::<AgentMessage>(text) {
        assert_eq!(decode::<AgentMessage>(&encode(&msg)).ok(), Some(msg));
    }
    if let Ok(msg) = decode::<RelayMessage>(text) {
        assert_eq!(decode::<RelayMessage>(&encode(&msg)).ok(), Some(msg));
    }
    let _ = eyeward::link::check_rtsp_path(text);
}

/// An agent's event upload: the query string, then (after a NUL byte) the snapshot. An
/// accepted motion event's region lies inside its picture.
pub fn event_upload(data: &[u8]) {
    let (query, body) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], Some(data[at + 1..].to_vec())),
        None => (data, None),
    };
    let Ok(query) = str::from_utf8(query) else {
        return;
    };
    let Ok(uri) = format!("/agent/v1/events?{query}").parse::<Uri>() else {
        return;
    };
    let Ok(upload) =
        eyeward_relay::http::extract::ApiQuery::<eyeward::upload::UploadQuery>::from_uri(&uri)
    else {
        return;
    };
    if let Ok((event, Some(jpeg))) = eyeward_relay::events::accept(
        CameraId(1),
        &upload,
        body,
        u64::MAX,
        eyeward::UnixMillis(1_800_000_000_000),
    ) {
        let [x, y, w, h] = event.bbox;
        assert!(u64::from(x) + u64::from(w) <= u64::from(event.width));
        assert!(u64::from(y) + u64::from(h) <= u64::from(event.height));
        assert_eq!(event.snapshot_bytes, jpeg.len());
    }
}

/// A viewer's WHEP offer, as the relay reads it before making any WebRTC state.
pub fn whep_offer(data: &[u8]) {
    if let Ok(sdp) = str::from_utf8(data) {
        let _ = eyeward_relay::whep::parse_offer(sdp);
    }
}

/// A datagram on the viewers' shared port, from anyone: routed to a viewer only when it is an
/// ICE check naming that viewer (or comes from an address such a check came from).
pub fn viewer_datagram(data: &[u8]) {
    use eyeward_relay::whep::demux::{Datagram, Demux, stun_username_ufrag};
    let demux = Demux::default();
    let mut inbox = demux.register("relayUfrag");
    let from = std::net::SocketAddr::from(([192, 0, 2, 1], 50000));
    demux.route(Datagram {
        local: from,
        from,
        data: data.to_vec(),
        tcp: None,
    });
    let named = stun_username_ufrag(data) == Some("relayUfrag");
    assert_eq!(inbox.try_recv().is_ok(), named);
}

/// A datagram on a viewer's connection from the address its authentic ICE check came from,
/// so that DTLS and SRTCP reach their parsers: whatever it is, the connection answers only
/// that address, and no handshake completes from one datagram.
pub fn viewer_connection(data: &[u8]) {
    use eyeward_relay::whep::peer::{Peer, PeerEvent, PeerSettings, TransportProtocol};
    use std::sync::OnceLock;
    static SETTINGS: OnceLock<PeerSettings> = OnceLock::new();
    let settings = SETTINGS.get_or_init(|| PeerSettings {
        certificate: eyeward_relay::whep::certificate().expect("certificate"),
        candidates: vec![RELAY],
        tcp_candidates: Vec::new(),
        max_segments: 1,
        wall_clock: (eyeward::clock::monotonic(), std::time::Duration::ZERO),
    });
    let offer = eyeward_relay::whep::parse_offer(VIEWER_OFFER).expect("offer");
    let now = eyeward::clock::monotonic();
    let (mut peer, answer) = Peer::answer(settings, &offer, now).expect("answer");
    let password = answer
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-pwd:"))
        .expect("the answer's ICE password");
    let check = viewer_check(&format!("{}:viewer", peer.ufrag()), password);
    let viewer = std::net::SocketAddr::from(([192, 0, 2, 1], 50000));
    peer.handle_datagram(now, TransportProtocol::UDP, RELAY, viewer, &check);
    peer.handle_datagram(now, TransportProtocol::UDP, RELAY, viewer, data);
    peer.handle_timeout(now + std::time::Duration::from_secs(1));
    let mut answered = 0;
    while let Some(transmit) = peer.poll_transmit() {
        assert_eq!((transmit.to, transmit.from), (viewer, RELAY));
        answered += 1;
    }
    assert!(answered >= 1, "the check was answered");
    while let Some(event) = peer.poll_event() {
        assert_ne!(event, PeerEvent::Connected);
    }
}

const RELAY: std::net::SocketAddr = std::net::SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)),
    3478,
);

/// A browser's offer, as much of it as the relay reads.
const VIEWER_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
    a=group:BUNDLE 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
    a=ice-ufrag:viewer\r\na=ice-pwd:viewerpasswordviewerpassword\r\n\
    a=fingerprint:sha-256 0A:0B:0C\r\na=setup:actpass\r\na=recvonly\r\na=rtcp-mux\r\n\
    a=rtpmap:102 H264/90000\r\n\
    a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n";

/// The viewer's nominating ICE check, signed with the relay's `password`.
fn viewer_check(username: &str, password: &str) -> Vec<u8> {
    use rtc::stun::{fingerprint, integrity, message, textattrs};
    let provider = rtc::crypto::default_provider().expect("crypto");
    let mut check = message::Message::new();
    check
        .build(&[
            Box::new(message::BINDING_REQUEST),
            Box::new(message::TransactionId::new()),
            Box::new(textattrs::TextAttribute::new(
                rtc::stun::attributes::ATTR_USERNAME,
                username.to_owned(),
            )),
            Box::new(rtc::ice::attributes::use_candidate::UseCandidateAttr::new()),
            Box::new(
                integrity::MessageIntegrity::new_short_term_integrity_with_provider(
                    password.to_owned(),
                    provider.crypto(),
                ),
            ),
            Box::new(fingerprint::FINGERPRINT),
        ])
        .expect("check");
    check.raw
}

/// A config file, for the relay and for the agent.
pub fn config(data: &[u8]) {
    if let Ok(text) = str::from_utf8(data) {
        let _ = eyeward_relay::config::Config::parse(text);
        let _ = eyeward_agent::config::AgentConfig::parse(text);
    }
}

/// A camera's ONVIF answer, read as each kind of answer the agent expects.
pub fn onvif_reply(data: &[u8]) {
    use eyeward_agent::onvif::reply;
    let Ok(xml) = str::from_utf8(data) else {
        return;
    };
    let _ = reply::service_addresses(xml);
    let _ = reply::profile_token(xml);
    if let Ok(status) = reply::status(xml) {
        assert!(status.position.pan.is_finite() && status.position.tilt.is_finite());
    }
    let _ = reply::preset_token(xml);
    let _ = reply::presets(xml);
    let _ = reply::fault_reason(xml);
}

/// A camera's H.264: an AVCC frame turned into Annex B and cut into RTP payloads, and an
/// `avcC` record's parameter sets. Nothing comes out larger than what went in, but for the
/// start codes.
pub fn h264(data: &[u8]) {
    use eyeward_relay::ingest::h264;
    let mut annex_b = Vec::new();
    if h264::avcc_to_annex_b(data, &mut annex_b).is_ok() && !annex_b.is_empty() {
        assert!(annex_b.len() <= data.len());
        let _ = h264::rtp_payloads(&bytes::Bytes::from(annex_b));
    }
    if let Some(sets) = h264::parameter_sets_from_avcc(data) {
        assert!(sets.len() <= data.len() * 2);
    }
}

/// A camera source as an admin types it, checked against the default policy: its URL keeps
/// no credentials (they are held apart) and its printed form shows no password.
pub fn camera_source(data: &[u8]) {
    let Ok(text) = str::from_utf8(data) else {
        return;
    };
    if let Ok(eyeward::CameraSource::Rtsp(source)) = eyeward::CameraSource::parse(text) {
        let _ = eyeward::SourcePolicy::default().check_source(&source);
        let url = url::Url::parse(source.url()).expect("a parsed source's URL parses");
        assert!(url.username().is_empty() && url.password().is_none());
        if source.password().is_some() {
            assert!(format!("{source:?}").contains("password: Some(\"<redacted>\")"));
        }
    }
}

/// What a camera sends the relay's RTSP client (replies and interleaved packets), read in
/// pieces of the input's first byte: a guard passing heads as they came passes on what came,
/// byte for byte (a head held back until whole); a guard rewriting each head's `Transport`
/// (as for a direct camera over UDP) takes the same pieces; both stop at a picture past their
/// bound.
pub fn camera_stream(data: &[u8]) {
    use eyeward_relay::ingest::frames::{FrameGuard, pass_head};
    use eyeward_relay::ingest::transport::{self, Ports};
    let Some((&piece, stream)) = data.split_first() else {
        return;
    };
    let source = std::net::IpAddr::from([192, 0, 2, 7]);
    let mut rewrite = |head: &[u8], out: &mut Vec<u8>| {
        let ports = Ports {
            rtp: 4000,
            rtcp: 4001,
        };
        if transport::udp_setup_request(head).is_some() {
            out.extend(transport::with_client_ports(head, ports));
        } else {
            let answered = transport::udp_setup_reply(head).map(|_| (ports, ports));
            out.extend(transport::with_source(head, source, answered));
        }
        Ok(())
    };
    let mut plain = FrameGuard::new(4096);
    let mut rewriting = FrameGuard::new(4096);
    let (mut passed, mut rewritten) = (Vec::new(), Vec::new());
    let mut fed = 0;
    for chunk in stream.chunks(usize::from(piece.max(1))) {
        let plain_ok = plain.feed_into(chunk, &mut passed, &mut pass_head).is_ok();
        let rewriting_ok = rewriting
            .feed_into(chunk, &mut rewritten, &mut rewrite)
            .is_ok();
        assert_eq!(plain_ok, rewriting_ok, "the same bytes, the same verdict");
        if !plain_ok {
            return;
        }
        fed += chunk.len();
    }
    assert!(stream[..fed].starts_with(&passed));
}

/// The agent's own RTSP server for a tunnel: the client's bytes, in pieces, with frames put
/// in between (the input's tail, as an Annex B frame of H.264 or H.265). Whatever comes in,
/// each request gets at most one answer, and no RTP goes out before PLAY.
pub fn agent_rtsp_server(data: &[u8]) {
    use eyeward_agent::gop::{CodedFrame, ParameterSets, VideoCodec};
    use eyeward_agent::restream::Restream;
    use std::sync::Arc;
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let (client, frame) = rest.split_at(usize::from(cut).min(rest.len()) * rest.len() / 256);
    let ps = if cut & 2 == 0 {
        ParameterSets {
            codec: VideoCodec::H264,
            vps: None,
            sps: vec![0x67, 0x42, 0xc0, 0x1f],
            pps: vec![0x68, 0xce, 0x3c],
        }
    } else {
        ParameterSets {
            codec: VideoCodec::H265,
            vps: Some(vec![0x40, 0x01, 0x0c]),
            sps: vec![0x42, 0x01, 0x01],
            pps: vec![0x44, 0x01, 0xc1],
        }
    };
    let mut server = Restream::new(&ps, 7);
    let frame = Arc::new(CodedFrame {
        pts: std::time::Duration::from_millis(u64::from(cut)),
        is_key: cut % 2 == 0,
        codec: ps.codec,
        data: frame.to_vec(),
        session: u64::from(cut % 3),
    });
    for piece in client.chunks(usize::from(cut).max(1)) {
        let was_playing = server.playing();
        if server.handle_bytes(piece).is_err() {
            return;
        }
        server.send_cached(std::slice::from_ref(&frame));
        server.send_live(&frame);
        let out = server.take_output();
        if !was_playing && !server.playing() {
            assert!(!out.starts_with(b"$"), "RTP before PLAY");
        }
        let answers = out.windows(9).filter(|w| w == b"RTSP/1.0 ").count();
        let requests = piece.windows(8).filter(|w| w == b"RTSP/1.0").count();
        assert!(
            answers <= requests + 1,
            "{answers} answers to {requests} requests"
        );
        assert!(
            out.len() <= 64 * 1024 + frame.data.len() * 3,
            "output bounded"
        );
    }
}
