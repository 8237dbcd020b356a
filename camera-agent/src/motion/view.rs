//! How the whole view moved between the background and a new picture (the camera panned,
//! tilted, zoomed or shook, and nobody said so), and whether that move explains what the
//! detector saw change. Plain code over two grey pictures, run only when the detector would
//! otherwise report motion or much of the picture changed.
//!
//! 1. **Pyramid**: both pictures are halved three times (2×2 averages): 320×180 becomes
//!    160×90, 80×45 and 40×22.
//! 2. **Coarse shift**: at the smallest size every shift up to 8 pixels each way (64 in the
//!    detection picture) is tried; the one with the least mean difference wins. That finds a
//!    pan of any speed the camera can make between two pictures.
//! 3. **Fine move**: at 80×45, Gauss–Newton steps (Lucas–Kanade, inverse compositional, as
//!    Baker and Matthews describe it) refine the shift to a fraction of a pixel and add a
//!    zoom about the centre.
//! 4. **Explains**: at 160×90, over the cells the detector found busy, a pixel still counts
//!    as changed under the move if it lies outside the darkest and brightest of the 3×3 old
//!    pixels it came from, by the detector's threshold (so a pixel of error in the move, or
//!    a move of a fraction of one, is forgiven). The move explains the change when less than
//!    half of the changed pixels remain and most of them came from inside the older picture
//!    (what came into view is new; a move that pushes the change out of the picture explains
//!    nothing), or when a pixel's shimmer in place leaves less than half. A person walking in
//!    is not a move of the view and leaves the whole of their body.

/// Halvings from the detection picture to the coarse search's.
const LEVELS: usize = 3;
/// The coarse search's reach, in pixels of its picture, each way.
const COARSE_REACH: isize = 8;
/// Gauss–Newton steps at most, and the step (in pixels) below which it has converged.
const FINE_STEPS: usize = 6;
const CONVERGED: f32 = 0.05;

/// A move of the view: the picture point `x` (relative to the centre, in pixels of the
/// detection picture) was at `(1 + scale) * x + shift` in the older picture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewMove {
    pub shift: (f32, f32),
    pub scale: f32,
}

/// What the check found, at half size in the busy cells: the move; the changed pixels; of
/// those, the ones the move brings from inside the older picture and the ones it leaves
/// changed; and the ones still changed if the view only shimmered by a pixel in place.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Explanation {
    pub best: ViewMove,
    pub changed: usize,
    pub brought: usize,
    pub left_moved: usize,
    pub left_still: usize,
}

impl Explanation {
    /// Whether less than half of the change is left, by the move (which must account for
    /// most of the changed pixels: what came into view is new, but a move that pushes the
    /// change out of the picture explains nothing) or by a pixel's shimmer in place.
    pub fn explains(&self) -> bool {
        let by_move = 2 * self.brought >= self.changed && 2 * self.left_moved < self.brought;
        let in_place = 2 * self.left_still < self.changed;
        self.changed > 0 && (by_move || in_place)
    }
}

/// A grey picture at one size.
#[derive(Default)]
struct Plane {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Plane {
    fn fill(&mut self, pixels: impl Iterator<Item = u8>, width: usize) {
        self.pixels.clear();
        self.pixels.extend(pixels);
        self.width = width;
        self.height = self.pixels.len() / width;
    }

    fn at(&self, x: usize, y: usize) -> u8 {
        self.pixels[y * self.width + x]
    }

    /// Half as wide and tall, each pixel the mean of four.
    fn halve_into(&self, out: &mut Plane) {
        let (w, h) = (self.width / 2, self.height / 2);
        out.width = w;
        out.height = h;
        out.pixels.clear();
        for y in 0..h {
            let (a, b) = (
                &self.pixels[2 * y * self.width..][..2 * w],
                &self.pixels[(2 * y + 1) * self.width..][..2 * w],
            );
            out.pixels
                .extend(a.chunks_exact(2).zip(b.chunks_exact(2)).map(|(a, b)| {
                    ((u16::from(a[0]) + u16::from(a[1]) + u16::from(b[0]) + u16::from(b[1]) + 2)
                        / 4) as u8
                }));
        }
    }

