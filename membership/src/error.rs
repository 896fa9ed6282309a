//! The crate's one error type.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum MembershipError {
    #[error("invalid membership config: {reason}")]
    InvalidConfig { reason: String },
    /// The gossip socket could not be opened (address in use, no permission).
    #[error("cannot open gossip socket on {addr}: {reason}")]
    Bind {
        addr: std::net::SocketAddr,
        reason: String,
    },
    /// The handle was shut down; nothing is gossiped any more.
    #[error("membership is shut down")]
    ShutDown,
}

impl MembershipError {
    /// Whether retrying the same call may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            // A port can free up (e.g. a previous process still exiting).
            MembershipError::Bind { .. } => true,
            MembershipError::InvalidConfig { .. } | MembershipError::ShutDown => false,
        }
    }
}
