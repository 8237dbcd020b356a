//! A camera's sound (AAC, G.722, L16: whatever `decodebin` finds a decoder for, described by
//! its caps) to 20 ms Opus packets at 48 kHz, for browsers.

use super::{Encoded, Pipeline};
use crate::error::Error;
use std::time::Duration;

/// Opus's RTP clock (RFC 7587): always 48 kHz.
pub const OPUS_CLOCK_RATE: u32 = 48_000;
/// Encoded packets waiting for the feed: a second of sound; more are dropped.
const QUEUE: usize = 50;
/// The Opus bitrate: speech and a room's sounds, as a phone call has them.
const OPUS_BITRATE: i32 = 32_000;

/// One Opus packet (20 ms).
#[derive(Debug, Clone)]
pub struct OpusPacket {
    /// Ticks of [`OPUS_CLOCK_RATE`] since the media's start (its input's media time).
    pub timestamp: i64,
    pub data: bytes::Bytes,
}

/// A running transcoder to Opus; stopped when dropped.
pub struct OpusEncoder(Pipeline);

impl OpusEncoder {
    /// Starts a transcoder for frames described by `caps` (GStreamer caps).
    pub fn new(caps: &str) -> Result<OpusEncoder, Error> {
        let description = format!(
            "appsrc name=src format=time is-live=true ! decodebin ! audioconvert ! \
             audioresample ! audio/x-raw,rate={OPUS_CLOCK_RATE} ! \
             opusenc frame-size=20 bitrate={OPUS_BITRATE} ! appsink name=sink sync=false"
        );
        Pipeline::start(&description, caps, QUEUE).map(OpusEncoder)
    }

    /// Hands on one frame, `timestamp` ticks of `clock_rate` after the media's start.
    pub fn push(&mut self, timestamp: i64, clock_rate: u32, data: &[u8]) -> Result<(), Error> {
        let at = Duration::from_secs_f64(timestamp.max(0) as f64 / f64::from(clock_rate.max(1)));
        self.0.push(at, data)
    }

    /// The next Opus packet; `None` once the pipeline is gone.
    pub async fn next(&mut self) -> Option<OpusPacket> {
        let Encoded { at, data, .. } = self.0.next().await?;
        let timestamp = (at.as_nanos() * u128::from(OPUS_CLOCK_RATE) / 1_000_000_000) as i64;
        Some(OpusPacket { timestamp, data })
    }
}
