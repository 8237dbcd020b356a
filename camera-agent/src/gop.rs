//! The camera's current group of pictures, kept by the agent as its decoder reads the stream:
//! the coded frames since the newest keyframe, bounded in bytes and frames, and every new frame
//! handed to whoever watches live. A live view that starts the relay's pull through the agent
//! is served these at once ([`crate::restream`]) instead of waiting for the camera's next
//! keyframe (2–4 s on many cameras). Plain code and a lock: the capture thread pushes, tunnel
//! tasks subscribe.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// The most bytes of one group kept: 4 s at 16 Mbit/s, more than a home camera's main stream.
pub const MAX_GOP_BYTES: usize = 8 * 1024 * 1024;
/// The most frames of one group kept: 10 s at 30 frames a second.
pub const MAX_GOP_FRAMES: usize = 300;
/// Live frames a subscriber may fall behind by before it must start again at a keyframe.
const LIVE_QUEUE_FRAMES: usize = 128;
/// A group whose newest frame is older than this is not served: the camera's stream has
/// stalled, and a view is better off with a session of its own.
const STALE_AFTER: Duration = Duration::from_secs(2);

/// The codecs whose frames the agent keeps: what cameras send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    H265,
}

impl VideoCodec {
    /// Its name in the relay's API: `h264`, `h265`.
    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::H265 => "h265",
        }
    }

    /// A NAL unit's type, from its header (one byte in H.264, two in H.265; `unit` is not
    /// empty).
    pub fn nal_type(self, unit: &[u8]) -> u8 {
        match self {
            VideoCodec::H264 => unit[0] & 0x1f,
            VideoCodec::H265 => (unit[0] >> 1) & 0x3f,
        }
    }
}

/// One coded picture: an access unit in Annex B form (parameter sets before each keyframe,
/// as the agent's parser puts them).
#[derive(Debug)]
pub struct CodedFrame {
    /// When the frame is to be shown, on the clock of its camera session.
    pub pts: Duration,
    pub is_key: bool,
    pub codec: VideoCodec,
    pub data: Vec<u8>,
    /// Which camera session of the agent's decoder this came from: times restart with each.
    pub session: u64,
}

/// A live view's start: the group so far, then every frame after it.
pub struct Subscription {
    /// From the keyframe to the newest frame, in order.
    pub cached: Vec<Arc<CodedFrame>>,
    pub live: broadcast::Receiver<Arc<CodedFrame>>,
}

/// The newest group of pictures and the live frames, shared by the capture and the tunnels.
pub struct GopRing {
    inner: Mutex<Inner>,
    live: broadcast::Sender<Arc<CodedFrame>>,
}

#[derive(Default)]
struct Inner {
    /// Empty until a keyframe, and again when a group outgrows the bounds.
    frames: Vec<Arc<CodedFrame>>,
    bytes: usize,
    session: u64,
    /// When the newest frame came.
    newest_at: Option<Instant>,
    /// The newest parameter sets (NAL units without start codes).
    parameter_sets: Option<ParameterSets>,
}

/// A stream's parameter sets, as an SDP describes them: H.264's SPS and PPS, H.265's VPS,
/// SPS and PPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterSets {
    pub codec: VideoCodec,
    /// H.265's only.
    pub vps: Option<Vec<u8>>,
    pub sps: Vec<u8>,
    pub pps: Vec<u8>,
}

impl Default for GopRing {
    fn default() -> GopRing {
        GopRing {
            inner: Mutex::default(),
            live: broadcast::channel(LIVE_QUEUE_FRAMES).0,
        }
    }
}

impl GopRing {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new camera session begins: the group before it is forgotten, and its frames' times
    /// start again.
    pub fn new_session(&self) {
        let mut inner = self.lock();
        inner.session += 1;
        inner.frames.clear();
        inner.bytes = 0;
        inner.newest_at = None;
    }

    /// Takes the camera's next frame (`pts` on this session's clock) at `now`.
    pub fn push(
        &self,
        codec: VideoCodec,
        pts: Duration,
        is_key: bool,
        data: Vec<u8>,
        now: Instant,
    ) {
        let mut inner = self.lock();
        if is_key {
            inner.frames.clear();
            inner.bytes = 0;
            if let Some(ps) = parameter_sets(codec, &data) {
                inner.parameter_sets = Some(ps);
            }
        }
        let frame = Arc::new(CodedFrame {
            pts,
            is_key,
            codec,
            data,
            session: inner.session,
        });
        let grouped = !inner.frames.is_empty() || is_key;
        if grouped
            && inner.frames.len() < MAX_GOP_FRAMES
            && inner.bytes + frame.data.len() <= MAX_GOP_BYTES
        {
            inner.bytes += frame.data.len();
            inner.frames.push(frame.clone());
        } else {
            // Too long a group to keep (or none begun): none is served until the next keyframe.
            inner.frames.clear();
            inner.bytes = 0;
        }
        inner.newest_at = Some(now);
        // Sent under the lock: a subscriber sees each frame once, in the group or live.
        let _ = self.live.send(frame);
    }

