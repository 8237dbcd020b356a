//! The simulated camera's picture, as plain code: a still background, objects that cross it
//! on a script, and for the pan-tilt model a view that moves across a larger panorama.
//! No I/O and no clock: the caller passes the scene time.

use std::time::Duration;

/// When an object crosses the picture: first at `offset` after the simulator starts, then
/// every `every`, each crossing taking `crossing`. Tests use it to know when motion happens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MotionScript {
    pub offset: Duration,
    /// `None`: nothing ever moves.
    pub every: Option<Duration>,
    pub crossing: Duration,
}

impl MotionScript {
    /// How far across the picture the object is at `t` (0 = entering at the left edge,
    /// 1 = leaving at the right), or `None` when no object is in the scene.
    pub fn progress(&self, t: Duration) -> Option<f64> {
        let every = self.every?;
        let since = t.checked_sub(self.offset)?;
        let into = Duration::from_nanos((since.as_nanos() % every.as_nanos().max(1)) as u64);
        (into < self.crossing).then(|| into.as_secs_f64() / self.crossing.as_secs_f64())
    }
}

/// The pan-tilt head: position in degrees, moving at most `max_speed` degrees per second
/// within `limits`, towards a target or at a velocity. Time is passed in.
#[derive(Debug, Clone)]
pub struct PanTilt {
    pan: f64,
    tilt: f64,
    motion: Motion,
    updated: Duration,
    pub limits: PanTiltLimits,
}

/// The head's range and speed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PanTiltLimits {
    pub pan: (f64, f64),
    pub tilt: (f64, f64),
    /// Degrees per second at full speed.
    pub max_speed: f64,
}

