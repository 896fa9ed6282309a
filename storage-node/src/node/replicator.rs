//! The primary's replication stream to one peer: first make sure the
//! peer's history is a prefix of ours (else it gets a snapshot), then send
//! every new operation in order and record what the peer has applied.

use std::sync::Arc;

use protocol::rpc::{StorageError, StorageRequest, StorageResponse};
use protocol::{NodeId, SeqNo, Term};
use tokio::sync::{watch, Notify};

use super::replica::{Acks, LocalReplica};
use super::{CallError, Node};
use crate::ShardError;

enum Step {
    /// Start over with a sync (peer behind, diverged, restarted).
    Resync,
    /// Leadership ended.
    Stop,
}

/// One primary → peer stream under one term.
pub(super) struct Stream {
    pub peer: NodeId,
    pub term: Term,
    /// What every peer acknowledged (shared by the term's streams).
    pub acks: Arc<Acks>,
    /// Notified when the peer asks to catch up (`CatchUp`).
    pub kick: Arc<Notify>,
}

pub(super) async fn run(
    node: Arc<Node>,
    replica: Arc<LocalReplica>,
    stream: Stream,
    mut stop: watch::Receiver<bool>,
) {
    let backoff = node.options.retry_backoff;
    loop {
        if *stop.borrow() {
            break;
        }
        match sync_then_stream(&node, &replica, &stream, &mut stop).await {
            Step::Stop => break,
            Step::Resync => {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stream.kick.notified() => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
    stream.acks.forget(stream.peer);
    tracing::debug!(shard = ?replica.shard_ref, peer = %stream.peer, "replicator stopped");
}

/// One call to the peer. After a permanent failure it first holds off for
/// [`super::NodeOptions::pause_after`], so a peer that refuses our
/// certificate is not called again every `retry_backoff`. The pause does
/// not watch the stop signal: a leadership that ends meanwhile is noticed
/// when it is over.
async fn call(
    node: &Node,
    peer: NodeId,
    req: StorageRequest,
) -> Result<StorageResponse, CallError> {
    let result = node.peers.call(peer, req).await;
    if let Err(e) = &result {
        let pause = node.options.pause_after(e);
        if !pause.is_zero() {
            tracing::warn!(%peer, error = %e, ?pause, "peer call failed in a way retrying does not fix; holding off");
            tokio::time::sleep(pause).await;
        }
    }
    result
}

async fn sync_then_stream(
    node: &Node,
    replica: &Arc<LocalReplica>,
    stream: &Stream,
    stop: &mut watch::Receiver<bool>,
) -> Step {
    let Stream {
        peer,
        term,
        ref acks,
        ref kick,
    } = *stream;
    let shard_ref = replica.shard_ref.clone();
    let status = match call(
        node,
        peer,
        StorageRequest::Status {
            shard: shard_ref.clone(),
        },
    )
    .await
    {
        Ok(StorageResponse::Status { status }) => status,
        Ok(other) => {
            tracing::debug!(%peer, ?other, "peer cannot report its replica yet");
            metrics::counter!("storage_replication_failures_total", "peer" => peer.to_string())
                .increment(1);
            return Step::Resync;
        }
        Err(e) => {
            tracing::debug!(%peer, error = %e, transient = e.is_transient(), "peer status call failed");
            metrics::counter!("storage_replication_failures_total", "peer" => peer.to_string())
                .increment(1);
            return Step::Resync;
        }
    };
    if status.incarnation != replica.incarnation {
        // The peer still holds a deleted collection of the same name (or
        // already a newer one): its history is not comparable to ours.
        return Step::Resync;
    }
    let shard = replica.shard();
    let ours = shard.applied_seq();
    // The peer's history is a prefix of ours iff we have its last operation
    // under the same term.
    let prefix = status.applied <= ours
        && matches!(shard.term_at(status.applied), Ok(Some(t)) if t == status.last_term);
    let mut acked = status.applied;
    if !prefix || shard.operations_since(acked).is_err() {
        match send_snapshot(node, replica, peer, term).await {
            Ok(seq) => acked = seq,
            Err(step) => return step,
        }
        tracing::info!(shard = ?shard_ref, %peer, seq = %acked, diverged = !prefix, "peer caught up from a snapshot");
        metrics::counter!("storage_snapshots_sent_total", "collection" => shard_ref.collection.clone()).increment(1);
    }
    acks.record(peer, acked);
    let mut applied_rx = replica.applied_watch();
    loop {
        if *stop.borrow() {
            return Step::Stop;
        }
        let shard = replica.shard();
        if shard.applied_seq() <= acked {
            tokio::select! {
                r = applied_rx.changed() => if r.is_err() { return Step::Stop },
                // The peer says it is behind what it acknowledged (restarted
                // from an older disk, lost its data): sync again.
                _ = kick.notified() => return Step::Resync,
                _ = stop.changed() => return Step::Stop,
            }
            continue;
        }
        let mut ops = match shard.operations_since(acked) {
            Ok(ops) => ops,
            Err(ShardError::WalTruncated { .. }) => return Step::Resync,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the WAL to replicate");
                return Step::Resync;
            }
        };
        ops.truncate(node.options.replicate_batch);
        match call(
            node,
            peer,
            StorageRequest::Replicate {
                shard: shard_ref.clone(),
                term,
                ops,
            },
        )
        .await
        {
            Ok(StorageResponse::Replicated { applied }) => {
                metrics::counter!("storage_replicated_ops_total", "collection" => shard_ref.collection.clone(), "peer" => peer.to_string())
                    .increment(applied.0.saturating_sub(acked.0));
                acked = applied;
                acks.record(peer, applied);
                let lag = replica.shard().applied_seq().0.saturating_sub(applied.0);
                metrics::gauge!("storage_replication_lag_ops", "collection" => shard_ref.collection.clone(), "shard" => shard_ref.shard.to_string(), "peer" => peer.to_string())
                    .set(lag as f64);
            }
            Ok(StorageResponse::Error {
                error: StorageError::StaleTerm { current, .. },
            }) => {
                replica.observe_term(current);
                return Step::Stop;
            }
            Ok(other) => {
                tracing::debug!(%peer, ?other, "replication refused; resyncing");
                return Step::Resync;
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "replication failed; resyncing");
                return Step::Resync;
            }
        }
    }
}

/// Streams a consistent snapshot in chunks; returns its sequence number.
async fn send_snapshot(
    node: &Node,
    replica: &Arc<LocalReplica>,
    peer: NodeId,
    term: Term,
) -> Result<SeqNo, Step> {
    let r = replica.clone();
    let (seq, entries) = tokio::task::spawn_blocking(move || r.snapshot_entries())
        .await
        .map_err(|_| Step::Resync)?;
    let chunk_size = node.options.snapshot_chunk.max(1);
    let chunks: Vec<_> = if entries.is_empty() {
        vec![Vec::new()]
    } else {
        entries.chunks(chunk_size).map(|c| c.to_vec()).collect()
    };
    let n = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let req = StorageRequest::InstallSnapshot {
            shard: replica.shard_ref.clone(),
            term,
            seq,
            chunk,
            first: i == 0,
            last: i + 1 == n,
        };
        match call(node, peer, req).await {
            Ok(StorageResponse::Replicated { .. }) => {}
            Ok(StorageResponse::Error {
                error: StorageError::StaleTerm { current, .. },
            }) => {
                replica.observe_term(current);
                return Err(Step::Stop);
            }
            _ => return Err(Step::Resync),
        }
    }
    Ok(seq)
}
