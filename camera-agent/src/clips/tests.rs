//! The pre-roll ring and the recorder over made-up frames, one test per rule; the MP4 writer
//! over frames GStreamer encodes, its clip decoded again.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A frame of `bytes` bytes at `at_ms`, a keyframe or not, of camera session `session`.
fn frame(at_ms: u64, is_key: bool, bytes: usize, session: u64) -> Arc<CodedFrame> {
    Arc::new(CodedFrame {
        pts: ms(at_ms),
        is_key,
        codec: VideoCodec::H264,
        data: vec![0; bytes],
        session,
    })
}

/// Frames at 10 a second from `from_ms` to `to_ms`, a keyframe every `group_ms`.
fn frames(from_ms: u64, to_ms: u64, group_ms: u64) -> Vec<Arc<CodedFrame>> {
    (from_ms..to_ms)
        .step_by(100)
        .map(|t| frame(t, t % group_ms == 0, 100, 0))
        .collect()
}

fn times(frames: &[Arc<CodedFrame>]) -> Vec<u64> {
    frames.iter().map(|f| f.pts.as_millis() as u64).collect()
}

#[test]
fn the_pre_roll_reaches_back_at_least_its_length_from_a_keyframe_in_whole_groups() {
    let mut ring = PreRoll::new(ms(5000), 1 << 20);
    for f in frames(0, 12_000, 2000) {
        ring.push(f);
    }
    // The newest frame is at 11.9 s: the group from 6 s reaches back 5.9 s, the one from
    // 8 s only 3.9 s.
    let kept = ring.from(ms(11_900));
    assert_eq!(kept.first().map(|f| f.pts), Some(ms(6000)));
    assert!(kept[0].is_key);
    assert_eq!(kept.len(), 60);
    assert_eq!(ring.bytes(), 60 * 100);
}

#[test]
fn the_pre_roll_reaches_back_from_the_picture_the_detector_saw_when_frames_run_ahead() {
    let mut ring = PreRoll::new(ms(5000), 1 << 20);
    for f in frames(0, 12_000, 2000) {
        ring.push(f);
        // The detector is a second and a half behind the frames.
        ring.look(newest_of(&ring).saturating_sub(ms(1500)));
    }
    // It looked at 10.4 s last: the group from 4 s reaches back 6.4 s, the one from 6 s
    // only 4.4 s.
    assert_eq!(ring.from(ms(10_400)).first().map(|f| f.pts), Some(ms(4000)));
}

/// The time of the ring's newest frame.
fn newest_of(ring: &PreRoll) -> Duration {
    ring.frames.back().map_or(Duration::ZERO, |f| f.pts)
}

#[test]
fn the_pre_roll_waits_for_a_keyframe_and_starts_again_with_a_new_camera_session() {
    let mut ring = PreRoll::new(ms(5000), 1 << 20);
    ring.push(frame(0, false, 100, 0));
    assert_eq!(ring.bytes(), 0, "nothing before a keyframe");
    for f in frames(100, 3000, 1000) {
        ring.push(f);
    }
    // The camera's session restarts: its times start again, and so does the ring.
    ring.push(frame(0, false, 100, 1));
    assert_eq!(ring.bytes(), 0);
    ring.push(frame(100, true, 100, 1));
    assert_eq!(times(&ring.from(ms(100))), [100]);
}

#[test]
fn a_pre_roll_past_its_bytes_keeps_fewer_groups_and_none_larger_than_the_bound() {
    // Room for 25 frames: two groups of ten, not three.
    let mut ring = PreRoll::new(ms(5000), 2500);
    for f in frames(0, 3000, 1000) {
        ring.push(f);
    }
    assert_eq!(times(&ring.from(ms(3000)))[0], 1000);
    assert!(ring.bytes() <= 2500);
    // A keyframe larger than the bound: nothing is kept.
    ring.push(frame(3000, true, 4000, 0));
    assert_eq!(ring.bytes(), 0);
}

