//! The storage node's one error type. Callers (the network layer, the
//! gateway's retry logic) decide what to do from the variant alone.

use std::io;
use std::path::PathBuf;

use protocol::codec::CodecError;
use protocol::{SeqNo, Term, ValidationError};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ShardError {
    /// Bad input; nothing was changed.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{context}: {source}")]
    Codec {
        context: String,
        #[source]
        source: CodecError,
    },
    #[error("faiss: {context}: {message}")]
    Faiss { context: String, message: String },
    /// A WAL record in the middle of the log is damaged: acknowledged data
    /// would be lost by skipping it, so the shard refuses to open.
    #[error("WAL file {path} is corrupt at byte {offset}: {reason}")]
    WalCorrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// The WAL no longer reaches back to the requested sequence number;
    /// the caller needs a snapshot instead.
    #[error("operations after {requested} are no longer in the WAL (oldest kept: {oldest})")]
    WalTruncated { requested: SeqNo, oldest: SeqNo },
    /// A write authorised under `authorised` reached the shard after a
    /// newer primary's term `current` did; it was not applied.
    #[error("write authorised under term {authorised} but the shard is at term {current}")]
    StaleTerm { authorised: Term, current: Term },
    /// The primary sent an operation under a sequence number this replica
    /// already holds with another term: the histories differ from there on.
    #[error("operation {seq} is of term {ours} here but of term {theirs} at the primary")]
    Diverged {
        seq: SeqNo,
        ours: Term,
        theirs: Term,
    },
    /// A previous fsync failed: the shard no longer knows what is durable
    /// and refuses writes until it is reopened.
    #[error("shard is read-only after a failed write to disk; reopen it")]
    Poisoned,
    #[error("shard data is inconsistent: {0}")]
    Corrupt(String),
    /// The shard is closing: background work stopped before it finished.
    #[error("shard is closing")]
    Closing,
}

impl ShardError {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        ShardError::Io {
            context: context.into(),
            source,
        }
    }

    pub fn codec(context: impl Into<String>, source: CodecError) -> Self {
        ShardError::Codec {
            context: context.into(),
            source,
        }
    }

    pub fn faiss(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        ShardError::Faiss {
            context: context.into(),
            message: err.to_string(),
        }
    }

    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ShardError::Io { .. }
            | ShardError::Poisoned
            | ShardError::Closing
            | ShardError::StaleTerm { .. } => true,
            ShardError::Invalid(_)
            | ShardError::Codec { .. }
            | ShardError::Faiss { .. }
            | ShardError::WalCorrupt { .. }
            | ShardError::WalTruncated { .. }
            | ShardError::Diverged { .. }
            | ShardError::Corrupt(_) => false,
        }
    }
}

pub type Result<T, E = ShardError> = std::result::Result<T, E>;

/// Adds context to I/O results, the way `anyhow::Context` does.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| ShardError::io(context(), e))
    }
}