    /// The parameter sets, if a fresh group in their codec can be served at `now`.
    pub fn servable(&self, now: Instant) -> Option<ParameterSets> {
        let inner = self.lock();
        let fresh = inner
            .newest_at
            .is_some_and(|at| now.saturating_duration_since(at) < STALE_AFTER);
        let codec = inner.frames.first().map(|f| f.codec);
        (fresh && codec.is_some() && codec == inner.parameter_sets.as_ref().map(|p| p.codec))
            .then(|| inner.parameter_sets.clone())
            .flatten()
    }

    /// The group so far and every frame after it.
    pub fn subscribe(&self) -> Subscription {
        let inner = self.lock();
        Subscription {
            cached: inner.frames.clone(),
            live: self.live.subscribe(),
        }
    }
}

/// The NAL units of an Annex B byte stream, without their start codes.
pub fn nal_units(annex_b: &[u8]) -> impl Iterator<Item = &[u8]> {
    // Each unit runs from after a 00 00 01 to the next 00 00 0(0|1) (a 4-byte start code's
    // leading zero is trailing_zero_8bits, not part of the unit).
    let mut rest = annex_b;
    std::iter::from_fn(move || {
        let start = find_start_code(rest)? + 3;
        rest = &rest[start..];
        let end = find_start_code(rest).unwrap_or(rest.len());
        let mut unit = &rest[..end];
        rest = &rest[end..];
        while let [head @ .., 0] = unit {
            unit = head;
        }
        Some(unit)
    })
    .filter(|unit| !unit.is_empty())
}

fn find_start_code(data: &[u8]) -> Option<usize> {
    data.windows(3).position(|w| w == [0, 0, 1])
}

