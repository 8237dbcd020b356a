//! What eyeward's benchmarks share: agents' uploads, motion to mail, the processes they start and what `/proc` says those
//! use, the storage backends of their relays, several relays as one service, receive-only WebRTC viewers for eyeward and
//! for Janus, SVG charts, and video files drawn at run time.

pub mod alerts;
pub mod backend;
pub mod cluster;
pub mod ingest;
pub mod light_viewer;
pub mod mail;
pub mod plot;
pub mod process;
pub mod video;
pub mod viewer;

/// The `q` quantile (nearest rank) of `xs`, which must not be empty.
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
}
