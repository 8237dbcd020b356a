//! The H.264 engines: which the machine has, and one that fails set aside for the next.

use super::*;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// An engine that starts and fails at its first picture, as a hardware encoder without its
/// device, or that cannot make constrained baseline, does: x264 given 4:4:4 pictures must make
/// High 4:4:4, which the pipeline's caps refuse.
fn refusing() -> Engine {
    Engine {
        name: "refuses the picture",
        element: "x264enc",
        encoder: "videoconvert ! video/x-raw,format=Y444 ! x264enc".into(),
    }
}

/// An engine whose element this machine lacks.
fn missing() -> Engine {
    Engine {
        name: "missing",
        element: "eyewardnoenc",
        encoder: "eyewardnoenc".into(),
    }
}

/// `count` H.265 access units of a small test picture, a keyframe first.
fn h265_frames(count: u32) -> Vec<Vec<u8>> {
    gst::init().expect("GStreamer");
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers={count} ! video/x-raw,width=320,height=240,framerate=15/1 ! \
         x265enc tune=zerolatency key-int-max=10 ! h265parse config-interval=-1 ! \
         video/x-h265,stream-format=byte-stream,alignment=au ! appsink name=sink sync=false"
    ))
    .expect("pipeline")
    .downcast::<gst::Pipeline>()
    .expect("a pipeline");
    let sink = pipeline
        .by_name("sink")
        .and_downcast::<gst_app::AppSink>()
        .expect("appsink");
    pipeline.set_state(gst::State::Playing).expect("playing");
    let mut frames = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        let buffer = sample.buffer().expect("buffer");
        frames.push(buffer.map_readable().expect("readable").to_vec());
    }
    pipeline.set_state(gst::State::Null).expect("stopped");
    assert_eq!(frames.len(), count as usize);
    frames
}

/// Pushes `frames` 66 ms apart; the first H.264 unit out, or the push's error.
async fn encode(encoder: &mut H264Encoder, frames: &[Vec<u8>]) -> Result<Encoded, Error> {
    for (i, frame) in frames.iter().enumerate() {
        encoder.push(Duration::from_millis(66 * i as u64), frame)?;
        // A failing engine says so on the bus a moment after its first picture.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = tokio::time::timeout(Duration::from_secs(10), encoder.next()).await;
    Ok(out
        .expect("an H.264 unit within 10 s")
        .expect("the pipeline runs"))
}

fn names(engines: &H264Engines) -> Vec<&'static str> {
    engines.usable().iter().map(|e| e.name).collect()
}

#[test]
fn hardware_engines_come_first_and_only_those_the_registry_has_x264_always() {
    let known: Vec<&str> = Engine::known().iter().map(|e| e.element).collect();
    assert_eq!(
        known,
        [
            "nvh264enc",
            "vah264enc",
            "vaapih264enc",
            "v4l2h264enc",
            "x264enc"
        ]
    );
    let none = H264Engines::choose(Engine::known(), |_| false);
    assert_eq!(names(&none), ["x264"]);
    let vaapi = H264Engines::choose(Engine::known(), |e| e == "vaapih264enc" || e == "x264enc");
    assert_eq!(names(&vaapi), ["VA-API (gstreamer-vaapi)", "x264"]);
    let all = H264Engines::choose(Engine::known(), |_| true);
    assert_eq!(all.usable(), Engine::known());
    // This machine has no video hardware GStreamer finds.
    assert_eq!(names(&H264Engines::of_this_machine()), ["x264"]);
}

#[test]
fn every_known_engines_settings_are_in_its_pipeline() {
    for engine in Engine::known() {
        let pipeline = engine.pipeline();
        assert!(pipeline.contains(&engine.encoder), "{pipeline}");
        assert!(engine.encoder.contains(engine.element), "{engine:?}");
        assert!(
            pipeline.contains("profile=constrained-baseline") && pipeline.contains("alignment=au"),
            "{pipeline}"
        );
    }
}

#[tokio::test]
async fn an_engine_that_cannot_start_is_set_aside_and_the_next_encodes() {
    let engines = Arc::new(H264Engines(Mutex::new(vec![missing(), Engine::x264()])));
    let mut encoder = H264Encoder::new(engines.clone()).expect("an encoder");
    assert_eq!(encoder.engine().name, "x264");
    assert_eq!(names(&engines), ["x264"]);
    let first = encode(&mut encoder, &h265_frames(5)).await.expect("H.264");
    assert!(first.is_key);
    // Annex B, its SPS (type 7) and PPS (8) before the keyframe's slice (5).
    let types: Vec<u8> = first
        .data
        .windows(4)
        .filter(|w| w[..3] == [0, 0, 1])
        .map(|w| w[3] & 0x1f)
        .collect();
    let at = |t: u8| types.iter().position(|&x| x == t).expect("the unit");
    assert!(at(7) < at(5) && at(8) < at(5), "{types:?}");
}

#[tokio::test]
async fn an_engine_that_fails_before_its_first_frame_is_set_aside_and_the_next_transcode_takes_x264()
 {
    let engines = Arc::new(H264Engines(Mutex::new(vec![refusing(), Engine::x264()])));
    let frames = h265_frames(10);
    let mut failing = H264Encoder::new(engines.clone()).expect("an encoder");
    assert_eq!(failing.engine().name, "refuses the picture");
    assert!(encode(&mut failing, &frames).await.is_err());
    assert_eq!(names(&engines), ["x264"]);

    let mut next = H264Encoder::new(engines.clone()).expect("an encoder");
    assert_eq!(next.engine().name, "x264");
    assert!(encode(&mut next, &frames).await.expect("H.264").is_key);
}

#[tokio::test]
async fn the_last_engine_is_never_set_aside() {
    let engines = Arc::new(H264Engines(Mutex::new(vec![refusing()])));
    let mut failing = H264Encoder::new(engines.clone()).expect("an encoder");
    assert!(encode(&mut failing, &h265_frames(10)).await.is_err());
    assert_eq!(names(&engines), ["refuses the picture"]);
    let missing_only = Arc::new(H264Engines(Mutex::new(vec![missing()])));
    assert!(H264Encoder::new(missing_only.clone()).is_err());
    assert_eq!(names(&missing_only), ["missing"]);
}
