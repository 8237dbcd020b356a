//! The agent's own RTSP server for one tunnel: when the relay pulls the camera through the
//! agent and the agent's decoder already reads the camera's stream, the relay is answered
//! here instead of by the camera, and its first frames are the current group of pictures
//! ([`crate::gop`]) at once, then the camera's frames as they come. A camera makes a new
//! session wait for its encoder's next keyframe (2–4 s on many); this does not.
//!
//! One client (the relay's RTSP client, over the tunnel): OPTIONS, DESCRIBE (an SDP from the
//! stream's parameter sets), SETUP (RTP interleaved on the connection only), PLAY,
//! GET_PARAMETER/SET_PARAMETER as keep-alives, TEARDOWN. H.264 goes out as RFC 6184 RTP (single
//! NAL units and FU-A), H.265 as RFC 7798 RTP (single NAL units and FUs). The group's frames are stamped 1 ms apart, so the viewer's decoder
//! catches up on them at once rather than playing them out seconds behind; live frames keep
//! the camera's spacing after them. Plain code over bytes and frames: no sockets here.

use crate::gop::{CodedFrame, ParameterSets, VideoCodec, nal_units};
use crate::rtsp_framing::{Framer, Unit, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::sync::Arc;

/// What the driver has to do after the client's bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// PLAY was answered: send the group so far, then live frames.
    Play,
    /// The client ended the session: close the tunnel once the output is sent.
    Teardown,
}

/// Between the group's frames: 1 ms of 90 kHz ticks, as the relay stamps its own cache.
const CACHED_FRAME_TICKS: u32 = 90;
/// After a new camera session (its times start again), until its frames' own spacing.
const RESTART_TICKS: u32 = 3000;
/// The largest RTP payload: the tunnel is TCP, but the relay re-packetizes anyway.
const MAX_PAYLOAD_BYTES: usize = 1400;
const PAYLOAD_TYPE: u8 = 96;
/// The session's time-out announced, in seconds (the client's keep-alives come within it).
const SESSION_TIMEOUT_S: u32 = 60;
/// NAL unit types not sent, as the relay does: SEI and access unit delimiters (H.264's 6
/// and 9; H.265's 39 and 40, and 35).
const DROPPED_H264_TYPES: [u8; 2] = [6, 9];
const DROPPED_H265_TYPES: [u8; 3] = [35, 39, 40];
/// The fragmentation unit's type: FU-A in H.264, FU in H.265.
const H264_FU_A: u8 = 28;
const H265_FU: u8 = 49;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Init,
    /// SETUP answered: RTP on this interleaved channel.
    Ready {
        channel: u8,
    },
    Playing {
        channel: u8,
    },
    Ended,
}

/// One tunnel's RTSP session, served from the agent's group of pictures.
pub struct Restream {
    framer: Framer,
    codec: VideoCodec,
    sdp: String,
    session_id: String,
    ssrc: u32,
    seq: u16,
    state: State,
    stamps: Restamp,
    /// Live frames are skipped until a keyframe (after falling behind, or a new camera
    /// session that began mid-group).
    waiting_for_key: bool,
    out: Vec<u8>,
}

/// Output RTP times from frames' presentation times.
struct Restamp {
    /// The time of the last frame sent (before any, the time the first will have).
    last: u32,
    /// The camera session the offset is for, and what is added to its frames' times; `None`
    /// until a frame is sent.
    offset: Option<(u64, u32)>,
}

fn ticks(frame: &CodedFrame) -> u32 {
    // 90 kHz, wrapping as RTP times do.
    (frame.pts.as_nanos() * 9 / 100_000) as u32
}

impl Restamp {
    fn cached(&mut self, frame: &CodedFrame) -> u32 {
        if self.offset.is_some() {
            self.last = self.last.wrapping_add(CACHED_FRAME_TICKS);
        }
        self.offset = Some((frame.session, self.last.wrapping_sub(ticks(frame))));
        self.last
    }

