//! An event clip's resumable upload, `PUT /agent/v1/events/{key}/clip?<query>` with
//! `Content-Range: bytes FIRST-LAST/TOTAL` and those bytes of the MP4 as the body, and
//! `HEAD` of the same path, answered with [`UPLOAD_OFFSET`]: how many of the clip's bytes the
//! relay holds durably, from which the agent goes on after a cut link or a restart. Both
//! sides use this module, so the contract is written once.

use crate::Error;
use serde::{Deserialize, Serialize};

/// The response header that says how many bytes of the clip the relay holds.
pub const UPLOAD_OFFSET: &str = "upload-offset";

/// The largest clip an agent may send: five minutes at 16 Mbit/s, more than a home camera's
/// main stream.
pub const MAX_CLIP_BYTES: u64 = 600 * 1024 * 1024;

/// The longest clip, as the agent's `[clips] max_length` may ask for.
pub const MAX_CLIP_MS: u64 = 300_000;

/// What the agent says of the clip, on every request of its upload; the relay checks the
/// stored MP4 against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipQuery {
    /// `h264` or `h265`: the camera's own coding (clips are never re-encoded).
    pub codec: String,
    /// From the clip's first frame to its last, milliseconds.
    pub length_ms: u64,
    /// When the motion was first seen, from the clip's start (milliseconds).
    pub event_at_ms: u64,
}

impl ClipQuery {
    /// Whether the values make sense for a clip.
    pub fn check(&self) -> Result<(), Error> {
        if !matches!(self.codec.as_str(), "h264" | "h265") {
            return Err(Error::invalid("codec is h264 or h265"));
        }
        if self.length_ms > MAX_CLIP_MS {
            return Err(Error::invalid(format_args!(
                "length_ms may be at most {MAX_CLIP_MS}"
            )));
        }
        if self.event_at_ms > self.length_ms {
            return Err(Error::invalid("event_at_ms is within the clip"));
        }
        Ok(())
    }
}

/// The bytes one request carries: `first..=last` of `total` (`bytes */TOTAL` with no body,
/// `first == total`, only for a clip whose bytes all went but whose end was not answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    pub first: u64,
    /// One past the last byte carried.
    pub end: u64,
    pub total: u64,
}

impl ContentRange {
    /// The rest of a clip of `total` bytes from `first`.
    pub fn rest(first: u64, total: u64) -> ContentRange {
        ContentRange {
            first,
            end: total,
            total,
        }
    }

    /// The header's value.
    pub fn header(&self) -> String {
        if self.end == self.first {
            format!("bytes */{}", self.total)
        } else {
            format!("bytes {}-{}/{}", self.first, self.end - 1, self.total)
        }
    }

    /// Reads a header's value; what is wrong with it otherwise.
    pub fn parse(value: &str) -> Result<ContentRange, Error> {
        let bad = || Error::invalid("Content-Range must be bytes FIRST-LAST/TOTAL");
        let rest = value.trim().strip_prefix("bytes ").ok_or_else(bad)?;
        let (range, total) = rest.split_once('/').ok_or_else(bad)?;
        let total: u64 = total.parse().map_err(|_| bad())?;
        if total == 0 || total > MAX_CLIP_BYTES {
            return Err(Error::invalid(format_args!(
                "a clip has 1 to {MAX_CLIP_BYTES} bytes"
            )));
        }
        if range == "*" {
            return Ok(ContentRange {
                first: total,
                end: total,
                total,
            });
        }
        let (first, last) = range.split_once('-').ok_or_else(bad)?;
        let number = |s: &str| {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u64>().ok())
                .flatten()
                .ok_or_else(bad)
        };
        let (first, last) = (number(first)?, number(last)?);
        if first > last || last >= total {
            return Err(Error::invalid(
                "Content-Range's bytes are not within the clip",
            ));
        }
        Ok(ContentRange {
            first,
            end: last + 1,
            total,
        })
    }

    /// The bytes carried.
    pub fn len(&self) -> u64 {
        self.end - self.first
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_agent_writes_the_relay_reads_back() {
        for range in [
            ContentRange::rest(0, 1000),
            ContentRange::rest(999, 1000),
            ContentRange::rest(1000, 1000),
            ContentRange {
                first: 10,
                end: 20,
                total: 1000,
            },
        ] {
            assert_eq!(ContentRange::parse(&range.header()).unwrap(), range);
        }
        assert_eq!(ContentRange::rest(0, 1000).header(), "bytes 0-999/1000");
    }

    #[test]
    fn ranges_outside_the_clip_or_oddly_written_are_refused() {
        for bad in [
            "",
            "bytes 0-9",
            "bytes 0-9/5",
            "bytes 5-4/10",
            "bytes -1/10",
            "bytes 0-/10",
            "bytes +1-2/10",
            "bytes 0-9/0",
            "items 0-9/10",
            "bytes 0-9/99999999999999999999",
            "bytes 0-9/629145601",
        ] {
            assert!(ContentRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_clip_says_its_codec_and_a_detection_within_it() {
        let ok = ClipQuery {
            codec: "h265".into(),
            length_ms: 15_000,
            event_at_ms: 5_000,
        };
        assert!(ok.check().is_ok());
        for bad in [
            ClipQuery {
                codec: "vp8".into(),
                ..ok.clone()
            },
            ClipQuery {
                length_ms: MAX_CLIP_MS + 1,
                ..ok.clone()
            },
            ClipQuery {
                event_at_ms: 15_001,
                ..ok.clone()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
