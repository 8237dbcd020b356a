//! Motion detection as plain code: grey pictures and their times in, decisions out. No I/O
//! and no clock of its own, so tests drive it with synthetic pictures and made-up times.
//!
//! Per picture (about 320 px wide, a few per second):
//! 1. **Change**: each pixel is compared with an adaptive background (a running average, in
//!    fixed point), after taking out the picture-wide brightness change (auto exposure),
//!    against a threshold above the measured sensor noise. Masked pixels are skipped.
//! 2. **Speckle**: changed pixels are counted per 8×8 cell; a cell with fewer than a quarter
//!    changed is noise or rain and is dropped.
//! 3. **Area and movement**: neighbouring busy cells form regions; the largest must cover
//!    `min_area` of the picture, and part of it must differ from the previous picture too.
//!    A change that holds still (an on-screen clock's box redrawn, a parked car) is not
//!    motion: it fades into the background within seconds.
//! 4. **Global change**: a change over most of the picture at once (lights) is not motion.
//!    The background is re-learned from the new pictures, and detection resumes a few
//!    pictures later, so motion during the change is still caught.
//! 5. **Hysteresis**: an event starts after `start_after` pictures in a row with motion, ends
//!    after `stop_after` without, and no new one starts within `cooldown` of the last.
//! 6. **Pan-tilt**: while the head moves nothing is detected; once it stops, the background is
//!    re-learned from the new view.
//! 7. **The view moved on its own** (a patrol nobody reported, a zoom, wind shaking the
//!    camera): whenever motion could start an event, or much of the picture changed, the
//!    view's move since the background is estimated ([`view`]: a pan or tilt of any speed,
//!    a fraction of a pixel included, and a zoom). When that move explains most of what
//!    changed, it is handled like a global change; so no event starts while the view moves,
//!    from its first picture to the last, and after it settles the new view is learned.
//! 8. **Night mode**: a camera dropping its infrared filter at dusk (the picture loses its
//!    colour; the scene, lit by infrared, changes brightness unevenly) or taking it back at
//!    dawn is handled like a global change, the moment the picture's colour comes or goes.

pub mod mask;
mod view;

use mask::Polygon;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// How readily motion is reported, in plain words; the numbers behind each are in
/// [`DetectorConfig::tuning`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sensitivity {
    /// Large, clear movement only (a busy street in view).
    Low,
    /// A person crossing the picture.
    #[default]
    Normal,
    /// Smaller or more distant movement (a quiet back yard).
    High,
}

/// The detector's settings: the detection picture, a sensitivity, optional numeric overrides,
/// and masks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// Whether `run` watches for motion at all.
    pub enabled: bool,
    /// Width of the grey picture the detector looks at, in pixels (the height keeps the
    /// camera's shape).
    pub picture_width: u32,
    /// Pictures looked at per second, at most (every frame of a slower camera).
    pub max_fps: u32,
    /// The starting point for every number below.
    pub sensitivity: Sensitivity,
    /// Luma levels (0–255) above the measured sensor noise for a pixel to count as changed.
    pub pixel_threshold: Option<u8>,
    /// The share of the picture (0–1) the largest moving region must cover.
    pub min_area: Option<f64>,
    /// Pictures in a row with motion before an event starts.
    pub start_after: Option<u32>,
    /// Time without motion before an event ends (e.g. `"1500ms"`).
    #[serde(default, with = "humantime_serde::option")]
    pub stop_after: Option<Duration>,
    /// Time after an event ends during which no new event starts (e.g. `"5s"`).
    #[serde(default, with = "humantime_serde::option")]
    pub cooldown: Option<Duration>,
    /// The share of the picture (0–1) that, changing at once, is a lighting change, not motion.
    pub global_change: Option<f64>,
    /// Areas never looked at (and blacked out in snapshots).
    pub masks: Vec<Polygon>,
    /// A pan-tilt camera's masks while it shows one of its presets (by name; `home` too),
    /// in place of `masks`; between presets, `masks` apply.
    pub preset_masks: BTreeMap<String, Vec<Polygon>>,
}

