//! A camera's H.265 to H.264, for browsers (most take no H.265 over WebRTC): decoded and
//! encoded in real time, constrained baseline as browsers' decoders all take, a keyframe at
//! least every [`KEYFRAME_EVERY`] frames (with its SPS and PPS) so a new viewer starts at once
//! from the cache.
//!
//! The encoder is the machine's hardware one where GStreamer has it ([`Engine`]: NVIDIA's
//! NVENC, VA-API in either of GStreamer's two plug-ins, a V4L2 encoder as on a Raspberry Pi),
//! x264 `zerolatency` otherwise. Those plug-ins register their elements only when they find
//! the device, so the registry says what the machine has; an engine that fails anyway (no
//! device after all, caps it cannot make) before its first frame is set aside for the
//! process's life ([`H264Engines`]), and the transcode, started again by its feed, takes the
//! next one: x264 at the latest.

use super::{Encoded, Pipeline};
use crate::error::Error;
use gstreamer as gst;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Frames between H.264 keyframes at most: 2 s at 15 fps, the cached group a new viewer gets.
pub const KEYFRAME_EVERY: u32 = 30;
/// The H.264 bitrate (kbit/s): a 720p camera's picture at about the quality of its own.
const BITRATE_KBPS: u32 = 2_000;
/// Frames waiting for the feed; more are dropped.
const QUEUE: usize = 64;

/// An H.264 encoder GStreamer may have, and how it is set for live video: no frames held
/// back, no B-frames, a constant bitrate, a keyframe every [`KEYFRAME_EVERY`] frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    /// What the logs call it.
    pub name: &'static str,
    /// The element whose presence in the registry says the machine has it.
    pub element: &'static str,
    /// The pipeline's part from raw pictures to H.264 (gst-launch syntax).
    pub encoder: String,
}

impl Engine {
    /// Every engine the relay knows, hardware first, x264 last.
    pub fn known() -> Vec<Engine> {
        let (kbps, keyframes) = (BITRATE_KBPS, KEYFRAME_EVERY);
        let engine = |name, element, encoder: String| Engine {
            name,
            element,
            encoder,
        };
        vec![
            engine(
                "NVIDIA NVENC",
                "nvh264enc",
                format!(
                    "nvh264enc preset=low-latency-hq zerolatency=true bframes=0 rc-mode=cbr \
                     bitrate={kbps} gop-size={keyframes}"
                ),
            ),
            engine(
                "VA-API",
                "vah264enc",
                format!(
                    "videoconvert ! video/x-raw,format=NV12 ! vah264enc b-frames=0 \
                     rate-control=cbr bitrate={kbps} key-int-max={keyframes}"
                ),
            ),
            engine(
                "VA-API (gstreamer-vaapi)",
                "vaapih264enc",
                format!(
                    "vaapih264enc max-bframes=0 rate-control=cbr bitrate={kbps} \
                     keyframe-period={keyframes}"
                ),
            ),
            engine(
                "V4L2",
                "v4l2h264enc",
                format!(
                    "v4l2h264enc extra-controls=\"controls,video_bitrate={},\
                     h264_i_frame_period={keyframes}\"",
                    kbps * 1000
                ),
            ),
            Engine::x264(),
        ]
    }

    /// x264 in real time: the engine every machine has.
    fn x264() -> Engine {
        Engine {
            name: "x264",
            element: "x264enc",
            encoder: format!(
                "x264enc tune=zerolatency speed-preset=ultrafast bitrate={BITRATE_KBPS} \
                 key-int-max={KEYFRAME_EVERY} threads=2"
            ),
        }
    }

    /// The whole pipeline: the camera's H.265 decoded, this engine's H.264 out.
    fn pipeline(&self) -> String {
        format!(
            "appsrc name=src format=time is-live=true ! h265parse ! avdec_h265 ! videoconvert ! \
             {} ! \
             video/x-h264,profile=constrained-baseline,stream-format=byte-stream,alignment=au ! \
             h264parse config-interval=-1 ! appsink name=sink sync=false",
            self.encoder
        )
    }
}

/// The H.264 engines a transcode may use on this machine, in order of preference; one that
/// failed is set aside. The last is never set aside: its failure is the transcode's.
#[derive(Debug)]
pub struct H264Engines(Mutex<Vec<Engine>>);

impl H264Engines {
    /// The known engines GStreamer's registry has on this machine (x264 always).
    pub fn of_this_machine() -> H264Engines {
        let registered =
            |element: &str| gst::init().is_ok() && gst::ElementFactory::find(element).is_some();
        H264Engines::choose(Engine::known(), registered)
    }

    /// Of `engines`, those `registered` says the machine has, and the last in any case.
    pub fn choose(engines: Vec<Engine>, registered: impl Fn(&str) -> bool) -> H264Engines {
        let last = engines.len().saturating_sub(1);
        let usable = engines
            .into_iter()
            .enumerate()
            .filter(|(i, e)| *i == last || registered(e.element))
            .map(|(_, e)| e)
            .collect();
        H264Engines(Mutex::new(usable))
    }

    /// The engines in their order.
    pub fn usable(&self) -> Vec<Engine> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sets `engine` aside for good, unless it is the last one; whether it did.
    fn set_aside(&self, engine: &Engine, why: &Error) -> bool {
        let mut usable = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match usable.iter().position(|e| e == engine) {
            Some(i) if i + 1 < usable.len() => {
                usable.remove(i);
                tracing::warn!(encoder = engine.name, error = %why, next = usable[i].name,
                    "the H.264 encoder failed: set aside");
                true
            }
            _ => false,
        }
    }
}

/// A running transcoder from H.265 (Annex B access units) to H.264 (Annex B, the parameter
/// sets before each keyframe); stopped when dropped.
pub struct H264Encoder {
    pipeline: Pipeline,
    engine: Engine,
    engines: Arc<H264Engines>,
    /// Whether the engine made a frame: a failure after that is not the engine's fault.
    made_one: bool,
}

impl H264Encoder {
    /// Starts the first of `engines` that starts.
    pub fn new(engines: Arc<H264Engines>) -> Result<H264Encoder, Error> {
        let caps = "video/x-h265,stream-format=(string)byte-stream,alignment=(string)au";
        loop {
            let engine = engines.usable().remove(0);
            match Pipeline::start(&engine.pipeline(), caps, QUEUE) {
                Ok(pipeline) => {
                    tracing::info!(encoder = engine.name, "H.264 encoder started");
                    return Ok(H264Encoder {
                        pipeline,
                        engine,
                        engines,
                        made_one: false,
                    });
                }
                Err(e) if engines.set_aside(&engine, &e) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The engine it runs.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Hands on one H.265 access unit (Annex B) with its media time.
    pub fn push(&mut self, at: Duration, annex_b: &[u8]) -> Result<(), Error> {
        let pushed = self.pipeline.push(at, annex_b);
        if let Err(e) = &pushed
            && !self.made_one
        {
            self.engines.set_aside(&self.engine, e);
        }
        pushed
    }

    /// The next H.264 access unit; `None` once the pipeline is gone.
    pub async fn next(&mut self) -> Option<Encoded> {
        let next = self.pipeline.next().await;
        self.made_one |= next.is_some();
        next
    }
}

#[cfg(test)]
mod tests;
