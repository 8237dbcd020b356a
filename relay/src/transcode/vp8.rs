//! A camera's H.264 to VP8, for browsers that take no H.264 (Firefox without its OpenH264
//! plug-in, some Android WebViews): decoded and encoded in real time with libvpx, a keyframe
//! at least every [`KEYFRAME_EVERY`] frames so a new viewer starts at once from the cache.

use super::{Encoded, Pipeline};
use crate::error::Error;
use std::time::Duration;

/// Frames between VP8 keyframes at most: 2 s at 15 fps, the cached group a new viewer gets.
pub const KEYFRAME_EVERY: u32 = 30;
/// The VP8 bitrate: a 720p camera's picture at about the quality of its own H.264.
const TARGET_BITRATE: u32 = 1_500_000;
/// Frames waiting for the feed; more are dropped.
const QUEUE: usize = 64;

/// A running transcoder from H.264 (Annex B access units) to VP8; stopped when dropped.
pub struct Vp8Encoder(Pipeline);

impl Vp8Encoder {
    pub fn new() -> Result<Vp8Encoder, Error> {
        // Real time, as fast as libvpx goes, no frames held back (`lag-in-frames=0`).
        let description = format!(
            "appsrc name=src format=time is-live=true ! h264parse ! avdec_h264 ! videoconvert ! \
             vp8enc deadline=1 cpu-used=8 end-usage=cbr target-bitrate={TARGET_BITRATE} \
             keyframe-max-dist={KEYFRAME_EVERY} lag-in-frames=0 threads=2 ! \
             appsink name=sink sync=false"
        );
        let caps = "video/x-h264,stream-format=(string)byte-stream,alignment=(string)au";
        Pipeline::start(&description, caps, QUEUE).map(Vp8Encoder)
    }

    /// Hands on one H.264 access unit (Annex B) with its media time.
    pub fn push(&mut self, at: Duration, annex_b: &[u8]) -> Result<(), Error> {
        self.0.push(at, annex_b)
    }

    /// The next VP8 frame; `None` once the pipeline is gone.
    pub async fn next(&mut self) -> Option<Encoded> {
        self.0.next().await
    }
}

/// Cuts a VP8 frame into RTP payloads of at most `max` bytes (RFC 7741: a one-byte payload
/// descriptor, its start bit on the first). Done once per frame for every viewer.
pub fn rtp_payloads(frame: &bytes::Bytes, max: usize) -> Result<Vec<bytes::Bytes>, &'static str> {
    use rtc::rtp::codec::vp8::Vp8Payloader;
    use rtc::rtp::packetizer::Payloader;
    Vp8Payloader::default()
        .payload(max, frame)
        .map_err(|_| "cannot packetize the frame")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vp8_frame_is_cut_with_the_start_bit_on_its_first_payload_only() {
        let frame = bytes::Bytes::from(vec![0x9d; 3000]);
        let payloads = rtp_payloads(&frame, 1188).expect("payloads");
        assert_eq!(payloads.len(), 3);
        assert!(payloads.iter().all(|p| p.len() <= 1188));
        let starts: Vec<bool> = payloads.iter().map(|p| p[0] & 0x10 != 0).collect();
        assert_eq!(starts, [true, false, false]);
        let carried: usize = payloads.iter().map(|p| p.len() - 1).sum();
        assert_eq!(carried, 3000);
    }
}