impl DetectorConfig {
    /// The masks for the view at `preset` (none: between presets).
    pub fn masks_at(&self, preset: Option<&str>) -> &[Polygon] {
        preset
            .and_then(|p| self.preset_masks.get(p))
            .unwrap_or(&self.masks)
    }
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            enabled: true,
            picture_width: 320,
            max_fps: 10,
            sensitivity: Sensitivity::default(),
            pixel_threshold: None,
            min_area: None,
            start_after: None,
            stop_after: None,
            cooldown: None,
            global_change: None,
            masks: Vec::new(),
            preset_masks: BTreeMap::new(),
        }
    }
}

/// The numbers the detector runs with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    pub pixel_threshold: u8,
    pub min_area: f64,
    pub start_after: u32,
    pub stop_after: Duration,
    pub cooldown: Duration,
    pub global_change: f64,
}

impl DetectorConfig {
    /// The sensitivity's numbers with the overrides applied; an error names a bad value.
    pub fn tuning(&self) -> Result<Tuning, String> {
        let (pixel_threshold, min_area, start_after) = match self.sensitivity {
            Sensitivity::Low => (30, 0.02, 3),
            Sensitivity::Normal => (20, 0.005, 2),
            Sensitivity::High => (12, 0.003, 2),
        };
        let t = Tuning {
            pixel_threshold: self.pixel_threshold.unwrap_or(pixel_threshold),
            min_area: self.min_area.unwrap_or(min_area),
            start_after: self.start_after.unwrap_or(start_after),
            stop_after: self.stop_after.unwrap_or(Duration::from_millis(1500)),
            cooldown: self.cooldown.unwrap_or(Duration::from_secs(5)),
            global_change: self.global_change.unwrap_or(0.45),
        };
        if t.pixel_threshold == 0 {
            return Err("pixel_threshold must be at least 1".into());
        }
        if !(t.min_area > 0.0 && t.min_area < 1.0) {
            return Err("min_area is a share of the picture, above 0 and below 1".into());
        }
        if !(t.global_change > t.min_area && t.global_change <= 1.0) {
            return Err("global_change must be above min_area and at most 1".into());
        }
        if t.start_after == 0 || t.start_after > 100 {
            return Err("start_after must be 1 to 100 pictures".into());
        }
        if t.stop_after.is_zero() {
            return Err("stop_after must be longer than zero".into());
        }
        for m in self
            .masks
            .iter()
            .chain(self.preset_masks.values().flatten())
        {
            m.validate()?;
        }
        Ok(t)
    }
}

/// A rectangle in the detection picture's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BBox {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
}

impl BBox {
    /// The same rectangle in a picture `sx` times as wide and `sy` times as tall.
    pub fn scaled(&self, sx: f64, sy: f64) -> [u32; 4] {
        [
            (self.x as f64 * sx).round() as u32,
            (self.y as f64 * sy).round() as u32,
            (self.w as f64 * sx).round() as u32,
            (self.h as f64 * sy).round() as u32,
        ]
    }
}

/// What the detector saw in one picture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Motion {
    /// The share of the picture the largest moving region covers.
    pub score: f64,
    pub bbox: BBox,
}

/// A finished motion event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MotionEvent {
    /// The first picture with motion.
    pub start: Duration,
    /// The last picture with motion.
    pub end: Duration,
    pub peak_score: f64,
    /// Where the motion was at its peak.
    pub bbox: BBox,
}

/// What the caller must act on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// An event began: the picture just given (at `at`) is the one to snapshot; the motion
    /// was first seen at `since`.
    Started {
        at: Duration,
        since: Duration,
        motion: Motion,
    },
    /// The event ended.
    Ended(MotionEvent),
}

#[derive(Debug)]
enum State {
    Idle {
        /// Pictures in a row with motion so far, and when the first of them was.
        run: u32,
        run_start: Duration,
        cooldown_until: Option<Duration>,
    },
    Active {
        start: Duration,
        last_motion: Duration,
        peak: Motion,
        /// The motion of the picture before, if it had any.
        previous: Option<Motion>,
    },
}

