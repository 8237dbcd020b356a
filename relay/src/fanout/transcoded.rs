//! A camera's video transcoded, once per camera for every viewer:
//! - for browsers without H.264: the camera's H.264 feed, joined as one more viewer, through
//!   a VP8 encoder ([`crate::transcode::vp8`]). The cached group of pictures goes in first, a
//!   millisecond apart (so the VP8 feed starts at the live edge, as a viewer of the H.264 feed
//!   does), then live frames with the camera's spacing;
//! - for an H.265 camera: its H.265 feed (joined the same way) or, when the relay did not
//!   know the camera sends H.265, its RTSP session's frames, through an H.264 encoder
//!   ([`crate::transcode::h264`], the machine's hardware encoder where it has one): the H.264 feed of such a camera, with its own group of
//!   pictures for instant starts.

use super::Subscription;
use crate::error::{Error, ErrorKind};
use crate::ingest::h264::MAX_RTP_PAYLOAD;
use crate::ingest::{Frame, Ingest, h264};
use crate::loopback;
use crate::transcode::{Encoded, H264Encoder, H264Engines, Vp8Encoder, vp8};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// The media time between cached frames on their way in (as `whep::peer` stamps them).
const CACHED_FRAME_GAP: Duration = Duration::from_millis(1);
/// The media time before a frame that follows no frame of the same camera session.
const DEFAULT_FRAME_GAP: Duration = Duration::from_millis(66);
/// The longest gap kept between two frames: a camera's stall is not replayed.
const MAX_FRAME_GAP: Duration = Duration::from_secs(1);
/// Frames in the encoder whose arrival is remembered.
const IN_FLIGHT: usize = 64;
/// The H.264 RTP clock: 90 kHz.
const VIDEO_CLOCK_RATE: u128 = 90_000;

/// Where a transcode's frames come from.
enum Source {
    /// Another feed of the camera, joined as a viewer.
    Feed(Subscription),
    /// The camera's RTSP session, and what keeps its way open.
    Camera {
        ingest: Ingest,
        _carrier: loopback::Offered,
    },
}

/// What a transcode makes.
enum Encoder {
    Vp8(Vp8Encoder),
    H264(H264Encoder),
}

/// What came of waiting for the source's next frame.
enum Next {
    Frame(Arc<Frame>),
    /// The source skipped frames: only a keyframe may go in next.
    Gap,
    Ended,
}

/// See the module's documentation.
pub struct Transcoded {
    source: Source,
    /// The cached frames not yet in the encoder.
    cached: VecDeque<Arc<Frame>>,
    encoder: Encoder,
    /// The last frame in: its camera session and timestamp, and the media time it was given.
    last: Option<(u64, i64, Duration)>,
    /// After a gap (the source lagged) only a keyframe can go in.
    wants_keyframe: bool,
    /// When the relay had each frame in the encoder, by the media time it was given.
    received: VecDeque<(Duration, Instant)>,
}

impl Transcoded {
    /// VP8 from the camera's H.264 feed `source`.
    pub fn vp8(source: Subscription) -> Result<Transcoded, Error> {
        Transcoded::of_feed(source, Encoder::Vp8(Vp8Encoder::new()?))
    }

    /// H.264 from an H.265 camera's feed `source`, with the first of `engines` that starts.
    pub fn h264_of(source: Subscription, engines: Arc<H264Engines>) -> Result<Transcoded, Error> {
        tracing::info!("transcoding the camera's H.265 to H.264");
        Transcoded::of_feed(source, Encoder::H264(H264Encoder::new(engines)?))
    }

    /// Joins `source` as a viewer: its cached group first, then its live frames.
    fn of_feed(mut source: Subscription, encoder: Encoder) -> Result<Transcoded, Error> {
        let cached = std::mem::take(&mut source.cached).into();
        Transcoded::new(Source::Feed(source), cached, encoder)
    }

    /// H.264 from an H.265 camera's RTSP session `ingest`, kept open by `carrier`, with the
    /// first of `engines` that starts.
    pub fn h264(
        ingest: Ingest,
        carrier: loopback::Offered,
        engines: Arc<H264Engines>,
    ) -> Result<Transcoded, Error> {
        let source = Source::Camera {
            ingest,
            _carrier: carrier,
        };
        tracing::info!("transcoding the camera's H.265 to H.264");
        Transcoded::new(
            source,
            VecDeque::new(),
            Encoder::H264(H264Encoder::new(engines)?),
        )
    }

