//! Agents' event uploads as the benchmarks send them: one picture, as fast as answered.

use anyhow::{Result, ensure};
use std::time::Instant;

/// Uploads `jpeg` as an event of the camera with `token`, captured now; the milliseconds to
/// its answer, which must be a 201.
pub async fn upload(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    key: &str,
    jpeg: &[u8],
) -> Result<f64> {
    let now = eyeward::UnixMillis::now().0;
    let started = Instant::now();
    let answer = http
        .post(format!(
            "{base}/agent/v1/events?key={key}&captured_at={now}&score=0.04&bbox=0,0,8,8"
        ))
        .bearer_auth(token)
        .header("content-type", "image/jpeg")
        .body(jpeg.to_vec())
        .send()
        .await?;
    let took = started.elapsed().as_secs_f64() * 1000.0;
    ensure!(answer.status() == 201, "upload {key}: {}", answer.status());
    Ok(took)
}

/// A 320×180 JPEG, an agent's event picture at its detection size.
pub fn jpeg() -> Result<Vec<u8>> {
    let img = image::RgbImage::from_fn(320, 180, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80).encode_image(&img)?;
    Ok(out)
}
