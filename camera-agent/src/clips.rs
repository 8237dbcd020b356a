//! Event clips (issue 24): the seconds before and after each motion event, cut from the
//! camera's own coded frames as the agent's capture keeps them ([`crate::gop`]: no decoding,
//! no encoding), written as a fragmented MP4.
//! - [`PreRoll`]: the frames of the last `pre_roll` at least, from a keyframe: whole groups of
//!   pictures in a ring, bounded in bytes;
//! - [`Recorder`]: plain code over frames and the detector's decisions, on the frames' own
//!   clock. A clip begins at the pre-roll's keyframe when an event starts, and ends
//!   `post_roll` after the motion ends, `max_length` after its first frame at most, or where
//!   the camera's session ends; it says what to write as [`Step`]s;
//! - [`Mp4Writer`]: GStreamer's `mp4mux` (fragmented: a clip cut short still plays up to its
//!   last fragment) into a file, fsynced when finished;
//! - [`ClipMaker`]: all of it beside a detector, each clip written where the caller places
//!   it (`detect --clips` into a folder, `run` into the upload queue).

use crate::error::Error;
use crate::gop::{CodedFrame, GopRing, VideoCodec};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use serde::Deserialize;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// `[clips]`: video clips of events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClipsConfig {
    /// Whether events get clips.
    pub enabled: bool,
    /// Video kept from before each event (from the keyframe before it).
    #[serde(with = "humantime_serde")]
    pub pre_roll: Duration,
    /// Video after the motion ended.
    #[serde(with = "humantime_serde")]
    pub post_roll: Duration,
    /// The longest clip, pre-roll included.
    #[serde(with = "humantime_serde")]
    pub max_length: Duration,
}

impl Default for ClipsConfig {
    fn default() -> Self {
        ClipsConfig {
            enabled: false,
            pre_roll: Duration::from_secs(5),
            post_roll: Duration::from_secs(10),
            max_length: Duration::from_secs(60),
        }
    }
}

/// The longest pre-roll: what the agent holds in memory for it is bounded by it.
const MAX_PRE_ROLL: Duration = Duration::from_secs(30);
/// The longest clip a setting may ask for.
const MAX_CLIP: Duration = Duration::from_secs(300);
/// The bytes a pre-roll may hold: 30 s at 16 Mbit/s, more than a home camera's main stream.
pub const MAX_PRE_ROLL_BYTES: usize = 60 * 1024 * 1024;

impl ClipsConfig {
    /// Whether the settings make sense together.
    pub fn check(&self) -> Result<(), String> {
        if self.pre_roll > MAX_PRE_ROLL {
            return Err(format!(
                "pre_roll may be at most {}s",
                MAX_PRE_ROLL.as_secs()
            ));
        }
        if self.max_length.is_zero() || self.max_length > MAX_CLIP {
            return Err(format!(
                "max_length must be more than 0 and at most {}s",
                MAX_CLIP.as_secs()
            ));
        }
        if self.pre_roll >= self.max_length {
            return Err("pre_roll must be shorter than max_length".into());
        }
        Ok(())
    }
}

/// The camera's frames of the last `pre_roll` at least, from a keyframe: before the newest
/// frame, or before the picture the detector last looked at when that is older (the coded
/// frames of a file run ahead of their decoded pictures).
pub struct PreRoll {
    pre_roll: Duration,
    max_bytes: usize,
    frames: VecDeque<Arc<CodedFrame>>,
    bytes: usize,
    /// The time of the picture the detector last looked at, in this camera session.
    seen: Option<Duration>,
}

impl PreRoll {
    pub fn new(pre_roll: Duration, max_bytes: usize) -> PreRoll {
        PreRoll {
            pre_roll,
            max_bytes,
            frames: VecDeque::new(),
            bytes: 0,
            seen: None,
        }
    }

    /// Takes the camera's next frame. A new camera session (its times start again) or
    /// codec starts the ring again, at its first keyframe.
    pub fn push(&mut self, frame: Arc<CodedFrame>) {
        let continues = self
            .frames
            .back()
            .is_some_and(|last| last.session == frame.session && last.codec == frame.codec);
        if !continues {
            self.clear();
        }
        if self.frames.is_empty() && !frame.is_key {
            return;
        }
        self.bytes += frame.data.len();
        self.frames.push_back(frame);
        self.trim();
    }

    /// The detector has looked at the picture at `at`.
    pub fn look(&mut self, at: Duration) {
        self.seen = Some(at);
        self.trim();
    }

