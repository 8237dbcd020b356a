//! Keeps the camera's RTSP credentials on the agent: the relay's RTSP client talks to the
//! camera through a tunnel without knowing them, and this answers the camera's challenges on
//! its behalf.
//!
//! It reads both directions as RTSP framing (text messages with optional bodies, and `$`
//! interleaved binary packets, passed through untouched). Requests from the relay are
//! forwarded with an `Authorization` header once the camera's challenge is known; a `401`
//! that answers a request sent without (or with stale) credentials is kept from the relay,
//! and the request is sent again with them. A second `401` goes through: the credentials
//! are wrong, and the relay should see that. Plain code over bytes: no sockets here.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};
use std::collections::HashMap;

use crate::rtsp_framing::{Framer, Unit, header, headers};

/// A camera's challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    Basic,
    Digest {
        realm: String,
        nonce: String,
        opaque: Option<String>,
        qop_auth: bool,
        stale: bool,
    },
}

impl Challenge {
    /// The strongest challenge among a response's `WWW-Authenticate` headers.
    fn from_head(head: &str) -> Option<Challenge> {
        let all: Vec<&str> = headers(head, "www-authenticate").collect();
        if let Some(d) = all.iter().find_map(|h| strip_scheme(h, "digest")) {
            let params = parse_params(d);
            let get = |k: &str| params.get(k).cloned();
            let algorithm_ok = get("algorithm").is_none_or(|a| a.eq_ignore_ascii_case("md5"));
            if algorithm_ok {
                return Some(Challenge::Digest {
                    realm: get("realm")?,
                    nonce: get("nonce")?,
                    opaque: get("opaque"),
                    qop_auth: get("qop").is_some_and(|q| q.split(',').any(|q| q.trim() == "auth")),
                    stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
                });
            }
        }
        all.iter()
            .any(|h| strip_scheme(h, "basic").is_some())
            .then_some(Challenge::Basic)
    }
}

fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = value.split_once(' ').unwrap_or((value, ""));
    s.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// `k=v, k="v, with comma"` into a map (keys lower-cased).
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((k, after)) = rest.split_once('=') else {
            break;
        };
        let key = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.insert(key, value.trim().to_owned());
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct Pending {
    /// The request as the relay sent it (no Authorization).
    head: String,
    body: Vec<u8>,
    /// Sent with credentials already.
    authed: bool,
}

/// The credential-keeping proxy for one RTSP connection.
pub struct AuthProxy {
    user: String,
    password: String,
    challenge: Option<Challenge>,
    nonce_count: u32,
    pending: HashMap<String, Pending>,
    from_client: Framer,
    from_camera: Framer,
}

/// Bytes to send on after feeding the proxy.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Output {
    pub to_client: Vec<u8>,
    pub to_camera: Vec<u8>,
}

impl AuthProxy {
    pub fn new(user: String, password: String) -> AuthProxy {
        AuthProxy {
            user,
            password,
            challenge: None,
            nonce_count: 0,
            pending: HashMap::new(),
            from_client: Framer::default(),
            from_camera: Framer::default(),
        }
    }

    /// Bytes the relay's RTSP client sent towards the camera.
    pub fn client_bytes(&mut self, data: &[u8]) -> Result<Output, String> {
        self.from_client.push(data);
        let mut out = Output::default();
        while let Some(unit) = self.from_client.next_unit()? {
            match unit {
                Unit::Interleaved(p) => out.to_camera.extend_from_slice(&p),
                Unit::Message { head, body } => {
                    let head = without_header(&head, "authorization");
                    self.send_request(head, body, &mut out)?;
                }
            }
        }
        Ok(out)
    }

    fn send_request(
        &mut self,
        head: String,
        body: Vec<u8>,
        out: &mut Output,
    ) -> Result<(), String> {
        let authed = self.challenge.is_some();
        let wire = match self.authorization(&head)? {
            Some(auth) => with_header(&head, &auth),
            None => head.clone(),
        };
        out.to_camera.extend_from_slice(wire.as_bytes());
        out.to_camera.extend_from_slice(&body);
        if let Some(cseq) = header(&head, "cseq") {
            let cseq = cseq.to_owned();
            if self.pending.len() > 64 {
                // A client that never reads its answers; forget the oldest guesses.
                self.pending.clear();
            }
            self.pending.insert(cseq, Pending { head, body, authed });
        }
        Ok(())
    }

