//! A viewer's SDP offer read, and the relay's answer written (JSEP, RFC 8829, for a relay
//! that only sends): one video section carries the camera's H.264 (or VP8 transcoded from
//! it, for a browser that offers no H.264; or an H.265 camera's own H.265, for a browser that
//! offers it, RFC 7798), one audio section (when
//! the offer has one the viewer can receive on) the camera's sound, in each format of Opus,
//! PCMU and PCMA the viewer takes (the relay sends whichever the camera's sound is, without
//! asking again); every other section is refused (port 0). The relay is ICE lite and the DTLS
//! server (`a=setup:passive`): the browser checks and connects; the relay answers.

use crate::fanout::{SoundCodec, VideoCodec};
use rtc::sdp::description::media::MediaDescription;
use rtc::sdp::description::session::SessionDescription;
use std::fmt::Write as _;
use std::net::SocketAddr;

/// The H.264 format the relay declares: constrained baseline, which every browser decodes
/// (the camera's own profile plays too: decoders follow the stream's parameter sets).
const H264_FMTP: &str = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";
/// The feedback the relay answers: retransmissions (NACK) and keyframe requests (PLI, FIR).
const FEEDBACK: [&str; 3] = ["nack", "nack pli", "ccm fir"];

/// What the relay needs of a viewer's offer.
#[derive(Debug, Clone)]
pub struct Offer {
    /// The viewer's ICE username fragment: its checks name it after the relay's.
    pub ice_ufrag: String,
    /// SHA-256 fingerprints of the certificate the viewer's DTLS may present, as bytes.
    pub fingerprints: Vec<Vec<u8>>,
    /// The video codec the viewer gets: H.264 when it takes it, else VP8.
    pub video_codec: VideoCodec,
    /// The RTP payload type the viewer gave it (for H.264, in packetization mode 1).
    pub payload_type: u8,
    /// The payload type and format parameters the viewer gave H.265, if it takes it.
    h265: Option<(u8, String)>,
    /// Whether the viewer takes reduced-size RTCP.
    rtcp_rsize: bool,
    sections: Vec<Section>,
    /// The section the camera's video goes in.
    video: usize,
    /// The section the camera's sound goes in, if any.
    sound: Option<SoundSection>,
}

/// The audio section of an offer, and the payload type the viewer gave each sound format
/// the relay sends.
#[derive(Debug, Clone)]
struct SoundSection {
    index: usize,
    formats: Vec<(SoundCodec, u8)>,
    /// The payload type the viewer's Opus would come in, when the section also sends
    /// (`sendrecv`): what the viewer says through the camera's speaker.
    speech: Option<u8>,
}

/// One `m=` section of the offer, as much as the answer repeats.
#[derive(Debug, Clone)]
struct Section {
    media: String,
    protocol: String,
    formats: String,
    mid: Option<String>,
}

/// Why an offer cannot be answered, in words for the viewer.
#[derive(Debug, PartialEq, Eq)]
pub struct OfferError(pub String);

fn refuse(why: impl Into<String>) -> OfferError {
    OfferError(why.into())
}

