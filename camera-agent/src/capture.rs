//! Capture for motion detection: GStreamer decodes the camera's stream (or a video file)
//! once and hands small pictures (their luma, and how colourful they are, which tells night
//! mode from day), at most `max_fps` a second, to the detector. When
//! snapshots are wanted, a second branch keeps the newest full-size decoded frame (I420, as
//! the decoder made it) for the moment of motion; nothing is converted or encoded unless a
//! snapshot is taken. For a live view through the agent, a third branch hands the camera's
//! coded H.264 or H.265 frames, before decoding, to the group of pictures ([`crate::gop`]).

use crate::error::Error;
use crate::gop::{GopRing, VideoCodec};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One picture for the detector.
pub struct DetectionPicture {
    /// Luma, `width` bytes a row, no padding.
    pub luma: Vec<u8>,
    /// How colourful it is ([`crate::motion::colourfulness`]): near 0 in night mode.
    pub colour: u8,
    pub width: usize,
    pub height: usize,
    /// Time from the first picture of the input.
    pub at: Duration,
}

/// A full-size decoded frame: planar I420 without row padding.
pub struct FullPicture {
    pub width: usize,
    pub height: usize,
    /// Y (`width`×`height`), then U and V (each half as wide and tall, rounded up).
    pub i420: Vec<u8>,
}

/// Set once OpenH264 failed on this process's camera: libav decodes from then on.
static OPENH264_FAILED: AtomicBool = AtomicBool::new(false);

/// Set once a stream could not be read as H.264 or H.265 for the group of pictures (another
/// codec): the agent decodes without keeping one from then on, and views pull from the camera.
static CODED_TAP_FAILED: AtomicBool = AtomicBool::new(false);

/// How long the camera's RTP packets are held for reordering, in milliseconds.
const RTSP_LATENCY_MS: u32 = 50;

/// How long a capture that prefers OpenH264 may go without a picture before it is given up
/// for libav.
const OPENH264_GRACE: Duration = Duration::from_secs(10);

/// Lets the next pipeline pick OpenH264 over libav (where both are installed) or not, by its
/// rank. libav's plugin maps libavfilter and everything that links (speech synthesis, SVG,
/// HEVC encoding...): about 40 MB of resident library pages against OpenH264's 15 MB, for the
/// same decoding work (`bench/motion.sh` measures the agent). libav copes with more broken
/// input, so it stays the choice for files and the fallback.
fn prefer_openh264(prefer: bool) -> bool {
    let Some(openh264) = gst::ElementFactory::find("openh264dec") else {
        return false;
    };
    let prefer = prefer && !OPENH264_FAILED.load(Ordering::Relaxed);
    openh264.set_rank(if prefer {
        gst::Rank::PRIMARY + 1
    } else {
        gst::Rank::MARGINAL
    });
    prefer
}

/// A running decode of one input.
pub struct Capture {
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    /// The newest full-size frame, when snapshots are wanted.
    full: Option<gst_app::AppSink>,
    source: gst::Element,
    first_pts: Option<gst::ClockTime>,
    /// Since when an OpenH264 pipeline has waited for its first picture.
    openh264_waiting: Option<Instant>,
    /// The coded frames go to a group of pictures too.
    coded_tap: bool,
}

