//! Video files made at run time from drawn pictures, for the motion detector's benchmark and
//! tests: encoded as a camera's encoder would, so that the agent decodes them as it decodes a
//! camera.

use crate::process::dies_with_parent;
use anyhow::{Context, Result, bail};
use eyeward_camera_sim::scene::Picture;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Encodes `pictures` (I420, `width`×`height`, `fps` a second) into the MP4 file `path`
/// with GStreamer's x264: fast, no B-frames, a keyframe every 4 s as cameras do.
pub fn encode_mp4(
    pictures: impl Iterator<Item = Picture>,
    (width, height): (usize, usize),
    fps: u32,
    path: &Path,
) -> Result<()> {
    let mut gst = Command::new("gst-launch-1.0");
    gst.args(["-q", "fdsrc", "fd=0", "!", "rawvideoparse", "format=i420"])
        .arg(format!("width={width}"))
        .arg(format!("height={height}"))
        .arg(format!("framerate={fps}/1"))
        .args(["!", "x264enc", "speed-preset=ultrafast", "tune=zerolatency"])
        .args(["bitrate=2000", &format!("key-int-max={}", 4 * fps)])
        .args(["!", "h264parse", "!", "mp4mux", "!", "filesink"])
        .arg(format!("location={}", path.display()))
        .stdin(Stdio::piped());
    let mut child = dies_with_parent(&mut gst)
        .spawn()
        .context("gst-launch-1.0 (GStreamer's tools: the README's set-up installs them)")?;
    let mut stdin = child.stdin.take().context("stdin")?;
    for picture in pictures {
        stdin.write_all(&picture.to_i420())?;
    }
    drop(stdin);
    if !child.wait()?.success() {
        bail!("encoding {} failed", path.display());
    }
    Ok(())
}