/// Side of the square cells changed pixels are counted in.
const CELL: usize = 8;
/// Fixed-point fraction bits of the background.
const FIX: u32 = 4;
/// Pictures without detection after the background was re-learned (lights, a pan-tilt
/// stop), while the scene settles (auto exposure, a lamp warming up).
pub const SETTLE_PICTURES: u32 = 3;
/// Background learning rates, as shifts: the scene (and any change that holds still) is
/// followed within a couple of seconds at 10 pictures a second; moving pixels far slower, so
/// a moving person is not absorbed.
const LEARN_STILL: u32 = 4;
const LEARN_CHANGED: u32 = 6;
/// A region is moving when at least one in this many of its changed pixels also changed
/// since the previous picture (a slow walker's edges are enough).
const MOVING_SHARE: usize = 16;

/// The share of the picture that, changing at once, makes the detector ask whether the whole
/// view moved even while it could not start an event: a walker changes far less.
const VIEW_MOVE_GATE: f64 = 0.08;

/// The picture's colour, as the mean distance of its chroma from grey (|U−128| + |V−128|,
/// in levels): below `GREY` it is in night mode, above `COLOURFUL` in day mode, and in
/// between it keeps its mode (dusk is pale before the switch).
const GREY: u8 = 2;
const COLOURFUL: u8 = 5;

/// How colourful an I420 picture is (see [`GREY`]), from its U and V planes.
pub fn colourfulness(u: &[u8], v: &[u8]) -> u8 {
    if u.is_empty() {
        return 0;
    }
    let sum: u64 = u
        .iter()
        .zip(v)
        .map(|(&u, &v)| u64::from(u.abs_diff(128)) + u64::from(v.abs_diff(128)))
        .sum();
    (sum / u.len() as u64).min(255) as u8
}

/// Per-column totals over a band of rows (see `Detector::compare`).
struct Columns {
    /// Changed pixels, and of them those that also changed since the previous picture.
    changed: Vec<u16>,
    moving: Vec<u16>,
    /// Differences from the background of the unchanged pixels (<< FIX, at most 4095 each).
    still: Vec<u16>,
    /// The background (<< FIX) of the open pixels.
    background: Vec<u16>,
}

impl Columns {
    fn new(width: usize) -> Columns {
        Columns {
            changed: vec![0; width],
            moving: vec![0; width],
            still: vec![0; width],
            background: vec![0; width],
        }
    }

    fn clear(&mut self) {
        for v in [
            &mut self.changed,
            &mut self.moving,
            &mut self.still,
            &mut self.background,
        ] {
            v.fill(0);
        }
    }
}

/// The motion detector of one camera's detection picture (`width`×`height`, grey).
pub struct Detector {
    tuning: Tuning,
    width: usize,
    height: usize,
    /// Per pixel: all ones where the detector looks, 0 under a mask (to AND with, so the
    /// per-pixel loop has no branches).
    open: Vec<i16>,
    /// The same as bytes (0xff or 0), for summing the picture.
    open_bytes: Vec<u8>,
    unmasked: usize,
    /// Sum of the background over the open pixels (<< FIX), kept as it is updated.
    background_sum: i64,
    /// Luma << FIX.
    background: Vec<i16>,
    /// The next picture becomes the background (at start, after a pan-tilt move).
    relearn: bool,
    settle: u32,
    /// Mean difference of unchanged pixels from the background (<< FIX): the sensor noise.
    noise: i32,
    head_moving: bool,
    cells_across: usize,
    /// Changed pixels per cell, and how many make a cell busy (`u16::MAX`: fully masked).
    cells: Vec<u16>,
    /// Of the changed pixels per cell, those that also differ from the previous picture.
    cells_moving: Vec<u16>,
    /// Per column, over a band of rows as tall as a cell: what `compare` counts and sums.
    columns: Columns,
    /// Cells already in a region, and those still to visit (kept between pictures).
    seen: Vec<bool>,
    stack: Vec<usize>,
    /// Open (unmasked) pixels per row.
    open_per_row: Vec<i32>,
    previous: Vec<u8>,
    cell_needs: Vec<u16>,
    /// The exposure change taken out of the last picture compared (<< FIX).
    offset: i16,
    /// Whether the camera is in night mode (grey pictures), once a picture said.
    night: Option<bool>,
    view: view::ViewMotion,
    state: State,
}

