//! The agent's RTSP server driven with requests and frames, its output read back as RTSP
//! responses and RTP packets.

use super::*;
use std::time::Duration;

const SPS: [u8; 4] = [0x67, 0x42, 0xc0, 0x1f];
const PPS: [u8; 3] = [0x68, 0xce, 0x3c];

fn parameter_sets() -> ParameterSets {
    ParameterSets {
        codec: VideoCodec::H264,
        vps: None,
        sps: SPS.to_vec(),
        pps: PPS.to_vec(),
    }
}

fn frame(ms: u64, is_key: bool, slice_bytes: usize, session: u64) -> CodedFrame {
    let mut data = Vec::new();
    if is_key {
        data.extend_from_slice(&[0, 0, 0, 1]);
        data.extend_from_slice(&SPS);
        data.extend_from_slice(&[0, 0, 0, 1]);
        data.extend_from_slice(&PPS);
    }
    // An SEI, which is not sent, then the slice.
    data.extend_from_slice(&[0, 0, 0, 1, 0x06, 5, 5]);
    data.extend_from_slice(&[0, 0, 0, 1, if is_key { 0x65 } else { 0x41 }]);
    data.extend((0..slice_bytes).map(|i| (i % 251) as u8 + 1));
    CodedFrame {
        pts: Duration::from_millis(ms),
        is_key,
        codec: VideoCodec::H264,
        data,
        session,
    }
}

/// What came out: responses (their heads and bodies) and RTP packets.
#[derive(Default)]
struct Read {
    responses: Vec<String>,
    packets: Vec<Rtp>,
}

#[derive(Debug)]
struct Rtp {
    channel: u8,
    marker: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: Vec<u8>,
}

fn read(mut out: &[u8]) -> Read {
    let mut read = Read::default();
    while !out.is_empty() {
        if out[0] == b'$' {
            let len = usize::from(u16::from_be_bytes([out[2], out[3]]));
            let p = &out[4..4 + len];
            assert_eq!(p[0], 0x80, "RTP version 2");
            assert_eq!(p[1] & 0x7f, 96);
            read.packets.push(Rtp {
                channel: out[1],
                marker: p[1] & 0x80 != 0,
                seq: u16::from_be_bytes([p[2], p[3]]),
                ts: u32::from_be_bytes(p[4..8].try_into().unwrap()),
                ssrc: u32::from_be_bytes(p[8..12].try_into().unwrap()),
                payload: p[12..].to_vec(),
            });
            out = &out[4 + len..];
        } else {
            let text = std::str::from_utf8(out).unwrap();
            let end = text.find("\r\n\r\n").unwrap() + 4;
            let len: usize = header(&text[..end], "content-length")
                .unwrap()
                .parse()
                .unwrap();
            read.responses.push(text[..end + len].to_owned());
            out = &out[end + len..];
        }
    }
    read
}

fn request(server: &mut Restream, text: &str) -> (Vec<Event>, String) {
    let events = server.handle_bytes(text.as_bytes()).unwrap();
    let mut read = read(&server.take_output());
    assert_eq!(read.responses.len(), 1, "one answer");
    (events, read.responses.remove(0))
}

/// OPTIONS, DESCRIBE, SETUP and PLAY as retina sends them; the SETUP answer's session.
fn play(server: &mut Restream) -> String {
    let url = "rtsp://127.0.0.1:554/live";
    let (_, r) = request(
        server,
        &format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
    );
    assert!(r.starts_with("RTSP/1.0 200 OK\r\nCSeq: 1\r\n"), "{r}");
    let (_, r) = request(
        server,
        &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n"),
    );
    assert!(
        r.contains("Content-Base: rtsp://127.0.0.1:554/live/\r\n"),
        "{r}"
    );
    match server.codec {
        VideoCodec::H264 => {
            assert!(r.contains("a=rtpmap:96 H264/90000"), "{r}");
            assert!(
                r.contains("profile-level-id=42C01F;sprop-parameter-sets=Z0LAHw==,aM48"),
                "{r}"
            );
        }
        VideoCodec::H265 => {
            assert!(r.contains("a=rtpmap:96 H265/90000"), "{r}");
            assert!(
                r.contains("a=fmtp:96 sprop-vps=QAEM;sprop-sps=QgEB;sprop-pps=RAHB\r\n"),
                "{r}"
            );
        }
    }
    let (_, r) = request(
        server,
        &format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        ),
    );
    assert!(
        r.contains("Transport: RTP/AVP/TCP;unicast;interleaved=0-1;ssrc="),
        "{r}"
    );
    let session = header(&r, "session")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (events, r) = request(
        server,
        &format!(
            "PLAY {url}/ RTSP/1.0\r\nCSeq: 4\r\nSession: {session}\r\nRange: npt=0.000-\r\n\r\n"
        ),
    );
    assert!(r.starts_with("RTSP/1.0 200 OK"), "{r}");
    assert_eq!(events, [Event::Play]);
    assert!(server.playing());
    r
}

/// The NAL units the packets carry, put together again (FU-A reassembled), per frame.
fn frames_of(packets: &[Rtp]) -> Vec<(u32, Vec<Vec<u8>>)> {
    frames_in(VideoCodec::H264, packets)
}

