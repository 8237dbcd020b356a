//! The simulator's one error type.

/// What went wrong in the simulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting or argument is not usable.
    #[error("{0}")]
    Config(String),
    /// GStreamer could not build or run the camera's pipeline.
    #[error("GStreamer: {0}")]
    Media(String),
    /// Local I/O (sockets, threads).
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