impl Detector {
    pub fn new(config: &DetectorConfig, width: usize, height: usize) -> Result<Detector, String> {
        let tuning = config.tuning()?;
        if width < CELL || height < CELL {
            return Err(format!(
                "the detection picture must be at least {CELL}×{CELL}"
            ));
        }
        let cells_across = width.div_ceil(CELL);
        let cells_down = height.div_ceil(CELL);
        let mut detector = Detector {
            tuning,
            width,
            height,
            open: Vec::new(),
            open_bytes: Vec::new(),
            unmasked: 0,
            background_sum: 0,
            background: vec![0; width * height],
            relearn: true,
            settle: 0,
            noise: 0,
            head_moving: false,
            cells_across,
            cells: vec![0; cells_across * cells_down],
            cells_moving: vec![0; cells_across * cells_down],
            columns: Columns::new(width),
            seen: Vec::new(),
            stack: Vec::new(),
            open_per_row: Vec::new(),
            previous: vec![0; width * height],
            cell_needs: Vec::new(),
            offset: 0,
            night: None,
            view: view::ViewMotion::default(),
            state: State::Idle {
                run: 0,
                run_start: Duration::ZERO,
                cooldown_until: None,
            },
        };
        detector.set_masks(&config.masks)?;
        Ok(detector)
    }

    /// Looks only outside `masks` from now on (a pan-tilt camera at a preset uses that
    /// preset's masks) and learns the background afresh.
    pub fn set_masks(&mut self, masks: &[Polygon]) -> Result<(), String> {
        let (width, height) = (self.width, self.height);
        let masked = mask::rasterize(masks, width, height);
        let unmasked = masked.iter().filter(|m| !**m).count();
        if unmasked == 0 {
            return Err("the masks cover the whole picture".into());
        }
        let cells_across = self.cells_across;
        let mut open = vec![0u16; cells_across * height.div_ceil(CELL)];
        for (i, m) in masked.iter().enumerate() {
            if !m {
                open[(i / width) / CELL * cells_across + (i % width) / CELL] += 1;
            }
        }
        self.cell_needs = open
            .iter()
            .map(|&n| if n == 0 { u16::MAX } else { n.div_ceil(4) })
            .collect();
        self.open = masked.iter().map(|&m| if m { 0 } else { -1 }).collect();
        self.open_bytes = masked.iter().map(|&m| if m { 0 } else { 0xff }).collect();
        self.unmasked = unmasked;
        self.open_per_row = masked
            .chunks(width)
            .map(|row| row.iter().filter(|m| !**m).count() as i32)
            .collect();
        self.relearn = true;
        Ok(())
    }

    pub fn tuning(&self) -> &Tuning {
        &self.tuning
    }

    /// Tells the detector whether the pan-tilt head is moving: nothing is detected while it
    /// moves, and the view after the move becomes the new background.
    pub fn set_head_moving(&mut self, moving: bool) {
        if moving {
            self.relearn = true;
        }
        self.head_moving = moving;
    }

