//! The library's one error type: a kind callers can branch on and a message for people.

use std::fmt;

/// What went wrong, for callers that map errors (to an HTTP status, an exit code...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A value given by a user or a peer is not acceptable.
    InvalidInput,
}

/// An error from the `eyeward` library. Messages never contain secrets (passwords in URLs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub struct Error {
    kind: ErrorKind,
    msg: String,
}

impl Error {
    pub(crate) fn invalid(msg: impl fmt::Display) -> Self {
        Error {
            kind: ErrorKind::InvalidInput,
            msg: msg.to_string(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}