impl Capture {
    /// Opens `input` (an `rtsp://` URL or a video file's path), scaled to `width` pixels
    /// across (the height keeps the picture's shape), at most `max_fps` pictures a second.
    /// A live camera (`light`) is decoded with OpenH264 where it is installed, until it fails
    /// once; otherwise with libav. With `coded`, the input's H.264 or H.265 frames are kept
    /// there as they come (until an input turns out to be another codec).
    pub fn open(
        input: &str,
        width: u32,
        max_fps: u32,
        snapshots: bool,
        light: bool,
        coded: Option<Arc<GopRing>>,
    ) -> Result<Capture, Error> {
        gst::init().map_err(|e| Error::Media(format!("init: {e}")))?;
        let openh264 = prefer_openh264(light);
        let uri = if input.starts_with("rtsp://") || input.starts_with("rtsps://") {
            input.to_owned()
        } else {
            let path = std::fs::canonicalize(input).map_err(Error::io(input))?;
            gst::glib::filename_to_uri(&path, None)
                .map_err(|e| Error::Config(format!("{input}: {e}")))?
                .to_string()
        };
        if uri.contains(['"', '\\']) {
            return Err(Error::Config(
                "the input's name may not contain quotes or backslashes".into(),
            ));
        }
        if !(16..=1920).contains(&width) || !(1..=60).contains(&max_fps) {
            return Err(Error::Config(
                "detection width must be 16 to 1920 pixels and the rate 1 to 60 a second".into(),
            ));
        }
        // The detection branch never drops (a file is read at the detector's pace); the
        // snapshot branch keeps only the newest frame and never holds the decoder up.
        let full = if snapshots {
            " t. ! queue max-size-buffers=1 leaky=downstream \
             ! appsink name=full sync=false max-buffers=1 drop=true"
        } else {
            ""
        };
        let coded = coded.filter(|_| !CODED_TAP_FAILED.load(Ordering::Relaxed));
        // Decoding stops at H.264 or H.265, which is parsed (by the parser its pad gets, see
        // [`parse_coded`]) into whole frames with their parameter sets before each keyframe,
        // then split: one copy is decoded, one kept.
        let input = if coded.is_some() {
            format!(
                "uridecodebin name=input uri=\"{uri}\" caps=\"{CODED_CAPS}\" \
                 identity name=parsed ! tee name=c \
                 c. ! queue ! appsink name=coded sync=false \
                 c. ! queue ! decodebin"
            )
        } else {
            format!("uridecodebin name=input uri=\"{uri}\"")
        };
        let launch = format!(
            "{input} ! videoconvert ! video/x-raw,format=I420 ! tee name=t \
             t. ! queue ! videorate max-rate={max_fps} drop-only=true ! identity name=source \
             ! videoscale ! video/x-raw,format=I420,width={width},pixel-aspect-ratio=1/1 \
             ! appsink name=sink sync=false max-buffers=4{full}"
        );
        let pipeline = gst::parse::launch(&launch)
            .map_err(|e| Error::Media(format!("pipeline: {e}")))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| Error::Media("not a pipeline".into()))?;
        let named = |name: &str| {
            pipeline
                .by_name(name)
                .ok_or_else(|| Error::Media(format!("no {name} element")))
        };
        named("input")?.connect("source-setup", false, |args| {
            let source = args.get(1).and_then(|v| v.get::<gst::Element>().ok());
            // rtspsrc's jitter buffer holds a new session's packets for its latency (2 s by
            // default) before it lets the first one go: after each (re)connection the group of
            // pictures and the detector would start that much late. A camera on the home
            // network reorders next to nothing.
            if let Some(source) = source.filter(|s| s.has_property("latency")) {
                source.set_property("latency", RTSP_LATENCY_MS);
            }
            None
        });
        let sink = named("sink")?
            .downcast::<gst_app::AppSink>()
            .map_err(|_| Error::Media("sink is not an appsink".into()))?;
        let source = named("source")?;
        let full = if snapshots {
            Some(
                named("full")?
                    .downcast::<gst_app::AppSink>()
                    .map_err(|_| Error::Media("full is not an appsink".into()))?,
            )
        } else {
            None
        };
        if let Some(ring) = &coded {
            parse_coded(&pipeline, &named("input")?, named("parsed")?);
            keep_coded_frames(
                named("coded")?
                    .downcast::<gst_app::AppSink>()
                    .map_err(|_| Error::Media("coded is not an appsink".into()))?,
                ring.clone(),
            );
        }
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| Error::Media(format!("cannot play {input}: {e}")))?;
        Ok(Capture {
            pipeline,
            sink,
            full,
            source,
            first_pts: None,
            openh264_waiting: openh264.then(Instant::now),
            coded_tap: coded.is_some(),
        })
    }

    /// The input's picture size before scaling, once the first picture came.
    pub fn source_size(&self) -> Option<(u32, u32)> {
        let caps = self.source.static_pad("src")?.current_caps()?;
        let s = caps.structure(0)?;
        Some((
            s.get::<i32>("width").ok()? as u32,
            s.get::<i32>("height").ok()? as u32,
        ))
    }

    /// The next picture; `None` at the end of the input.
    pub fn next_picture(&mut self) -> Result<Option<DetectionPicture>, Error> {
        // An error (a file that is no video, a camera gone) stops the pipeline without an
        // end of stream: look at the bus between waits.
        let sample = loop {
            if let Some(sample) = self
                .sink
                .try_pull_sample(gst::ClockTime::from_mseconds(100))
            {
                break sample;
            }
            if self.sink.is_eos() {
                return Ok(None);
            }
            if let Err(e) = self.check_bus() {
                if self.coded_tap && self.first_pts.is_none() {
                    CODED_TAP_FAILED.store(true, Ordering::Relaxed);
                    return Err(Error::Media(format!(
                        "{e} (reading the stream as H.264 or H.265: decoded without from now on)"
                    )));
                }
                return Err(e);
            }
            if self
                .openh264_waiting
                .is_some_and(|since| since.elapsed() > OPENH264_GRACE)
            {
                OPENH264_FAILED.store(true, Ordering::Relaxed);
                return Err(Error::Media(format!(
                    "OpenH264 decoded no picture in {}s: libav decodes from now on",
                    OPENH264_GRACE.as_secs()
                )));
            }
        };
        self.openh264_waiting = None;
        let picture = i420_of(&sample)?;
        let luma_len = picture.width * picture.height;
        let (u, v) = picture.i420[luma_len..].split_at((picture.i420.len() - luma_len) / 2);
        let colour = crate::motion::colourfulness(u, v);
        let (width, height) = (picture.width, picture.height);
        let mut luma = picture.i420;
        luma.truncate(luma_len);
        let buffer = sample
            .buffer()
            .ok_or_else(|| Error::Media("picture without data".into()))?;
        let pts = buffer.pts().unwrap_or(gst::ClockTime::ZERO);
        let first = *self.first_pts.get_or_insert(pts);
        Ok(Some(DetectionPicture {
            luma,
            colour,
            width,
            height,
            at: Duration::from_nanos(pts.saturating_sub(first).nseconds()),
        }))
    }

    /// The newest full-size frame (for a snapshot), if snapshots were asked for.
    pub fn full_picture(&self) -> Result<Option<FullPicture>, Error> {
        let Some(sample) = self
            .full
            .as_ref()
            .and_then(|s| s.try_pull_sample(gst::ClockTime::ZERO))
        else {
            return Ok(None);
        };
        i420_of(&sample).map(Some)
    }

    /// The error that stopped the pipeline, if any.
    fn check_bus(&self) -> Result<(), Error> {
        let bus = self
            .pipeline
            .bus()
            .ok_or_else(|| Error::Media("no bus".into()))?;
        if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error])
            && let gst::MessageView::Error(e) = msg.view()
        {
            return Err(Error::Media(e.error().to_string()));
        }
        Ok(())
    }
}

