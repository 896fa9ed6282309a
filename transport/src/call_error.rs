//! [`CallError`]: a call to a node that produced no answer, as the callers
//! of storage nodes (the gateway's `ShardClient`, the storage node's
//! `Peers`) see it.
//!
//! [`TransportError`] describes what went wrong inside the transport (which
//! QUIC operation, which socket); a caller only needs to know which node,
//! whether trying again can help, and a reason to log. The QUIC clients map
//! once, with [`CallError::from_transport`], and in-process test transports
//! build the variants directly, so retry code never parses strings.
//!
//! A typed refusal *from* the node (`StorageResponse::Error`) is an answer,
//! not a `CallError`; `protocol::rpc::StorageError::is_transient` covers it.

use std::time::Duration;

use protocol::NodeId;
use thiserror::Error;

use crate::{Refusal, TransportError};

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum CallError {
    /// No connection could be made: no address known for the node, its
    /// name did not resolve, or the connect attempt failed or timed out.
    #[error("node {node} unreachable: {reason}")]
    Unreachable { node: NodeId, reason: String },
    /// No answer within `after`. The node may still carry the request out.
    #[error("node {node} gave no answer within {after:?}")]
    TimedOut { node: NodeId, after: Duration },
    /// The connection or the request's stream broke before the answer was
    /// complete (node restarted, closed the connection, idle timeout).
    #[error("connection to node {node} lost: {reason}")]
    ConnectionLost { node: NodeId, reason: String },
    /// The node reset the request stream with a reason instead of answering.
    #[error("node {node} refused the request: {reason}")]
    Refused { node: NodeId, reason: Refusal },
    /// The TLS handshake was refused (certificate not signed by the cluster
    /// CA, expired, missing, or issued to another name), by either side.
    #[error("TLS with node {node} refused: {reason}")]
    Tls { node: NodeId, reason: String },
    /// The request or the answer could not be encoded or decoded, or does
    /// not fit a frame (version skew, oversized message).
    #[error("node {node}: request or answer unusable: {reason}")]
    Codec { node: NodeId, reason: String },
    /// This process's own transport setup is unusable for the call
    /// (invalid server name or address, certificates, socket).
    #[error("cannot call node {node}: {reason}")]
    Config { node: NodeId, reason: String },
}

