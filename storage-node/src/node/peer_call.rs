//! What every stream to a peer shares (the replicator, the snapshot
//! sender, a transfer's switch): one call to the peer, held off after a
//! permanent failure, blocking shard work off the runtime, and how a
//! stream step ends. Its own module so that those three do not import
//! each other.

use protocol::rpc::{StorageRequest, StorageResponse};
use protocol::NodeId;

use super::{CallError, Node};

pub(super) enum Step {
    /// Start over with a sync (peer behind, diverged, restarted).
    Resync,
    /// Leadership ended.
    Stop,
}

/// One call to the peer, held off after a permanent failure (see
/// [`hold_off_after`]).
pub(super) async fn call(
    node: &Node,
    peer: NodeId,
    req: StorageRequest,
) -> Result<StorageResponse, CallError> {
    let result = node.peers.call(peer, req).await;
    if let Err(e) = &result {
        hold_off_after(node, peer, e).await;
    }
    result
}

/// After a permanent failure, waits [`super::NodeOptions::pause_after`]
/// before the stream syncs again, so a peer that refuses our certificate is
/// not called every `retry_backoff`. The pause does not watch the stop
/// signal: a leadership that ends meanwhile is noticed when it is over.
pub(super) async fn hold_off_after(node: &Node, peer: NodeId, e: &CallError) {
    let pause = node.options.pause_after(e);
    if !pause.is_zero() {
        tracing::warn!(%peer, error = %e, ?pause, "peer call failed in a way retrying does not fix; holding off");
        tokio::time::sleep(pause).await;
    }
}

pub(super) fn failed(peer: NodeId) {
    metrics::counter!("storage_replication_failures_total", "peer" => peer.to_string())
        .increment(1);
}

/// Runs blocking shard work (WAL reads, term lookups) off the runtime's
/// threads, which also carry gossip and heartbeats.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}
