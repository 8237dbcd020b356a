//! Labelled synthetic clips for the motion detector: what a camera sees when its view moves
//! with nobody telling the agent (a pan or tilt at any speed, starting at once or smoothly; a
//! zoom; wind shaking it), when it switches to infrared night mode, and when a person walks
//! in, over several kinds of scene. Plain code, made at run time: a picture for any time and
//! size, so the detector's unit tests (at its own 320×180), `tests/motion_detect.rs` and
//! `bench/motion.sh` (encoded with x264 and decoded by the agent) share the same clips.
//!
//! Positions and speeds are in pixels of a 320-pixel-wide view, the detection picture's
//! width (a 1280-wide camera picture moves four times as many of its own). The scenes are
//! functions of position, not rasters: each picture samples them through the view of the
//! moment, and every edge is drawn as a sensor sees it, blended over the pixel's footprint,
//! so that a move of a fraction of a pixel changes the picture by a fraction too.

use crate::scene::Picture;
use std::f64::consts::TAU;

/// Width of the view, in scene units (one unit is one pixel of the detection picture).
const VIEW_WIDTH: f64 = 320.0;

/// What the camera looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ground {
    /// A street of houses with windows and doors over a tiled pavement: large, sharp edges.
    Street,
    /// Foliage, gravel: fine texture at several scales, everywhere.
    Textured,
    /// A plain wall in soft light: little to see but a faint door.
    Flat,
    /// The street at night without infrared: a fifth of the light and strong sensor noise.
    Dark,
}

/// How the view changes on its own (nobody told the agent).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ViewChange {
    Still,
    /// The view slides at `velocity` (units a second, x to the right, y down) from `from` for
    /// `seconds`. `smooth`: it gathers speed over the first second and sheds it over the last,
    /// as a patrol's motors do; otherwise it starts and stops at once.
    Pan {
        velocity: (f64, f64),
        from: f64,
        seconds: f64,
        smooth: bool,
    },
    /// The lens zooms in `factor` times, evenly, from `from` for `seconds`.
    Zoom {
        factor: f64,
        from: f64,
        seconds: f64,
    },
    /// Wind shakes the camera: the view swings ±`amplitude` units at `hz` for the whole clip.
    Shake {
        amplitude: f64,
        hz: f64,
    },
    /// At `at` (dusk) the camera drops its infrared filter: colour goes, the scene is lit by
    /// infrared (each shade answers differently) and the exposure overshoots, then settles.
    NightMode {
        at: f64,
    },
}

/// Someone walking across the view from left to right, starting at the left edge at
/// `enters` and leaving the right edge `crossing` seconds later.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Walker {
    pub enters: f64,
    pub crossing: f64,
}

/// One labelled clip.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub name: String,
    pub ground: Ground,
    pub change: ViewChange,
    /// Someone standing still in the scene (they move with the view, as the houses do).
    pub bystander: bool,
    pub walker: Option<Walker>,
    pub seconds: f64,
}

impl Clip {
    fn new(ground: Ground, change: ViewChange, seconds: f64) -> Clip {
        Clip {
            name: String::new(),
            ground,
            change,
            bystander: false,
            walker: None,
            seconds,
        }
    }

    fn named(mut self, name: String) -> Clip {
        self.name = name;
        self
    }

    /// Motion events a person would expect: one per walker, none for the view's own moves.
    pub fn expected_events(&self) -> usize {
        usize::from(self.walker.is_some())
    }

    /// When the walker's first pixel enters the picture.
    pub fn entry(&self) -> Option<f64> {
        self.walker.map(|w| w.enters)
    }

    /// When the view stops moving (the end of a pan or zoom).
    pub fn view_settles(&self) -> Option<f64> {
        match self.change {
            ViewChange::Pan { from, seconds, .. } | ViewChange::Zoom { from, seconds, .. } => {
                Some(from + seconds)
            }
            _ => None,
        }
    }