    fn live(&mut self, frame: &CodedFrame) -> u32 {
        let offset = match self.offset {
            Some((session, offset)) if session == frame.session => offset,
            _ => {
                let start = match self.offset {
                    None => self.last,
                    Some(_) => self.last.wrapping_add(RESTART_TICKS),
                };
                let offset = start.wrapping_sub(ticks(frame));
                self.offset = Some((frame.session, offset));
                offset
            }
        };
        self.last = ticks(frame).wrapping_add(offset);
        self.last
    }
}

impl Restream {
    /// A session for a stream with `parameter_sets`; `random` seeds its session id, SSRC,
    /// first sequence number and first time (RFC 3550 wants them unpredictable).
    pub fn new(parameter_sets: &ParameterSets, random: u64) -> Restream {
        Restream {
            framer: Framer::default(),
            codec: parameter_sets.codec,
            sdp: sdp(parameter_sets, random),
            session_id: format!("{:016x}", random.rotate_left(17) ^ 0x5eed),
            ssrc: (random >> 32) as u32,
            seq: random as u16,
            state: State::Init,
            stamps: Restamp {
                last: (random >> 16) as u32,
                offset: None,
            },
            waiting_for_key: false,
            out: Vec::new(),
        }
    }

    /// Takes bytes from the client; answers go to the output. `Err` when the bytes are not
    /// RTSP or exceed the bounds: the tunnel should be closed.
    pub fn handle_bytes(&mut self, data: &[u8]) -> Result<Vec<Event>, String> {
        self.framer.push(data);
        let mut events = Vec::new();
        while let Some(unit) = self.framer.next_unit()? {
            // RTCP receiver reports from the client: nothing to do with them.
            let Unit::Message { head, .. } = unit else {
                continue;
            };
            if let Some(event) = self.request(&head)? {
                events.push(event);
            }
        }
        Ok(events)
    }