/// The NAL units the packets carry in `codec`, fragmentation units put together, per frame.
fn frames_in(codec: VideoCodec, packets: &[Rtp]) -> Vec<(u32, Vec<Vec<u8>>)> {
    let mut frames: Vec<(u32, Vec<Vec<u8>>)> = Vec::new();
    let mut in_frame = false;
    for p in packets {
        if !in_frame {
            frames.push((p.ts, Vec::new()));
        }
        let (ts, units) = frames.last_mut().unwrap();
        assert_eq!(*ts, p.ts, "one time per frame");
        let payload = &p.payload;
        if codec == VideoCodec::H264 && payload[0] & 0x1f == 28 {
            let (start, fu) = (payload[1] & 0x80 != 0, payload[1]);
            if start {
                units.push(vec![(payload[0] & 0xe0) | (fu & 0x1f)]);
            }
            units.last_mut().unwrap().extend_from_slice(&payload[2..]);
        } else if codec == VideoCodec::H265 && (payload[0] >> 1) & 0x3f == 49 {
            let (start, fu) = (payload[2] & 0x80 != 0, payload[2]);
            if start {
                units.push(vec![(payload[0] & 0x81) | ((fu & 0x3f) << 1), payload[1]]);
            }
            units.last_mut().unwrap().extend_from_slice(&payload[3..]);
        } else {
            units.push(p.payload.clone());
        }
        in_frame = !p.marker;
    }
    frames
}

#[test]
fn the_group_goes_out_at_once_one_millisecond_apart_then_live_frames_keep_their_spacing() {
    let mut server = Restream::new(&parameter_sets(), 0x1234_5678_9abc_def0);
    let reply = play(&mut server);
    let group = [
        frame(0, true, 3000, 0),
        frame(66, false, 100, 0),
        frame(133, false, 100, 0),
    ];
    server.send_cached(&group.map(Arc::new));
    server.send_live(&frame(200, false, 100, 0));
    server.send_live(&frame(266, false, 100, 0));
    let read = read(&server.take_output());
    let frames = frames_of(&read.packets);
    let ts: Vec<u32> = frames
        .iter()
        .map(|f| f.0.wrapping_sub(frames[0].0))
        .collect();
    // 133 ms to 200 ms is 6030 ticks; 200 ms to 266 ms, 5940.
    assert_eq!(ts, [0, 90, 180, 180 + 6030, 180 + 6030 + 5940]);
    let rtp_info = format!("rtptime={}", frames[0].0);
    assert!(
        reply.contains(&rtp_info),
        "PLAY's RTP-Info names the first time: {reply}"
    );
    // The keyframe: parameter sets in band, the slice whole again, the SEI left out.
    let key = &frames[0].1;
    assert_eq!(key.len(), 3);
    assert_eq!((key[0].as_slice(), key[1].as_slice()), (&SPS[..], &PPS[..]));
    assert_eq!(key[2].len(), 3001, "FU-A put back together");
    assert!(
        read.packets
            .iter()
            .all(|p| p.channel == 0 && p.ssrc == read.packets[0].ssrc)
    );
    let seqs: Vec<u16> = read.packets.iter().map(|p| p.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "{seqs:?}"
    );
    assert!(
        read.packets
            .iter()
            .all(|p| p.payload.len() <= MAX_PAYLOAD_BYTES)
    );
}

#[test]
fn an_h265_group_goes_out_as_rfc_7798_packets_with_its_parameter_sets_described() {
    let (vps, sps, pps) = ([0x40, 0x01, 0x0c], [0x42, 0x01, 0x01], [0x44, 0x01, 0xc1]);
    let sets = ParameterSets {
        codec: VideoCodec::H265,
        vps: Some(vps.to_vec()),
        sps: sps.to_vec(),
        pps: pps.to_vec(),
    };
    let unit = |u: &[u8]| [&[0, 0, 0, 1][..], u].concat();
    // An IDR slice (type 19) of 3000 bytes after the sets and a prefix SEI (39), which
    // is not sent; then a trailing picture (type 1).
    let idr: Vec<u8> = [0x26, 0x01]
        .into_iter()
        .chain((0..2998).map(|i| (i % 251) as u8 + 1))
        .collect();
    let key = [
        unit(&vps),
        unit(&sps),
        unit(&pps),
        unit(&[0x4e, 0x01, 5]),
        unit(&idr),
    ]
    .concat();
    let frame = |ms, is_key, data| CodedFrame {
        pts: Duration::from_millis(ms),
        is_key,
        codec: VideoCodec::H265,
        data,
        session: 0,
    };
    let mut server = Restream::new(&sets, 99);
    play(&mut server);
    server.send_cached(&[Arc::new(frame(0, true, key))]);
    server.send_live(&frame(66, false, unit(&[0x02, 0x01, 7, 7])));
    let read = read(&server.take_output());
    let frames = frames_in(VideoCodec::H265, &read.packets);
    assert_eq!(frames.len(), 2);
    let units: Vec<&[u8]> = frames[0].1.iter().map(Vec::as_slice).collect();
    assert_eq!(units, [&vps[..], &sps[..], &pps[..], &idr[..]]);
    assert_eq!(frames[1].1, [vec![0x02, 0x01, 7, 7]]);
    assert!(
        read.packets
            .iter()
            .all(|p| p.payload.len() <= MAX_PAYLOAD_BYTES)
    );
    // A frame in another codec ends the session: the relay asks again.
    server.send_live(&CodedFrame {
        codec: VideoCodec::H264,
        ..frame(133, true, Vec::new())
    });
    assert!(server.ended());
}

