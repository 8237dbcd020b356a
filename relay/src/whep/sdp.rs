//! A viewer's SDP offer read, and the relay's answer written (JSEP, RFC 8829, for a relay
//! that only sends): one video section carries the camera's H.264, every other section is
//! refused (port 0). The relay is ICE lite and the DTLS server (`a=setup:passive`): the
//! browser checks and connects; the relay answers.

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
    /// The RTP payload type the viewer gave H.264 (packetization mode 1).
    pub payload_type: u8,
    /// Whether the viewer takes reduced-size RTCP.
    rtcp_rsize: bool,
    sections: Vec<Section>,
    /// The section the camera's video goes in.
    video: usize,
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
        let (video, media) = description
            .media_descriptions
            .iter()
            .enumerate()
            .find(|(_, m)| {
                m.media_name.media == "video"
                    && m.media_name.port.value != 0
                    && !m.has_attribute("sendonly")
                    && !m.has_attribute("inactive")
            })
            .ok_or_else(|| refuse("the offer has no video section the relay can send to"))?;
        if sections[video].protocol != "UDP/TLS/RTP/SAVPF" {
            return Err(refuse(format!(
                "the video section's transport is {}, not UDP/TLS/RTP/SAVPF",
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
        let payload_type = codecs
            .iter()
            .filter(h264)
            .find(constrained_baseline)
            .or_else(|| codecs.iter().find(h264))
            .map(|c| c.payload_type)
            .ok_or_else(|| refuse("the offer does not accept H.264 (packetization mode 1)"))?;
        Ok(Offer {
            ice_ufrag,
            fingerprints,
            payload_type,
            rtcp_rsize: media.has_attribute("rtcp-rsize"),
            sections,
            video,
        })
    }
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
    /// Host candidates over UDP, then over ICE-TCP (passive).
    pub udp: &'a [SocketAddr],
    pub tcp: &'a [SocketAddr],
}

/// The relay's answer to `offer`.
pub fn answer(offer: &Offer, local: &Local<'_>) -> String {
    let video = &offer.sections[offer.video];
    let mid = video.mid.as_deref().unwrap_or_default();
    let fingerprint: Vec<String> = local
        .fingerprint
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let mut sdp = String::with_capacity(2048);
    // Writing to a String cannot fail.
    let _ = write!(
        sdp,
        "v=0\r\no=- {} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n\
         a=group:BUNDLE {mid}\r\na=msid-semantic: WMS camera\r\n",
        rand::random::<u32>() >> 1
    );
    for (i, section) in offer.sections.iter().enumerate() {
        if i != offer.video {
            let _ = write!(
                sdp,
                "m={} 0 {} {}\r\nc=IN IP4 0.0.0.0\r\n",
                section.media, section.protocol, section.formats
            );
            if let Some(mid) = &section.mid {
                let _ = write!(sdp, "a=mid:{mid}\r\n");
            }
            continue;
        }
        let pt = offer.payload_type;
        let _ = write!(
            sdp,
            "m=video 9 UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\n\
             a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=fingerprint:sha-256 {}\r\na=setup:passive\r\n\
             a=sendonly\r\na=rtcp-mux\r\n",
            local.ice_ufrag,
            local.ice_pwd,
            fingerprint.join(":")
        );
        if offer.rtcp_rsize {
            sdp.push_str("a=rtcp-rsize\r\n");
        }
        let _ = write!(
            sdp,
            "a=rtpmap:{pt} H264/90000\r\na=fmtp:{pt} {H264_FMTP}\r\n"
        );
        for feedback in FEEDBACK {
            let _ = write!(sdp, "a=rtcp-fb:{pt} {feedback}\r\n");
        }
        let ssrc = local.ssrc;
        let _ = write!(
            sdp,
            "a=msid:camera video\r\na=ssrc:{ssrc} cname:camera\r\na=ssrc:{ssrc} msid:camera video\r\n"
        );
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
    sdp
}

/// A host candidate's priority (RFC 8445 §5.1.2.1): UDP's local preference is the highest;
/// ICE-TCP's lower (RFC 6544 §4.2: passive), so browsers that reach both use UDP.
fn host_priority(local_preference: u32) -> u32 {
    (126 << 24) | (local_preference << 8) | 255
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Chromium offer's shape: audio first, two H.264 formats, the fingerprint per section.
    const CHROMIUM: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        a=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\n\
        a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
        a=fingerprint:sha-256 0A:0B:0C\r\na=setup:actpass\r\na=rtpmap:111 opus/48000/2\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 102 103\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n\
        a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
        a=fingerprint:sha-256 0A:0B:0C\r\na=setup:actpass\r\na=recvonly\r\na=rtcp-mux\r\n\
        a=rtcp-rsize\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\n\
        a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n\
        a=rtpmap:103 H264/90000\r\n\
        a=fmtp:103 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n";

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
    fn a_firefox_offer_gets_its_h264_in_mode_one_and_its_session_level_fingerprint() {
        let offer = Offer::parse(FIREFOX).expect("offer");
        assert_eq!(offer.payload_type, 126);
        assert_eq!(offer.ice_ufrag, "f1e2d3c4");
        assert_eq!(offer.fingerprints, [vec![0xaa, 0xbb, 0x0c]]);
        let sdp = answer(&offer, &local());
        assert!(sdp.contains("m=video 9 UDP/TLS/RTP/SAVPF 126\r\n"), "{sdp}");
        assert!(sdp.contains("a=group:BUNDLE 0\r\n"), "{sdp}");
    }

    fn local() -> Local<'static> {
        Local {
            ice_ufrag: "relay",
            ice_pwd: "relaypassword",
            fingerprint: &[0xab, 0x01],
            ssrc: 7,
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
    fn the_answer_refuses_the_other_sections_and_bundles_the_video_alone() {
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
            "a=group:BUNDLE 1\r\n",
            "m=audio 0 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n",
            "m=video 9 UDP/TLS/RTP/SAVPF 103\r\n",
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
    }

    #[test]
    fn offers_the_relay_cannot_answer_are_refused_with_the_reason() {
        let cases = [
            ("no SDP", "hello".to_owned(), "not an SDP offer"),
            (
                "no H.264 in mode 1",
                CHROMIUM.replace("packetization-mode=1", "packetization-mode=0"),
                "does not accept H.264",
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