    fn request(&mut self, head: &str) -> Result<Option<Event>, String> {
        let line = head.split("\r\n").next().unwrap_or_default();
        let mut parts = line.split(' ');
        let (method, url) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        if parts.next() != Some("RTSP/1.0") {
            return Err("not an RTSP/1.0 request".into());
        }
        let cseq = header(head, "cseq")
            .filter(|c| c.bytes().all(|b| b.is_ascii_digit()) && !c.is_empty())
            .ok_or("request without a CSeq")?
            .to_owned();
        let session_ok = header(head, "session")
            .is_some_and(|s| s.split(';').next().map(str::trim) == Some(&self.session_id));
        let session = format!(
            "Session: {};timeout={SESSION_TIMEOUT_S}\r\n",
            self.session_id
        );
        let (status, headers, body, event) = match method {
            "OPTIONS" => (
                "200 OK",
                "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER\r\n"
                    .to_owned(),
                String::new(),
                None,
            ),
            "DESCRIBE" => {
                let base = if url.ends_with('/') {
                    url.to_owned()
                } else {
                    format!("{url}/")
                };
                (
                    "200 OK",
                    format!("Content-Base: {base}\r\nContent-Type: application/sdp\r\n"),
                    self.sdp.clone(),
                    None,
                )
            }
            "SETUP" => match (self.state, interleaved_channel(head)) {
                (State::Init, Some(channel)) => {
                    self.state = State::Ready { channel };
                    (
                        "200 OK",
                        format!(
                            "Transport: RTP/AVP/TCP;unicast;interleaved={channel}-{};ssrc={:08X}\r\n{session}",
                            channel + 1,
                            self.ssrc
                        ),
                        String::new(),
                        None,
                    )
                }
                (State::Init, None) => (
                    "461 Unsupported Transport",
                    String::new(),
                    String::new(),
                    None,
                ),
                _ => (
                    "455 Method Not Valid in This State",
                    String::new(),
                    String::new(),
                    None,
                ),
            },
            "PLAY" if !session_ok => (
                "454 Session Not Found",
                String::new(),
                String::new(),
                None,
            ),
            "PLAY" => match self.state {
                State::Ready { channel } => {
                    self.state = State::Playing { channel };
                    (
                        "200 OK",
                        format!(
                            "{session}Range: npt=now-\r\nRTP-Info: url={url};seq={};rtptime={}\r\n",
                            self.seq, self.stamps.last
                        ),
                        String::new(),
                        Some(Event::Play),
                    )
                }
                State::Playing { .. } => ("200 OK", session, String::new(), None),
                _ => (
                    "455 Method Not Valid in This State",
                    String::new(),
                    String::new(),
                    None,
                ),
            },
            "GET_PARAMETER" | "SET_PARAMETER" => ("200 OK", String::new(), String::new(), None),
            "TEARDOWN" => {
                self.state = State::Ended;
                ("200 OK", String::new(), String::new(), Some(Event::Teardown))
            }
            _ => (
                "501 Not Implemented",
                String::new(),
                String::new(),
                None,
            ),
        };
        let response = format!(
            "RTSP/1.0 {status}\r\nCSeq: {cseq}\r\nServer: eyeward-agent\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.out.extend_from_slice(response.as_bytes());
        Ok(event)
    }

    /// The group of pictures so far, from its keyframe: stamped close together.
    pub fn send_cached(&mut self, frames: &[Arc<CodedFrame>]) {
        for frame in frames {
            let ts = self.stamps.cached(frame);
            self.packetize(frame, ts);
        }
    }

    /// A live frame, unless live frames are being skipped to the next keyframe. A frame in
    /// another codec (the camera was set to another) ends the session: the client asks again.
    pub fn send_live(&mut self, frame: &CodedFrame) {
        if frame.codec != self.codec {
            self.state = State::Ended;
            return;
        }
        let new_session = self
            .stamps
            .offset
            .is_some_and(|(session, _)| session != frame.session);
        if new_session {
            self.waiting_for_key = true;
        }
        if self.waiting_for_key && !frame.is_key {
            return;
        }
        self.waiting_for_key = false;
        let ts = self.stamps.live(frame);
        self.packetize(frame, ts);
    }

    /// Frames were missed: what follows cannot be decoded until the next keyframe.
    pub fn skip_to_keyframe(&mut self) {
        self.waiting_for_key = true;
    }

    /// The session is playing (frames are wanted).
    pub fn playing(&self) -> bool {
        matches!(self.state, State::Playing { .. })
    }

    /// The client tore the session down.
    pub fn ended(&self) -> bool {
        self.state == State::Ended
    }

    /// The bytes to send to the client.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    fn packetize(&mut self, frame: &CodedFrame, ts: u32) {
        let State::Playing { channel } = self.state else {
            return;
        };
        let codec = self.codec;
        let dropped: &[u8] = match codec {
            VideoCodec::H264 => &DROPPED_H264_TYPES,
            VideoCodec::H265 => &DROPPED_H265_TYPES,
        };
        let header_len = match codec {
            VideoCodec::H264 => 1,
            VideoCodec::H265 => 2,
        };
        let units: Vec<&[u8]> = nal_units(&frame.data)
            .filter(|u| u.len() >= header_len && !dropped.contains(&codec.nal_type(u)))
            .collect();
        for (i, unit) in units.iter().enumerate() {
            let last_unit = i + 1 == units.len();
            if unit.len() <= MAX_PAYLOAD_BYTES {
                self.rtp(channel, ts, last_unit, &[unit]);
                continue;
            }
            // A fragmentation unit's own header: the unit's with the FU type (H.264: F and
            // NRI kept; H.265: F, layer and temporal id kept), then S, E and the unit's type.
            let fu_indicator: &[u8] = match codec {
                VideoCodec::H264 => &[(unit[0] & 0xe0) | H264_FU_A],
                VideoCodec::H265 => &[(unit[0] & 0x81) | (H265_FU << 1), unit[1]],
            };
            let body = &unit[header_len..];
            let chunks: Vec<&[u8]> = body.chunks(MAX_PAYLOAD_BYTES - header_len - 1).collect();
            for (j, chunk) in chunks.iter().enumerate() {
                let (start, end) = (j == 0, j + 1 == chunks.len());
                let fu_header =
                    (u8::from(start) << 7) | (u8::from(end) << 6) | codec.nal_type(unit);
                self.rtp(
                    channel,
                    ts,
                    last_unit && end,
                    &[fu_indicator, &[fu_header], chunk],
                );
            }
        }
    }

