//! What a camera sends the relay's RTSP client, checked on its way. The connection carries
//! RTSP: replies (text, with an optional body) and, once playing over TCP, RTP packets
//! interleaved with them (RFC 2326 §10.12: `$`, a channel, a 16-bit length, the packet).
//!
//! - The client gathers the packets of one picture (one RTP timestamp) without a bound, so a
//!   camera that never ends a picture would take the relay's memory. [`FrameGuard`] counts
//!   each RTP channel's bytes per timestamp and says stop when one picture passes its bound.
//!   Over UDP, the relay's own sockets count the same way ([`PictureBound`]).
//! - Each message head (a reply's, or a request's on the way to the camera) is held until
//!   whole and handed to the caller, who may rewrite it (the `Transport` header of a direct
//!   camera's SETUP: `super::transport`).
//!
//! Plain state, fed whatever pieces the connection delivers.

use std::collections::HashMap;

/// The largest picture taken: a 4K camera's keyframes are a few hundred kilobytes to a few
/// megabytes.
pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;
/// The largest RTSP message head (first line and headers).
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Why the guard stopped the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// One picture was larger than the bound.
    FrameTooLarge { channel: u8, bytes: usize },
    /// An RTSP message's head was longer than any camera's.
    HeadTooLong,
    /// An RTSP message's `Content-Length` was not a number.
    BadContentLength,
    /// The relay had no UDP ports to put between the camera and the RTSP client.
    NoUdpPorts(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::FrameTooLarge { channel, bytes } => write!(
                f,
                "a picture on channel {channel} passed {bytes} bytes (at most {MAX_FRAME_BYTES})"
            ),
            Refused::HeadTooLong => write!(f, "an RTSP message head passed {MAX_HEAD_BYTES} bytes"),
            Refused::BadContentLength => {
                write!(f, "an RTSP message's Content-Length is not a number")
            }
            Refused::NoUdpPorts(why) => write!(f, "no UDP ports for the camera's media: {why}"),
        }
    }
}

#[derive(Debug)]
enum State {
    /// Between messages: `$` starts a packet, anything else a message (a reply or a request).
    Between,
    /// The 3 bytes after `$`: channel and length.
    PacketHeader { have: Vec<u8> },
    /// A packet's bytes: the first 8 (the RTP header's timestamp is at 4..8), then the rest.
    Packet {
        channel: u8,
        len: usize,
        seen: usize,
        head: [u8; 8],
    },
    /// A message's head, up to the blank line.
    Head { head: Vec<u8> },
    /// A message's body.
    Body { left: usize },
}

/// The bytes of the picture being received on each RTP channel, stopped at a bound.
#[derive(Debug)]
pub struct PictureBound {
    max_frame: usize,
    /// Per channel: the timestamp of the picture being received and its bytes so far.
    pictures: HashMap<u8, (u32, usize)>,
}

impl PictureBound {
    pub fn new(max_frame: usize) -> PictureBound {
        PictureBound {
            max_frame,
            pictures: HashMap::new(),
        }
    }

    /// Counts an RTP packet of `len` bytes on `channel` whose first 8 bytes are `head` (the
    /// timestamp is at 4..8); a packet too short for that carries no picture.
    pub fn count(&mut self, channel: u8, head: &[u8], len: usize) -> Result<(), Refused> {
        let Some(ts) = head.get(4..8) else {
            return Ok(());
        };
        let timestamp = u32::from_be_bytes([ts[0], ts[1], ts[2], ts[3]]);
        let picture = self.pictures.entry(channel).or_insert((timestamp, 0));
        if picture.0 != timestamp {
            *picture = (timestamp, 0);
        }
        picture.1 += len;
        if picture.1 > self.max_frame {
            return Err(Refused::FrameTooLarge {
                channel,
                bytes: picture.1,
            });
        }
        Ok(())
    }
}

/// See the module's documentation.
#[derive(Debug)]
pub struct FrameGuard {
    state: State,
    pictures: PictureBound,
}

impl FrameGuard {
    pub fn new(max_frame: usize) -> FrameGuard {
        FrameGuard {
            state: State::Between,
            pictures: PictureBound::new(max_frame),
        }
    }