#[test]
fn a_clip_begins_at_the_keyframe_before_the_pre_roll_and_marks_the_event() {
    let config = ClipsConfig {
        enabled: true,
        ..ClipsConfig::default()
    };
    let mut recorder = Recorder::new(config);
    for f in frames(0, 10_000, 2000) {
        assert!(recorder.frame(f).is_empty(), "nothing before an event");
    }
    let steps = recorder.motion_started("k".into(), ms(9000));
    let [
        Step::Start {
            key,
            event_at,
            frames,
            codec,
            held,
        },
    ] = steps.as_slice()
    else {
        panic!("{steps:?}");
    };
    assert_eq!((key.as_str(), *codec), ("k", VideoCodec::H264));
    // 9 s less 5 s is 4 s: the group from 4 s; the event 5 s in.
    assert_eq!(frames[0].pts, ms(4000));
    assert_eq!(*event_at, ms(5000));
    assert_eq!(frames.last().map(|f| f.pts), Some(ms(9900)));
    assert_eq!(*held, 60 * 100, "the ring's bytes: 4 s to 9.9 s");
}

#[test]
fn a_clip_goes_on_for_the_post_roll_after_the_motion_ends() {
    let mut recorder = Recorder::new(ClipsConfig::default());
    for f in frames(0, 6000, 2000) {
        recorder.frame(f);
    }
    recorder.motion_started("k".into(), ms(5900));
    let mut written = Vec::new();
    let mut finished = None;
    for f in frames(6000, 30_000, 2000) {
        if f.pts == ms(8000) {
            recorder.motion_ended(ms(7900));
        }
        for step in recorder.frame(f) {
            match step {
                Step::Frame(f) => written.push(f.pts),
                Step::Finish { key } => finished = finished.or(Some((key, written.len()))),
                Step::Start { .. } => panic!("no new clip"),
            }
        }
    }
    // Motion until 7.9 s, then 10 s more: the last frame at 17.9 s.
    assert_eq!(written.last(), Some(&ms(17_900)));
    assert_eq!(finished, Some(("k".to_owned(), written.len())));
}

#[test]
fn a_clip_ends_at_its_longest_while_the_motion_goes_on() {
    let config = ClipsConfig {
        max_length: ms(20_000),
        ..ClipsConfig::default()
    };
    let mut recorder = Recorder::new(config);
    for f in frames(0, 6000, 2000) {
        recorder.frame(f);
    }
    // The clip's first frame is at 0 s (the keyframe before 5.9 s less 5 s).
    recorder.motion_started("k".into(), ms(5900));
    let mut last = None;
    for f in frames(6000, 60_000, 2000) {
        for step in recorder.frame(f) {
            match step {
                Step::Frame(f) => last = Some(f.pts),
                Step::Finish { .. } => {
                    assert_eq!(last, Some(ms(19_900)));
                    return;
                }
                Step::Start { .. } => panic!("no new clip"),
            }
        }
    }
    panic!("the clip never ended");
}

#[test]
fn a_clip_ends_with_the_cameras_session_and_a_new_event_ends_the_clip_before() {
    let mut recorder = Recorder::new(ClipsConfig::default());
    for f in frames(0, 3000, 1000) {
        recorder.frame(f);
    }
    recorder.motion_started("first".into(), ms(2900));
    let steps = recorder.motion_started("second".into(), ms(2950));
    assert!(matches!(&steps[0], Step::Finish { key } if key == "first"));
    assert!(matches!(&steps[1], Step::Start { key, .. } if key == "second"));
    let steps = recorder.frame(frame(0, true, 100, 1));
    assert!(matches!(&steps[..], [Step::Finish { key }] if key == "second"));
    assert!(recorder.frame(frame(100, false, 100, 1)).is_empty());
}

#[test]
fn the_agents_file_sets_clips_and_leaves_them_off_by_default() {
    let config = crate::config::AgentConfig::parse("").unwrap();
    assert!(!config.clips.enabled);
    let config = crate::config::AgentConfig::parse(
        "[clips]\nenabled = true\npre_roll = \"3s\"\npost_roll = \"20s\"\nmax_length = \"45s\"\n",
    )
    .unwrap();
    let clips = config.clips;
    assert!(clips.enabled);
    assert_eq!(
        (clips.pre_roll, clips.post_roll, clips.max_length),
        (ms(3000), ms(20_000), ms(45_000))
    );
    let refused = crate::config::AgentConfig::parse("[clips]\npre_roll = \"2m\"\n");
    assert!(refused.unwrap_err().to_string().contains("clips: pre_roll"));
}

