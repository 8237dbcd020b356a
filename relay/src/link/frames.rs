//! A bound on the pictures a camera sends through its agent's tunnel. The tunnel carries RTSP:
//! replies (text, with an optional body) and, once playing, RTP packets interleaved with them
//! (RFC 2326 §10.12: `$`, a channel, a 16-bit length, the packet). The relay's RTSP client
//! gathers the packets of one picture (one RTP timestamp) without a bound, so a camera that
//! never ends a picture would take the relay's memory. [`FrameGuard`] reads the bytes going
//! to the client, counts each RTP channel's bytes per timestamp, and says stop when one
//! picture passes its bound. Plain state, fed whatever pieces the tunnel delivers.

use std::collections::HashMap;

/// The largest picture taken: a 4K camera's keyframes are a few hundred kilobytes to a few
/// megabytes.
pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;
/// The largest RTSP reply head (status line and headers).
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Why the guard stopped the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// One picture was larger than the bound.
    FrameTooLarge { channel: u8, bytes: usize },
    /// An RTSP reply's head was longer than any camera's.
    HeadTooLong,
    /// An RTSP reply's `Content-Length` was not a number.
    BadContentLength,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::FrameTooLarge { channel, bytes } => write!(
                f,
                "a picture on channel {channel} passed {bytes} bytes (at most {MAX_FRAME_BYTES})"
            ),
            Refused::HeadTooLong => write!(f, "an RTSP reply head passed {MAX_HEAD_BYTES} bytes"),
            Refused::BadContentLength => {
                write!(f, "an RTSP reply's Content-Length is not a number")
            }
        }
    }
}

#[derive(Debug)]
enum State {
    /// Between messages: `$` starts a packet, anything else a reply.
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
    /// A reply's head, up to the blank line.
    Head { head: Vec<u8> },
    /// A reply's body.
    Body { left: usize },
}

/// See the module's documentation.
#[derive(Debug)]
pub struct FrameGuard {
    max_frame: usize,
    state: State,
    /// Per channel: the timestamp of the picture being received and its bytes so far.
    pictures: HashMap<u8, (u32, usize)>,
}

impl FrameGuard {
    pub fn new(max_frame: usize) -> FrameGuard {
        FrameGuard {
            max_frame,
            state: State::Between,
            pictures: HashMap::new(),
        }
    }

    /// Reads the next bytes of the stream.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Refused> {
        while !bytes.is_empty() {
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
                        if channel % 2 == 0 && len >= 8 {
                            self.count(
                                channel,
                                u32::from_be_bytes([head[4], head[5], head[6], head[7]]),
                                len,
                            )?;
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
        }
        Ok(())
    }

    /// Counts a packet of `len` bytes of the picture at `timestamp` on `channel`.
    fn count(&mut self, channel: u8, timestamp: u32, len: usize) -> Result<(), Refused> {
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

fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n")
}

/// The `Content-Length` of a reply head (0 without one).
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