    /// Bilinear sample at (x, y), or `None` outside.
    fn sample(&self, x: f32, y: f32) -> Option<f32> {
        if !(x >= 0.0 && y >= 0.0) {
            return None;
        }
        let (x0, y0) = (x as usize, y as usize);
        if x0 + 1 >= self.width || y0 + 1 >= self.height {
            return None;
        }
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let p = |dx: usize, dy: usize| f32::from(self.at(x0 + dx, y0 + dy));
        let top = p(0, 0) + (p(1, 0) - p(0, 0)) * fx;
        let bottom = p(0, 1) + (p(1, 1) - p(0, 1)) * fx;
        Some(top + (bottom - top) * fy)
    }
}

/// The estimator's pictures, kept between calls so that a check allocates nothing.
#[derive(Default)]
pub struct ViewMotion {
    full_before: Plane,
    full_now: Plane,
    /// The older picture (the background) and the new one, at half size and smaller.
    before: [Plane; LEVELS],
    now: [Plane; LEVELS],
}

impl ViewMotion {
    /// Finds the view's move from `before` to `now` (full-size grey pictures `width` wide,
    /// with the exposure change already taken out of one) and how much of the change in the
    /// busy cells (`busy(cell_x, cell_y)`, cells `cell` pixels square) it explains, counting
    /// a pixel as changed beyond `threshold` levels.
    pub fn explain(
        &mut self,
        before: impl Iterator<Item = u8>,
        now: impl Iterator<Item = u8>,
        width: usize,
        cell: usize,
        busy: impl Fn(usize, usize) -> bool,
        threshold: u8,
    ) -> Explanation {
        self.full_before.fill(before, width);
        self.full_now.fill(now, width);
        pyramid(&self.full_before, &mut self.before);
        pyramid(&self.full_now, &mut self.now);
        let coarse = coarse_shift(&self.before[LEVELS - 1], &self.now[LEVELS - 1]);
        // The coarse shift, in the 80×45 picture's pixels, refined there.
        let fine_level = LEVELS - 2;
        let start = ViewMove {
            shift: (2.0 * coarse.0 as f32, 2.0 * coarse.1 as f32),
            scale: 0.0,
        };
        let fine = refine(&self.before[fine_level], &self.now[fine_level], start);
        let to_half = (1usize << fine_level) as f32;
        let best = ViewMove {
            shift: (fine.shift.0 * to_half, fine.shift.1 * to_half),
            scale: fine.scale,
        };
        let mut explanation = self.count_left(best, cell / 2, busy, threshold);
        explanation.best.shift.0 *= 2.0;
        explanation.best.shift.1 *= 2.0;
        explanation
    }

