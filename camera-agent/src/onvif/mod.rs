//! ONVIF, the standard IP cameras are driven by: the agent's `client` drives a camera's PTZ
//! service, `reply` reads the camera's answers. The WS-Security digests its requests carry
//! are `eyeward::wsse`; the simulator (`eyeward-camera-sim`) serves ONVIF, so the client is
//! tested against it as against a real camera.

pub mod client;
pub mod reply;

#[cfg(all(test, feature = "simulator"))]
mod tests;
