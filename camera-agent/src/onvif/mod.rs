//! ONVIF, the standard IP cameras are driven by: the simulator serves it (`server`) so that
//! the agent and third-party tools drive a simulated camera exactly as a real one. `wsse`
//! checks the WS-Security password digests that ONVIF requests carry.

pub mod server;
pub mod wsse;