impl Offer {
    /// Reads an offer; those the relay cannot answer are refused with the reason.
    pub fn parse(sdp: &str) -> Result<Offer, OfferError> {
        let description = SessionDescription::unmarshal(&mut std::io::Cursor::new(sdp))
            .map_err(|e| refuse(format!("not an SDP offer: {e}")))?;
        let sections: Vec<Section> = description
            .media_descriptions
            .iter()
            .map(|m| Section {
                media: m.media_name.media.clone(),
                protocol: m.media_name.protos.join("/"),
                formats: m.media_name.formats.join(" "),
                mid: m.attribute("mid").flatten().map(str::to_owned),
            })
            .collect();
        let receivable = |kind: &str| {
            description
                .media_descriptions
                .iter()
                .enumerate()
                .find(|(_, m)| m.media_name.media == kind && receiving(m))
        };
        let (video, media) = receivable("video")
            .ok_or_else(|| refuse("the offer has no video section the relay can send to"))?;
        if sections[video].protocol != SRTP_PROTOCOL {
            return Err(refuse(format!(
                "the video section's transport is {}, not {SRTP_PROTOCOL}",
                sections[video].protocol
            )));
        }
        if sections[video].mid.is_none() {
            return Err(refuse("the video section has no a=mid"));
        }
        let attribute = |key: &str| {
            media
                .attribute(key)
                .flatten()
                .or_else(|| description.attribute(key).map(String::as_str))
        };
        let ice_ufrag = attribute("ice-ufrag")
            .filter(|u| !u.is_empty() && u.len() <= 256)
            .ok_or_else(|| refuse("the offer has no ICE username fragment"))?
            .to_owned();
        match attribute("setup") {
            Some("actpass" | "active") => {}
            other => {
                return Err(refuse(format!(
                    "the offer's DTLS role is {}: the viewer must connect (actpass or active)",
                    other.unwrap_or("missing")
                )));
            }
        }
        let fingerprints: Vec<Vec<u8>> = media
            .attributes
            .iter()
            .chain(&description.attributes)
            .filter(|a| a.key == "fingerprint")
            .filter_map(|a| {
                let (algorithm, value) = a.value.as_deref()?.split_once(' ')?;
                algorithm
                    .eq_ignore_ascii_case("sha-256")
                    .then(|| hex_with_colons(value))
                    .flatten()
            })
            .collect();
        if fingerprints.is_empty() {
            return Err(refuse("the offer has no SHA-256 certificate fingerprint"));
        }
        let mut codecs: Vec<_> = media.codecs().into_values().collect();
        codecs.sort_by_key(|c| c.payload_type);
        let h264 = |c: &&rtc::sdp::util::Codec| {
            c.name.eq_ignore_ascii_case("H264")
                && c.clock_rate == 90_000
                && c.fmtp
                    .split(';')
                    .any(|p| p.trim() == "packetization-mode=1")
        };
        let constrained_baseline = |c: &&rtc::sdp::util::Codec| {
            c.fmtp.split(';').any(|p| {
                p.trim()
                    .to_ascii_lowercase()
                    .starts_with("profile-level-id=42e0")
            })
        };
        let vp8 = |c: &&rtc::sdp::util::Codec| {
            c.name.eq_ignore_ascii_case("VP8") && c.clock_rate == 90_000
        };
        let h264 = codecs
            .iter()
            .filter(h264)
            .find(constrained_baseline)
            .or_else(|| codecs.iter().find(h264))
            .map(|c| (VideoCodec::H264, c.payload_type));
        let h265 = codecs
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case("H265") && c.clock_rate == 90_000)
            .map(|c| (c.payload_type, c.fmtp.clone()));
        let (video_codec, payload_type) = h264
            .or_else(|| {
                codecs
                    .iter()
                    .find(vp8)
                    .map(|c| (VideoCodec::Vp8, c.payload_type))
            })
            .ok_or_else(|| {
                refuse("the offer accepts neither H.264 (packetization mode 1) nor VP8")
            })?;
        let bundled = |i: usize| sections[i].protocol == SRTP_PROTOCOL && sections[i].mid.is_some();
        let sound = receivable("audio")
            .filter(|(i, _)| bundled(*i))
            .and_then(|(index, m)| {
                let formats: Vec<(SoundCodec, u8)> = SoundCodec::ALL
                    .into_iter()
                    .filter_map(|codec| {
                        let (name, rate) = codec.rtpmap();
                        m.codecs()
                            .into_values()
                            .filter(|c| c.name.eq_ignore_ascii_case(name) && c.clock_rate == rate)
                            .map(|c| c.payload_type)
                            .min()
                            .map(|pt| (codec, pt))
                    })
                    .collect();
                let speech = sending(m)
                    .then(|| formats.iter().find(|(c, _)| *c == SoundCodec::Opus))
                    .flatten()
                    .map(|(_, pt)| *pt);
                (!formats.is_empty()).then_some(SoundSection {
                    index,
                    formats,
                    speech,
                })
            });
        Ok(Offer {
            ice_ufrag,
            fingerprints,
            video_codec,
            payload_type,
            h265,
            rtcp_rsize: media.has_attribute("rtcp-rsize"),
            sections,
            video,
            sound,
        })
    }

    /// Whether the viewer takes H.265.
    pub fn takes_h265(&self) -> bool {
        self.h265.is_some()
    }

    /// Answers with H.265 (for a camera that sends it), if the viewer takes it.
    pub fn choose_h265(&mut self) {
        if let Some((pt, _)) = &self.h265 {
            self.video_codec = VideoCodec::H265;
            self.payload_type = *pt;
        }
    }

    /// The payload type the viewer gave `codec`, if it takes the camera's sound in it.
    pub fn sound_payload_type(&self, codec: SoundCodec) -> Option<u8> {
        self.sound
            .as_ref()?
            .formats
            .iter()
            .find(|(c, _)| *c == codec)
            .map(|(_, pt)| *pt)
    }

    /// Whether the answer carries sound.
    pub fn has_sound(&self) -> bool {
        self.sound.is_some()
    }

    /// The payload type of the Opus the viewer may send (talk), if its audio section sends.
    pub fn speech_payload_type(&self) -> Option<u8> {
        self.sound.as_ref()?.speech
    }
}