#[test]
fn nothing_is_sent_before_play() {
    let mut server = Restream::new(&parameter_sets(), 7);
    server.send_cached(&[Arc::new(frame(0, true, 10, 0))]);
    server.send_live(&frame(66, false, 10, 0));
    assert!(server.take_output().is_empty());
}

#[test]
fn after_falling_behind_live_frames_resume_at_a_keyframe() {
    let mut server = Restream::new(&parameter_sets(), 7);
    play(&mut server);
    server.send_cached(&[Arc::new(frame(0, true, 10, 0))]);
    server.skip_to_keyframe();
    server.send_live(&frame(66, false, 10, 0));
    server.send_live(&frame(4000, true, 10, 0));
    let frames = frames_of(&read(&server.take_output()).packets);
    assert_eq!(frames.len(), 2);
    assert_eq!(
        frames[1].0.wrapping_sub(frames[0].0),
        360_000,
        "the camera's spacing"
    );
}

#[test]
fn a_new_camera_session_continues_the_times_from_its_first_keyframe() {
    let mut server = Restream::new(&parameter_sets(), 7);
    play(&mut server);
    server.send_cached(&[Arc::new(frame(5000, true, 10, 0))]);
    // The agent's decoder opened the camera again: times start over, mid-group.
    server.send_live(&frame(10, false, 10, 1));
    server.send_live(&frame(80, true, 10, 1));
    server.send_live(&frame(146, false, 10, 1));
    let frames = frames_of(&read(&server.take_output()).packets);
    let ts: Vec<u32> = frames
        .iter()
        .map(|f| f.0.wrapping_sub(frames[0].0))
        .collect();
    assert_eq!(ts, [0, RESTART_TICKS, RESTART_TICKS + 5940]);
}

#[test]
fn setup_over_udp_is_refused_and_play_needs_the_session() {
    let mut server = Restream::new(&parameter_sets(), 7);
    let (_, r) = request(
        &mut server,
        "SETUP rtsp://a/live/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n",
    );
    assert!(r.starts_with("RTSP/1.0 461 "), "{r}");
    let (_, r) = request(
        &mut server,
        "SETUP rtsp://a/live/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP;unicast;client_port=5000-5001,RTP/AVP/TCP;unicast\r\n\r\n",
    );
    assert!(r.contains("interleaved=0-1"), "the TCP offer is taken: {r}");
    let (events, r) = request(
        &mut server,
        "PLAY rtsp://a/live RTSP/1.0\r\nCSeq: 3\r\nSession: 1\r\n\r\n",
    );
    assert!(r.starts_with("RTSP/1.0 454 "), "{r}");
    assert!(events.is_empty() && !server.playing());
}

#[test]
fn keep_alives_are_answered_and_teardown_ends_the_session() {
    let mut server = Restream::new(&parameter_sets(), 7);
    play(&mut server);
    let (_, r) = request(
        &mut server,
        "GET_PARAMETER rtsp://a/live RTSP/1.0\r\nCSeq: 9\r\n\r\n",
    );
    assert!(r.starts_with("RTSP/1.0 200 OK\r\nCSeq: 9\r\n"), "{r}");
    let (_, r) = request(
        &mut server,
        "RECORD rtsp://a/live RTSP/1.0\r\nCSeq: 10\r\n\r\n",
    );
    assert!(r.starts_with("RTSP/1.0 501 "), "{r}");
    let (events, _) = request(
        &mut server,
        "TEARDOWN rtsp://a/live RTSP/1.0\r\nCSeq: 11\r\n\r\n",
    );
    assert_eq!(events, [Event::Teardown]);
    assert!(server.ended());
}

#[test]
fn bytes_that_are_not_rtsp_end_the_session() {
    let mut server = Restream::new(&parameter_sets(), 7);
    assert!(
        server
            .handle_bytes(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .is_err()
    );
    let mut server = Restream::new(&parameter_sets(), 7);
    assert!(
        server.handle_bytes(b"OPTIONS * RTSP/1.0\r\n\r\n").is_err(),
        "no CSeq"
    );
    let mut server = Restream::new(&parameter_sets(), 7);
    assert!(
        server.handle_bytes(&vec![b'A'; 70_000]).is_err(),
        "head too long"
    );
    // An RTCP report interleaved by the client is passed over.
    let mut server = Restream::new(&parameter_sets(), 7);
    assert_eq!(
        server.handle_bytes(&[b'$', 1, 0, 2, 0x81, 0xc9]).unwrap(),
        []
    );
    assert!(server.take_output().is_empty());
}
