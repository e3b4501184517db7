//! The crate's one error type: a dataset that cannot be read, or a request that does not fit it.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where in a file something went wrong. Rows are 1-based data rows with the CSV header
/// excluded (row 1 is the first record after the header); Parquet row groups are 0-based, as
/// Parquet tools print them.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Location {
    pub row: Option<u64>,
    /// The physical line in a CSV file (1-based, header included), when known.
    pub line: Option<u64>,
    pub row_group: Option<usize>,
    pub column: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(g) = self.row_group {
            parts.push(format!("row group {g} (0-based)"));
        }
        if let Some(r) = self.row {
            match self.line {
                Some(l) => parts.push(format!("row {r} (1-based, header excluded; line {l})")),
                None => parts.push(format!("row {r} (1-based, header excluded)")),
            }
        }
        if let Some(c) = &self.column {
            parts.push(format!("column `{c}`"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// A file that is not a well-formed dataset. The reason never quotes cell contents, so the
/// message can be logged without leaking patient data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    pub path: PathBuf,
    pub location: Location,
    pub reason: String,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let loc = self.location.to_string();
        if loc.is_empty() {
            write!(f, "`{}`: {}", self.path.display(), self.reason)
        } else {
            write!(f, "`{}`: {loc}: {}", self.path.display(), self.reason)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file does not exist.
    #[error("`{}`: no such file", path.display())]
    NotFound { path: PathBuf },
    /// The file exists but cannot be read (permissions, device errors).
    #[error("`{}`: cannot be read: {source}", path.display())]
    Unavailable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file's content is not a well-formed dataset; the location says where.
    #[error("{0}")]
    Malformed(Box<Malformed>),
    /// The request does not fit the file (a column it does not have, an unsupported
    /// extension, inconsistent options).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn malformed(path: &Path, location: Location, reason: impl Into<String>) -> Error {
        Error::Malformed(Box::new(Malformed {
            path: path.to_owned(),
            location,
            reason: reason.into(),
        }))
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound {
                path: path.to_owned(),
            }
        } else {
            Error::Unavailable {
                path: path.to_owned(),
                source,
            }
        }
    }

    /// Where a malformed file went wrong, for callers that point the user at it.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Error::Malformed(m) => Some(&m.location),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