    /// The picture at `t` seconds, `width`×`height` (even sizes), in I420.
    pub fn render(&self, t: f64, width: usize, height: usize) -> Picture {
        let view = self.view_at(t);
        let night = match self.change {
            ViewChange::NightMode { at } if t >= at => Some(t - at),
            _ => None,
        };
        let unit = VIEW_WIDTH / width as f64;
        let view_height = height as f64 * unit;
        // Scene coordinates of a point of the picture (in view units from its top left).
        let place = |u: f64, v: f64| {
            (
                view.centre.0 + (u - VIEW_WIDTH / 2.0) / view.zoom,
                view.centre.1 + (v - view_height / 2.0) / view.zoom,
            )
        };
        let sample = |u: f64, v: f64, footprint: f64| {
            let (x, y) = place(u, v);
            let blur = footprint / view.zoom;
            let mut colour = self.ground_at(x, y, blur);
            if self.bystander {
                colour = person(colour, x - BYSTANDER.0, y - BYSTANDER.1, blur);
            }
            if let Some(w) = self.walker {
                let progress = (t - w.enters) / w.crossing;
                if (0.0..=1.0).contains(&progress) {
                    // In the view's own units: the walker crosses whatever the view shows.
                    let left = -PERSON_WIDTH + (VIEW_WIDTH + PERSON_WIDTH) * progress;
                    colour = person(colour, u - left, v - view_height * 0.8, footprint);
                }
            }
            colour
        };
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let mut picture = Picture {
            width,
            height,
            y: vec![0; width * height],
            u: vec![128; cw * ch],
            v: vec![128; cw * ch],
        };
        let mut noise = Noise::new(t.to_bits() ^ 0x5851_f42d_4c95_7f2d);
        let amplitude = match (self.ground, night) {
            (Ground::Dark, _) => 12,
            (_, Some(_)) => 6,
            _ => 3,
        };
        // Before a switch to night mode it is dusk: dimmer, and paler; the dark street has a
        // fifth of the light and little colour left.
        let dusk = match (self.ground, self.change) {
            (Ground::Dark, _) => 0.2,
            (_, ViewChange::NightMode { .. }) => DUSK,
            _ => 1.0,
        };
        // The filter takes a third of a second to swing. The camera's infrared lamp lights
        // what is near (the lower part of the picture); the far part stays about as dim as
        // at dusk. The exposure overshoots and settles over a second or two.
        let tone = |luma: f64, depth: f64| match night {
            Some(since) => {
                let swung = (since / 0.3).min(1.0);
                let near = ((depth - 0.55) / 0.3).clamp(0.0, 1.0);
                let lamp = 1.3 * (1.0 + 0.3 * (-since / 0.8).exp());
                let lit = luma * dusk + (infrared(luma) * lamp - luma * dusk) * near;
                luma * dusk + (lit - luma * dusk) * swung
            }
            None => luma * dusk,
        };
        for row in 0..height {
            let depth = row as f64 / height as f64;
            for col in 0..width {
                let (u, v) = ((col as f64 + 0.5) * unit, (row as f64 + 0.5) * unit);
                let (luma, _, _) = sample(u, v, unit);
                picture.y[row * width + col] = noise.add(tone(luma, depth), amplitude);
            }
        }
        if night.is_none() {
            let chroma = |c: f64| (128.0 + (c - 128.0) * dusk).round().clamp(0.0, 255.0) as u8;
            for row in 0..ch {
                for col in 0..cw {
                    let (u, v) = (
                        (col as f64 + 0.5) * 2.0 * unit,
                        (row as f64 + 0.5) * 2.0 * unit,
                    );
                    let (_, cu, cv) = sample(u, v, 2.0 * unit);
                    picture.u[row * cw + col] = chroma(cu);
                    picture.v[row * cw + col] = chroma(cv);
                }
            }
        }
        picture
    }

    /// Where the view looks at `t`: its centre in scene units and its zoom.
    fn view_at(&self, t: f64) -> View {
        let start = View {
            centre: (VIEW_WIDTH / 2.0, 90.0),
            zoom: 1.0,
        };
        match self.change {
            ViewChange::Still | ViewChange::NightMode { .. } => start,
            ViewChange::Pan {
                velocity: (vx, vy),
                from,
                seconds,
                smooth,
            } => {
                let ramp = if smooth {
                    1.0f64.min(seconds / 2.0)
                } else {
                    0.0
                };
                let d = travelled((t - from).clamp(0.0, seconds), seconds, ramp);
                View {
                    centre: (start.centre.0 + vx * d, start.centre.1 + vy * d),
                    ..start
                }
            }
            ViewChange::Zoom {
                factor,
                from,
                seconds,
            } => View {
                zoom: factor.powf((t - from).clamp(0.0, seconds) / seconds),
                ..start
            },
            ViewChange::Shake { amplitude, hz } => {
                let phase = TAU * hz * t;
                View {
                    centre: (
                        start.centre.0 + amplitude * (phase + 0.9).sin(),
                        start.centre.1 + 0.6 * amplitude * (phase + 2.0).sin(),
                    ),
                    ..start
                }
            }
        }
    }