    /// Reads the next bytes of the stream, to be passed on as they are.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), Refused> {
        self.read(bytes, None)
    }

    /// Reads the next bytes of the stream and appends to `out` what to pass on: the same
    /// bytes, but for the messages' heads, which come out whole, through `head` (which
    /// appends what to pass on for the head it is given).
    pub fn feed_into(
        &mut self,
        bytes: &[u8],
        out: &mut Vec<u8>,
        head: &mut HeadRewrite<'_>,
    ) -> Result<(), Refused> {
        self.read(bytes, Some((out, head)))
    }

    fn read(
        &mut self,
        mut bytes: &[u8],
        mut out: Option<(&mut Vec<u8>, &mut HeadRewrite<'_>)>,
    ) -> Result<(), Refused> {
        while !bytes.is_empty() {
            let before = bytes;
            // A head is held until it is whole (then passed on, rewritten); the rest of the
            // stream passes as it is read.
            let passes = !matches!(self.state, State::Head { .. });
            match &mut self.state {
                State::Between => {
                    if bytes[0] == b'$' {
                        self.state = State::PacketHeader { have: Vec::new() };
                        bytes = &bytes[1..];
                    } else {
                        self.state = State::Head { head: Vec::new() };
                    }
                }
                State::PacketHeader { have } => {
                    let take = (3 - have.len()).min(bytes.len());
                    have.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if have.len() == 3 {
                        let (channel, len) =
                            (have[0], usize::from(u16::from_be_bytes([have[1], have[2]])));
                        self.state = if len == 0 {
                            State::Between
                        } else {
                            State::Packet {
                                channel,
                                len,
                                seen: 0,
                                head: [0; 8],
                            }
                        };
                    }
                }
                State::Packet {
                    channel,
                    len,
                    seen,
                    head,
                } => {
                    let take = (*len - *seen).min(bytes.len());
                    // The first 8 bytes kept in place: nothing is allocated per packet.
                    if *seen < 8 {
                        let want = (8 - *seen).min(take);
                        head[*seen..*seen + want].copy_from_slice(&bytes[..want]);
                    }
                    *seen += take;
                    bytes = &bytes[take..];
                    if *seen == *len {
                        let (channel, len, head) = (*channel, *len, *head);
                        self.state = State::Between;
                        // Odd channels carry RTCP; a packet too short for an RTP header
                        // carries no picture.
                        if channel % 2 == 0 {
                            self.pictures.count(channel, &head[..len.min(8)], len)?;
                        }
                    }
                }
                State::Head { head } => {
                    let take = bytes
                        .len()
                        .min(MAX_HEAD_BYTES + 4 - head.len().min(MAX_HEAD_BYTES));
                    let start = head.len().saturating_sub(3);
                    head.extend_from_slice(&bytes[..take]);
                    if let Some(end) = find_blank_line(&head[start..]).map(|i| start + i + 4) {
                        let body = content_length(&head[..end])?;
                        if let Some((out, rewrite)) = out.as_mut() {
                            rewrite(&head[..end], out)?;
                        }
                        let rest = head.len() - end;
                        // What came after the head is given back to the loop.
                        bytes = &bytes[take - rest..];
                        self.state = if body > 0 {
                            State::Body { left: body }
                        } else {
                            State::Between
                        };
                    } else if head.len() > MAX_HEAD_BYTES {
                        return Err(Refused::HeadTooLong);
                    } else {
                        bytes = &bytes[take..];
                    }
                }
                State::Body { left } => {
                    let take = (*left).min(bytes.len());
                    *left -= take;
                    bytes = &bytes[take..];
                    if *left == 0 {
                        self.state = State::Between;
                    }
                }
            }
            if passes && let Some((out, _)) = out.as_mut() {
                out.extend_from_slice(&before[..before.len() - bytes.len()]);
            }
        }
        Ok(())
    }
}

/// What the caller does with each whole message head: appends what to pass on to the output.
pub type HeadRewrite<'a> = dyn FnMut(&[u8], &mut Vec<u8>) -> Result<(), Refused> + 'a;

/// Passes a head on as it came.
pub fn pass_head(head: &[u8], out: &mut Vec<u8>) -> Result<(), Refused> {
    out.extend_from_slice(head);
    Ok(())
}

fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n")
}

