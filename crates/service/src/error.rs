//! The service's error: what the user may see, with a stable code, kept apart from internal
//! failures (which the user sees only as "internal error" and a reference).

use std::fmt;

/// What the caller can do about an error; `http` maps each kind to one status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    NotFound,
    Conflict,
    Invalid,
    Unauthenticated,
    Forbidden,
    PreconditionFailed,
    Unavailable,
    Internal,
}

/// A user-facing error: a stable `code` (API), a message naming what is wrong and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Error {
        Error { kind, code, message: message.into() }
    }
    pub fn not_found(code: &'static str, m: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotFound, code, m)
    }
    pub fn invalid(code: &'static str, m: impl Into<String>) -> Error {
        Error::new(ErrorKind::Invalid, code, m)
    }
    pub fn conflict(code: &'static str, m: impl Into<String>) -> Error {
        Error::new(ErrorKind::Conflict, code, m)
    }
    pub fn forbidden(code: &'static str, m: impl Into<String>) -> Error {
        Error::new(ErrorKind::Forbidden, code, m)
    }
    pub fn precondition(code: &'static str, m: impl Into<String>) -> Error {
        Error::new(ErrorKind::PreconditionFailed, code, m)
    }
    pub fn internal(m: impl Into<String>) -> Error {
        Error::new(ErrorKind::Internal, "internal_error", m)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<vigil_store::Error> for Error {
    fn from(e: vigil_store::Error) -> Error {
        use vigil_store::Error as S;
        match e {
            S::NotFound(m) => Error::not_found("not_found", m),
            S::Conflict(m) => Error::conflict("conflict", m),
            S::SchemaTooNew { .. } => Error::new(ErrorKind::Unavailable, "store_schema_too_new", e.to_string()),
            S::SchemaBehind { .. } => Error::new(ErrorKind::Unavailable, "store_schema_behind", e.to_string()),
            S::Corrupt(_) => Error::new(ErrorKind::Internal, "store_corrupt", e.to_string()),
            S::Database(ref d) if d.as_database_error().is_some_and(|d| d.is_unique_violation()) => {
                Error::conflict("conflict", e.to_string())
            }
            S::Database(_) => Error::new(ErrorKind::Unavailable, "store_unavailable", e.to_string()),
        }
    }
}

impl From<vigil_blobs::Error> for Error {
    fn from(e: vigil_blobs::Error) -> Error {
        use vigil_blobs::Error as B;
        match e {
            B::NotFound(_) => Error::new(ErrorKind::Internal, "artifact_missing", e.to_string()),
            B::Corrupt { .. } => Error::new(ErrorKind::Internal, "artifact_corrupt", e.to_string()),
            B::Io { .. } => Error::new(ErrorKind::Unavailable, "artifact_store_unavailable", e.to_string()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
