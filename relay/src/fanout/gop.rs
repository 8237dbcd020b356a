//! The group of pictures a new viewer starts from: every frame since the last keyframe, so
//! the viewer's decoder can start at once instead of waiting for the camera's next keyframe.

use crate::ingest::Frame;
use std::sync::Arc;

/// At most this many bytes are kept; a camera with a very long keyframe interval keeps only
/// the last keyframe then (a viewer still starts decoding at once, a few frames behind).
const MAX_BYTES: usize = 8 * 1024 * 1024;

/// Frames since the last keyframe.
#[derive(Default)]
pub struct Gop {
    frames: Vec<Arc<Frame>>,
    bytes: usize,
}

impl Gop {
    /// Takes the next frame from the camera.
    pub fn push(&mut self, frame: Arc<Frame>) {
        if frame.is_key {
            self.frames.clear();
            self.bytes = 0;
        } else if self.frames.is_empty() {
            // No keyframe yet: nothing decodable to keep.
            return;
        } else if self.bytes + frame.data.len() > MAX_BYTES {
            self.frames.truncate(1);
            self.bytes = self.frames[0].data.len();
            return;
        }
        self.bytes += frame.data.len();
        self.frames.push(frame);
    }

    /// What a new viewer is sent first: a keyframe and the frames after it.
    pub fn frames(&self) -> &[Arc<Frame>] {
        &self.frames
    }

    /// Forgets everything (the camera restarted: old frames would not decode with new
    /// parameter sets).
    pub fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ts: i64, key: bool, len: usize) -> Arc<Frame> {
        Arc::new(Frame {
            timestamp: ts,
            is_key: key,
            data: vec![0; len].into(),
            rtp_payloads: Vec::new(),
            received: eyeward::clock::monotonic(),
            epoch: 0,
        })
    }

    #[test]
    fn keeps_the_frames_since_the_last_keyframe() {
        let mut g = Gop::default();
        g.push(frame(0, false, 10));
        assert!(g.frames().is_empty(), "nothing before the first keyframe");
        g.push(frame(1, true, 10));
        g.push(frame(2, false, 10));
        assert_eq!(g.frames().len(), 2);
        g.push(frame(3, true, 10));
        g.push(frame(4, false, 10));
        let ts: Vec<_> = g.frames().iter().map(|f| f.timestamp).collect();
        assert_eq!(ts, [3, 4]);
    }

    #[test]
    fn a_huge_group_keeps_only_its_keyframe() {
        let mut g = Gop::default();
        g.push(frame(0, true, 1000));
        for i in 1..10 {
            g.push(frame(i, false, MAX_BYTES / 4));
        }
        assert!(g.frames().len() < 5 && g.frames()[0].is_key);
        assert!(g.bytes <= MAX_BYTES);
    }
}
