//! Snapshots: the full-size frame at the moment of motion as a JPEG, masks blacked out, and
//! a box around the motion if wanted. The `image` crate writes plain JFIF: no EXIF, so no
//! camera model, serial number or location leaves the home in the file.

use crate::capture::FullPicture;
use crate::motion::mask::{self, Polygon};
use image::codecs::jpeg::JpegEncoder;

/// JPEG quality: a 720p street picture comes out around 100–200 KB.
const QUALITY: u8 = 80;
/// The motion box: bright yellow, this many pixels wide per 720 lines.
const BOX_RGB: [u8; 3] = [255, 214, 0];
const BOX_WIDTH_PER_720: usize = 3;

/// Makes the snapshot JPEG of `picture`: masked areas black, and `bbox` (`[x, y, w, h]` in
/// the picture's pixels) outlined when given.
pub fn jpeg(picture: &FullPicture, masks: &[Polygon], bbox: Option<[u32; 4]>) -> Vec<u8> {
    let (w, h) = (picture.width, picture.height);
    let mut rgb = i420_to_rgb(picture);
    if !masks.is_empty() {
        for (i, covered) in mask::rasterize(masks, w, h).into_iter().enumerate() {
            if covered {
                rgb[i * 3..i * 3 + 3].fill(0);
            }
        }
    }
    if let Some([x, y, bw, bh]) = bbox {
        outline(
            &mut rgb,
            w,
            h,
            [x as usize, y as usize, bw as usize, bh as usize],
        );
    }
    let mut out = Vec::with_capacity(w * h / 4);
    JpegEncoder::new_with_quality(&mut out, QUALITY)
        .encode(&rgb, w as u32, h as u32, image::ExtendedColorType::Rgb8)
        .expect("encoding RGB into a Vec cannot fail");
    out
}

/// BT.601 limited range, as H.264 cameras send.
fn i420_to_rgb(p: &FullPicture) -> Vec<u8> {
    let (w, h) = (p.width, p.height);
    let cw = w.div_ceil(2);
    let (y_plane, chroma) = p.i420.split_at(w * h);
    let (u_plane, v_plane) = chroma.split_at(cw * h.div_ceil(2));
    let mut rgb = vec![0u8; w * h * 3];
    for row in 0..h {
        for col in 0..w {
            let c = (row / 2) * cw + col / 2;
            let y = (i32::from(y_plane[row * w + col]) - 16) * 298;
            let (u, v) = (i32::from(u_plane[c]) - 128, i32::from(v_plane[c]) - 128);
            let px = &mut rgb[(row * w + col) * 3..][..3];
            px[0] = ((y + 409 * v + 128) >> 8).clamp(0, 255) as u8;
            px[1] = ((y - 100 * u - 208 * v + 128) >> 8).clamp(0, 255) as u8;
            px[2] = ((y + 516 * u + 128) >> 8).clamp(0, 255) as u8;
        }
    }
    rgb
}

/// Draws the outline of `[x, y, w, h]` (clipped to the picture).
fn outline(rgb: &mut [u8], width: usize, height: usize, [x, y, w, h]: [usize; 4]) {
    let line = (height * BOX_WIDTH_PER_720 / 720).max(1);
    let (x1, y1) = ((x + w).min(width), (y + h).min(height));
    let mut paint = |px: usize, py: usize| {
        rgb[(py * width + px) * 3..][..3].copy_from_slice(&BOX_RGB);
    };
    for py in y.min(height)..y1 {
        for px in x.min(width)..x1 {
            let edge = py < y + line || py + line >= y1 || px < x + line || px + line >= x1;
            if edge {
                paint(px, py);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey(width: usize, height: usize, luma: u8) -> FullPicture {
        let chroma = width.div_ceil(2) * height.div_ceil(2);
        let mut i420 = vec![luma; width * height];
        i420.extend(std::iter::repeat_n(128, 2 * chroma));
        FullPicture {
            width,
            height,
            i420,
        }
    }

    fn decode(jpeg: &[u8]) -> image::RgbImage {
        image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg)
            .unwrap()
            .to_rgb8()
    }

    #[test]
    fn a_snapshot_is_a_plain_jpeg_of_the_picture() {
        let jpeg = jpeg(&grey(1280, 720, 180), &[], None);
        assert!(jpeg.starts_with(&[0xff, 0xd8]) && jpeg.ends_with(&[0xff, 0xd9]));
        // No EXIF (APP1) segment: nothing about the camera or its place.
        assert!(!jpeg.windows(2).any(|w| w == [0xff, 0xe1]));
        let img = decode(&jpeg);
        assert_eq!(img.dimensions(), (1280, 720));
        let px = img.get_pixel(640, 360).0;
        assert!(px.iter().all(|c| c.abs_diff(190) < 8), "{px:?}");
    }

    #[test]
    fn masks_are_black_and_the_box_is_drawn() {
        let right_half = Polygon(vec![[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]);
        let jpeg = jpeg(
            &grey(640, 360, 180),
            &[right_half],
            Some([40, 40, 100, 100]),
        );
        let img = decode(&jpeg);
        assert!(img.get_pixel(500, 180).0.iter().all(|c| *c < 12), "masked");
        assert!(img.get_pixel(100, 300).0.iter().all(|c| *c > 150), "open");
        let edge = img.get_pixel(90, 40).0;
        assert!(edge[0] > 200 && edge[2] < 80, "box edge {edge:?}");
        let inside = img.get_pixel(90, 90).0;
        assert!(
            inside.iter().all(|c| c.abs_diff(190) < 12),
            "inside {inside:?}"
        );
    }
}