    /// Counts the change and what `best` (in half-size pixels) leaves of it, forgiving a
    /// pixel either way.
    fn count_left(
        &self,
        best: ViewMove,
        cell: usize,
        busy: impl Fn(usize, usize) -> bool,
        threshold: u8,
    ) -> Explanation {
        let (before, now) = (&self.before[0], &self.now[0]);
        let (w, h) = (before.width, before.height);
        let t = i16::from(threshold);
        // Beyond the darkest or brightest of the old 3×3 neighbourhood (clipped at the edges)
        // by the threshold; looked up only for changed pixels, which are few unless the view
        // moved.
        let outside = |x: usize, y: usize, value: i16| {
            let (mut darkest, mut brightest) = (u8::MAX, u8::MIN);
            for row in y.saturating_sub(1)..(y + 2).min(h) {
                for &p in &before.pixels[row * w + x.saturating_sub(1)..row * w + (x + 2).min(w)] {
                    darkest = darkest.min(p);
                    brightest = brightest.max(p);
                }
            }
            value < i16::from(darkest) - t || value > i16::from(brightest) + t
        };
        let (cx, cy) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
        let (mut changed, mut brought, mut left_moved, mut left_still) = (0, 0, 0, 0);
        for y in 0..h {
            for x in 0..w {
                if !busy(x / cell, y / cell) {
                    continue;
                }
                let value = i16::from(now.at(x, y));
                if (value - i16::from(before.at(x, y))).abs() <= t {
                    continue;
                }
                changed += 1;
                left_still += usize::from(outside(x, y, value));
                let from_x = cx + (1.0 + best.scale) * (x as f32 - cx) + best.shift.0;
                let from_y = cy + (1.0 + best.scale) * (y as f32 - cy) + best.shift.1;
                let (fx, fy) = (from_x.round(), from_y.round());
                // What came into view from outside the old picture is new, not motion.
                if fx >= 0.0 && fy >= 0.0 && (fx as usize) < w && (fy as usize) < h {
                    brought += 1;
                    left_moved += usize::from(outside(fx as usize, fy as usize, value));
                }
            }
        }
        Explanation {
            best,
            changed,
            brought,
            left_moved,
            left_still,
        }
    }
}

/// `full` halved into `levels[0]`, that halved into `levels[1]`, and so on.
fn pyramid(full: &Plane, levels: &mut [Plane; LEVELS]) {
    full.halve_into(&mut levels[0]);
    for level in 1..LEVELS {
        let (done, rest) = levels.split_at_mut(level);
        done[level - 1].halve_into(&mut rest[0]);
    }
}

/// The whole-pixel shift (dx, dy) with the least mean absolute difference between
/// `now(x, y)` and `before(x + dx, y + dy)` where they overlap (at least half the picture).
fn coarse_shift(before: &Plane, now: &Plane) -> (isize, isize) {
    let (w, h) = (now.width as isize, now.height as isize);
    let mut best = (f32::MAX, (0, 0));
    for dy in -COARSE_REACH.min(h / 2)..=COARSE_REACH.min(h / 2) {
        for dx in -COARSE_REACH.min(w / 2)..=COARSE_REACH.min(w / 2) {
            let (x0, x1) = ((-dx).max(0), (w - dx).min(w));
            let (y0, y1) = ((-dy).max(0), (h - dy).min(h));
            let span = (x1 - x0) as usize;
            let mut sum = 0u32;
            for y in y0..y1 {
                let n = &now.pixels[(y * w + x0) as usize..][..span];
                let b = &before.pixels[((y + dy) * w + x0 + dx) as usize..][..span];
                sum += n
                    .iter()
                    .zip(b)
                    .map(|(&n, &b)| u32::from(n.abs_diff(b)))
                    .sum::<u32>();
            }
            // Shifts that make the views agree only at their edges are not trusted, and a
            // shift must beat staying put clearly to be taken.
            let mean = sum as f32 / (span * (y1 - y0) as usize) as f32;
            let mean = if (dx, dy) == (0, 0) { mean * 0.9 } else { mean };
            if mean < best.0 {
                best = (mean, (dx, dy));
            }
        }
    }
    best.1
}

/// Gauss–Newton refinement of `start` (pixels of these pictures) on shift and zoom:
/// `before` at the moved point should match `now`. Inverse compositional: the steepest
/// descent images come from `now`, which does not move.
fn refine(before: &Plane, now: &Plane, start: ViewMove) -> ViewMove {
    let (w, h) = (now.width, now.height);
    let (cx, cy) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
    let mut m = start;
    for _ in 0..FINE_STEPS {
        // Normal equations of the step (shift x, shift y, scale), over pixels that fall
        // inside the older picture.
        let mut hessian = [[0f32; 3]; 3];
        let mut b = [0f32; 3];
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                let (px, py) = (x as f32 - cx, y as f32 - cy);
                let Some(old) = before.sample(
                    cx + (1.0 + m.scale) * px + m.shift.0,
                    cy + (1.0 + m.scale) * py + m.shift.1,
                ) else {
                    continue;
                };
                let gx = (f32::from(now.at(x + 1, y)) - f32::from(now.at(x - 1, y))) / 2.0;
                let gy = (f32::from(now.at(x, y + 1)) - f32::from(now.at(x, y - 1))) / 2.0;
                let sd = [gx, gy, gx * px + gy * py];
                let error = old - f32::from(now.at(x, y));
                for (i, row) in hessian.iter_mut().enumerate() {
                    for (j, cell) in row.iter_mut().enumerate() {
                        *cell += sd[i] * sd[j];
                    }
                    b[i] += sd[i] * error;
                }
            }
        }
        let Some([dx, dy, ds]) = solve3(hessian, b) else {
            break;
        };
        // W(p) ∘ W(Δ)⁻¹: the step is undone on the side of `now`.
        let k = (1.0 + m.scale) / (1.0 + ds);
        m = ViewMove {
            shift: (m.shift.0 - k * dx, m.shift.1 - k * dy),
            scale: k - 1.0,
        };
        let corner = ds.abs() * cx.max(cy);
        if dx.abs() < CONVERGED && dy.abs() < CONVERGED && corner < CONVERGED {
            break;
        }
        if !(m.scale.is_finite() && m.scale.abs() < 0.5) {
            return start;
        }
    }
    m
}

