//! The `Transport` header of RTSP's SETUP (RFC 2326 §12.39), read and rewritten on a direct
//! camera's connection. Over UDP the relay's own sockets stand between the camera and the RTSP
//! client (retina), so that what reaches retina is bounded and comes from the checked address:
//! - the SETUP request's `client_port` becomes the relay's camera-facing ports;
//! - the reply's `server_port` and `source` become the relay's client-facing loopback ports,
//!   and its `client_port` the client's own again.
//!
//! Plain functions over a message's head (status or request line and headers, up to the blank
//! line); the sockets are the caller's.

/// A pair of UDP ports: RTP's and RTCP's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub rtp: u16,
    pub rtcp: u16,
}

impl std::fmt::Display for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.rtp, self.rtcp)
    }
}

/// A SETUP request asking for UDP: its `CSeq` and the client's ports.
pub fn udp_setup_request(head: &[u8]) -> Option<(String, Ports)> {
    let text = String::from_utf8_lossy(head);
    let method = text.split(' ').next()?;
    if !method.eq_ignore_ascii_case("SETUP") {
        return None;
    }
    let ports = transport_specs(&text).find_map(|spec| param(spec, "client_port"))?;
    Some((header(&text, "cseq")?.to_owned(), port_pair(ports)?))
}

/// A reply's `CSeq` and the server ports its `Transport` names, if it names any.
pub fn udp_setup_reply(head: &[u8]) -> Option<(String, Ports)> {
    let text = String::from_utf8_lossy(head);
    let ports = transport_specs(&text).find_map(|spec| param(spec, "server_port"))?;
    Some((header(&text, "cseq")?.to_owned(), port_pair(ports)?))
}

/// `head` with `client_port` of every transport spec set to `ports`.
pub fn with_client_ports(head: &[u8], ports: Ports) -> Vec<u8> {
    rewrite(head, |spec| {
        with_params(spec, &["client_port"], &[format!("client_port={ports}")])
    })
}

/// `head` (a reply) with every transport spec naming `source` and nothing else as the
/// source, and, given them, `client` and `server` as the ports.
pub fn with_source(
    head: &[u8],
    source: std::net::IpAddr,
    ports: Option<(Ports, Ports)>,
) -> Vec<u8> {
    rewrite(head, |spec| match ports {
        Some((client, server)) => with_params(
            spec,
            &["source", "client_port", "server_port"],
            &[
                format!("client_port={client}"),
                format!("server_port={server}"),
                format!("source={source}"),
            ],
        ),
        None => with_params(spec, &["source"], &[format!("source={source}")]),
    })
}

/// `head` with each transport spec of every `Transport` header replaced by `rewrite(spec)`;
/// every other line as it was.
fn rewrite(head: &[u8], mut rewrite: impl FnMut(&str) -> String) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len() + 64);
    for line in head.split_inclusive(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(line);
        match text.split_once(':') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("transport") => {
                let specs: Vec<String> = value.trim().split(',').map(&mut rewrite).collect();
                out.extend_from_slice(format!("{name}: {}\r\n", specs.join(",")).as_bytes());
            }
            _ => out.extend_from_slice(line),
        }
    }
    out
}

/// The value of the first header called `name` (any case).
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, value) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// The transport specs of every `Transport` header.
fn transport_specs(head: &str) -> impl Iterator<Item = &str> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("transport")
                .then_some(value)
        })
        .flat_map(|value| value.split(','))
}

