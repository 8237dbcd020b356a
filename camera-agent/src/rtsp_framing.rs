//! RTSP's framing on one TCP connection (RFC 2326 §10.12): text messages (a head up to the
//! blank line, and a body of `Content-Length` bytes) and `$`-framed interleaved packets, split
//! however the bytes arrive, with bounds. Plain code over bytes, shared by the credential
//! proxy ([`crate::rtsp_auth`]) and the agent's own server ([`crate::restream`]).

/// The largest RTSP message head (request or response line and headers) accepted.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The largest RTSP message body (an SDP) accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// One framed unit of an RTSP connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Unit {
    /// A `$` interleaved packet, whole.
    Interleaved(Vec<u8>),
    /// A request or response: head (up to and including the blank line) and body.
    Message { head: String, body: Vec<u8> },
}

/// Splits a byte stream into RTSP units, however the bytes arrive.
#[derive(Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole unit, `Ok(None)` if more bytes are needed, `Err` if the stream is not
    /// RTSP (or exceeds the limits): the tunnel should then be closed.
    pub fn next_unit(&mut self) -> Result<Option<Unit>, String> {
        if self.buf.first() == Some(&b'$') {
            if self.buf.len() < 4 {
                return Ok(None);
            }
            let len = 4 + usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
            if self.buf.len() < len {
                return Ok(None);
            }
            return Ok(Some(Unit::Interleaved(self.buf.drain(..len).collect())));
        }
        let Some(end) = find(&self.buf, b"\r\n\r\n") else {
            if self.buf.len() > MAX_HEAD_BYTES {
                return Err("RTSP message head too long".into());
            }
            return Ok(None);
        };
        let head_len = end + 4;
        let head = std::str::from_utf8(&self.buf[..head_len])
            .map_err(|_| "RTSP message head is not UTF-8".to_owned())?
            .to_owned();
        let body_len = match header(&head, "content-length") {
            None => 0,
            Some(v) => v
                .trim()
                .parse::<usize>()
                .map_err(|_| "bad Content-Length".to_owned())?,
        };
        if body_len > MAX_BODY_BYTES {
            return Err("RTSP message body too long".into());
        }
        if self.buf.len() < head_len + body_len {
            return Ok(None);
        }
        let body = self.buf[head_len..head_len + body_len].to_vec();
        self.buf.drain(..head_len + body_len);
        Ok(Some(Unit::Message { head, body }))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The value of the first header `name` (case-insensitive) in a message head.
pub fn header<'a>(head: &'a str, name: &'a str) -> Option<&'a str> {
    headers(head, name).next()
}

pub fn headers<'a>(head: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    head.split("\r\n").skip(1).filter_map(move |line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}