#[test]
fn settings_that_cannot_work_are_refused() {
    let with = |pre_roll, max_length| ClipsConfig {
        pre_roll: ms(pre_roll),
        max_length: ms(max_length),
        ..ClipsConfig::default()
    };
    assert!(ClipsConfig::default().check().is_ok());
    assert!(
        with(5000, 5000).check().is_err(),
        "pre-roll as long as the clip"
    );
    assert!(
        with(31_000, 60_000).check().is_err(),
        "pre-roll past the bound"
    );
    assert!(with(5000, 0).check().is_err());
    assert!(with(5000, 301_000).check().is_err());
}

/// Runs `launch` (ending in `appsink name=sink`) to its end, handing `each` every sample.
fn pull_all(launch: &str, mut each: impl FnMut(&gst::Sample)) {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(launch)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    while let Ok(sample) = sink.pull_sample() {
        each(&sample);
    }
    pipeline.set_state(gst::State::Null).unwrap();
}

/// `count` frames at 15 a second from GStreamer's `encoder`, a keyframe every 15, from 10 s
/// on (as a camera session's times run).
fn encoded(encoder: &str, codec: VideoCodec, count: u32) -> Vec<Arc<CodedFrame>> {
    let caps = match codec {
        VideoCodec::H264 => "video/x-h264",
        VideoCodec::H265 => "video/x-h265",
    };
    let mut frames = Vec::new();
    pull_all(
        &format!(
            "videotestsrc num-buffers={count} ! video/x-raw,width=320,height=180,framerate=15/1 \
             ! {encoder} ! {caps},stream-format=byte-stream,alignment=au ! appsink name=sink sync=false"
        ),
        |sample| {
            let buffer = sample.buffer().unwrap();
            frames.push(Arc::new(CodedFrame {
                pts: ms(10_000) + Duration::from_nanos(buffer.pts().unwrap().nseconds()),
                is_key: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
                codec,
                data: buffer.map_readable().unwrap().to_vec(),
                session: 0,
            }));
        },
    );
    frames
}

/// The presentation times of the pictures `path` decodes to.
fn decoded_times(path: &Path, codec: VideoCodec) -> Vec<Duration> {
    let parse = match codec {
        VideoCodec::H264 => "h264parse ! avdec_h264",
        VideoCodec::H265 => "h265parse ! avdec_h265",
    };
    let mut times = Vec::new();
    pull_all(
        &format!(
            "filesrc location=\"{}\" ! qtdemux ! {parse} ! appsink name=sink sync=false",
            path.display()
        ),
        |sample| {
            let pts = sample.buffer().unwrap().pts().unwrap();
            times.push(Duration::from_nanos(pts.nseconds()));
        },
    );
    times
}

#[test]
fn a_clip_is_an_mp4_that_decodes_from_its_first_frame_with_continuous_times() {
    let dir = tempfile::tempdir().unwrap();
    for (codec, encoder) in [
        (
            VideoCodec::H264,
            "x264enc tune=zerolatency key-int-max=15 ! h264parse config-interval=-1",
        ),
        (
            VideoCodec::H265,
            "x265enc tune=zerolatency key-int-max=15 ! h265parse config-interval=-1",
        ),
    ] {
        let frames = encoded(encoder, codec, 45);
        assert!(frames[0].is_key);
        // From the second keyframe on, as a clip starts at its pre-roll's.
        let start = frames.iter().skip(1).position(|f| f.is_key).unwrap() + 1;
        let clip = &frames[start..];
        let path = dir.path().join(format!("{codec:?}.mp4"));
        let mut writer = Mp4Writer::create(&path, codec, clip[0].pts).unwrap();
        for f in clip {
            writer.write(f).unwrap();
        }
        let bytes = writer.finish().unwrap();
        assert_eq!(bytes, std::fs::metadata(&path).unwrap().len());
        let times = decoded_times(&path, codec);
        assert_eq!(times.len(), clip.len(), "{codec:?}: every frame decodes");
        assert_eq!(times[0], Duration::ZERO, "{codec:?}: the clip starts at 0");
        let gaps: Vec<u128> = times
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis())
            .collect();
        assert!(
            gaps.iter().all(|g| (66..=67).contains(g)),
            "{codec:?}: {gaps:?}"
        );
    }
}