    /// Bytes the camera sent towards the relay.
    pub fn camera_bytes(&mut self, data: &[u8]) -> Result<Output, String> {
        self.from_camera.push(data);
        let mut out = Output::default();
        while let Some(unit) = self.from_camera.next_unit()? {
            match unit {
                Unit::Interleaved(p) => out.to_client.extend_from_slice(&p),
                Unit::Message { head, body } => {
                    let pending = header(&head, "cseq").and_then(|c| self.pending.remove(c));
                    let unauthorized = head.starts_with("RTSP/1.0 401");
                    if let (true, Some(req)) = (unauthorized, pending) {
                        let challenge = Challenge::from_head(&head);
                        let stale =
                            matches!(challenge, Some(Challenge::Digest { stale: true, .. }));
                        if challenge.is_some() && (!req.authed || stale) {
                            self.challenge = challenge;
                            self.nonce_count = 0;
                            self.send_request(req.head, req.body, &mut out)?;
                            continue;
                        }
                    }
                    out.to_client.extend_from_slice(head.as_bytes());
                    out.to_client.extend_from_slice(&body);
                }
            }
        }
        Ok(out)
    }

    /// The `Authorization` header line for a request, once a challenge is known.
    fn authorization(&mut self, head: &str) -> Result<Option<String>, String> {
        let Some(challenge) = &self.challenge else {
            return Ok(None);
        };
        let line = match challenge {
            Challenge::Basic => format!(
                "Authorization: Basic {}",
                STANDARD.encode(format!("{}:{}", self.user, self.password))
            ),
            Challenge::Digest {
                realm,
                nonce,
                opaque,
                qop_auth,
                ..
            } => {
                let mut parts = head.split("\r\n").next().unwrap_or("").split(' ');
                let (method, uri) = match (parts.next(), parts.next()) {
                    (Some(m), Some(u)) => (m, u),
                    _ => return Err("malformed RTSP request line".into()),
                };
                let ha1 = md5_hex(&format!("{}:{realm}:{}", self.user, self.password));
                let ha2 = md5_hex(&format!("{method}:{uri}"));
                let mut line = format!(
                    "Authorization: Digest username=\"{}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\"",
                    self.user
                );
                let response = if *qop_auth {
                    self.nonce_count += 1;
                    let nc = format!("{:08x}", self.nonce_count);
                    let cnonce = format!("{:016x}", rand::random::<u64>());
                    line.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
                    md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
                } else {
                    md5_hex(&format!("{ha1}:{nonce}:{ha2}"))
                };
                line.push_str(&format!(", response=\"{response}\""));
                if let Some(o) = opaque {
                    line.push_str(&format!(", opaque=\"{o}\""));
                }
                line
            }
        };
        Ok(Some(line))
    }
}

/// The head with every `name` header removed.
fn without_header(head: &str, name: &str) -> String {
    let lines: Vec<&str> = head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|l| {
            l.split_once(':')
                .is_none_or(|(k, _)| !k.trim().eq_ignore_ascii_case(name))
        })
        .collect();
    format!("{}\r\n\r\n", lines.join("\r\n"))
}

