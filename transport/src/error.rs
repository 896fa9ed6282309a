//! The crate's one error type. Every failure a caller can see is mapped here
//! once, at the boundary with quinn / rustls / rcgen, so callers never match
//! on library types. Callers of storage nodes turn it into a
//! [`crate::CallError`] once (`CallError::from_transport`) and read that
//! type's `is_transient()`; [`TransportError::is_transient`] is the
//! classification that mapping keeps.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use crate::refusal::{code, Refusal};

#[derive(Debug, Error)]
pub enum TransportError {
    /// The QUIC connection could not be established (unreachable, refused,
    /// no answer within the connect timeout, invalid server name).
    #[error("connect to {addr} ({server_name}): {reason}")]
    Connect {
        addr: SocketAddr,
        server_name: String,
        reason: String,
    },
    /// The TLS handshake failed: a certificate was not signed by the cluster
    /// CA, was missing, or named another host. Not transient: retrying with
    /// the same certificates fails the same way.
    #[error("TLS handshake with {addr} refused: {reason}")]
    Tls { addr: SocketAddr, reason: String },
    /// An operation did not finish in time.
    #[error("{op} timed out after {after:?}")]
    Timeout { op: &'static str, after: Duration },
    /// A frame (ours or the peer's) is larger than the configured limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { len: u64, max: u64 },
    /// A frame body is not valid msgpack for the expected type, or a value
    /// could not be encoded.
    #[error("codec: {reason}")]
    Codec { reason: String },
    /// The peer reset the request stream with a reason code instead of answering.
    #[error("peer refused the request: {reason}")]
    Refused { reason: Refusal },
    /// The stream ended before a complete frame arrived.
    #[error("stream closed: {reason}")]
    StreamClosed { reason: String },
    /// The connection broke (peer closed it, restarted, idle timeout).
    #[error("connection lost: {reason}")]
    ConnectionLost { reason: String },
    /// The UDP endpoint could not be bound.
    #[error("bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Certificates, keys or settings are unusable.
    #[error("configuration: {reason}")]
    Config { reason: String },
    /// A certificate or key file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl TransportError {
    /// Whether the same call may succeed if retried (possibly on another
    /// replica). Exhaustive on purpose: a new variant must decide.
    pub fn is_transient(&self) -> bool {
        match self {
            TransportError::Connect { .. }
            | TransportError::Timeout { .. }
            | TransportError::StreamClosed { .. }
            | TransportError::ConnectionLost { .. } => true,
            TransportError::Refused { reason } => matches!(reason, Refusal::ShuttingDown),
            TransportError::Tls { .. }
            | TransportError::FrameTooLarge { .. }
            | TransportError::Codec { .. }
            | TransportError::Bind { .. }
            | TransportError::Config { .. }
            | TransportError::Io { .. } => false,
        }
    }

    /// A short stable label, used as the `kind` label of `transport_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportError::Connect { .. } => "connect",
            TransportError::Tls { .. } => "tls",
            TransportError::Timeout { .. } => "timeout",
            TransportError::FrameTooLarge { .. } => "frame_too_large",
            TransportError::Codec { .. } => "codec",
            TransportError::Refused { .. } => "refused",
            TransportError::StreamClosed { .. } => "stream_closed",
            TransportError::ConnectionLost { .. } => "connection_lost",
            TransportError::Bind { .. } => "bind",
            TransportError::Config { .. } => "config",
            TransportError::Io { .. } => "io",
        }
    }

    pub(crate) fn config(reason: impl std::fmt::Display) -> Self {
        TransportError::Config {
            reason: reason.to_string(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TransportError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Whether a QUIC error code is a TLS alert carried in CONNECTION_CLOSE
/// (RFC 9001 §4.8: 0x100 + alert).
fn is_crypto_code(code: u64) -> bool {
    (0x100..=0x1ff).contains(&code)
}

/// Maps a connection-level failure. `addr` names the peer for TLS errors.
pub(crate) fn from_connection_error(addr: SocketAddr, e: quinn::ConnectionError) -> TransportError {
    use quinn::ConnectionError as E;
    match e {
        E::TransportError(t) if is_crypto_code(u64::from(t.code)) => TransportError::Tls {
            addr,
            reason: t.to_string(),
        },
        E::ConnectionClosed(c) if is_crypto_code(u64::from(c.error_code)) => TransportError::Tls {
            addr,
            reason: c.to_string(),
        },
        other => TransportError::ConnectionLost {
            reason: other.to_string(),
        },
    }
}

pub(crate) fn from_write_error(addr: SocketAddr, e: quinn::WriteError) -> TransportError {
    use quinn::WriteError as E;
    match e {
        E::Stopped(c) => TransportError::Refused {
            reason: code::refusal(c.into_inner()),
        },
        E::ConnectionLost(c) => from_connection_error(addr, c),
        other => TransportError::StreamClosed {
            reason: other.to_string(),
        },
    }
}

pub(crate) fn from_read_error(addr: SocketAddr, e: quinn::ReadError) -> TransportError {
    use quinn::ReadError as E;
    match e {
        E::Reset(c) => TransportError::Refused {
            reason: code::refusal(c.into_inner()),
        },
        E::ConnectionLost(c) => from_connection_error(addr, c),
        other => TransportError::StreamClosed {
            reason: other.to_string(),
        },
    }
}

impl From<protocol::codec::CodecError> for TransportError {
    fn from(e: protocol::codec::CodecError) -> Self {
        TransportError::Codec {
            reason: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors_are_the_retryable_ones() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let io = || std::io::Error::other("x");
        let transient = [
            TransportError::Connect {
                addr,
                server_name: "n".into(),
                reason: "unreachable".into(),
            },
            TransportError::Timeout {
                op: "request",
                after: Duration::from_secs(1),
            },
            TransportError::StreamClosed { reason: "r".into() },
            TransportError::ConnectionLost { reason: "r".into() },
            TransportError::Refused {
                reason: Refusal::ShuttingDown,
            },
        ];
        let permanent = [
            TransportError::Tls {
                addr,
                reason: "unknown CA".into(),
            },
            TransportError::FrameTooLarge { len: 2, max: 1 },
            TransportError::Codec { reason: "r".into() },
            TransportError::Refused {
                reason: Refusal::FrameTooLarge,
            },
            TransportError::Refused {
                reason: Refusal::Malformed,
            },
            TransportError::Bind { addr, source: io() },
            TransportError::Config { reason: "r".into() },
            TransportError::Io {
                path: "p".into(),
                source: io(),
            },
        ];
        assert!(transient.iter().all(|e| e.is_transient()));
        assert!(permanent.iter().all(|e| !e.is_transient()));
    }

    #[test]
    fn tls_alerts_are_told_apart_from_other_closes() {
        assert!(is_crypto_code(0x100 + 48)); // unknown_ca
        assert!(!is_crypto_code(0x0a));
        assert!(!is_crypto_code(0x200));
    }
}