/// The only transport the relay speaks: RTP over DTLS-SRTP, with feedback.
const SRTP_PROTOCOL: &str = "UDP/TLS/RTP/SAVPF";

/// Whether the viewer receives in this section: open, and neither send-only nor inactive.
fn receiving(m: &MediaDescription) -> bool {
    m.media_name.port.value != 0 && !m.has_attribute("sendonly") && !m.has_attribute("inactive")
}

/// Whether the viewer sends in this section: neither receive-only nor inactive (with no
/// direction, a section sends and receives).
fn sending(m: &MediaDescription) -> bool {
    !m.has_attribute("recvonly") && !m.has_attribute("inactive")
}

/// `AB:CD:…` as bytes.
fn hex_with_colons(value: &str) -> Option<Vec<u8>> {
    value
        .trim()
        .split(':')
        .map(|b| {
            (b.len() == 2)
                .then(|| u8::from_str_radix(b, 16).ok())
                .flatten()
        })
        .collect()
}

/// What the relay puts in its answer besides what the offer decides.
pub struct Local<'a> {
    pub ice_ufrag: &'a str,
    pub ice_pwd: &'a str,
    /// SHA-256 of the relay's DTLS certificate.
    pub fingerprint: &'a [u8],
    pub ssrc: u32,
    /// The SSRC of the camera's sound.
    pub sound_ssrc: u32,
    /// Host candidates over UDP, then over ICE-TCP (passive).
    pub udp: &'a [SocketAddr],
    pub tcp: &'a [SocketAddr],
}