/// `a x = b` for a symmetric 3×3 `a` (Cramer's rule), or `None` when it is singular (a
/// picture with nothing to hold on to).
fn solve3(a: [[f32; 3]; 3], b: [f32; 3]) -> Option<[f32; 3]> {
    let det = |m: [[f32; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(a);
    let scale = a[0][0].abs() + a[1][1].abs() + a[2][2].abs();
    if d.abs() <= 1e-9 * scale * scale * scale || !d.is_finite() {
        return None;
    }
    let mut x = [0f32; 3];
    for (i, xi) in x.iter_mut().enumerate() {
        let mut m = a;
        for (row, bi) in m.iter_mut().zip(b) {
            row[i] = bi;
        }
        *xi = det(m) / d;
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: usize = 320;
    const H: usize = 180;

    /// A scene with texture at several scales and no repeats, as a function of position:
    /// random values on grids 20 and 6 pixels apart, blended between.
    fn scene(x: f32, y: f32) -> u8 {
        let noise = |x: f32, y: f32, seed: u32| {
            let at = |i: i32, j: i32| {
                let h = (i as u32).wrapping_mul(0x9e37_79b1)
                    ^ (j as u32).wrapping_mul(0x85eb_ca77)
                    ^ seed;
                let h = (h ^ (h >> 15)).wrapping_mul(0x2c1b_3c6d);
                (h >> 24) as f32 / 255.0
            };
            let (i, j) = (x.floor(), y.floor());
            let (fx, fy) = (x - i, y - j);
            let (i, j) = (i as i32, j as i32);
            let top = at(i, j) + (at(i + 1, j) - at(i, j)) * fx;
            let bottom = at(i, j + 1) + (at(i + 1, j + 1) - at(i, j + 1)) * fx;
            top + (bottom - top) * fy
        };
        let v = 40.0 + 120.0 * noise(x / 20.0, y / 20.0, 1) + 80.0 * noise(x / 6.0, y / 6.0, 2);
        v.clamp(0.0, 255.0) as u8
    }

    /// The scene seen with point x (from the centre) at `(1 + scale) x + shift` of the first.
    fn view(m: ViewMove) -> Vec<u8> {
        let (cx, cy) = ((W as f32 - 1.0) / 2.0, (H as f32 - 1.0) / 2.0);
        (0..W * H)
            .map(|i| {
                let (x, y) = ((i % W) as f32 - cx, (i / W) as f32 - cy);
                scene(
                    100.0 + cx + (1.0 + m.scale) * x + m.shift.0,
                    100.0 + cy + (1.0 + m.scale) * y + m.shift.1,
                )
            })
            .collect()
    }

    fn still() -> ViewMove {
        ViewMove {
            shift: (0.0, 0.0),
            scale: 0.0,
        }
    }

    fn explain(before: &[u8], now: &[u8]) -> Explanation {
        ViewMotion::default().explain(
            before.iter().copied(),
            now.iter().copied(),
            W,
            8,
            |_, _| true,
            8,
        )
    }

    #[test]
    fn a_shift_of_any_size_and_direction_is_found_and_explains_the_change() {
        for shift in [
            (0.6, 0.0),
            (0.0, -1.5),
            (7.0, 3.0),
            (-40.0, 0.0),
            (28.0, -28.0),
            (0.0, 45.0),
        ] {
            let m = ViewMove { shift, scale: 0.0 };
            let e = explain(&view(still()), &view(m));
            assert!(
                (e.best.shift.0 - shift.0).abs() < 0.5 && (e.best.shift.1 - shift.1).abs() < 0.5,
                "{shift:?}: {e:?}"
            );
            // A fraction of a pixel changes nothing beyond the threshold at half size.
            let fraction = shift.0.abs().max(shift.1.abs()) < 1.0;
            assert!(
                e.explains() || fraction && e.changed == 0,
                "{shift:?}: {e:?}"
            );
        }
    }

    #[test]
    fn a_zoom_is_found_and_explains_the_change() {
        for scale in [-0.035, -0.07, 0.05] {
            let m = ViewMove {
                shift: (0.0, 0.0),
                scale,
            };
            let e = explain(&view(still()), &view(m));
            assert!((e.best.scale - scale).abs() < 0.006, "{scale}: {e:?}");
            assert!(e.explains(), "{scale}: {e:?}");
        }
    }

    #[test]
    fn a_figure_walking_into_a_still_view_is_not_explained() {
        let before = view(still());
        let mut now = before.clone();
        for y in 90..150 {
            for x in 100..124 {
                now[y * W + x] = 20;
            }
        }
        let busy = |cx: usize, cy: usize| (12..16).contains(&cx) && (11..19).contains(&cy);
        let e = ViewMotion::default().explain(
            before.iter().copied(),
            now.iter().copied(),
            W,
            8,
            busy,
            20,
        );
        assert!(e.changed > 200 && !e.explains(), "{e:?}");
    }

    #[test]
    fn a_flat_picture_gives_no_move_and_nothing_to_explain() {
        let flat = vec![100u8; W * H];
        let e = explain(&flat, &flat);
        assert_eq!(e.changed, 0);
        assert!(!e.explains());
    }
}