    /// Takes the picture seen at `at` (`width`×`height` luma, row by row) and how colourful
    /// it was ([`colourfulness`]).
    pub fn process(&mut self, luma: &[u8], colour: u8, at: Duration) -> Option<Decision> {
        assert_eq!(luma.len(), self.width * self.height, "picture size");
        let switched = self.night_mode_switched(colour);
        if self.head_moving {
            return self.observe(None, at);
        }
        if self.relearn || switched {
            self.relearn = false;
            return self.start_over(luma, at);
        }
        if self.settle > 0 {
            self.settle -= 1;
            self.learn(luma);
            return self.observe(None, at);
        }
        let changed = self.compare(luma);
        self.previous.copy_from_slice(luma);
        if changed as f64 > self.tuning.global_change * self.unmasked as f64 {
            // Lights: learn the new scene, then look again.
            return self.start_over(luma, at);
        }
        let motion = self
            .largest_region()
            .filter(|m| m.score >= self.tuning.min_area);
        let worth_checking = changed as f64 > VIEW_MOVE_GATE * self.unmasked as f64
            || (motion.is_some() && self.could_start(at));
        if worth_checking && self.view_moved(luma) {
            return self.start_over(luma, at);
        }
        self.observe(motion, at)
    }

    /// Learns the picture as the background and looks again once the scene has settled.
    fn start_over(&mut self, luma: &[u8], at: Duration) -> Option<Decision> {
        self.learn(luma);
        self.settle = SETTLE_PICTURES;
        self.observe(None, at)
    }

    /// Whether a picture `colour` this colourful means the camera entered or left night
    /// mode since the last.
    fn night_mode_switched(&mut self, colour: u8) -> bool {
        let night = match colour {
            c if c < GREY => true,
            c if c > COLOURFUL => false,
            _ => return false,
        };
        self.night.replace(night).is_some_and(|was| was != night)
    }

    /// Whether motion now could start an event (not one already on, nor in the cooldown).
    fn could_start(&self, at: Duration) -> bool {
        matches!(self.state, State::Idle { cooldown_until, .. }
            if cooldown_until.is_none_or(|until| at >= until))
    }

    /// Whether what changed since the background is the whole view moving (rule 7).
    fn view_moved(&mut self, luma: &[u8]) -> bool {
        let threshold =
            (i32::from(self.tuning.pixel_threshold) + 2 * (self.noise >> FIX)).min(255) as u8;
        let exposure = self.offset >> FIX;
        let (cells, needs, across) = (&self.cells, &self.cell_needs, self.cells_across);
        self.view
            .explain(
                self.background
                    .iter()
                    .map(|&b| (b >> FIX).clamp(0, 255) as u8),
                luma.iter()
                    .map(|&l| (i16::from(l) - exposure).clamp(0, 255) as u8),
                self.width,
                CELL,
                |x, y| cells[y * across + x] >= needs[y * across + x],
                threshold,
            )
            .explains()
    }

    /// The input ended at `at`: ends an open event.
    pub fn finish(&mut self) -> Option<Decision> {
        match self.state {
            State::Active {
                start,
                last_motion,
                peak,
                ..
            } => {
                self.state = State::Idle {
                    run: 0,
                    run_start: Duration::ZERO,
                    cooldown_until: None,
                };
                Some(Decision::Ended(MotionEvent {
                    start,
                    end: last_motion,
                    peak_score: peak.score,
                    bbox: peak.bbox,
                }))
            }
            State::Idle { .. } => None,
        }
    }

    fn learn(&mut self, luma: &[u8]) {
        let mut sum = 0i64;
        for ((b, &l), &open) in self.background.iter_mut().zip(luma).zip(&self.open) {
            *b = i16::from(l) << FIX;
            sum += i64::from(*b & open);
        }
        self.background_sum = sum;
        self.previous.copy_from_slice(luma);
    }

