//! ONVIF, the standard IP cameras are driven by: the simulator serves it (`server`) so that
//! the agent (`client`) and third-party tools drive a simulated camera exactly as a real one.
//! `reply` reads the camera's answers; `wsse` makes and checks the WS-Security password digests that ONVIF requests carry.

pub mod client;
pub mod reply;
pub mod server;
pub mod wsse;

#[cfg(test)]
mod tests;