    /// The ground's colour at scene point (x, y), blended over a footprint `blur` wide.
    fn ground_at(&self, x: f64, y: f64, blur: f64) -> Colour {
        match self.ground {
            Ground::Street | Ground::Dark => street(x, y, blur),
            Ground::Textured => {
                let n = |scale: f64, seed: u64| value_noise(x / scale, y / scale, seed);
                let luma = 115.0
                    + 70.0 * (n(26.0, 1) - 0.5)
                    + 50.0 * (n(9.0, 2) - 0.5)
                    + 30.0 * (n(4.0, 3) - 0.5);
                (luma, 112.0 + 10.0 * n(40.0, 4), 118.0 + 10.0 * n(40.0, 5))
            }
            Ground::Flat => {
                let light = 120.0 + 18.0 * (x / 700.0).sin() + 10.0 * (y / 500.0).cos();
                let door = rectangle(x - 230.0, y - 60.0, 40.0, 90.0, blur);
                (light - 10.0 * door, 126.0, 131.0)
            }
        }
    }
}

/// Luma, U and V, unrounded.
type Colour = (f64, f64, f64);

struct View {
    centre: (f64, f64),
    zoom: f64,
}

/// How dusk dims the picture before a night-mode switch.
const DUSK: f64 = 0.45;

/// The shade a surface shows under the camera's infrared light for its daylight luma: not a
/// gain (foliage and walls answer infrared strongly, the sky not at all) but every edge stays.
fn infrared(luma: f64) -> f64 {
    30.0 + 0.55 * luma + 40.0 * (luma / 18.0).sin()
}

/// Distance travelled by `t` into a move of `seconds` at unit speed that gathers and sheds
/// its speed over `ramp` seconds at each end (at once when `ramp` is 0).
fn travelled(t: f64, seconds: f64, ramp: f64) -> f64 {
    if ramp <= 0.0 {
        return t;
    }
    let full = seconds - ramp;
    if t < ramp {
        t * t / (2.0 * ramp)
    } else if t <= seconds - ramp {
        ramp / 2.0 + (t - ramp)
    } else {
        let left = seconds - t;
        full - left * left / (2.0 * ramp)
    }
}

/// How much of a box filter `blur` wide, centred `d` inside an edge, falls inside (0 to 1).
fn inside(d: f64, blur: f64) -> f64 {
    (d / blur.max(1e-6) + 0.5).clamp(0.0, 1.0)
}

/// Coverage of the rectangle [0, w)×[0, h) at (x, y), relative to its top left corner.
fn rectangle(x: f64, y: f64, w: f64, h: f64, blur: f64) -> f64 {
    inside(x, blur) * inside(w - x, blur) * inside(y, blur) * inside(h - y, blur)
}

fn blend(under: Colour, over: Colour, coverage: f64) -> Colour {
    let mix = |a: f64, b: f64| a + (b - a) * coverage;
    (
        mix(under.0, over.0),
        mix(under.1, over.1),
        mix(under.2, over.2),
    )
}

/// The street: houses every 80 units along a horizon at y = 100, tiles below it.
fn street(x: f64, y: f64, blur: f64) -> Colour {
    const SKY: Colour = (200.0, 150.0, 110.0);
    const WALL: Colour = (150.0, 120.0, 140.0);
    const WINDOW: Colour = (70.0, 150.0, 120.0);
    const DOOR: Colour = (60.0, 110.0, 150.0);
    const GROUND: Colour = (110.0, 110.0, 130.0);
    const TILE: Colour = (85.0, 120.0, 135.0);
    const HORIZON: f64 = 100.0;
    if y >= HORIZON + blur {
        // A checkerboard of 16-unit tiles, each edge blended like any other.
        let square = |a: f64| {
            let phase = (a / 16.0).rem_euclid(2.0);
            let edge = phase.min((phase - 1.0).abs()).min(2.0 - phase) * 16.0;
            if phase < 1.0 {
                inside(edge, blur)
            } else {
                1.0 - inside(edge, blur)
            }
        };
        let (sx, sy) = (square(x), square(y - HORIZON));
        let tile = sx * (1.0 - sy) + sy * (1.0 - sx);
        return blend(GROUND, TILE, tile);
    }
    let house = (x / 80.0).floor();
    let hx = x - house * 80.0;
    let top = 40.0 - (hash(house as i64, 0, 7) % 3) as f64 * 8.0;
    let mut c = blend(
        SKY,
        WALL,
        rectangle(hx - 10.0, y - top, 60.0, HORIZON - top, blur),
    );
    for wx in [18.0, 50.0] {
        c = blend(
            c,
            WINDOW,
            rectangle(hx - wx, y - top - 10.0, 12.0, 12.0, blur),
        );
    }
    c = blend(
        c,
        DOOR,
        rectangle(hx - 34.0, y - HORIZON + 26.0, 12.0, 26.0, blur),
    );
    if y > HORIZON - blur {
        c = blend(c, GROUND, inside(y - HORIZON, blur));
    }
    c
}

