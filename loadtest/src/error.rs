//! The crate's one error type. Readers and the HTTP client return it; the
//! binary wraps it in `anyhow` at the edge.

use std::path::PathBuf;

/// Everything that can go wrong below the command line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A `.fvecs` / `.ivecs` file that does not follow the texmex layout.
    #[error("{path}: corrupt vecs file at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: usize,
        reason: String,
    },
    #[error("{path} line {line}: {reason}")]
    Payload {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// The request did not get an HTTP answer (connect, reset, timeout).
    #[error("{what}: {source}")]
    Http {
        what: String,
        source: reqwest::Error,
    },
    /// An HTTP answer other than 200.
    #[error("{what}: HTTP {status}: {body}")]
    Status {
        what: String,
        status: u16,
        body: String,
    },
    /// A 200 whose body is not what the Qdrant API promises.
    #[error("{what}: unexpected answer: {reason}")]
    Answer { what: String, reason: String },
    #[error("faiss: {0}")]
    Faiss(String),
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// Worth retrying: no answer at all, or the server said "try later".
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Http { .. } => true,
            Error::Status { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            Error::Io { .. }
            | Error::Corrupt { .. }
            | Error::Payload { .. }
            | Error::Answer { .. }
            | Error::Faiss(_)
            | Error::Invalid(_) => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