/// Hands every coded frame to `ring` as the pipeline makes it, beginning a new session of it.
/// The codecs whose frames are kept, as `uridecodebin` is told to stop decoding at them.
const CODED_CAPS: &str = "video/x-h264;video/x-h265";

/// Links the input's coded video, once its codec is known, through that codec's parser to
/// `parsed`: Annex B access units, with the parameter sets before every keyframe.
fn parse_coded(pipeline: &gst::Pipeline, input: &gst::Element, parsed: gst::Element) {
    let pipeline = pipeline.downgrade();
    input.connect_pad_added(move |_, pad| {
        let Some(pipeline) = pipeline.upgrade() else {
            return;
        };
        let Some(codec) = pad.current_caps().and_then(|c| codec_of(&c)) else {
            return;
        };
        let Some(sink) = parsed.static_pad("sink").filter(|p| !p.is_linked()) else {
            return;
        };
        let (parser, caps) = match codec {
            VideoCodec::H264 => ("h264parse", "video/x-h264"),
            VideoCodec::H265 => ("h265parse", "video/x-h265"),
        };
        let caps = format!("{caps},stream-format=byte-stream,alignment=au");
        let chain = gst::parse::bin_from_description(
            &format!("{parser} config-interval=-1 ! capsfilter caps=\"{caps}\""),
            true,
        );
        let linked = chain.map_err(|e| e.to_string()).and_then(|chain| {
            pipeline.add(&chain).map_err(|e| e.to_string())?;
            let input = chain.static_pad("sink").ok_or("no sink")?;
            pad.link(&input).map_err(|e| e.to_string())?;
            let output = chain.static_pad("src").ok_or("no src")?;
            output.link(&sink).map_err(|e| e.to_string())?;
            chain.sync_state_with_parent().map_err(|e| e.to_string())
        });
        if let Err(e) = linked {
            tracing::warn!(error = %e, "cannot parse the camera's video");
        }
    });
}

/// The codec that `caps` describe, if the agent keeps its frames.
fn codec_of(caps: &gst::CapsRef) -> Option<VideoCodec> {
    match caps.structure(0)?.name().as_str() {
        "video/x-h264" => Some(VideoCodec::H264),
        "video/x-h265" => Some(VideoCodec::H265),
        _ => None,
    }
}