/// Width of a person, in units; they are 60 tall with the head.
const PERSON_WIDTH: f64 = 22.0;

/// Where the bystander stands in the scene (their feet's left corner).
const BYSTANDER: (f64, f64) = (205.0, 140.0);

/// A person whose feet's left corner is at (0, 0), over `under`, at (x, y) from there.
fn person(under: Colour, x: f64, y: f64, blur: f64) -> Colour {
    const CLOTHES: Colour = (35.0, 140.0, 120.0);
    const SKIN: Colour = (170.0, 110.0, 155.0);
    let body = rectangle(x, y + 48.0, PERSON_WIDTH, 48.0, blur);
    let head = rectangle(x - 6.0, y + 60.0, 10.0, 12.0, blur);
    blend(blend(under, CLOTHES, body), SKIN, head)
}

/// Value noise in [0, 1): a random value at each integer point, blended smoothly between.
fn value_noise(x: f64, y: f64, seed: u64) -> f64 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let smooth = |f: f64| f * f * (3.0 - 2.0 * f);
    let (sx, sy) = (smooth(fx), smooth(fy));
    let at =
        |dx: i64, dy: i64| (hash(x0 as i64 + dx, y0 as i64 + dy, seed) & 0xffff) as f64 / 65536.0;
    let top = at(0, 0) + (at(1, 0) - at(0, 0)) * sx;
    let bottom = at(0, 1) + (at(1, 1) - at(0, 1)) * sx;
    top + (bottom - top) * sy
}

fn hash(x: i64, y: i64, seed: u64) -> u64 {
    let mut h = (x as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (y as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
        ^ seed.wrapping_mul(0x1656_67b1_9e37_79f9);
    h ^= h >> 29;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 32)
}

/// Sensor noise: xorshift, repeatable for a given time.
struct Noise(u64);

impl Noise {
    fn new(seed: u64) -> Noise {
        Noise(seed | 1)
    }

    /// `luma` with up to ±`amplitude` levels of noise, as a byte.
    fn add(&mut self, luma: f64, amplitude: u8) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let span = 2 * u64::from(amplitude) + 1;
        let n = (self.0 % span) as f64 - f64::from(amplitude);
        (luma + n).round().clamp(0.0, 255.0) as u8
    }
}

/// The clips of views that move or change on their own: pans and tilts at 30, 120 and 400
/// units a second in each direction, starting at once and smoothly, over textured ground;
/// the slowest and fastest of them over the other grounds and with a bystander; a 2× zoom in
/// 2 s; wind shake of ±3 units at 5 Hz; a switch to night mode. No event is expected on any.
pub fn view_changes() -> Vec<Clip> {
    let directions = [
        ("across", (1.0, 0.0)),
        ("down", (0.0, 1.0)),
        ("diagonally", (0.71, 0.71)),
    ];
    let pan = |ground: Ground, speed: f64, (name, (dx, dy)): (&str, (f64, f64)), smooth: bool| {
        let start = if smooth { "smoothly" } else { "at once" };
        Clip::new(
            ground,
            ViewChange::Pan {
                velocity: (dx * speed, dy * speed),
                from: 1.0,
                seconds: 2.0,
                smooth,
            },
            4.2,
        )
        .named(format!("{ground:?} pan {name} at {speed} px/s, starting {start}").to_lowercase())
    };
    let mut clips = Vec::new();
    for speed in [30.0, 120.0, 400.0] {
        for direction in directions {
            for smooth in [false, true] {
                clips.push(pan(Ground::Textured, speed, direction, smooth));
            }
        }
    }
    for ground in [Ground::Street, Ground::Flat, Ground::Dark] {
        clips.push(pan(ground, 30.0, directions[0], true));
        clips.push(pan(ground, 400.0, directions[2], false));
        clips.push(pan(ground, 120.0, directions[1], true));
    }
    for (speed, direction, smooth) in [(30.0, 0, true), (400.0, 2, false)] {
        let mut clip = pan(Ground::Street, speed, directions[direction], smooth);
        clip.bystander = true;
        clip.name = format!("{} with a person standing", clip.name);
        clips.push(clip);
    }
    for ground in [Ground::Street, Ground::Textured] {
        let zoom = ViewChange::Zoom {
            factor: 2.0,
            from: 1.0,
            seconds: 2.0,
        };
        clips.push(
            Clip::new(ground, zoom, 4.2).named(format!("{ground:?} zoom 2x in 2 s").to_lowercase()),
        );
        let shake = ViewChange::Shake {
            amplitude: 3.0,
            hz: 5.0,
        };
        clips.push(
            Clip::new(ground, shake, 4.0)
                .named(format!("{ground:?} shaken ±3 px at 5 hz").to_lowercase()),
        );
    }
    for bystander in [false, true] {
        let mut clip = Clip::new(Ground::Street, ViewChange::NightMode { at: 1.5 }, 4.5)
            .named("street switching to night mode".into());
        if bystander {
            clip.bystander = true;
            clip.name.push_str(" with a person standing");
        }
        clips.push(clip);
    }
    clips
}