/// The relay's answer to `offer`.
pub fn answer(offer: &Offer, local: &Local<'_>) -> String {
    let sound = offer.sound.as_ref();
    let mids: Vec<&str> = offer
        .sections
        .iter()
        .enumerate()
        .filter(|(i, _)| *i == offer.video || sound.is_some_and(|s| s.index == *i))
        .filter_map(|(_, section)| section.mid.as_deref())
        .collect();
    let mut sdp = String::with_capacity(3072);
    // Writing to a String cannot fail.
    let _ = write!(
        sdp,
        "v=0\r\no=- {} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n\
         a=group:BUNDLE {}\r\na=msid-semantic: WMS camera\r\n",
        rand::random::<u32>() >> 1,
        mids.join(" ")
    );
    for (i, section) in offer.sections.iter().enumerate() {
        let mid = section.mid.as_deref().unwrap_or_default();
        if i == offer.video {
            let pt = offer.payload_type;
            let _ = write!(sdp, "m=video 9 {SRTP_PROTOCOL} {pt}\r\n");
            transport(&mut sdp, mid, "sendonly", offer, local);
            match offer.video_codec {
                VideoCodec::H264 => {
                    let _ = write!(
                        sdp,
                        "a=rtpmap:{pt} H264/90000\r\na=fmtp:{pt} {H264_FMTP}\r\n"
                    );
                }
                VideoCodec::Vp8 => {
                    let _ = write!(sdp, "a=rtpmap:{pt} VP8/90000\r\n");
                }
                // The viewer's own parameters (profile, level, tx-mode) for what it takes.
                VideoCodec::H265 => {
                    let _ = write!(sdp, "a=rtpmap:{pt} H265/90000\r\n");
                    if let Some((_, fmtp)) = offer.h265.as_ref().filter(|(_, f)| !f.is_empty()) {
                        let _ = write!(sdp, "a=fmtp:{pt} {fmtp}\r\n");
                    }
                }
            }
            for feedback in FEEDBACK {
                let _ = write!(sdp, "a=rtcp-fb:{pt} {feedback}\r\n");
            }
            track(&mut sdp, local.ssrc, "video");
            candidates(&mut sdp, local);
        } else if let Some(sound) = sound.filter(|s| s.index == i) {
            let formats: Vec<String> = sound.formats.iter().map(|(_, pt)| pt.to_string()).collect();
            let _ = write!(sdp, "m=audio 9 {SRTP_PROTOCOL} {}\r\n", formats.join(" "));
            // The relay takes the viewer's speech where the viewer sends it.
            let direction = if sound.speech.is_some() {
                "sendrecv"
            } else {
                "sendonly"
            };
            transport(&mut sdp, mid, direction, offer, local);
            for (codec, pt) in &sound.formats {
                let (name, rate) = codec.rtpmap();
                let channels = if *codec == SoundCodec::Opus { "/2" } else { "" };
                let _ = write!(sdp, "a=rtpmap:{pt} {name}/{rate}{channels}\r\n");
            }
            track(&mut sdp, local.sound_ssrc, "audio");
            candidates(&mut sdp, local);
        } else {
            let _ = write!(
                sdp,
                "m={} 0 {} {}\r\nc=IN IP4 0.0.0.0\r\n",
                section.media, section.protocol, section.formats
            );
            if let Some(mid) = &section.mid {
                let _ = write!(sdp, "a=mid:{mid}\r\n");
            }
        }
    }
    sdp
}

/// A bundled section's connection, mid, ICE, DTLS and direction lines.
fn transport(sdp: &mut String, mid: &str, direction: &str, offer: &Offer, local: &Local<'_>) {
    let fingerprint: Vec<String> = local
        .fingerprint
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let _ = write!(
        sdp,
        "c=IN IP4 0.0.0.0\r\na=mid:{mid}\r\n\
         a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=fingerprint:sha-256 {}\r\na=setup:passive\r\n\
         a={direction}\r\na=rtcp-mux\r\n",
        local.ice_ufrag,
        local.ice_pwd,
        fingerprint.join(":")
    );
    if offer.rtcp_rsize {
        sdp.push_str("a=rtcp-rsize\r\n");
    }
}

/// The section's one stream, in the page's one `MediaStream` with the other (so the browser
/// keeps sound and pictures in step).
fn track(sdp: &mut String, ssrc: u32, kind: &str) {
    let _ = write!(
        sdp,
        "a=msid:camera {kind}\r\na=ssrc:{ssrc} cname:camera\r\na=ssrc:{ssrc} msid:camera {kind}\r\n"
    );
}

/// The relay's host candidates, UDP then ICE-TCP.
fn candidates(sdp: &mut String, local: &Local<'_>) {
    let udp = local.udp.iter().map(|a| (a, "udp", 65_535, ""));
    let tcp = local
        .tcp
        .iter()
        .map(|a| (a, "tcp", 40_959, " tcptype passive"));
    for (foundation, (address, transport, preference, tcp_type)) in udp.chain(tcp).enumerate() {
        let _ = write!(
            sdp,
            "a=candidate:{} 1 {transport} {} {} {} typ host{tcp_type}\r\n",
            foundation + 1,
            host_priority(preference),
            address.ip(),
            address.port()
        );
    }
    sdp.push_str("a=end-of-candidates\r\n");
}