    /// Drops whole groups from the front while the next group alone reaches back far enough,
    /// or while the ring holds more than its bytes (one group larger than that: none is kept
    /// until the next keyframe).
    fn trim(&mut self) {
        let newest = self.frames.back().map_or(Duration::ZERO, |f| f.pts);
        let horizon = self.seen.map_or(newest, |seen| seen.min(newest));
        while let Some(next_key) = self.frames.iter().skip(1).position(|f| f.is_key) {
            let next_key = next_key + 1;
            let fits_bound = self.bytes <= self.max_bytes;
            if fits_bound && horizon.saturating_sub(self.frames[next_key].pts) < self.pre_roll {
                break;
            }
            for dropped in self.frames.drain(..next_key) {
                self.bytes -= dropped.data.len();
            }
        }
        if self.bytes > self.max_bytes {
            self.clear();
        }
    }

    fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
        self.seen = None;
    }

    /// The bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The frames from the latest keyframe at or before `at` less the pre-roll (or the
    /// earliest kept, when the ring reaches back less far) to the newest.
    fn from(&self, at: Duration) -> Vec<Arc<CodedFrame>> {
        let wanted = at.saturating_sub(self.pre_roll);
        let start = self
            .frames
            .iter()
            .rposition(|f| f.is_key && f.pts <= wanted)
            .unwrap_or(0);
        self.frames.iter().skip(start).cloned().collect()
    }
}

/// What the caller writes.
#[derive(Debug)]
pub enum Step {
    /// A clip of event `key` begins with `frames` (from a keyframe); the motion was first
    /// seen `event_at` after its first frame.
    Start {
        key: String,
        codec: VideoCodec,
        event_at: Duration,
        frames: Vec<Arc<CodedFrame>>,
        /// The bytes the pre-roll ring held then (what clips cost in memory, besides the
        /// muxer's own).
        held: usize,
    },
    /// The clip's next frame.
    Frame(Arc<CodedFrame>),
    /// The clip is whole.
    Finish { key: String },
}

/// The clip being recorded.
struct Recording {
    key: String,
    /// The camera session and time of its first frame.
    session: u64,
    first: Duration,
    /// Until when it goes on, once the motion has ended.
    until: Option<Duration>,
}

/// See the module's documentation.
pub struct Recorder {
    config: ClipsConfig,
    pre_roll: PreRoll,
    recording: Option<Recording>,
}

impl Recorder {
    pub fn new(config: ClipsConfig) -> Recorder {
        let pre_roll = PreRoll::new(config.pre_roll, MAX_PRE_ROLL_BYTES);
        Recorder {
            config,
            pre_roll,
            recording: None,
        }
    }

    /// The camera's next frame: kept for the pre-roll, and written to the clip being made.
    pub fn frame(&mut self, frame: Arc<CodedFrame>) -> Vec<Step> {
        self.pre_roll.push(frame.clone());
        let Some(recording) = &self.recording else {
            return Vec::new();
        };
        // The camera's session ended: its clip ends with it.
        if recording.session != frame.session {
            return self.finish().into_iter().collect();
        }
        let elapsed = frame.pts.saturating_sub(recording.first);
        let over = elapsed >= self.config.max_length
            || recording.until.is_some_and(|until| frame.pts > until);
        if over {
            return self.finish().into_iter().collect();
        }
        vec![Step::Frame(frame)]
    }

    /// The frames `feed` has so far (the capture's, as [`crate::gop::GopRing`] hands them
    /// on), the detector having looked at the picture at `seen`. Frames lost to a reader that
    /// fell behind end the clip being made where they went missing, and the pre-roll starts
    /// again at a keyframe: a clip has no holes.
    pub fn drain(
        &mut self,
        feed: &mut broadcast::Receiver<Arc<CodedFrame>>,
        seen: Duration,
    ) -> Vec<Step> {
        let mut steps = Vec::new();
        loop {
            match feed.try_recv() {
                Ok(frame) => steps.extend(self.frame(frame)),
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    steps.extend(self.finish());
                    self.pre_roll.clear();
                }
                Err(_) => break,
            }
        }
        self.pre_roll.look(seen);
        steps
    }

    /// An event began with the picture at `at`: a clip of it begins, with the pre-roll (the
    /// clip being made, if any, ends first).
    pub fn motion_started(&mut self, key: String, at: Duration) -> Vec<Step> {
        let mut steps: Vec<Step> = self.finish().into_iter().collect();
        let frames = self.pre_roll.from(at);
        let Some(first) = frames.first() else {
            tracing::warn!(key = %key, "no frames kept yet: this event has no clip");
            return steps;
        };
        self.recording = Some(Recording {
            key: key.clone(),
            session: first.session,
            first: first.pts,
            until: None,
        });
        steps.push(Step::Start {
            key,
            codec: first.codec,
            event_at: at.saturating_sub(first.pts),
            frames,
            held: self.pre_roll.bytes(),
        });
        steps
    }

    /// The event's motion ended at `end`: its clip goes on for the post-roll.
    pub fn motion_ended(&mut self, end: Duration) {
        if let Some(recording) = &mut self.recording {
            recording.until = Some(end + self.config.post_roll);
        }
    }

    fn finish(&mut self) -> Option<Step> {
        let recording = self.recording.take()?;
        Some(Step::Finish { key: recording.key })
    }
}

