//! Privacy masks: polygons in picture-relative coordinates (0.0 to 1.0 across and down), so one
//! mask fits the detection picture and the full-size snapshot alike. Masked pixels are never
//! looked at by the detector and are blacked out in every snapshot.

use serde::Deserialize;

/// A polygon's corners, `[x, y]` each from 0.0 (left, top) to 1.0 (right, bottom).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Polygon(pub Vec<[f64; 2]>);

impl Polygon {
    /// At least three corners, all inside the picture.
    pub fn validate(&self) -> Result<(), String> {
        if self.0.len() < 3 {
            return Err("a mask polygon needs at least three corners".into());
        }
        if self
            .0
            .iter()
            .flatten()
            .any(|c| !c.is_finite() || !(0.0..=1.0).contains(c))
        {
            return Err("mask corners are fractions of the picture, from 0.0 to 1.0".into());
        }
        Ok(())
    }

    /// Whether the point (picture-relative) is inside (even-odd rule).
    fn contains(&self, x: f64, y: f64) -> bool {
        let mut inside = false;
        let n = self.0.len();
        for i in 0..n {
            let [xi, yi] = self.0[i];
            let [xj, yj] = self.0[(i + n - 1) % n];
            if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
                inside = !inside;
            }
        }
        inside
    }
}

/// Which pixels of a `width`×`height` picture any of `polygons` covers (a pixel counts when
/// its centre is inside), row by row.
pub fn rasterize(polygons: &[Polygon], width: usize, height: usize) -> Vec<bool> {
    let mut covered = vec![false; width * height];
    if polygons.is_empty() {
        return covered;
    }
    for y in 0..height {
        let fy = (y as f64 + 0.5) / height as f64;
        for x in 0..width {
            let fx = (x as f64 + 0.5) / width as f64;
            covered[y * width + x] = polygons.iter().any(|p| p.contains(fx, fy));
        }
    }
    covered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_polygon_covers_the_pixels_inside_it() {
        let square = Polygon(vec![[0.5, 0.0], [1.0, 0.0], [1.0, 0.5], [0.5, 0.5]]);
        let m = rasterize(&[square], 4, 4);
        let rows: Vec<Vec<bool>> = m.chunks(4).map(<[bool]>::to_vec).collect();
        assert_eq!(rows[0], [false, false, true, true]);
        assert_eq!(rows[1], [false, false, true, true]);
        assert_eq!(rows[2], [false; 4]);
    }

    #[test]
    fn bad_polygons_are_refused() {
        assert!(Polygon(vec![[0.0, 0.0], [1.0, 1.0]]).validate().is_err());
        assert!(
            Polygon(vec![[0.0, 0.0], [1.5, 0.0], [1.0, 1.0]])
                .validate()
                .is_err()
        );
        assert!(
            Polygon(vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
                .validate()
                .is_ok()
        );
    }
}
