//! # eyeward
//!
//! The library shared by eyeward's two binaries, `eyeward-relay` (the server) and
//! `eyeward-agent` (the on-camera agent): the domain types (ids, accounts, cameras and their
//! plans) and, as the link grows, the agent–relay wire protocol.
//!
//! Nothing here does I/O. Values are validated when they are made ([`Email::parse`],
//! [`CameraSource::parse`], ...), so code that holds one can trust it. Decisions that depend on
//! time take `now` as an argument ([`UnixMillis`]) so tests can drive them with a fake clock.

mod account;
pub mod alert;
pub mod api;
pub mod arming;
mod camera;
pub mod clip_upload;
#[cfg(feature = "binary")]
pub mod clock;
pub mod dispatch;
mod error;
pub mod household;
pub mod identity;
mod ids;
pub mod link;
pub mod ptz;
#[cfg(feature = "binary")]
pub mod telemetry;
mod time;
pub mod upload;
pub mod wsse;

pub use account::{DisplayName, Email, GuardCenter, Language, Password, Role};
pub use camera::{
    CameraModel, CameraSource, HostClass, Plan, RtspSource, SourcePolicy, take_credentials,
};
pub use error::{Error, ErrorKind};
pub use ids::{CameraId, CustomerId, OperatorId};
pub use time::UnixMillis;