/// The value of parameter `name` of a transport spec (`client_port=5000-5001` → `5000-5001`).
fn param<'a>(spec: &'a str, name: &str) -> Option<&'a str> {
    spec.split(';').find_map(|p| {
        let (key, value) = p.trim().split_once('=')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// `spec` without the parameters named in `drop`, with `add` after the rest.
fn with_params(spec: &str, drop: &[&str], add: &[String]) -> String {
    let kept = spec.split(';').map(str::trim).filter(|p| {
        let key = p.split('=').next().unwrap_or_default().trim();
        !drop.iter().any(|d| key.eq_ignore_ascii_case(d))
    });
    kept.chain(add.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(";")
}

/// `5000-5001` or a lone `5000` (RTCP on the next port).
fn port_pair(value: &str) -> Option<Ports> {
    let (rtp, rtcp) = match value.split_once('-') {
        Some((rtp, rtcp)) => (rtp.trim().parse().ok()?, rtcp.trim().parse().ok()?),
        None => {
            let rtp: u16 = value.trim().parse().ok()?;
            (rtp, rtp.checked_add(1)?)
        }
    };
    Some(Ports { rtp, rtcp })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETUP: &[u8] = b"SETUP rtsp://127.0.0.1:554/live/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/UDP;unicast;client_port=40000-40001\r\nUser-Agent: x\r\n\r\n";
    const REPLY: &[u8] = b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nTransport: RTP/AVP;unicast;client_port=50000-50001;SOURCE=10.0.0.1;Server_Port=6000-6001;ssrc=1234\r\nSession: 1\r\n\r\n";

    #[test]
    fn a_udp_setup_request_gives_its_sequence_and_the_clients_ports() {
        assert_eq!(
            udp_setup_request(SETUP),
            Some((
                "3".into(),
                Ports {
                    rtp: 40000,
                    rtcp: 40001
                }
            ))
        );
        let tcp = b"SETUP rtsp://h/ RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n";
        assert_eq!(udp_setup_request(tcp), None);
        let play =
            b"PLAY rtsp://h/ RTSP/1.0\r\nCSeq: 4\r\nTransport: RTP/AVP;client_port=1-2\r\n\r\n";
        assert_eq!(udp_setup_request(play), None);
        let lone =
            b"setup rtsp://h/ RTSP/1.0\r\ncseq: 9\r\ntransport: RTP/AVP;client_port=7000\r\n\r\n";
        assert_eq!(
            udp_setup_request(lone),
            Some((
                "9".into(),
                Ports {
                    rtp: 7000,
                    rtcp: 7001
                }
            ))
        );
        let odd =
            b"SETUP rtsp://h/ RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP;client_port=65535\r\n\r\n";
        assert_eq!(udp_setup_request(odd), None);
    }

    #[test]
    fn the_request_names_the_relays_ports_and_nothing_else_changes() {
        let out = with_client_ports(
            SETUP,
            Ports {
                rtp: 30000,
                rtcp: 30001,
            },
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "SETUP rtsp://127.0.0.1:554/live/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/UDP;unicast;client_port=30000-30001\r\nUser-Agent: x\r\n\r\n"
        );
    }

    #[test]
    fn the_reply_names_the_relays_loopback_ports_and_source_whatever_the_camera_said() {
        assert_eq!(
            udp_setup_reply(REPLY),
            Some((
                "3".into(),
                Ports {
                    rtp: 6000,
                    rtcp: 6001
                }
            ))
        );
        let client = Ports {
            rtp: 40000,
            rtcp: 40001,
        };
        let server = Ports {
            rtp: 31000,
            rtcp: 31001,
        };
        let out = with_source(REPLY, [127, 0, 0, 1].into(), Some((client, server)));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "RTSP/1.0 200 OK\r\nCSeq: 3\r\nTransport: RTP/AVP;unicast;ssrc=1234;client_port=40000-40001;server_port=31000-31001;source=127.0.0.1\r\nSession: 1\r\n\r\n"
        );
    }

    #[test]
    fn any_other_reply_names_the_checked_address_as_its_source() {
        let ip = "192.0.2.7".parse().unwrap();
        let silent = b"RTSP/1.0 200 OK\r\ntransport : RTP/AVP/TCP;interleaved=0-1\r\n\r\n";
        assert_eq!(
            String::from_utf8(with_source(silent, ip, None)).unwrap(),
            "RTSP/1.0 200 OK\r\ntransport : RTP/AVP/TCP;interleaved=0-1;source=192.0.2.7\r\n\r\n"
        );
        let two = b"RTSP/1.0 200 OK\r\nTransport: A;source=10.0.0.1,B;source=10.0.0.2\r\n\r\n";
        assert_eq!(
            String::from_utf8(with_source(two, ip, None)).unwrap(),
            "RTSP/1.0 200 OK\r\nTransport: A;source=192.0.2.7,B;source=192.0.2.7\r\n\r\n"
        );
        let none = b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(with_source(none, ip, None), none);
    }
}
