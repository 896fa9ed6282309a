//! [`ShardClient`]: how the gateway reaches storage nodes. The gateway
//! only ever sends [`StorageRequest`]s and reads [`StorageResponse`]s; the
//! transport behind this trait is someone else's business (QUIC + mTLS in
//! production, in-process `storage_node::node::Node`s in tests). A call that
//! produced no answer is a [`CallError`], the type the storage nodes' own
//! replication uses too.

use std::future::Future;
use std::pin::Pin;

use protocol::cluster::NodeInfo;
use protocol::rpc::{StorageRequest, StorageResponse};
pub use transport::CallError;

/// The future a [`ShardClient`] call returns.
pub type CallFuture = Pin<Box<dyn Future<Output = Result<StorageResponse, CallError>> + Send>>;

/// Sends one request to one storage node and returns its answer.
///
/// Contract for implementations (the QUIC client in particular):
///
/// - Dial `node.addr` (the data-plane address the node registered with the
///   meta-service), send `req`, return the node's `StorageResponse`
///   unchanged. A typed refusal from the node (`StorageResponse::Error`)
///   is an `Ok` answer: the gateway reads `StorageError::is_transient()`
///   itself to decide on retries, map refreshes and HTTP codes.
/// - Return `Err` only when no answer came back, as the [`CallError`]
///   variant that says why: the node could not be reached
///   ([`CallError::Unreachable`]), no answer within the implementation's
///   own timeout ([`CallError::TimedOut`]), the connection broke, the TLS
///   handshake was refused, the message could not be decoded. The gateway
///   reads [`CallError::is_transient`]: a read moves on to another replica
///   either way, a write retries only transient errors (see `writes.rs`).
/// - Be cheap to call concurrently (share connections); never block the
///   runtime; the future must be `Send` and own everything it needs (no
///   borrow of `self` or `node`). The gateway also applies its own
///   per-call timeout and may drop the future early (hedging, client gone),
///   so a call must be safe to cancel at any await point.
///
/// The production implementation is [`crate::QuicShardClient`].
pub trait ShardClient: Send + Sync + 'static {
    fn call(&self, node: &NodeInfo, req: StorageRequest) -> CallFuture;
}