/// The `Content-Length` of a message head (0 without one).
fn content_length(head: &[u8]) -> Result<usize, Refused> {
    let text = String::from_utf8_lossy(head);
    for line in text.split("\r\n") {
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            return value.trim().parse().map_err(|_| Refused::BadContentLength);
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An interleaved RTP packet on `channel` at `timestamp` with `payload` bytes.
    fn packet(channel: u8, timestamp: u32, payload: usize) -> Vec<u8> {
        let len = 12 + payload;
        let mut p = vec![b'$', channel];
        p.extend_from_slice(&(len as u16).to_be_bytes());
        p.extend_from_slice(&[0x80, 96, 0, 1]);
        p.extend_from_slice(&timestamp.to_be_bytes());
        p.extend_from_slice(&[0; 4]);
        p.extend(std::iter::repeat_n(0xAB, payload));
        p
    }

    const REPLY: &[u8] = b"RTSP/1.0 200 OK\r\nCSeq: 4\r\nContent-Length: 5\r\n\r\nv=0\r\n";

    #[test]
    fn replies_and_pictures_within_the_bound_pass_whatever_the_pieces() {
        let mut stream = REPLY.to_vec();
        for ts in 0..20u32 {
            for _ in 0..10 {
                stream.extend(packet(0, ts * 3000, 1400));
            }
            stream.extend(packet(1, 0, 40)); // RTCP
        }
        stream.extend_from_slice(b"RTSP/1.0 200 OK\r\nCSeq: 5\r\n\r\n");
        stream.extend(packet(0, 99_000, 1400));
        for piece in [1, 3, 7, 1500, 64 * 1024] {
            let mut g = FrameGuard::new(20_000);
            for chunk in stream.chunks(piece) {
                g.feed(chunk).unwrap();
            }
            assert!(matches!(g.state, State::Between), "pieces of {piece}");
        }
    }

    #[test]
    fn a_picture_that_never_ends_is_stopped_at_the_bound() {
        let mut g = FrameGuard::new(20_000);
        g.feed(REPLY).unwrap();
        let mut refused = None;
        for _ in 0..100 {
            if let Err(e) = g.feed(&packet(0, 7, 1400)) {
                refused = Some(e);
                break;
            }
        }
        assert_eq!(
            refused,
            Some(Refused::FrameTooLarge {
                channel: 0,
                bytes: 15 * 1412
            })
        );
    }

    #[test]
    fn every_whole_head_and_only_heads_go_through_the_callers_rewrite() {
        // A body that looks like a head is passed as it is.
        let describe =
            b"RTSP/1.0 200 OK\r\nContent-Length: 29\r\n\r\nTransport: x;source=10.0.0.1\n";
        let mut stream = describe.to_vec();
        stream.extend(packet(0, 1, 100));
        stream.extend_from_slice(b"RTSP/1.0 200 OK\r\nCSeq: 3\r\n\r\n");
        let expected = [
            &b"RTSP/1.0 200 OK\r\nContent-Length: 29\r\n\r\n[head]"[..],
            b"Transport: x;source=10.0.0.1\n",
            &packet(0, 1, 100),
            b"RTSP/1.0 200 OK\r\nCSeq: 3\r\n\r\n[head]",
        ]
        .concat();
        for piece in [1, 2, 5, 64, 4096] {
            let mut g = FrameGuard::new(20_000);
            let mut out = Vec::new();
            let mut mark = |head: &[u8], out: &mut Vec<u8>| {
                out.extend_from_slice(head);
                out.extend_from_slice(b"[head]");
                Ok(())
            };
            for chunk in stream.chunks(piece) {
                g.feed_into(chunk, &mut out, &mut mark).unwrap();
            }
            assert_eq!(out, expected, "pieces of {piece}");
        }
    }

    #[test]
    fn a_plain_guard_passes_every_byte_on_as_it_came() {
        let mut stream = REPLY.to_vec();
        stream.extend(packet(0, 1, 100));
        stream.extend_from_slice(
            b"RTSP/1.0 200 OK\r\nTransport: RTP/AVP/TCP;source=10.0.0.1\r\n\r\n",
        );
        let mut g = FrameGuard::new(20_000);
        let mut out = Vec::new();
        for chunk in stream.chunks(3) {
            g.feed_into(chunk, &mut out, &mut pass_head).unwrap();
        }
        assert_eq!(out, stream);
    }

    #[test]
    fn an_endless_reply_head_or_a_bad_length_is_refused() {
        let mut g = FrameGuard::new(20_000);
        let mut refused = None;
        for _ in 0..100 {
            if let Err(e) = g.feed(&[b'x'; 1024]) {
                refused = Some(e);
                break;
            }
        }
        assert_eq!(refused, Some(Refused::HeadTooLong));
        let mut g = FrameGuard::new(20_000);
        assert_eq!(
            g.feed(b"RTSP/1.0 200 OK\r\nContent-Length: lots\r\n\r\n"),
            Err(Refused::BadContentLength)
        );
    }
}