/// The clips with someone walking across, one event each: on the lit grounds with the view
/// still, and on the street right after the view stops moving.
pub fn people() -> Vec<Clip> {
    let walker = |enters: f64| Walker {
        enters,
        crossing: 3.0,
    };
    let mut clips = Vec::new();
    // Not on the dark street: at a fifth of the light a person is lost in the sensor's noise.
    for ground in [Ground::Street, Ground::Textured, Ground::Flat] {
        let mut clip = Clip::new(ground, ViewChange::Still, 4.5)
            .named(format!("{ground:?} with a person crossing").to_lowercase());
        clip.walker = Some(walker(1.0));
        clips.push(clip);
    }
    for (speed, smooth) in [(120.0, true), (400.0, false)] {
        let pan = ViewChange::Pan {
            velocity: (speed, 0.0),
            from: 1.0,
            seconds: 1.5,
            smooth,
        };
        let mut clip = Clip::new(Ground::Street, pan, 4.5).named(format!(
            "street pan at {speed} px/s, then a person walks in"
        ));
        clip.walker = Some(walker(2.6));
        clips.push(clip);
    }
    clips
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(a: &Picture, b: &Picture) -> usize {
        a.y.iter()
            .zip(&b.y)
            .filter(|(x, y)| x.abs_diff(**y) > 12)
            .count()
    }

    #[test]
    fn a_still_view_changes_only_by_its_noise() {
        for ground in [Ground::Street, Ground::Textured, Ground::Flat] {
            let clip = Clip::new(ground, ViewChange::Still, 2.0);
            assert_eq!(
                changed(&clip.render(0.0, 160, 90), &clip.render(1.0, 160, 90)),
                0
            );
        }
    }

    #[test]
    fn a_smooth_pan_starts_with_a_fraction_of_a_pixel() {
        let clip = &view_changes()
            .into_iter()
            .find(|c| c.name == "textured pan across at 30 px/s, starting smoothly")
            .unwrap();
        let before = clip.render(1.0, 320, 180);
        let first = clip.render(1.1, 320, 180);
        let later = clip.render(2.5, 320, 180);
        let mean_difference = |a: &Picture, b: &Picture| {
            a.y.iter()
                .zip(&b.y)
                .map(|(x, y)| f64::from(x.abs_diff(*y)))
                .sum::<f64>()
                / a.y.len() as f64
        };
        let (small, large) = (
            mean_difference(&before, &first),
            mean_difference(&before, &later),
        );
        assert!(small < 2.5 && large > 3.0 * small, "{small} then {large}");
    }

    #[test]
    fn night_mode_takes_the_colour_and_changes_the_brightness() {
        let clip = Clip::new(Ground::Street, ViewChange::NightMode { at: 1.0 }, 3.0);
        let (day, night) = (clip.render(0.5, 160, 90), clip.render(1.5, 160, 90));
        assert!(day.u.iter().any(|&u| u.abs_diff(128) > 5));
        assert!(night.u.iter().chain(&night.v).all(|&c| c == 128));
        // The lamp lights the near, lower part of the picture.
        let lower_mean = |p: &Picture| {
            let lower = &p.y[p.y.len() * 3 / 4..];
            lower.iter().map(|&l| f64::from(l)).sum::<f64>() / lower.len() as f64
        };
        assert!(lower_mean(&night) > lower_mean(&day) + 20.0);
    }

    #[test]
    fn the_walker_crosses_the_view_and_the_bystander_moves_with_it() {
        let people = people();
        let clip = &people[0];
        let empty = clip.render(1.0, 320, 180);
        let crossing = clip.render(3.0, 320, 180);
        let n = changed(&empty, &crossing);
        assert!(n > 500 && n < 320 * 180 / 10, "{n}");
        assert_eq!(clip.expected_events(), 1);
        assert!(view_changes().iter().all(|c| c.expected_events() == 0));
    }
}
