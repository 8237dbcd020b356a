//! Small uploads that cost much: a flat 8K JPEG is under 200 KB and 100 MB once decoded.
//! Beyond the pixel limit a snapshot is refused (413) from its header alone; within a raised
//! limit, no more pictures are decoded at once than there are cores, so six such uploads at
//! once keep the relay's memory bounded.

mod common;

use anyhow::{Context, Result};
use common::Relay;
use futures_util::future::join_all;

/// Uploads `jpeg` as a motion event of the camera whose agent token is `token`, `n` at once;
/// returns the statuses and bodies.
async fn upload_many(
    relay: &Relay,
    token: &str,
    jpeg: &[u8],
    n: usize,
) -> Result<Vec<(u16, String)>> {
    let answers = join_all((0..n).map(|i| async move {
        let resp = common::upload_event(relay, token, &format!("big-{i:04}"), jpeg).await?;
        Ok::<_, anyhow::Error>((resp.status().as_u16(), resp.text().await?))
    }))
    .await;
    answers.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_picture_beyond_the_pixel_limit_is_refused_from_its_header() -> Result<()> {
    let relay = Relay::start("")?;
    let owner = relay.customer("a@example.jp", "Alice", "tokyo", "correct horse battery")?;
    let cam = relay.camera(owner, "Porch", "fixed", "dispatch", "agent")?;
    let token = cam["agent_token"].as_str().context("token")?;
    let jpeg = eyeward_bench::process::flat_8k_jpeg(relay.dir.path())?;
    let answers = upload_many(&relay, token, &jpeg, 48).await?;
    for (status, body) in &answers {
        assert_eq!(*status, 413, "{body}");
        assert!(body.contains("snapshot_too_large"), "{body}");
    }
    // A picture a real camera sends is taken.
    let small = common::jpeg(1280, 720);
    let answers = upload_many(&relay, token, &small, 1).await?;
    assert_eq!(answers[0].0, 201, "{}", answers[0].1);
    let peak = relay.peak_rss_mib()?;
    assert!(peak < 150, "peak resident memory {peak} MiB");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn within_the_limit_pictures_are_decoded_a_few_at_a_time() -> Result<()> {
    let relay = Relay::start("[events]\nmax_snapshot_pixels = 40000000\n")?;
    let owner = relay.customer("a@example.jp", "Alice", "tokyo", "correct horse battery")?;
    let cam = relay.camera(owner, "Porch", "fixed", "dispatch", "agent")?;
    let token = cam["agent_token"].as_str().context("token")?;
    let jpeg = eyeward_bench::process::flat_8k_jpeg(relay.dir.path())?;
    let answers = upload_many(&relay, token, &jpeg, 6).await?;
    for (status, body) in &answers {
        assert_eq!(*status, 201, "{body}");
    }
    // One decoded 8K picture is ~100 MB; one per core at once (2 here), not all 6.
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as u64;
    let peak = relay.peak_rss_mib()?;
    eprintln!("peak resident memory decoding six 8K pictures: {peak} MiB");
    assert!(
        peak < 150 + cores * 150,
        "peak resident memory {peak} MiB with {cores} cores"
    );
    Ok(())
}
