//! A camera's H.265 to H.264, for browsers (most take no H.265 over WebRTC): decoded and
//! encoded in real time by x264 (`zerolatency`: no frames held back, no B-frames), constrained
//! baseline as browsers' decoders all take, a keyframe at least every [`KEYFRAME_EVERY`]
//! frames (with its SPS and PPS) so a new viewer starts at once from the cache.

use super::{Encoded, Pipeline};
use crate::error::Error;
use std::time::Duration;

/// Frames between H.264 keyframes at most: 2 s at 15 fps, the cached group a new viewer gets.
pub const KEYFRAME_EVERY: u32 = 30;
/// The H.264 bitrate (kbit/s): a 720p camera's picture at about the quality of its own.
const BITRATE_KBPS: u32 = 2_000;
/// Frames waiting for the feed; more are dropped.
const QUEUE: usize = 64;

/// A running transcoder from H.265 (Annex B access units) to H.264 (Annex B, the parameter
/// sets before each keyframe); stopped when dropped.
pub struct H264Encoder(Pipeline);

impl H264Encoder {
    pub fn new() -> Result<H264Encoder, Error> {
        let description = format!(
            "appsrc name=src format=time is-live=true ! h265parse ! avdec_h265 ! videoconvert ! \
             x264enc tune=zerolatency speed-preset=ultrafast bitrate={BITRATE_KBPS} \
             key-int-max={KEYFRAME_EVERY} threads=2 ! \
             video/x-h264,profile=constrained-baseline,stream-format=byte-stream,alignment=au ! \
             h264parse config-interval=-1 ! appsink name=sink sync=false"
        );
        let caps = "video/x-h265,stream-format=(string)byte-stream,alignment=(string)au";
        Pipeline::start(&description, caps, QUEUE).map(H264Encoder)
    }

    /// Hands on one H.265 access unit (Annex B) with its media time.
    pub fn push(&mut self, at: Duration, annex_b: &[u8]) -> Result<(), Error> {
        self.0.push(at, annex_b)
    }

    /// The next H.264 access unit; `None` once the pipeline is gone.
    pub async fn next(&mut self) -> Option<Encoded> {
        self.0.next().await
    }
}
