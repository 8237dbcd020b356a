//! Internal calls between nodes are signed with the cluster's shared secret:
//! `Authorization: Eyeward-Cluster <node>.<unix-ms>.<hmac>`, an HMAC-SHA-256 over the calling
//! node, the time, the method, the path and the body's SHA-256. A signature older or newer
//! than [`SKEW`], or one already seen, is refused. Plain functions and a bounded memory of
//! signatures seen; the HTTP edge (`http::internal`) applies them.

use crate::error::{Error, ErrorKind};
use ring::hmac;
use sha2::{Digest, Sha256};
use std::collections::{HashSet, VecDeque};
use std::path::Path;
use std::sync::Mutex;

/// The scheme of the `Authorization` header.
pub const SCHEME: &str = "Eyeward-Cluster";

/// How far a signature's time may be from the receiver's clock.
pub const SKEW: i64 = 30_000;

/// Signatures remembered against replay (those within ±[`SKEW`]); past this many, the oldest
/// are forgotten: a replay then still needs a time within the window.
const REMEMBERED: usize = 100_000;

/// The shared secret, and the signatures seen lately.
pub struct Signer {
    key: hmac::Key,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    set: HashSet<String>,
    order: VecDeque<(i64, String)>,
}

/// An internal request, as signed.
pub struct Signed<'a> {
    pub node: i64,
    pub at_ms: i64,
    pub method: &'a str,
    pub path: &'a str,
    pub body: &'a [u8],
}

impl Signed<'_> {
    fn message(&self) -> String {
        let body = Sha256::digest(self.body);
        format!(
            "{}\n{}\n{}\n{}\n{}",
            self.node,
            self.at_ms,
            self.method,
            self.path,
            hex(&body)
        )
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn refused(why: &str) -> Error {
    Error::new(
        ErrorKind::Unauthenticated,
        format!("internal call refused: {why}"),
    )
}

impl Signer {
    /// The secret in `file` (32 bytes or more, surrounding whitespace aside).
    pub fn from_file(file: &Path) -> Result<Signer, Error> {
        let secret = std::fs::read(file).map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("cannot read cluster.secret_file {}: {e}", file.display()),
            )
        })?;
        Signer::new(secret.trim_ascii())
    }

    pub fn new(secret: &[u8]) -> Result<Signer, Error> {
        if secret.len() < 32 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "the cluster secret must be 32 bytes or more",
            ));
        }
        Ok(Signer {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            seen: Mutex::new(Seen::default()),
        })
    }

    /// The `Authorization` header's value for `request`.
    pub fn authorization(&self, request: &Signed<'_>) -> String {
        let tag = hmac::sign(&self.key, request.message().as_bytes());
        format!(
            "{SCHEME} {}.{}.{}",
            request.node,
            request.at_ms,
            hex(tag.as_ref())
        )
    }

    /// Checks `authorization` for a request of `method` on `path` with `body`, received at
    /// `now_ms`: returns the calling node.
    pub fn verify(
        &self,
        authorization: Option<&str>,
        method: &str,
        path: &str,
        body: &[u8],
        now_ms: i64,
    ) -> Result<i64, Error> {
        let value = authorization
            .and_then(|a| a.strip_prefix(SCHEME))
            .and_then(|a| a.strip_prefix(' '))
            .ok_or_else(|| refused("no signature"))?;
        let mut parts = value.splitn(3, '.');
        let (Some(node), Some(at), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(refused("a malformed signature"));
        };
        let (Ok(node), Ok(at_ms)) = (node.parse::<i64>(), at.parse::<i64>()) else {
            return Err(refused("a malformed signature"));
        };
        if (now_ms - at_ms).abs() > SKEW {
            return Err(refused("a signature out of its time"));
        }
        let tag = (0..tag.len())
            .step_by(2)
            .map(|i| {
                tag.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| refused("a malformed signature"))?;
        let request = Signed {
            node,
            at_ms,
            method,
            path,
            body,
        };
        hmac::verify(&self.key, request.message().as_bytes(), &tag)
            .map_err(|_| refused("a wrong signature"))?;
        self.first_time(value, at_ms, now_ms)?;
        Ok(node)
    }

    /// Refuses a signature seen before; forgets those too old to be accepted again.
    fn first_time(&self, signature: &str, at_ms: i64, now_ms: i64) -> Result<(), Error> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((at, _)) = seen.order.front() {
            if *at >= now_ms - SKEW && seen.order.len() < REMEMBERED {
                break;
            }
            if let Some((_, old)) = seen.order.pop_front() {
                seen.set.remove(&old);
            }
        }
        if !seen.set.insert(signature.to_owned()) {
            return Err(refused("a replayed signature"));
        }
        seen.order.push_back((at_ms, signature.to_owned()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn signer() -> Signer {
        Signer::new(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    fn request(body: &[u8]) -> Signed<'_> {
        Signed {
            node: 2,
            at_ms: NOW,
            method: "POST",
            path: "/internal/v1/cameras/7/ptz",
            body,
        }
    }

    #[test]
    fn a_signed_request_is_accepted_once() {
        let s = signer();
        let auth = s.authorization(&request(b"{}"));
        let path = "/internal/v1/cameras/7/ptz";
        assert_eq!(
            s.verify(Some(&auth), "POST", path, b"{}", NOW + 5).unwrap(),
            2
        );
        let again = s.verify(Some(&auth), "POST", path, b"{}", NOW + 6);
        assert!(again.unwrap_err().to_string().contains("replayed"));
    }

    #[test]
    fn anything_changed_or_late_is_refused() {
        let s = signer();
        let auth = s.authorization(&request(b"{}"));
        let path = "/internal/v1/cameras/7/ptz";
        for (auth, method, path, body, now, why) in [
            (None, "POST", path, &b"{}"[..], NOW, "no signature"),
            (
                Some(auth.as_str()),
                "POST",
                path,
                b"{\"a\":1}",
                NOW,
                "wrong",
            ),
            (Some(&auth), "GET", path, b"{}", NOW, "wrong"),
            (
                Some(&auth),
                "POST",
                "/internal/v1/cameras/8/ptz",
                b"{}",
                NOW,
                "wrong",
            ),
            (
                Some(&auth),
                "POST",
                path,
                b"{}",
                NOW + SKEW + 1,
                "out of its time",
            ),
            (
                Some(&auth),
                "POST",
                path,
                b"{}",
                NOW - SKEW - 1,
                "out of its time",
            ),
            (Some("Bearer x"), "POST", path, b"{}", NOW, "no signature"),
            (
                Some("Eyeward-Cluster 2.x.00"),
                "POST",
                path,
                b"{}",
                NOW,
                "malformed",
            ),
            (
                Some("Eyeward-Cluster 2.1.zz"),
                "POST",
                path,
                b"{}",
                NOW,
                "out of its time",
            ),
        ] {
            let err = s.verify(auth, method, path, body, now).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unauthenticated);
            assert!(err.to_string().contains(why), "{why}: {err}");
        }
        let other = Signer::new(b"another secret of 32 bytes or so!!").unwrap();
        let err = other
            .verify(Some(&auth), "POST", path, b"{}", NOW)
            .unwrap_err();
        assert!(err.to_string().contains("wrong"), "{err}");
        assert!(Signer::new(b"short").is_err());
    }
}
