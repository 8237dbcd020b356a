//! Transcoding with GStreamer, for browsers that cannot take what a camera sends: its sound
//! to Opus ([`opus`]), its H.264 to VP8 for browsers without H.264 ([`vp8`]), its H.265 to
//! H.264 ([`h264`], on the machine's hardware encoder where it has one). Each is one
//! pipeline per camera, fed with the camera's frames stamped with their media time; what it
//! makes comes out stamped with the same clock.

pub mod h264;
pub mod opus;
pub mod vp8;

pub use h264::{H264Encoder, H264Engines};
pub use opus::{OPUS_CLOCK_RATE, OpusEncoder, OpusPacket};
pub use vp8::Vp8Encoder;

use crate::error::{Error, ErrorKind};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::time::Duration;
use tokio::sync::mpsc;

/// One unit the pipeline made: an Opus packet, a VP8 frame.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// Its media time.
    pub at: Duration,
    /// Whether decoding can start at it.
    pub is_key: bool,
    pub data: bytes::Bytes,
}

fn media_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::FailedPrecondition,
        format!("transcoding: {what}: {e}"),
    )
}

/// A running pipeline from an `appsrc` named `src` to an `appsink` named `sink`; stopped
/// when dropped.
struct Pipeline {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    out: mpsc::Receiver<Encoded>,
}

impl Pipeline {
    /// Starts `description` (gst-launch syntax) with `caps` on its source; at most `queue`
    /// units wait for the caller, more are dropped.
    fn start(description: &str, caps: &str, queue: usize) -> Result<Pipeline, Error> {
        gst::init().map_err(|e| media_error("GStreamer", e))?;
        let caps: gst::Caps = caps.parse().map_err(|e| media_error("caps", e))?;
        let (pipeline, src, sink) = launch(description)?;
        src.set_caps(Some(&caps));
        let (tx, out) = mpsc::channel(queue);
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
                    // A consumer too slow loses units, not the camera's session.
                    let _ = tx.try_send(Encoded {
                        at: Duration::from_nanos(at),
                        is_key: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
                        data: bytes::Bytes::copy_from_slice(&map),
                    });
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| media_error("start", e))?;
        Ok(Pipeline { pipeline, src, out })
    }

    /// Hands on one unit with its media time `at`; fails when the pipeline has failed (no
    /// decoder for the caps, input it cannot decode).
    fn push(&mut self, at: Duration, data: &[u8]) -> Result<(), Error> {
        if let Some(bus) = self.pipeline.bus()
            && let Some(message) = bus.pop_filtered(&[gst::MessageType::Error])
            && let gst::MessageView::Error(e) = message.view()
        {
            return Err(media_error("decoding", e.error()));
        }
        let mut buffer = gst::Buffer::from_slice(data.to_vec());
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(at.as_nanos() as u64));
        }
        self.src
            .push_buffer(buffer)
            .map(|_| ())
            .map_err(|e| media_error("decoding", e))
    }

    /// The next unit made; `None` once the pipeline is gone.
    async fn next(&mut self) -> Option<Encoded> {
        self.out.recv().await
    }
}

/// Makes the pipeline `description`, whose ends are an `appsrc` named `src` and an `appsink`
/// named `sink` (not started).
pub(crate) fn launch(
    description: &str,
) -> Result<(gst::Pipeline, gst_app::AppSrc, gst_app::AppSink), Error> {
    let pipeline = gst::parse::launch(description)
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
    let sink = element("sink")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| media_error("pipeline", "sink is no appsink"))?;
    Ok((pipeline, src, sink))
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