impl CallError {
    /// Whether the same call may succeed if tried again later or on another
    /// replica. Permanent errors need someone to act (certificates,
    /// versions, configuration): retrying them at once only repeats the
    /// failure. Exhaustive on purpose: a new variant (or refusal) must decide.
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Unreachable { .. }
            | CallError::TimedOut { .. }
            | CallError::ConnectionLost { .. } => true,
            CallError::Refused { reason, .. } => match reason {
                Refusal::ShuttingDown => true,
                Refusal::FrameTooLarge
                | Refusal::Malformed
                | Refusal::Internal
                | Refusal::Unknown(_) => false,
            },
            CallError::Tls { .. } | CallError::Codec { .. } | CallError::Config { .. } => false,
        }
    }

    /// The node the call was for.
    pub fn node(&self) -> NodeId {
        match self {
            CallError::Unreachable { node, .. }
            | CallError::TimedOut { node, .. }
            | CallError::ConnectionLost { node, .. }
            | CallError::Refused { node, .. }
            | CallError::Tls { node, .. }
            | CallError::Codec { node, .. }
            | CallError::Config { node, .. } => *node,
        }
    }

    /// Maps a failed RPC to `node`. The one place transport failures are
    /// translated for callers of storage nodes.
    pub fn from_transport(node: NodeId, e: TransportError) -> Self {
        match e {
            TransportError::Connect { .. } => CallError::Unreachable {
                node,
                reason: e.to_string(),
            },
            TransportError::Timeout { after, .. } => CallError::TimedOut { node, after },
            TransportError::StreamClosed { reason } | TransportError::ConnectionLost { reason } => {
                CallError::ConnectionLost { node, reason }
            }
            TransportError::Refused { reason } => CallError::Refused { node, reason },
            TransportError::Tls { reason, .. } => CallError::Tls { node, reason },
            TransportError::FrameTooLarge { .. } | TransportError::Codec { .. } => {
                CallError::Codec {
                    node,
                    reason: e.to_string(),
                }
            }
            TransportError::Bind { .. }
            | TransportError::Config { .. }
            | TransportError::Io { .. } => CallError::Config {
                node,
                reason: e.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn all_transport_errors() -> Vec<TransportError> {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let io = || std::io::Error::other("x");
        let mut all = vec![
            TransportError::Connect {
                addr,
                server_name: "storage-1".into(),
                reason: "unreachable".into(),
            },
            TransportError::Tls {
                addr,
                reason: "unknown CA".into(),
            },
            TransportError::Timeout {
                op: "request",
                after: Duration::from_secs(1),
            },
            TransportError::FrameTooLarge { len: 2, max: 1 },
            TransportError::Codec { reason: "r".into() },
            TransportError::StreamClosed { reason: "r".into() },
            TransportError::ConnectionLost { reason: "r".into() },
            TransportError::Bind { addr, source: io() },
            TransportError::Config { reason: "r".into() },
            TransportError::Io {
                path: "p".into(),
                source: io(),
            },
        ];
        for reason in [
            Refusal::FrameTooLarge,
            Refusal::Malformed,
            Refusal::ShuttingDown,
            Refusal::Internal,
            Refusal::Unknown(77),
        ] {
            all.push(TransportError::Refused { reason });
        }
        all
    }

    #[test]
    fn mapping_keeps_the_transport_classification() {
        // The transport already decided what a retry can fix; the mapping
        // must not change that decision for any error.
        for e in all_transport_errors() {
            let transient = e.is_transient();
            let shown = e.to_string();
            let mapped = CallError::from_transport(NodeId(3), e);
            assert_eq!(mapped.is_transient(), transient, "{shown} -> {mapped}");
            assert_eq!(mapped.node(), NodeId(3));
        }
    }

    #[test]
    fn certificate_refusals_and_bad_frames_are_permanent() {
        let node = NodeId(1);
        let permanent = [
            CallError::Tls {
                node,
                reason: "certificate expired".into(),
            },
            CallError::Codec {
                node,
                reason: "frame of 9 bytes exceeds the limit of 1 bytes".into(),
            },
            CallError::Refused {
                node,
                reason: Refusal::Malformed,
            },
            CallError::Refused {
                node,
                reason: Refusal::Internal,
            },
            CallError::Config {
                node,
                reason: "invalid server name".into(),
            },
        ];
        let transient = [
            CallError::Unreachable {
                node,
                reason: "no address known".into(),
            },
            CallError::TimedOut {
                node,
                after: Duration::from_millis(5),
            },
            CallError::ConnectionLost {
                node,
                reason: "reset".into(),
            },
            CallError::Refused {
                node,
                reason: Refusal::ShuttingDown,
            },
        ];
        assert!(permanent.iter().all(|e| !e.is_transient()));
        assert!(transient.iter().all(CallError::is_transient));
    }

    #[test]
    fn specific_variants_survive_the_mapping() {
        let e = CallError::from_transport(
            NodeId(2),
            TransportError::Timeout {
                op: "request",
                after: Duration::from_secs(2),
            },
        );
        assert_eq!(
            e,
            CallError::TimedOut {
                node: NodeId(2),
                after: Duration::from_secs(2)
            }
        );
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let e = CallError::from_transport(
            NodeId(2),
            TransportError::Tls {
                addr,
                reason: "unknown CA".into(),
            },
        );
        assert!(matches!(
            e,
            CallError::Tls {
                node: NodeId(2),
                ..
            }
        ));
    }
}