/// A host candidate's priority (RFC 8445 §5.1.2.1): UDP's local preference is the highest;
/// ICE-TCP's lower (RFC 6544 §4.2: passive), so browsers that reach both use UDP.
fn host_priority(local_preference: u32) -> u32 {
    (126 << 24) | (local_preference << 8) | 255
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Chromium offer's shape: audio first (Opus, RED, G.722, PCMU, PCMA, comfort noise,
    /// DTMF), two H.264 formats, the fingerprint per section, a data channel last.
    const CHROMIUM: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        a=group:BUNDLE 0 1 2\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
        a=recvonly\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
        a=fingerprint:sha-256 0A:0B:0C\r\na=setup:actpass\r\na=rtcp-mux\r\n\
        a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
        a=rtpmap:63 red/48000/2\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\na=rtpmap:110 telephone-event/48000\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 102 103\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n\
        a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
        a=fingerprint:sha-256 0A:0B:0C\r\na=setup:actpass\r\na=recvonly\r\na=rtcp-mux\r\n\
        a=rtcp-rsize\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\n\
        a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n\
        a=rtpmap:103 H264/90000\r\n\
        a=fmtp:103 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
        a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
        a=fingerprint:sha-256 0A:0B:0C\r\na=setup:actpass\r\na=mid:2\r\n\
        a=sctp-port:5000\r\n";

    /// A Firefox offer's shape: the fingerprint at session level, ICE credentials after the
    /// codecs, VP8 first, H.264 in mode 1 (126) and in mode 0 by default (97), rtx.
    const FIREFOX: &str = "v=0\r\no=mozilla...THIS_IS_SDPARTA-115.0 1 0 IN IP4 0.0.0.0\r\n\
        s=-\r\nt=0 0\r\na=fingerprint:sha-256 AA:bb:0C\r\na=group:BUNDLE 0\r\n\
        a=ice-options:trickle\r\na=msid-semantic:WMS *\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 120 124 126 127 97 98\r\nc=IN IP4 0.0.0.0\r\n\
        a=recvonly\r\na=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
        a=fmtp:126 profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1\r\n\
        a=fmtp:97 profile-level-id=42e01f;level-asymmetry-allowed=1\r\n\
        a=fmtp:120 max-fs=12288;max-fr=60\r\na=fmtp:124 apt=120\r\na=fmtp:127 apt=126\r\n\
        a=fmtp:98 apt=97\r\na=ice-pwd:0123456789abcdef0123456789abcdef\r\n\
        a=ice-ufrag:f1e2d3c4\r\na=mid:0\r\na=rtcp-fb:126 nack\r\na=rtcp-fb:126 nack pli\r\n\
        a=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:120 VP8/90000\r\na=rtpmap:124 rtx/90000\r\n\
        a=rtpmap:126 H264/90000\r\na=rtpmap:127 rtx/90000\r\na=rtpmap:97 H264/90000\r\n\
        a=rtpmap:98 rtx/90000\r\na=setup:actpass\r\na=ssrc:1 cname:{x}\r\n";

    #[test]
    fn a_firefox_offer_without_h264_gets_vp8() {
        let without_h264: String = FIREFOX
            .replace("120 124 126 127 97 98", "120 124")
            .split("\r\n")
            .filter(|l| !l.contains(":126") && !l.contains(":127") && !l.contains(":97"))
            .filter(|l| !l.contains(":98") && !l.is_empty())
            .map(|l| format!("{l}\r\n"))
            .collect();
        let offer = Offer::parse(&without_h264).expect("offer");
        assert_eq!(
            (offer.video_codec, offer.payload_type),
            (VideoCodec::Vp8, 120)
        );
        let sdp = answer(&offer, &local());
        assert!(sdp.contains("m=video 9 UDP/TLS/RTP/SAVPF 120\r\n"), "{sdp}");
        assert!(sdp.contains("a=rtpmap:120 VP8/90000\r\n"), "{sdp}");
        assert!(!sdp.contains("H264"), "{sdp}");
    }

    #[test]
    fn a_firefox_offer_gets_its_h264_in_mode_one_and_its_session_level_fingerprint() {
        let offer = Offer::parse(FIREFOX).expect("offer");
        assert_eq!(offer.payload_type, 126);
        assert_eq!(offer.ice_ufrag, "f1e2d3c4");
        assert_eq!(offer.fingerprints, [vec![0xaa, 0xbb, 0x0c]]);
        let sdp = answer(&offer, &local());
        assert!(sdp.contains("m=video 9 UDP/TLS/RTP/SAVPF 126\r\n"), "{sdp}");
        assert!(sdp.contains("a=group:BUNDLE 0\r\n"), "{sdp}");
    }

    #[test]
    fn an_offer_with_h265_gets_it_with_its_own_parameters_when_the_camera_sends_it() {
        // Safari's shape: H.265 (104) with its profile and level, before H.264.
        let safari = CHROMIUM
            .replace("96 102 103\r\n", "104 96 102 103\r\n")
            .replace(
                "a=rtpmap:96 VP8/90000\r\n",
                "a=rtpmap:104 H265/90000\r\na=fmtp:104 level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST\r\n\
                 a=rtpmap:96 VP8/90000\r\n",
            );
        let mut offer = Offer::parse(&safari).expect("offer");
        assert!(offer.takes_h265());
        // For a camera that sends H.264, the H.264 the offer takes.
        assert_eq!(
            (offer.video_codec, offer.payload_type),
            (VideoCodec::H264, 103)
        );
        offer.choose_h265();
        assert_eq!(
            (offer.video_codec, offer.payload_type),
            (VideoCodec::H265, 104)
        );
        let sdp = answer(&offer, &local());
        assert!(sdp.contains("m=video 9 UDP/TLS/RTP/SAVPF 104\r\n"), "{sdp}");
        assert!(sdp.contains("a=rtpmap:104 H265/90000\r\n"), "{sdp}");
        assert!(
            sdp.contains("a=fmtp:104 level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST\r\n"),
            "{sdp}"
        );
        assert!(sdp.contains("a=rtcp-fb:104 nack pli\r\n"), "{sdp}");
        assert!(!sdp.contains("H264"), "{sdp}");
        // An offer without H.265 stays as it was.
        let mut chromium = Offer::parse(CHROMIUM).expect("offer");
        assert!(!chromium.takes_h265());
        chromium.choose_h265();
        assert_eq!(chromium.video_codec, VideoCodec::H264);
    }

    fn local() -> Local<'static> {
        Local {
            ice_ufrag: "relay",
            ice_pwd: "relaypassword",
            fingerprint: &[0xab, 0x01],
            ssrc: 7,
            sound_ssrc: 8,
            udp: &[],
            tcp: &[],
        }
    }

    #[test]
    fn the_video_section_gets_the_h264_format_with_packetization_mode_one() {
        let offer = Offer::parse(CHROMIUM).expect("offer");
        assert_eq!(offer.payload_type, 103);
        assert_eq!(offer.ice_ufrag, "abcd");
        assert_eq!(offer.fingerprints, [vec![0x0a, 0x0b, 0x0c]]);
    }

    #[test]
    fn the_answer_carries_video_and_sound_bundled_and_refuses_the_other_sections() {
        let offer = Offer::parse(CHROMIUM).expect("offer");
        let udp = ["192.0.2.1:3478".parse().expect("address")];
        let tcp = ["192.0.2.1:3479".parse().expect("address")];
        let sdp = answer(
            &offer,
            &Local {
                udp: &udp,
                tcp: &tcp,
                ..local()
            },
        );
        for line in [
            "a=ice-lite",
            "a=group:BUNDLE 0 1\r\n",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n",
            "a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n",
            "a=msid:camera audio\r\na=ssrc:8 cname:camera\r\n",
            "m=video 9 UDP/TLS/RTP/SAVPF 103\r\n",
            "a=msid:camera video\r\na=ssrc:7 cname:camera\r\n",
            "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\n",
            "a=fingerprint:sha-256 AB:01\r\n",
            "a=setup:passive",
            "a=sendonly",
            "a=rtcp-rsize",
            "a=rtcp-fb:103 nack pli",
            "a=ssrc:7 cname:camera",
            "a=candidate:1 1 udp 2130706431 192.0.2.1 3478 typ host\r\n",
            "a=candidate:2 1 tcp 2124414975 192.0.2.1 3479 typ host tcptype passive\r\n",
        ] {
            assert!(sdp.contains(line), "{line:?} missing from\n{sdp}");
        }
        // The answer reads back.
        SessionDescription::unmarshal(&mut std::io::Cursor::new(&sdp)).expect("valid SDP");
        assert_eq!(offer.sound_payload_type(SoundCodec::Pcma), Some(8));
    }

    #[test]
    fn a_viewer_that_sends_sound_is_answered_sendrecv_and_speaks_in_its_opus() {
        let receiving = Offer::parse(CHROMIUM).expect("offer");
        assert_eq!(receiving.speech_payload_type(), None);
        let both = CHROMIUM.replacen("a=recvonly", "a=sendrecv", 1);
        let offer = Offer::parse(&both).expect("offer");
        assert_eq!(offer.speech_payload_type(), Some(111));
        let sdp = answer(&offer, &local());
        let audio = &sdp[sdp.find("m=audio").unwrap()..sdp.find("m=video").unwrap()];
        assert!(audio.contains("a=sendrecv\r\n"), "{audio}");
        let video = &sdp[sdp.find("m=video").unwrap()..];
        assert!(video.contains("a=sendonly\r\n"), "{video}");
        // Without Opus the viewer's speech could not be read: the relay only sends.
        let no_opus = both
            .replace(" 111 63 9 0 8 13 110", " 0 8")
            .replace("a=rtpmap:111 opus/48000/2\r\n", "");
        let offer = Offer::parse(&no_opus).expect("offer");
        assert_eq!(offer.speech_payload_type(), None);
        assert!(answer(&offer, &local()).matches("a=sendonly").count() == 2);
    }

    #[test]
    fn an_audio_section_without_a_format_the_relay_sends_is_refused_and_the_video_stays() {
        let only_g722 = CHROMIUM
            .replace("111 63 9 0 8 13 110", "9")
            .replace("a=rtpmap:111 opus/48000/2\r\n", "")
            .replace("a=rtpmap:0 PCMU/8000\r\n", "")
            .replace("a=rtpmap:8 PCMA/8000\r\n", "");
        let offer = Offer::parse(&only_g722).expect("offer");
        assert!(!offer.has_sound());
        let sdp = answer(&offer, &local());
        assert!(sdp.contains("m=audio 0 UDP/TLS/RTP/SAVPF 9\r\n"), "{sdp}");
        assert!(sdp.contains("a=group:BUNDLE 1\r\n"), "{sdp}");
        assert!(sdp.contains("m=video 9 "), "{sdp}");
    }

    #[test]
    fn offers_the_relay_cannot_answer_are_refused_with_the_reason() {
        let cases = [
            ("no SDP", "hello".to_owned(), "not an SDP offer"),
            (
                "no H.264 in mode 1, no VP8",
                CHROMIUM
                    .replace("packetization-mode=1", "packetization-mode=0")
                    .replace("VP8/90000", "VP9/90000"),
                "neither H.264 (packetization mode 1) nor VP8",
            ),
            (
                "video the viewer only sends",
                CHROMIUM.replace("a=mid:1\r\n", "a=mid:1\r\na=sendonly\r\n"),
                "no video section",
            ),
            (
                "no fingerprint",
                CHROMIUM.replace("a=fingerprint:sha-256 0A:0B:0C\r\n", ""),
                "fingerprint",
            ),
            (
                "a viewer that will not connect",
                CHROMIUM.replace("a=setup:actpass", "a=setup:passive"),
                "DTLS role is passive",
            ),
            (
                "no ICE credentials",
                CHROMIUM.replace("a=ice-ufrag:abcd\r\n", ""),
                "ICE username",
            ),
        ];
        for (case, sdp, reason) in cases {
            let error = Offer::parse(&sdp).expect_err(case);
            assert!(error.0.contains(reason), "{case}: {error:?}");
        }
    }
}
