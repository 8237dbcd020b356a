//! How many events one camera may send: a token bucket per camera, `per_minute` deep, filled
//! at `per_minute` a minute. Plain state with `now` passed in; the upload handler holds it in
//! a mutex.

use eyeward::{CameraId, UnixMillis};
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug)]
pub struct EventRate {
    per_minute: f64,
    buckets: HashMap<CameraId, (f64, UnixMillis)>,
}

impl EventRate {
    pub fn new(per_minute: u32) -> EventRate {
        EventRate {
            per_minute: f64::from(per_minute),
            buckets: HashMap::new(),
        }
    }

    /// Takes one event of `camera` at `now`, or says how long until one may come.
    pub fn admit(&mut self, camera: CameraId, now: UnixMillis) -> Result<(), Duration> {
        let per_ms = self.per_minute / 60_000.0;
        let full = self.per_minute;
        let (tokens, at) = self.buckets.entry(camera).or_insert((full, now));
        *tokens = (*tokens + now.since(*at).as_millis() as f64 * per_ms).min(full);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_millis(
                ((1.0 - *tokens) / per_ms).ceil() as u64
            ))
        }
    }

    /// Forgets cameras whose bucket is full again (they would start full anyway), so the
    /// map holds only cameras sending now.
    pub fn forget_idle(&mut self, now: UnixMillis) {
        let (full, per_ms) = (self.per_minute, self.per_minute / 60_000.0);
        self.buckets
            .retain(|_, (tokens, at)| *tokens + now.since(*at).as_millis() as f64 * per_ms < full);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> UnixMillis {
        UnixMillis(0).plus(Duration::from_millis(ms))
    }

    #[test]
    fn a_camera_sends_a_burst_then_its_rate_and_others_are_not_held_up() {
        let mut r = EventRate::new(3);
        let cam = CameraId(1);
        for _ in 0..3 {
            assert_eq!(r.admit(cam, at(0)), Ok(()));
        }
        assert_eq!(r.admit(cam, at(0)), Err(Duration::from_secs(20)));
        assert_eq!(r.admit(CameraId(2), at(0)), Ok(()), "another camera");
        assert_eq!(r.admit(cam, at(19_999)), Err(Duration::from_millis(1)));
        assert_eq!(r.admit(cam, at(20_000)), Ok(()));
    }

    #[test]
    fn idle_cameras_are_forgotten() {
        let mut r = EventRate::new(3);
        r.admit(CameraId(1), at(0)).unwrap();
        r.admit(CameraId(2), at(59_000)).unwrap();
        r.forget_idle(at(60_000));
        assert_eq!(r.buckets.len(), 1);
    }
}
