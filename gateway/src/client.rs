//! [`ShardClient`]: how the gateway reaches storage nodes. The gateway
//! only ever sends [`StorageRequest`]s and reads [`StorageResponse`]s; the
//! transport behind this trait is someone else's business (QUIC + mTLS in
//! production, in-process `storage_node::node::Node`s in tests).

use std::future::Future;
use std::pin::Pin;

use protocol::cluster::NodeInfo;
use protocol::rpc::{StorageRequest, StorageResponse};
use thiserror::Error;

/// The future a [`ShardClient`] call returns.
pub type CallFuture = Pin<Box<dyn Future<Output = Result<StorageResponse, ClientError>> + Send>>;

/// Sends one request to one storage node and returns its answer.
///
/// Contract for implementations (the QUIC client in particular):
///
/// - Dial `node.addr` (the data-plane address the node registered with the
///   meta-service), send `req`, return the node's `StorageResponse`
///   unchanged. A typed refusal from the node (`StorageResponse::Error`)
///   is an `Ok` answer: the gateway reads `StorageError::is_transient()`
///   itself to decide on retries, map refreshes and HTTP codes.
/// - Return `Err` only when no answer came back: the node could not be
///   reached ([`ClientError::Unreachable`]), the connection broke or the
///   answer could not be decoded ([`ClientError::Transport`]), or it took
///   longer than the implementation's own timeout ([`ClientError::Timeout`]).
///   The gateway treats every `Err` as "try another replica" and marks the
///   node unhealthy for a short while.
/// - Be cheap to call concurrently (share connections); never block the
///   runtime; the future must be `Send` and own everything it needs (no
///   borrow of `self` or `node`). The gateway also applies its own
///   per-call timeout and may drop the future early (hedging, client gone),
///   so a call must be safe to cancel at any await point.
///
/// Plugging in QUIC: wrap `transport::RpcClient` and implement `call` as
/// `client.call(node.addr.parse()?, server_name_of(node), &req, timeout)`,
/// mapping `TransportError`s onto [`ClientError`]; then hand it to
/// `Gateway::new` in `main.rs` (see the TODO there).
pub trait ShardClient: Send + Sync + 'static {
    fn call(&self, node: &NodeInfo, req: StorageRequest) -> CallFuture;
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ClientError {
    #[error("node unreachable: {0}")]
    Unreachable(String),
    #[error("transport error: {0}")]
    Transport(String),
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
}

/// A client with no transport: every call fails as unreachable. Lets the
/// gateway binary serve its admin and cluster routes until the QUIC client
/// is plugged in.
pub struct NoTransport;

impl ShardClient for NoTransport {
    fn call(&self, node: &NodeInfo, _req: StorageRequest) -> CallFuture {
        let msg = format!(
            "node {} at {}: no data-plane transport configured in this gateway build",
            node.id, node.addr
        );
        Box::pin(async move { Err(ClientError::Unreachable(msg)) })
    }
}
