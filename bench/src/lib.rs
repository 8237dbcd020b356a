//! What eyeward's benchmarks share: the processes they start and what `/proc` says those
//! use, receive-only WebRTC viewers for eyeward and for Janus, and SVG charts.

pub mod plot;
pub mod process;
pub mod viewer;
