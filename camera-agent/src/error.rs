//! The agent's one error type.

/// What went wrong in the agent. Messages never carry tokens or camera passwords.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting or argument is not usable.
    #[error("{0}")]
    Config(String),
    /// GStreamer could not build or run a pipeline.
    #[error("GStreamer: {0}")]
    Media(String),
    /// The link to the relay failed.
    #[error("link to the relay: {0}")]
    Link(String),
    /// The camera's ONVIF service refused a request (a SOAP fault): its values or a name.
    #[error("the camera refused: {0}")]
    CameraRefused(String),
    /// The camera's ONVIF service did not answer in time, or not in ONVIF.
    #[error("the camera's ONVIF service: {0}")]
    Camera(String),
    /// The relay refused the agent's token: retrying will not help.
    #[error("the relay refused this agent's token (revoked or wrong?)")]
    Unauthorized,
    /// Local I/O (files, sockets).
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl Error {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

#[cfg(feature = "simulator")]
impl From<eyeward_camera_sim::Error> for Error {
    fn from(e: eyeward_camera_sim::Error) -> Self {
        match e {
            eyeward_camera_sim::Error::Config(m) => Error::Config(m),
            eyeward_camera_sim::Error::Media(m) => Error::Media(m),
            eyeward_camera_sim::Error::Io { context, source } => Error::Io { context, source },
        }
    }
}

impl From<eyeward::Error> for Error {
    fn from(e: eyeward::Error) -> Self {
        Error::Config(e.to_string())
    }
}