/// How long finishing a clip may take (the muxer writing its index).
const FINISH_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames queued for the muxer before the caller waits.
const WRITER_QUEUE: u64 = 64;

/// One clip being written to a file.
pub struct Mp4Writer {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    path: PathBuf,
    /// The time of the clip's first frame.
    first: Duration,
}

impl Mp4Writer {
    /// Starts a clip of `codec` into `path`, its time 0 at `first`.
    pub fn create(path: &Path, codec: VideoCodec, first: Duration) -> Result<Mp4Writer, Error> {
        gst::init().map_err(|e| Error::Media(format!("init: {e}")))?;
        let (caps, parser) = match codec {
            VideoCodec::H264 => ("video/x-h264", "h264parse"),
            VideoCodec::H265 => ("video/x-h265", "h265parse"),
        };
        let location = path
            .to_str()
            .filter(|p| !p.contains(['"', '\\']))
            .ok_or_else(|| Error::Config(format!("a clip's path: {}", path.display())))?;
        // Fragments of a second: what was written before a crash or a cut still plays.
        let launch = format!(
            "appsrc name=src format=time max-buffers={WRITER_QUEUE} block=true \
               caps={caps},stream-format=byte-stream,alignment=au \
             ! {parser} ! mp4mux fragment-duration=1000 ! filesink location=\"{location}\""
        );
        let pipeline = gst::parse::launch(&launch)
            .map_err(|e| Error::Media(format!("clip pipeline: {e}")))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| Error::Media("not a pipeline".into()))?;
        let src = pipeline
            .by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or_else(|| Error::Media("no appsrc".into()))?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| Error::Media(format!("cannot start a clip: {e}")))?;
        Ok(Mp4Writer {
            pipeline,
            src,
            path: path.to_owned(),
            first,
        })
    }

    /// Appends a frame.
    pub fn write(&mut self, frame: &CodedFrame) -> Result<(), Error> {
        let mut buffer = gst::Buffer::from_slice(frame.data.clone());
        {
            let buffer = buffer
                .get_mut()
                .ok_or_else(|| Error::Media("a new buffer is not writable".into()))?;
            let at = gst::ClockTime::from_nseconds(
                frame.pts.saturating_sub(self.first).as_nanos() as u64
            );
            buffer.set_pts(at);
            buffer.set_dts(at);
            if !frame.is_key {
                buffer.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        self.src
            .push_buffer(buffer)
            .map(|_| ())
            .map_err(|e| Error::Media(format!("writing a clip: {e}")))
    }

    /// Ends the clip: the muxer writes its index, and the file is fsynced. Its size.
    pub fn finish(self) -> Result<u64, Error> {
        let _ = self.src.end_of_stream();
        let bus = self
            .pipeline
            .bus()
            .ok_or_else(|| Error::Media("no bus".into()))?;
        let ended = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(FINISH_TIMEOUT.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        let _ = self.pipeline.set_state(gst::State::Null);
        match ended.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => {}
            Some(gst::MessageView::Error(e)) => {
                return Err(Error::Media(format!("finishing a clip: {}", e.error())));
            }
            _ => return Err(Error::Media("finishing a clip timed out".into())),
        }
        let file = std::fs::File::open(&self.path)
            .map_err(Error::io(format!("opening {}", self.path.display())))?;
        file.sync_all()
            .map_err(Error::io(format!("syncing {}", self.path.display())))?;
        file.metadata()
            .map(|m| m.len())
            .map_err(Error::io(format!("reading {}", self.path.display())))
    }
}

impl Drop for Mp4Writer {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// A finished clip.
#[derive(Debug)]
pub struct Clip {
    pub path: PathBuf,
    pub bytes: u64,
    /// When the motion was first seen, from the clip's start.
    pub event_at: Duration,
    /// From its first frame to its last.
    pub length: Duration,
    /// The bytes the pre-roll ring held when it began.
    pub pre_roll_bytes: usize,
}

/// What became of a clip.
#[derive(Debug)]
pub enum Outcome {
    /// Whole and fsynced.
    Finished(Clip),
    /// It could not be written on: what was of it at `path` is no clip.
    Failed { path: PathBuf, error: Error },
}

/// The clip being written, with what its record will say.
struct Writing {
    path: PathBuf,
    writer: Mp4Writer,
    event_at: Duration,
    first: Duration,
    last: Duration,
    held: usize,
}

/// Carries out a recorder's steps into files, each where the caller places it.
#[derive(Default)]
pub struct ClipFiles {
    writing: Option<Writing>,
}

impl ClipFiles {
    /// Writes what `steps` say, a new clip where `place` says (given the event's key and
    /// the codec); what became of the clips they ended. An error is one of `place`'s: the
    /// clips' own come as [`Outcome::Failed`].
    pub fn apply(
        &mut self,
        steps: Vec<Step>,
        place: &mut dyn FnMut(&str, VideoCodec) -> Result<PathBuf, Error>,
    ) -> Result<Vec<Outcome>, Error> {
        let mut ended = Vec::new();
        for step in steps {
            match step {
                Step::Start {
                    key,
                    codec,
                    event_at,
                    frames,
                    held,
                } => {
                    ended.extend(self.finish());
                    let Some(first) = frames.first().map(|f| f.pts) else {
                        continue;
                    };
                    let path = place(&key, codec)?;
                    let started = Mp4Writer::create(&path, codec, first).and_then(|mut writer| {
                        for frame in &frames {
                            writer.write(frame)?;
                        }
                        Ok(writer)
                    });
                    match started {
                        Ok(writer) => {
                            self.writing = Some(Writing {
                                path,
                                writer,
                                event_at,
                                first,
                                last: frames.last().map_or(first, |f| f.pts),
                                held,
                            })
                        }
                        Err(error) => ended.push(Outcome::Failed { path, error }),
                    }
                }
                Step::Frame(frame) => {
                    if let Some(writing) = &mut self.writing {
                        match writing.writer.write(&frame) {
                            Ok(()) => writing.last = frame.pts,
                            Err(error) => {
                                let path = writing.path.clone();
                                self.writing = None;
                                ended.push(Outcome::Failed { path, error });
                            }
                        }
                    }
                }
                Step::Finish { .. } => ended.extend(self.finish()),
            }
        }
        Ok(ended)
    }

    /// Finishes the clip being written, if any (at the end of the input, say).
    pub fn finish(&mut self) -> Option<Outcome> {
        let writing = self.writing.take()?;
        Some(match writing.writer.finish() {
            Ok(bytes) => Outcome::Finished(Clip {
                path: writing.path,
                bytes,
                event_at: writing.event_at,
                length: writing.last.saturating_sub(writing.first),
                pre_roll_bytes: writing.held,
            }),
            Err(error) => Outcome::Failed {
                path: writing.path,
                error,
            },
        })
    }
}

/// What the detector decided on a picture, as far as clips go.
pub enum Motion {
    /// An event began with the picture at `since`; `key` is its own.
    Started { key: String, since: Duration },
    /// The event's motion ended at `end`.
    Ended { end: Duration },
}

/// Clips of a camera's events as its detector goes: the capture's coded frames (from a
/// [`GopRing`]) through a [`Recorder`] into [`ClipFiles`].
pub struct ClipMaker {
    recorder: Recorder,
    files: ClipFiles,
    frames: broadcast::Receiver<Arc<CodedFrame>>,
}

impl ClipMaker {
    pub fn new(config: ClipsConfig, ring: &GopRing) -> ClipMaker {
        ClipMaker {
            recorder: Recorder::new(config),
            files: ClipFiles::default(),
            frames: ring.subscribe().live,
        }
    }

    /// The detector has looked at the picture at `seen` and decided `motion` on it: the
    /// frames so far go to the pre-roll and the clip being made (they come ahead of their
    /// pictures), and a clip begins or is told its motion ended.
    pub fn picture(
        &mut self,
        seen: Duration,
        motion: Option<Motion>,
        place: &mut dyn FnMut(&str, VideoCodec) -> Result<PathBuf, Error>,
    ) -> Result<Vec<Outcome>, Error> {
        let mut steps = self.recorder.drain(&mut self.frames, seen);
        match motion {
            Some(Motion::Started { key, since }) => {
                steps.extend(self.recorder.motion_started(key, since))
            }
            Some(Motion::Ended { end }) => self.recorder.motion_ended(end),
            None => {}
        }
        self.files.apply(steps, place)
    }

    /// The input (or the camera's session) ended: the frames left, and the clip being made
    /// ends with them.
    pub fn end(
        &mut self,
        place: &mut dyn FnMut(&str, VideoCodec) -> Result<PathBuf, Error>,
    ) -> Result<Vec<Outcome>, Error> {
        let mut steps = self.recorder.drain(&mut self.frames, Duration::MAX);
        steps.extend(self.recorder.finish());
        self.files.apply(steps, place)
    }
}

#[cfg(test)]
mod tests;