/// The parameter sets of a keyframe, if it carries them all: H.264's SPS (type 7) and PPS
/// (8); H.265's VPS (32), SPS (33) and PPS (34).
fn parameter_sets(codec: VideoCodec, annex_b: &[u8]) -> Option<ParameterSets> {
    let (mut vps, mut sps, mut pps) = (None, None, None);
    let [vps_type, sps_type, pps_type] = match codec {
        VideoCodec::H264 => [u8::MAX, 7, 8],
        VideoCodec::H265 => [32, 33, 34],
    };
    for unit in nal_units(annex_b) {
        match codec.nal_type(unit) {
            t if t == vps_type => vps = Some(unit.to_vec()),
            t if t == sps_type => sps = Some(unit.to_vec()),
            t if t == pps_type => pps = Some(unit.to_vec()),
            _ => {}
        }
    }
    if codec == VideoCodec::H265 && vps.is_none() {
        return None;
    }
    Some(ParameterSets {
        codec,
        vps,
        sps: sps?,
        pps: pps?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: [u8; 4] = [0x67, 0x42, 0xc0, 0x1f];
    const PPS: [u8; 3] = [0x68, 0xce, 0x3c];

    fn keyframe() -> Vec<u8> {
        [
            &[0, 0, 0, 1][..],
            &SPS,
            &[0, 0, 1],
            &PPS,
            &[0, 0, 0, 1, 0x65, 1, 2, 3],
        ]
        .concat()
    }

    fn delta(size: usize) -> Vec<u8> {
        let mut f = vec![0, 0, 0, 1, 0x41];
        f.resize(size, 7);
        f
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn nal_units_are_split_at_three_and_four_byte_start_codes() {
        let keyframe = keyframe();
        let units: Vec<&[u8]> = nal_units(&keyframe).collect();
        assert_eq!(units, [&SPS[..], &PPS[..], &[0x65, 1, 2, 3][..]]);
        assert_eq!(nal_units(&[1, 2, 3]).count(), 0, "no start code, no unit");
        assert_eq!(nal_units(&[0, 0, 1]).count(), 0, "an empty unit is none");
    }

    #[test]
    fn a_subscriber_gets_the_group_from_its_keyframe_then_each_new_frame_once() {
        let ring = GopRing::default();
        let t0 = eyeward::clock::monotonic();
        ring.push(VideoCodec::H264, ms(0), false, delta(10), t0);
        assert!(ring.servable(t0).is_none(), "no keyframe yet");
        ring.push(VideoCodec::H264, ms(66), true, keyframe(), t0);
        ring.push(VideoCodec::H264, ms(133), false, delta(10), t0);
        let ps = ring.servable(t0).expect("a group with parameter sets");
        assert_eq!((ps.sps.as_slice(), ps.pps.as_slice()), (&SPS[..], &PPS[..]));
        let mut sub = ring.subscribe();
        let pts: Vec<Duration> = sub.cached.iter().map(|f| f.pts).collect();
        assert_eq!(pts, [ms(66), ms(133)]);
        assert!(sub.cached[0].is_key);
        ring.push(VideoCodec::H264, ms(200), false, delta(10), t0);
        assert_eq!(sub.live.try_recv().unwrap().pts, ms(200));
        assert!(sub.live.try_recv().is_err(), "nothing twice");
    }

    #[test]
    fn an_h265_group_is_served_with_its_video_sequence_and_picture_parameter_sets() {
        // NAL headers of two bytes: VPS 32, SPS 33, PPS 34, an IDR slice 19, a trailing 1.
        let (vps, sps, pps) = ([0x40, 0x01, 0x0c], [0x42, 0x01, 0x01], [0x44, 0x01, 0xc1]);
        let unit = |u: &[u8]| [&[0, 0, 0, 1][..], u].concat();
        let key = [unit(&vps), unit(&sps), unit(&pps), unit(&[0x26, 0x01, 9])].concat();
        let ring = GopRing::default();
        let t0 = eyeward::clock::monotonic();
        ring.push(VideoCodec::H265, ms(0), true, key.clone(), t0);
        ring.push(VideoCodec::H265, ms(66), false, unit(&[0x02, 0x01, 7]), t0);
        let ps = ring.servable(t0).expect("served");
        assert_eq!(ps.codec, VideoCodec::H265);
        assert_eq!(ps.vps.as_deref(), Some(&vps[..]));
        assert_eq!((ps.sps.as_slice(), ps.pps.as_slice()), (&sps[..], &pps[..]));
        assert_eq!(ring.subscribe().cached[0].codec, VideoCodec::H265);
        // A keyframe without its VPS leaves the sets as they were; H.264's SPS and PPS
        // types mean nothing in H.265.
        let without_vps = [unit(&sps), unit(&pps), unit(&[0x26, 0x01, 9])].concat();
        assert!(parameter_sets(VideoCodec::H265, &without_vps).is_none());
        assert!(parameter_sets(VideoCodec::H265, &keyframe()).is_none());
        // The group of one codec is not served with another's sets.
        ring.push(VideoCodec::H264, ms(100), true, delta(10), t0);
        assert!(ring.servable(t0).is_none());
    }

    #[test]
    fn a_stalled_stream_is_not_served() {
        let ring = GopRing::default();
        let t0 = eyeward::clock::monotonic();
        ring.push(VideoCodec::H264, ms(0), true, keyframe(), t0);
        assert!(ring.servable(t0 + STALE_AFTER - ms(1)).is_some());
        assert!(ring.servable(t0 + STALE_AFTER).is_none());
    }

    #[test]
    fn a_new_camera_session_forgets_the_group_and_numbers_its_frames() {
        let ring = GopRing::default();
        let t0 = eyeward::clock::monotonic();
        ring.push(VideoCodec::H264, ms(0), true, keyframe(), t0);
        ring.new_session();
        assert!(ring.servable(t0).is_none());
        ring.push(VideoCodec::H264, ms(0), true, keyframe(), t0);
        let sub = ring.subscribe();
        assert_eq!(sub.cached.len(), 1);
        assert_eq!(sub.cached[0].session, 1);
    }

    #[test]
    fn a_group_beyond_the_bounds_is_dropped_until_the_next_keyframe() {
        let ring = GopRing::default();
        let t0 = eyeward::clock::monotonic();
        ring.push(VideoCodec::H264, ms(0), true, keyframe(), t0);
        ring.push(VideoCodec::H264, ms(66), false, delta(MAX_GOP_BYTES), t0);
        assert!(ring.servable(t0).is_none(), "over the byte bound");
        ring.push(VideoCodec::H264, ms(133), false, delta(10), t0);
        assert!(ring.servable(t0).is_none(), "still none until a keyframe");
        ring.push(VideoCodec::H264, ms(200), true, keyframe(), t0);
        for n in 1..MAX_GOP_FRAMES as u64 {
            ring.push(VideoCodec::H264, ms(200 + n), false, delta(10), t0);
        }
        assert_eq!(ring.subscribe().cached.len(), MAX_GOP_FRAMES);
        ring.push(VideoCodec::H264, ms(999), false, delta(10), t0);
        assert!(ring.servable(t0).is_none(), "over the frame bound");
    }
}