    /// Marks changed pixels (counted per cell) and updates the background and the noise
    /// estimate; returns how many pixels changed. A row at a time: first a branch-free pass
    /// in 16-bit lanes that only stores (the compiler turns it into vector instructions,
    /// eight pixels each with SSE2), then the sums and the per-cell counts.
    fn compare(&mut self, luma: &[u8]) -> usize {
        let w = self.width;
        // Auto exposure moves every pixel alike: measure and take out that shift.
        // 16-bit partial sums (128 × 255 fits), which vectorize best.
        let sum_picture: i64 = if self.unmasked == luma.len() {
            luma.chunks(128)
                .map(|l| i64::from(l.iter().map(|&l| u16::from(l)).sum::<u16>()))
                .sum()
        } else {
            luma.chunks(128)
                .zip(self.open_bytes.chunks(128))
                .map(|(l, o)| {
                    let part: u16 = l.iter().zip(o).map(|(&l, &o)| u16::from(l & o)).sum();
                    i64::from(part)
                })
                .sum()
        };
        // In 16 bits (twice the pixels per vector instruction): luma << FIX is at most 4080,
        // so a difference with the offset clamped to that fits.
        const MAX: i64 = 255 << FIX;
        let offset = (((sum_picture << FIX) - self.background_sum) / self.unmasked as i64)
            .clamp(-MAX, MAX) as i16;
        self.offset = offset;
        let threshold = ((i32::from(self.tuning.pixel_threshold) << FIX) + 2 * self.noise)
            .min(i32::from(i16::MAX)) as i16;
        let frame_threshold =
            (i32::from(self.tuning.pixel_threshold) + 2 * (self.noise >> FIX)).min(255) as i16;
        let (mut changed, mut still_sum, mut still, mut background_sum) =
            (0usize, 0i64, 0i64, 0i64);
        for band in 0..self.height.div_ceil(CELL) {
            let rows = band * CELL..((band + 1) * CELL).min(self.height);
            let columns = &mut self.columns;
            for y in rows.clone() {
                let row = y * w..(y + 1) * w;
                // Flags are all ones (-1) or 0. Only 16-bit lanes and no sums in this loop,
                // so that it runs eight pixels per vector instruction: what is counted or
                // summed is added to per-column totals, which a band of rows at a time adds
                // up (CELL × 4095 fits in 16 bits).
                for (((((((&l, &previous), &open), b), c), m), still), sum) in luma[row.clone()]
                    .iter()
                    .zip(&self.previous[row.clone()])
                    .zip(&self.open[row.clone()])
                    .zip(self.background[row].iter_mut())
                    .zip(columns.changed.iter_mut())
                    .zip(columns.moving.iter_mut())
                    .zip(columns.still.iter_mut())
                    .zip(columns.background.iter_mut())
                {
                    let l = i16::from(l);
                    let picture = l << FIX;
                    let d = (picture - *b - offset).abs();
                    let is_changed = -i16::from(d > threshold) & open;
                    let is_moving =
                        -i16::from((l - i16::from(previous)).abs() > frame_threshold) & is_changed;
                    // What moves is learned slowly (a walker is not absorbed); a change that
                    // holds still as fast as the rest of the scene (no ghosts).
                    let (fast, slow) = (
                        (picture - *b) >> LEARN_STILL,
                        (picture - *b) >> LEARN_CHANGED,
                    );
                    *b += fast ^ ((fast ^ slow) & is_moving);
                    *c += (is_changed & 1) as u16;
                    *m += (is_moving & 1) as u16;
                    *still += (d.min(4095) & !is_changed & open) as u16;
                    *sum += (*b & open) as u16;
                }
            }
            let cells = band * self.cells_across..(band + 1) * self.cells_across;
            for ((n, n_moving), (c, m)) in self.cells[cells.clone()]
                .iter_mut()
                .zip(&mut self.cells_moving[cells])
                .zip(
                    columns
                        .changed
                        .chunks(CELL)
                        .zip(columns.moving.chunks(CELL)),
                )
            {
                *n = c.iter().sum();
                *n_moving = m.iter().sum();
                changed += usize::from(*n);
            }
            let band_changed: i64 = columns.changed.iter().map(|&c| i64::from(c)).sum();
            let band_open: i64 = rows.map(|y| i64::from(self.open_per_row[y])).sum();
            still += band_open - band_changed;
            still_sum += columns.still.iter().map(|&v| i64::from(v)).sum::<i64>();
            background_sum += columns
                .background
                .iter()
                .map(|&v| i64::from(v))
                .sum::<i64>();
            columns.clear();
        }
        self.background_sum = background_sum;
        if still > 0 {
            let mean = (still_sum / still) as i32;
            self.noise += (mean - self.noise) / 8;
        }
        changed
    }

