//! Sound transcoded to Opus with GStreamer, for browsers: a camera's frames (AAC, G.722,
//! L16: whatever `decodebin` finds a decoder for, described by their caps) go in stamped with
//! their media time, and 20 ms Opus packets at 48 kHz come out stamped with the same clock,
//! so the relay keeps them in step with the pictures. One per listened-to camera.

use crate::error::{Error, ErrorKind};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::time::Duration;
use tokio::sync::mpsc;

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

/// A running transcoder (see the module's documentation); stopped when dropped.
pub struct OpusEncoder {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    packets: mpsc::Receiver<OpusPacket>,
}

fn media_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::FailedPrecondition,
        format!("sound transcoding: {what}: {e}"),
    )
}

impl OpusEncoder {
    /// Starts a transcoder for frames described by `caps` (GStreamer caps).
    pub fn new(caps: &str) -> Result<OpusEncoder, Error> {
        gst::init().map_err(|e| media_error("GStreamer", e))?;
        let caps: gst::Caps = caps.parse().map_err(|e| media_error("caps", e))?;
        let description = format!(
            "appsrc name=src format=time is-live=true ! decodebin ! audioconvert ! \
             audioresample ! audio/x-raw,rate={OPUS_CLOCK_RATE} ! \
             opusenc frame-size=20 bitrate={OPUS_BITRATE} ! appsink name=sink sync=false"
        );
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| media_error("pipeline", e))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| media_error("pipeline", "not a pipeline"))?;
        let element = |name: &str| {
            pipeline
                .by_name(name)
                .ok_or_else(|| media_error("pipeline", format!("no {name}")))
        };
        let src = element("src")?
            .downcast::<gst_app::AppSrc>()
            .map_err(|_| media_error("pipeline", "src is no appsrc"))?;
        src.set_caps(Some(&caps));
        let sink = element("sink")?
            .downcast::<gst_app::AppSink>()
            .map_err(|_| media_error("pipeline", "sink is no appsink"))?;
        let (tx, packets) = mpsc::channel(QUEUE);
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let Some(buffer) = sample.buffer() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let Ok(map) = buffer.map_readable() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let at = buffer.pts().map_or(0, gst::ClockTime::nseconds);
                    let timestamp =
                        (u128::from(at) * u128::from(OPUS_CLOCK_RATE) / 1_000_000_000) as i64;
                    // A listener too slow for its sound loses it, not the camera's session.
                    let _ = tx.try_send(OpusPacket {
                        timestamp,
                        data: bytes::Bytes::copy_from_slice(&map),
                    });
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| media_error("start", e))?;
        Ok(OpusEncoder {
            pipeline,
            src,
            packets,
        })
    }

    /// Hands on one frame, `timestamp` ticks of `clock_rate` after the media's start; fails
    /// when the pipeline has failed (no decoder for the caps, a frame it cannot decode).
    pub fn push(&mut self, timestamp: i64, clock_rate: u32, data: &[u8]) -> Result<(), Error> {
        if let Some(bus) = self.pipeline.bus()
            && let Some(message) = bus.pop_filtered(&[gst::MessageType::Error])
            && let gst::MessageView::Error(e) = message.view()
        {
            return Err(media_error("decoding", e.error()));
        }
        let mut buffer = gst::Buffer::from_slice(data.to_vec());
        let at = Duration::from_secs_f64(timestamp.max(0) as f64 / f64::from(clock_rate.max(1)));
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(at.as_nanos() as u64));
        }
        self.src
            .push_buffer(buffer)
            .map(|_| ())
            .map_err(|e| media_error("decoding", e))
    }

    /// The next Opus packet; `None` once the pipeline is gone.
    pub async fn next(&mut self) -> Option<OpusPacket> {
        self.packets.recv().await
    }
}

impl Drop for OpusEncoder {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