fn keep_coded_frames(sink: gst_app::AppSink, ring: Arc<GopRing>) {
    ring.new_session();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let codec = sample.caps().and_then(codec_of);
                if let Some(buffer) = sample.buffer()
                    && let Some(codec) = codec
                    && let Ok(map) = buffer.map_readable()
                {
                    let pts = buffer.pts().unwrap_or(gst::ClockTime::ZERO);
                    ring.push(
                        codec,
                        Duration::from_nanos(pts.nseconds()),
                        !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
                        map.to_vec(),
                        eyeward::clock::monotonic(),
                    );
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// A decoded I420 frame's planes without their row padding.
fn i420_of(sample: &gst::Sample) -> Result<FullPicture, Error> {
    let media = |m: &str| Error::Media(m.to_owned());
    let caps = sample.caps().ok_or_else(|| media("frame without caps"))?;
    let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| media(&e.to_string()))?;
    let buffer = sample.buffer().ok_or_else(|| media("frame without data"))?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
        .map_err(|e| media(&e.to_string()))?;
    let (width, height) = (info.width() as usize, info.height() as usize);
    let mut i420 = Vec::with_capacity(width * height * 3 / 2 + 2);
    for plane in 0..3u32 {
        let (w, h) = if plane == 0 {
            (width, height)
        } else {
            (width.div_ceil(2), height.div_ceil(2))
        };
        let stride = info.stride()[plane as usize] as usize;
        let data = frame.plane_data(plane).map_err(|e| media(&e.to_string()))?;
        for row in data.chunks(stride).take(h) {
            i420.extend_from_slice(row.get(..w).ok_or_else(|| media("short row"))?);
        }
    }
    if i420.len() != width * height + 2 * width.div_ceil(2) * height.div_ceil(2) {
        return Err(media("frame shorter than its size"));
    }
    Ok(FullPicture {
        width,
        height,
        i420,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes a second of test pattern into `path` with `encode` (a launch line's middle).
    fn video_file(path: &std::path::Path, encode: &str) {
        gst::init().unwrap();
        let pipeline = gst::parse::launch(&format!(
            "videotestsrc num-buffers=15 ! video/x-raw,width=160,height=120,framerate=15/1 \
             ! {encode} ! filesink location=\"{}\"",
            path.display()
        ))
        .unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let bus = pipeline.bus().unwrap();
        let msg = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(20),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .unwrap();
        assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
        pipeline.set_state(gst::State::Null).unwrap();
    }

    /// Opens `path` (keeping its coded frames in `ring`) at a detector's size.
    fn open(path: &std::path::Path, ring: &Arc<GopRing>) -> Capture {
        Capture::open(
            path.to_str().unwrap(),
            64,
            30,
            false,
            false,
            Some(ring.clone()),
        )
        .unwrap()
    }

    fn pictures(capture: &mut Capture) -> Result<usize, Error> {
        let mut n = 0;
        while capture.next_picture()?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    // One test: which codecs are kept is remembered for the process.
    #[test]
    fn h264_and_h265_frames_are_kept_while_decoded_and_another_codec_is_decoded_without() {
        let dir = tempfile::tempdir().unwrap();
        for (codec, encode) in [
            (VideoCodec::H264, "x264enc key-int-max=5"),
            (VideoCodec::H265, "x265enc key-int-max=5 ! h265parse"),
        ] {
            let file = dir.path().join(format!("{codec:?}.mp4"));
            video_file(&file, &format!("{encode} ! mp4mux"));
            let ring = Arc::new(GopRing::default());
            let mut capture = open(&file, &ring);
            assert!(pictures(&mut capture).unwrap() > 10, "{codec:?}: decoded");
            let group = ring.subscribe().cached;
            assert!(group[0].is_key, "the group starts at a keyframe");
            assert!(!group[1..].iter().any(|f| f.is_key));
            assert!(group.iter().all(|f| f.codec == codec));
            // Of 15 pictures (x265 may make a group longer than asked).
            assert!(
                (1..15).contains(&group.len()),
                "the newest group only: {}",
                group.len()
            );
            let sets = ring.servable(eyeward::clock::monotonic());
            assert_eq!(sets.map(|s| s.codec), Some(codec), "with parameter sets");
        }

        let vp8 = dir.path().join("b.webm");
        video_file(&vp8, "vp8enc ! webmmux");
        let ring = Arc::new(GopRing::default());
        let mut capture = open(&vp8, &ring);
        let failed = pictures(&mut capture).unwrap_err().to_string();
        assert!(failed.contains("decoded without from now on"), "{failed}");
        let mut capture = open(&vp8, &ring);
        assert!(pictures(&mut capture).unwrap() > 10, "decoded all the same");
        assert!(ring.subscribe().cached.is_empty(), "nothing kept");
    }
}