/// The head with one more header line before the blank line.
fn with_header(head: &str, line: &str) -> String {
    format!("{}\r\n{line}\r\n\r\n", head.trim_end_matches("\r\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtsp_framing::MAX_HEAD_BYTES;

    const DESCRIBE: &str = "DESCRIBE rtsp://127.0.0.1:8554/live RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n";

    fn challenge(extra: &str) -> String {
        format!(
            "RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\nWWW-Authenticate: Basic realm=\"cam\"\r\nWWW-Authenticate: Digest realm=\"cam\", nonce=\"abc123\"{extra}\r\n\r\n"
        )
    }

    #[test]
    fn a_digest_challenge_is_answered_for_the_relay_and_never_reaches_it() {
        let mut p = AuthProxy::new("admin".into(), "secret".into());
        let out = p.client_bytes(DESCRIBE.as_bytes()).unwrap();
        assert_eq!(
            out.to_camera,
            DESCRIBE.as_bytes(),
            "the first try goes as it is"
        );
        let out = p.camera_bytes(challenge("").as_bytes()).unwrap();
        assert!(out.to_client.is_empty(), "the 401 is kept from the relay");
        let retry = String::from_utf8(out.to_camera).unwrap();
        assert!(retry.starts_with("DESCRIBE rtsp://127.0.0.1:8554/live RTSP/1.0\r\nCSeq: 2\r\n"));
        // RFC 2617 without qop: MD5(MD5(user:realm:pass):nonce:MD5(method:uri)).
        let ha1 = md5_hex("admin:cam:secret");
        let ha2 = md5_hex("DESCRIBE:rtsp://127.0.0.1:8554/live");
        let want = md5_hex(&format!("{ha1}:abc123:{ha2}"));
        assert!(retry.contains(&format!("response=\"{want}\"")), "{retry}");
        assert!(!retry.contains("secret"));
        // The answer to the retry goes to the relay, and later requests carry credentials.
        let ok = "RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: 4\r\n\r\nv=0\n";
        assert_eq!(
            p.camera_bytes(ok.as_bytes()).unwrap().to_client,
            ok.as_bytes()
        );
        let setup = "SETUP rtsp://127.0.0.1:8554/live/stream=0 RTSP/1.0\r\nCSeq: 3\r\n\r\n";
        let out = String::from_utf8(p.client_bytes(setup.as_bytes()).unwrap().to_camera).unwrap();
        assert!(
            out.contains("Authorization: Digest username=\"admin\"")
                && out.contains("uri=\"rtsp://127.0.0.1:8554/live/stream=0\""),
            "{out}"
        );
    }

    #[test]
    fn wrong_credentials_let_the_second_401_through() {
        let mut p = AuthProxy::new("admin".into(), "wrong".into());
        p.client_bytes(DESCRIBE.as_bytes()).unwrap();
        p.camera_bytes(challenge("").as_bytes()).unwrap();
        let out = p.camera_bytes(challenge("").as_bytes()).unwrap();
        assert!(
            String::from_utf8(out.to_client)
                .unwrap()
                .starts_with("RTSP/1.0 401")
        );
        assert!(out.to_camera.is_empty());
        // A stale nonce is retried once more.
        p.client_bytes(DESCRIBE.as_bytes()).unwrap();
        let out = p
            .camera_bytes(challenge(", stale=TRUE").as_bytes())
            .unwrap();
        assert!(out.to_client.is_empty() && !out.to_camera.is_empty());
    }

    #[test]
    fn qop_basic_and_interleaved_data_split_anywhere() {
        let mut p = AuthProxy::new("u".into(), "p".into());
        let mut stream = DESCRIBE.as_bytes().to_vec();
        stream.extend_from_slice(&[b'$', 1, 0, 3, 9, 9, 9]);
        // Fed a byte at a time, the framing still holds.
        let mut to_camera = Vec::new();
        for b in &stream {
            to_camera.extend(p.client_bytes(&[*b]).unwrap().to_camera);
        }
        assert_eq!(to_camera, stream);
        let out = p
            .camera_bytes(challenge(", qop=\"auth,auth-int\", opaque=\"xyz\"").as_bytes())
            .unwrap();
        let retry = String::from_utf8(out.to_camera).unwrap();
        assert!(
            retry.contains("qop=auth, nc=00000001, cnonce=\"") && retry.contains("opaque=\"xyz\""),
            "{retry}"
        );
        let rtp = [b'$', 0, 0, 2, 0xde, 0xad];
        assert_eq!(p.camera_bytes(&rtp).unwrap().to_client, rtp);

        let mut basic = AuthProxy::new("u".into(), "p".into());
        basic.client_bytes(DESCRIBE.as_bytes()).unwrap();
        let only_basic =
            "RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\nWWW-Authenticate: Basic realm=\"x\"\r\n\r\n";
        let retry = String::from_utf8(basic.camera_bytes(only_basic.as_bytes()).unwrap().to_camera)
            .unwrap();
        assert!(retry.contains("Authorization: Basic dTpw\r\n"), "{retry}");
    }

    #[test]
    fn the_relay_cannot_smuggle_its_own_authorization_and_junk_is_refused() {
        let mut p = AuthProxy::new("u".into(), "p".into());
        let sneaky = "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nauthorization: Basic Zm9vOmJhcg==\r\n\r\n";
        let out = String::from_utf8(p.client_bytes(sneaky.as_bytes()).unwrap().to_camera).unwrap();
        assert_eq!(out, "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n");
        assert!(p.client_bytes(&vec![b'A'; MAX_HEAD_BYTES + 1]).is_err());
        let huge = "ANNOUNCE x RTSP/1.0\r\nContent-Length: 99999999\r\n\r\n";
        assert!(
            AuthProxy::new("u".into(), "p".into())
                .client_bytes(huge.as_bytes())
                .is_err()
        );
        let bad_len = "ANNOUNCE x RTSP/1.0\r\nContent-Length: -1\r\n\r\n";
        assert!(
            AuthProxy::new("u".into(), "p".into())
                .client_bytes(bad_len.as_bytes())
                .is_err()
        );
    }
}