impl Default for PanTiltLimits {
    fn default() -> Self {
        // A typical home pan-tilt camera: wide pan, modest tilt, a steady turn.
        PanTiltLimits {
            pan: (-60.0, 60.0),
            tilt: (-20.0, 20.0),
            max_speed: 30.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Motion {
    Still,
    /// Speeds as shares of `max_speed`, in [-1, 1].
    Velocity {
        pan: f64,
        tilt: f64,
    },
    Target {
        pan: f64,
        tilt: f64,
    },
}

impl PanTilt {
    pub fn new(limits: PanTiltLimits) -> PanTilt {
        PanTilt {
            pan: 0.0,
            tilt: 0.0,
            motion: Motion::Still,
            updated: Duration::ZERO,
            limits,
        }
    }

    /// Brings the position up to `now`.
    pub fn advance(&mut self, now: Duration) {
        let dt = now.saturating_sub(self.updated).as_secs_f64();
        self.updated = self.updated.max(now);
        let step = self.limits.max_speed * dt;
        let (pl, tl) = (self.limits.pan, self.limits.tilt);
        match self.motion {
            Motion::Still => {}
            Motion::Velocity { pan, tilt } => {
                self.pan = (self.pan + pan * step).clamp(pl.0, pl.1);
                self.tilt = (self.tilt + tilt * step).clamp(tl.0, tl.1);
                let pan_stuck = pan == 0.0 || self.pan == pl.0 || self.pan == pl.1;
                let tilt_stuck = tilt == 0.0 || self.tilt == tl.0 || self.tilt == tl.1;
                if pan_stuck && tilt_stuck {
                    self.motion = Motion::Still;
                }
            }
            Motion::Target { pan, tilt } => {
                self.pan = approach(self.pan, pan, step);
                self.tilt = approach(self.tilt, tilt, step);
                if self.pan == pan && self.tilt == tilt {
                    self.motion = Motion::Still;
                }
            }
        }
    }

    /// Starts moving at these shares of full speed (clamped to [-1, 1]); zeros stop.
    pub fn set_velocity(&mut self, pan: f64, tilt: f64, now: Duration) {
        self.advance(now);
        let (pan, tilt) = (pan.clamp(-1.0, 1.0), tilt.clamp(-1.0, 1.0));
        self.motion = if pan == 0.0 && tilt == 0.0 {
            Motion::Still
        } else {
            Motion::Velocity { pan, tilt }
        };
    }

    /// Moves to an absolute position (clamped to the limits) at full speed.
    pub fn go_to(&mut self, pan: f64, tilt: f64, now: Duration) {
        self.advance(now);
        self.motion = Motion::Target {
            pan: pan.clamp(self.limits.pan.0, self.limits.pan.1),
            tilt: tilt.clamp(self.limits.tilt.0, self.limits.tilt.1),
        };
    }

    pub fn stop(&mut self, now: Duration) {
        self.advance(now);
        self.motion = Motion::Still;
    }

    /// (pan, tilt) in degrees, as of the last `advance`.
    pub fn position(&self) -> (f64, f64) {
        (self.pan, self.tilt)
    }

    pub fn is_moving(&self) -> bool {
        self.motion != Motion::Still
    }

    /// The share of the panorama's free range the view is offset by, in [0, 1] each way.
    fn view_fraction(&self) -> (f64, f64) {
        let frac = |v: f64, (lo, hi): (f64, f64)| if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
        // Tilting up shows the upper part of the panorama.
        (
            frac(self.pan, self.limits.pan),
            1.0 - frac(self.tilt, self.limits.tilt),
        )
    }
}

fn approach(from: f64, to: f64, step: f64) -> f64 {
    if (to - from).abs() <= step {
        to
    } else {
        from + step * (to - from).signum()
    }
}

/// A planar I420 picture.
#[derive(Debug, Clone)]
pub struct Picture {
    pub width: usize,
    pub height: usize,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

impl Picture {
    fn filled(width: usize, height: usize, (y, u, v): (u8, u8, u8)) -> Picture {
        Picture {
            width,
            height,
            y: vec![y; width * height],
            u: vec![u; width.div_ceil(2) * height.div_ceil(2)],
            v: vec![v; width.div_ceil(2) * height.div_ceil(2)],
        }
    }

    /// Paints a rectangle (clipped to the picture) in one colour.
    fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, (cy, cu, cv): (u8, u8, u8)) {
        let clip = |a: i64, len: i64, max: usize| {
            (
                a.clamp(0, max as i64) as usize,
                (a + len).clamp(0, max as i64) as usize,
            )
        };
        let (x0, x1) = clip(x, w, self.width);
        let (y0, y1) = clip(y, h, self.height);
        for row in y0..y1 {
            self.y[row * self.width + x0..row * self.width + x1].fill(cy);
        }
        let cw = self.width.div_ceil(2);
        for row in y0 / 2..y1.div_ceil(2) {
            self.u[row * cw + x0 / 2..row * cw + x1.div_ceil(2)].fill(cu);
            self.v[row * cw + x0 / 2..row * cw + x1.div_ceil(2)].fill(cv);
        }
    }

    /// The whole picture as one I420 buffer (Y, then U, then V).
    pub fn to_i420(&self) -> Vec<u8> {
        [&self.y[..], &self.u[..], &self.v[..]].concat()
    }

    /// Bytes of an I420 frame of this size.
    pub fn i420_len(width: usize, height: usize) -> usize {
        width * height + 2 * width.div_ceil(2) * height.div_ceil(2)
    }
}

/// The scene a camera looks at: a background (larger than the view for pan-tilt) and the
/// scripted intruder.
pub struct Scene {
    panorama: Picture,
    view: (usize, usize),
    script: MotionScript,
    /// Sensor grain: luma offsets, twice a view long, read from a time-dependent start.
    grain: Vec<i8>,
}

/// Colours in (Y, U, V).
const SKY: (u8, u8, u8) = (200, 150, 110);
const WALL: (u8, u8, u8) = (150, 120, 140);
const WINDOW: (u8, u8, u8) = (70, 150, 120);
const GROUND: (u8, u8, u8) = (110, 110, 130);
const TILE: (u8, u8, u8) = (90, 120, 135);
const DOOR: (u8, u8, u8) = (60, 110, 150);
const PERSON: (u8, u8, u8) = (35, 140, 120);
const SKIN: (u8, u8, u8) = (170, 110, 155);

impl Scene {
    /// A scene for a `width`×`height` view; `pan_tilt` makes the background a panorama of
    /// three views across and twice as tall.
    pub fn new(width: usize, height: usize, pan_tilt: bool, script: MotionScript) -> Scene {
        let (pw, ph) = if pan_tilt {
            (width * 3, height * 2)
        } else {
            (width, height)
        };
        let mut p = Picture::filled(pw, ph, SKY);
        let (pw, ph) = (pw as i64, ph as i64);
        let horizon = ph * 55 / 100;
        // Houses along the street, each with windows and a door: distinct enough that a pan
        // is visible and a masked window can be told apart.
        let house_w = (width as i64 / 4).max(8);
        let mut x = house_w / 4;
        let mut n = 0;
        while x < pw {
            let top = horizon - ph / 4 - (n % 3) * ph / 24;
            p.fill_rect(x, top, house_w, horizon - top, WALL);
            let (win_w, win_h) = (house_w / 5, (horizon - top) / 5);
            for (wx, wy) in [(1, 1), (3, 1), (1, 3)] {
                p.fill_rect(x + wx * house_w / 5, top + wy * win_h, win_w, win_h, WINDOW);
            }
            p.fill_rect(
                x + house_w * 3 / 5,
                horizon - 2 * win_h,
                win_w,
                2 * win_h,
                DOOR,
            );
            x += house_w * 3 / 2;
            n += 1;
        }
        p.fill_rect(0, horizon, pw, ph - horizon, GROUND);
        let tile = (width as i64 / 16).max(4);
        let mut ty = horizon;
        while ty < ph {
            let mut tx = ((ty - horizon) / tile % 2) * tile;
            while tx < pw {
                p.fill_rect(tx, ty, tile, tile, TILE);
                tx += 2 * tile;
            }
            ty += tile;
        }
        Scene {
            panorama: p,
            view: (width, height),
            script,
            grain: Vec::new(),
        }
    }

    /// Adds sensor grain of up to ±`amplitude` luma levels, different in every frame, as a
    /// cheap camera's sensor has in dim light (and as a busy scene costs an encoder).
    pub fn with_grain(mut self, amplitude: u8, seed: u64) -> Scene {
        if amplitude == 0 {
            self.grain.clear();
            return self;
        }
        let (w, h) = self.view;
        let span = 2 * i16::from(amplitude) + 1;
        // xorshift: repeatable and fast; the grain only has to look random to an encoder.
        let mut x = seed | 1;
        self.grain = (0..2 * w * h)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((x % span as u64) as i16 - i16::from(amplitude)) as i8
            })
            .collect();
        self
    }

    /// The picture at scene time `t`, seen through `head` (or straight ahead for a fixed
    /// camera). Cost: one copy of the view plus the intruder, no per-pixel maths.
    pub fn render(&self, t: Duration, head: Option<&PanTilt>) -> Picture {
        let (w, h) = self.view;
        let p = &self.panorama;
        let (fx, fy) = head.map_or((0.5, 0.5), PanTilt::view_fraction);
        // Even offsets keep the 2×2 chroma blocks aligned.
        let ox = (((p.width - w) as f64 * fx) as usize) & !1;
        let oy = (((p.height - h) as f64 * fy) as usize) & !1;
        let mut out = Picture::filled(w, h, (0, 128, 128));
        for row in 0..h {
            let src = (oy + row) * p.width + ox;
            out.y[row * w..(row + 1) * w].copy_from_slice(&p.y[src..src + w]);
        }
        let (cw, pcw) = (w.div_ceil(2), p.width.div_ceil(2));
        for row in 0..h.div_ceil(2) {
            let src = (oy / 2 + row) * pcw + ox / 2;
            out.u[row * cw..(row + 1) * cw].copy_from_slice(&p.u[src..src + cw]);
            out.v[row * cw..(row + 1) * cw].copy_from_slice(&p.v[src..src + cw]);
        }
        if let Some(progress) = self.script.progress(t) {
            // The intruder walks along the street across the whole panorama, so a pan-tilt
            // camera sees it only when it looks its way.
            let (pw, ph) = (p.width as i64, p.height as i64);
            let body_h = ph / 4;
            let body_w = body_h / 3;
            let x = -body_w + ((pw + body_w) as f64 * progress) as i64 - ox as i64;
            let feet = ph * 70 / 100 - oy as i64;
            out.fill_rect(x, feet - body_h, body_w, body_h, PERSON);
            out.fill_rect(
                x + body_w / 4,
                feet - body_h - body_w * 2 / 3,
                body_w / 2,
                body_w * 2 / 3,
                SKIN,
            );
        }
        if !self.grain.is_empty() {
            // A different stretch of the grain table per frame (odd, so rows do not repeat).
            let frame = (t.as_millis() as usize / 10) | 1;
            let start = frame.wrapping_mul(7919) % (w * h);
            let grain = &self.grain[start..start + w * h];
            for (y, g) in out.y.iter_mut().zip(grain) {
                *y = y.saturating_add_signed(*g);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: MotionScript = MotionScript {
        offset: Duration::from_secs(3),
        every: Some(Duration::from_secs(10)),
        crossing: Duration::from_secs(4),
    };

    #[test]
    fn the_script_says_when_the_intruder_is_in_the_picture() {
        let at = |ms| SCRIPT.progress(Duration::from_millis(ms));
        assert_eq!(at(0), None);
        assert_eq!(at(3_000), Some(0.0));
        assert_eq!(at(5_000), Some(0.5));
        assert_eq!(at(7_000), None);
        assert_eq!(at(13_000), Some(0.0));
        let never = MotionScript {
            every: None,
            ..SCRIPT
        };
        assert_eq!(never.progress(Duration::from_secs(5)), None);
    }

    #[test]
    fn the_head_moves_at_its_speed_within_its_limits() {
        let mut head = PanTilt::new(PanTiltLimits::default());
        let s = Duration::from_secs;
        head.set_velocity(1.0, 0.0, s(0));
        head.advance(s(1));
        assert_eq!(head.position(), (30.0, 0.0));
        head.advance(s(10));
        assert_eq!(head.position(), (60.0, 0.0), "stops at the limit");
        assert!(!head.is_moving());
        head.go_to(-60.0, 10.0, s(10));
        head.advance(s(12));
        assert_eq!(head.position(), (0.0, 10.0));
        assert!(head.is_moving());
        head.advance(s(14));
        assert_eq!(head.position(), (-60.0, 10.0));
        assert!(!head.is_moving());
        head.set_velocity(0.5, -1.0, s(14));
        head.stop(s(15));
        assert_eq!(head.position(), (-45.0, -20.0));
    }

    #[test]
    fn a_pan_changes_the_picture_and_the_intruder_changes_it_locally() {
        let scene = Scene::new(160, 90, true, SCRIPT);
        let mut head = PanTilt::new(PanTiltLimits::default());
        let still = scene.render(Duration::ZERO, Some(&head));
        assert_eq!(still.to_i420().len(), Picture::i420_len(160, 90));
        head.go_to(40.0, 0.0, Duration::ZERO);
        head.advance(Duration::from_secs(2));
        let panned = scene.render(Duration::ZERO, Some(&head));
        let changed =
            |a: &Picture, b: &Picture| a.y.iter().zip(&b.y).filter(|(x, y)| x != y).count();
        assert!(
            changed(&still, &panned) > 160 * 90 / 10,
            "a pan moves the view"
        );

        let fixed = Scene::new(160, 90, false, SCRIPT);
        let empty = fixed.render(Duration::ZERO, None);
        let crossing = fixed.render(Duration::from_secs(5), None);
        let n = changed(&empty, &crossing);
        assert!(
            n > 100 && n < 160 * 90 / 4,
            "the intruder is a local change: {n} pixels"
        );
        assert_eq!(
            changed(&empty, &fixed.render(Duration::from_secs(8), None)),
            0
        );
    }

    #[test]
    fn grain_differs_between_frames_within_its_amplitude() {
        let clean = Scene::new(64, 36, false, SCRIPT);
        let grainy = Scene::new(64, 36, false, SCRIPT).with_grain(6, 42);
        let t0 = Duration::from_millis(100);
        let base = clean.render(t0, None);
        let a = grainy.render(t0, None);
        let b = grainy.render(Duration::from_millis(166), None);
        assert_ne!(a.y, b.y, "grain moves from frame to frame");
        assert!(
            base.y
                .iter()
                .zip(&a.y)
                .all(|(c, g)| (i16::from(*c) - i16::from(*g)).abs() <= 6)
        );
        assert_eq!(a.u, base.u, "grain is luma only");
    }
}