    /// One RTP packet, `$`-framed on `channel`.
    fn rtp(&mut self, channel: u8, ts: u32, marker: bool, payload: &[&[u8]]) {
        let len = 12 + payload.iter().map(|p| p.len()).sum::<usize>();
        self.out.push(b'$');
        self.out.push(channel);
        self.out.extend_from_slice(&(len as u16).to_be_bytes());
        self.out.push(0x80);
        self.out.push((u8::from(marker) << 7) | PAYLOAD_TYPE);
        self.out.extend_from_slice(&self.seq.to_be_bytes());
        self.out.extend_from_slice(&ts.to_be_bytes());
        self.out.extend_from_slice(&self.ssrc.to_be_bytes());
        for p in payload {
            self.out.extend_from_slice(p);
        }
        self.seq = self.seq.wrapping_add(1);
    }
}

/// The first channel of SETUP's `Transport: RTP/AVP/TCP;…;interleaved=a-b` (0 when the
/// client leaves the choice to the server); `None` for any other transport.
fn interleaved_channel(head: &str) -> Option<u8> {
    let transport = header(head, "transport")?;
    // Several transports may be offered, best first: take the first over TCP.
    transport.split(',').find_map(|spec| {
        let mut params = spec.trim().split(';');
        if !params.next()?.trim().eq_ignore_ascii_case("RTP/AVP/TCP") {
            return None;
        }
        match params.find_map(|p| p.trim().strip_prefix("interleaved=")) {
            None => Some(0),
            Some(range) => range
                .split('-')
                .next()?
                .parse::<u8>()
                .ok()
                .filter(|c| *c < 254 && c % 2 == 0),
        }
    })
}

/// The session description: one video stream, its parameter sets out of band too.
fn sdp(ps: &ParameterSets, random: u64) -> String {
    let format = match &ps.vps {
        Some(vps) if ps.codec == VideoCodec::H265 => format!(
            "a=rtpmap:{PAYLOAD_TYPE} H265/90000\r\n\
             a=fmtp:{PAYLOAD_TYPE} sprop-vps={};sprop-sps={};sprop-pps={}\r\n",
            STANDARD.encode(vps),
            STANDARD.encode(&ps.sps),
            STANDARD.encode(&ps.pps),
        ),
        _ => {
            let profile_level = ps
                .sps
                .get(1..4)
                .map(|p| format!("{:02X}{:02X}{:02X}", p[0], p[1], p[2]))
                .unwrap_or_else(|| "42C01F".into());
            format!(
                "a=rtpmap:{PAYLOAD_TYPE} H264/90000\r\n\
                 a=fmtp:{PAYLOAD_TYPE} packetization-mode=1;profile-level-id={profile_level};\
                 sprop-parameter-sets={},{}\r\n",
                STANDARD.encode(&ps.sps),
                STANDARD.encode(&ps.pps),
            )
        }
    };
    format!(
        "v=0\r\no=- {} 1 IN IP4 127.0.0.1\r\ns=eyeward-agent\r\nt=0 0\r\n\
         m=video 0 RTP/AVP {PAYLOAD_TYPE}\r\nc=IN IP4 0.0.0.0\r\n{format}\
         a=control:trackID=0\r\n",
        random >> 1,
    )
}

#[cfg(test)]
mod tests;