    fn new(
        source: Source,
        cached: VecDeque<Arc<Frame>>,
        encoder: Encoder,
    ) -> Result<Transcoded, Error> {
        Ok(Transcoded {
            source,
            cached,
            encoder,
            last: None,
            wants_keyframe: true,
            received: VecDeque::new(),
        })
    }

    /// The next transcoded frame; `None` when the source or the encoder ended.
    pub async fn next_frame(&mut self) -> Result<Option<Frame>, Error> {
        loop {
            if let Some(frame) = self.cached.pop_front() {
                self.push(&frame, CACHED_FRAME_GAP)?;
                continue;
            }
            let encoded = match &mut self.encoder {
                Encoder::Vp8(e) => futures_util::future::Either::Left(e.next()),
                Encoder::H264(e) => futures_util::future::Either::Right(e.next()),
            };
            tokio::select! {
                next = next_of(&mut self.source) => match next? {
                    Next::Frame(frame) => self.push(&frame, DEFAULT_FRAME_GAP)?,
                    Next::Gap => self.wants_keyframe = true,
                    Next::Ended => return Ok(None),
                },
                encoded = encoded => {
                    return match encoded {
                        Some(encoded) => self.frame(encoded).map(Some),
                        None => Ok(None),
                    };
                }
            }
        }
    }

    /// Puts a frame of the camera into the encoder, `gap` after the last unless the camera's
    /// own spacing says otherwise; a frame sent already (from the cache) is left out.
    fn push(&mut self, frame: &Frame, gap: Duration) -> Result<(), Error> {
        let at = match self.last {
            Some((epoch, timestamp, _)) if epoch == frame.epoch && frame.timestamp <= timestamp => {
                return Ok(());
            }
            Some((epoch, timestamp, at)) if epoch == frame.epoch && gap != CACHED_FRAME_GAP => {
                let ticks = (frame.timestamp - timestamp) as u64;
                at + Duration::from_micros(ticks * 1_000_000 / 90_000).min(MAX_FRAME_GAP)
            }
            Some((_, _, at)) => at + gap,
            None => Duration::ZERO,
        };
        if self.wants_keyframe && !frame.is_key {
            return Ok(());
        }
        self.wants_keyframe = false;
        self.last = Some((frame.epoch, frame.timestamp, at));
        if self.received.len() == IN_FLIGHT {
            self.received.pop_front();
        }
        self.received.push_back((at, frame.received));
        match &mut self.encoder {
            Encoder::Vp8(e) => e.push(at, &frame.data),
            Encoder::H264(e) => e.push(at, &frame.data),
        }
    }

    /// A VP8 frame as the feed hands frames on, with when the relay had its H.264 frame.
    fn frame(&mut self, encoded: Encoded) -> Result<Frame, Error> {
        while self
            .received
            .front()
            .is_some_and(|(at, _)| *at < encoded.at)
        {
            self.received.pop_front();
        }
        let received = self
            .received
            .front()
            .filter(|(at, _)| *at == encoded.at)
            .map_or_else(eyeward::clock::monotonic, |(_, received)| *received);
        let data = match self.encoder {
            Encoder::Vp8(_) => encoded.data,
            Encoder::H264(_) => h264::annex_b_without_sei(&encoded.data).into(),
        };
        let rtp_payloads = match self.encoder {
            Encoder::Vp8(_) => vp8::rtp_payloads(&data, MAX_RTP_PAYLOAD),
            Encoder::H264(_) => h264::rtp_payloads(&data),
        }
        .map_err(|e| Error::new(ErrorKind::Internal, e))?;
        Ok(Frame {
            timestamp: (encoded.at.as_nanos() * VIDEO_CLOCK_RATE / 1_000_000_000) as i64,
            is_key: encoded.is_key,
            data,
            rtp_payloads,
            received,
            epoch: 0,
        })
    }
}

/// The source's next frame.
async fn next_of(source: &mut Source) -> Result<Next, Error> {
    match source {
        Source::Feed(sub) => Ok(match sub.live.recv().await {
            Ok(frame) => Next::Frame(frame),
            Err(RecvError::Lagged(_)) => Next::Gap,
            Err(RecvError::Closed) => Next::Ended,
        }),
        Source::Camera { ingest, .. } => Ok(match ingest.next_frame().await? {
            Some(frame) => Next::Frame(Arc::new(frame)),
            None => Next::Ended,
        }),
    }
}