    /// The largest moving region of busy cells (8-connected), as a share of the picture.
    fn largest_region(&mut self) -> Option<Motion> {
        let busy = |c: usize| self.cells[c] >= self.cell_needs[c];
        let across = self.cells_across;
        let down = self.cells.len() / across;
        let (seen, stack) = (&mut self.seen, &mut self.stack);
        seen.clear();
        seen.resize(self.cells.len(), false);
        let mut best: Option<(usize, [usize; 4])> = None;
        for start in 0..self.cells.len() {
            if !busy(start) || seen[start] {
                continue;
            }
            seen[start] = true;
            stack.push(start);
            let (mut pixels, mut moving) = (0usize, 0usize);
            let mut bounds = [usize::MAX, usize::MAX, 0, 0];
            while let Some(c) = stack.pop() {
                let (cx, cy) = (c % across, c / across);
                pixels += usize::from(self.cells[c]);
                moving += usize::from(self.cells_moving[c]);
                bounds = [
                    bounds[0].min(cx),
                    bounds[1].min(cy),
                    bounds[2].max(cx),
                    bounds[3].max(cy),
                ];
                for ny in cy.saturating_sub(1)..=(cy + 1).min(down - 1) {
                    for nx in cx.saturating_sub(1)..=(cx + 1).min(across - 1) {
                        let n = ny * across + nx;
                        if busy(n) && !seen[n] {
                            seen[n] = true;
                            stack.push(n);
                        }
                    }
                }
            }
            // A region that holds still is a change that stays, not motion.
            if moving * MOVING_SHARE >= pixels && best.is_none_or(|(p, _)| pixels > p) {
                best = Some((pixels, bounds));
            }
        }
        best.map(|(pixels, [x0, y0, x1, y1])| {
            let x = x0 * CELL;
            let y = y0 * CELL;
            Motion {
                score: pixels as f64 / self.unmasked as f64,
                bbox: BBox {
                    x,
                    y,
                    w: ((x1 + 1) * CELL).min(self.width) - x,
                    h: ((y1 + 1) * CELL).min(self.height) - y,
                },
            }
        })
    }

    /// Hysteresis and cooldown over the per-picture verdicts.
    fn observe(&mut self, motion: Option<Motion>, at: Duration) -> Option<Decision> {
        let t = self.tuning;
        match &mut self.state {
            State::Idle {
                run,
                run_start,
                cooldown_until,
            } => {
                let Some(motion) = motion else {
                    *run = 0;
                    return None;
                };
                if cooldown_until.is_some_and(|until| at < until) {
                    return None;
                }
                if *run == 0 {
                    *run_start = at;
                }
                *run += 1;
                if *run < t.start_after {
                    return None;
                }
                let since = *run_start;
                self.state = State::Active {
                    start: since,
                    last_motion: at,
                    peak: motion,
                    previous: Some(motion),
                };
                Some(Decision::Started { at, since, motion })
            }
            State::Active {
                start,
                last_motion,
                peak,
                previous,
            } => {
                if let Some(motion) = motion {
                    *last_motion = at;
                    // The peak is what lasted two pictures: one picture's spike (a keyframe's
                    // new compression noise joining the region) is not the motion's size.
                    let lasting = match previous {
                        Some(p) if p.score < motion.score => *p,
                        _ => motion,
                    };
                    if previous.is_some() && lasting.score > peak.score {
                        *peak = lasting;
                    }
                    *previous = Some(motion);
                    return None;
                }
                *previous = None;
                if at.saturating_sub(*last_motion) < t.stop_after {
                    return None;
                }
                let event = MotionEvent {
                    start: *start,
                    end: *last_motion,
                    peak_score: peak.score,
                    bbox: peak.bbox,
                };
                self.state = State::Idle {
                    run: 0,
                    run_start: Duration::ZERO,
                    cooldown_until: Some(event.end + t.cooldown),
                };
                Some(Decision::Ended(event))
            }
        }
    }
}

#[cfg(test)]
mod tests;
