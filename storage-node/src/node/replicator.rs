//! The primary's replication stream to one peer: first make sure the
//! peer's history is a prefix of ours (else it gets a snapshot), then send
//! every new operation in order and record what the peer has applied.
//!
//! ```text
//!   sync ──▶ stream: keep ≤ `replicate_window` Replicate batches in flight
//!    ▲         │  each ≤ `replicate_batch` ops and ≤ `replicate_bytes`,
//!    │         │  read from the WAL's in-memory tail (disk if older)
//!    │         ├─ Replicated{applied} ─▶ record the ack, send more
//!    │         ├─ Behind{applied}     ─▶ drop what is in flight, resend from applied
//!    │         ├─ StaleTerm           ─▶ stop (a newer primary exists)
//!    └─────────┴─ anything else       ─▶ sync again
//! ```
//!
//! Batches go out on independent QUIC streams, so one may reach the
//! replica before its predecessor; the replica waits for the gap to fill
//! for a moment before it answers `Behind`, which is rare and handled by
//! resending.
//!
//! A snapshot is read in pages (id order, bounded in points and bytes)
//! while writes continue, from S0 = the applied sequence number when it
//! starts; the WAL is pinned from S0 + 1 (and then from what the peer
//! acknowledged) so the operations the peer still needs are not truncated
//! under it. Snapshot bytes are paced to `rebalancing.throttle_mb_per_sec`.
//! When the peer is the target of the shard's transfer, the stream also
//! reports progress and, once the peer has caught up, verifies and
//! switches (`switch.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesOrdered, StreamExt};
use protocol::cluster::{MigrationPhase, RebalanceSettings};
use protocol::rpc::{SnapshotEntry, StorageError, StorageRequest, StorageResponse};
use protocol::{NodeId, Point, SeqNo, SequencedOperation, Term};

use super::leadership::{Stream, StreamSource};
use super::switch::{self, Finish};
use super::transfer::{Pacer, TransferState};
use super::{CallError, Node, PeerFuture};
use crate::shard::WalPin;
use crate::ShardError;

pub(super) enum Step {
    /// Start over with a sync (peer behind, diverged, restarted).
    Resync,
    /// Leadership ended.
    Stop,
}

pub(super) async fn run<R: StreamSource>(node: Arc<Node>, replica: Arc<R>, mut stream: Stream) {
    let backoff = node.options.retry_backoff;
    loop {
        if *stream.stop.borrow() {
            break;
        }
        match sync_then_stream(&node, &replica, &mut stream).await {
            Step::Stop => break,
            Step::Resync => {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stream.kick.notified() => {}
                    _ = stream.stop.changed() => {}
                }
            }
        }
    }
    stream.acks.forget(stream.peer);
    tracing::debug!(shard = ?replica.shard_ref(), peer = %stream.peer, "replicator stopped");
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
async fn hold_off_after(node: &Node, peer: NodeId, e: &CallError) {
    let pause = node.options.pause_after(e);
    if !pause.is_zero() {
        tracing::warn!(%peer, error = %e, ?pause, "peer call failed in a way retrying does not fix; holding off");
        tokio::time::sleep(pause).await;
    }
}

fn failed(peer: NodeId) {
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

/// Snapshot attempts to a transfer's target that may fail in a row
/// before the transfer is aborted.
const MAX_SNAPSHOT_FAILURES: u32 = 5;

async fn sync_then_stream<R: StreamSource>(
    node: &Arc<Node>,
    replica: &Arc<R>,
    stream: &mut Stream,
) -> Step {
    let (peer, term) = (stream.peer, stream.term);
    let shard_ref = replica.shard_ref().clone();
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
            failed(peer);
            return Step::Resync;
        }
        Err(e) => {
            tracing::debug!(%peer, error = %e, transient = e.is_transient(), "peer status call failed");
            failed(peer);
            return Step::Resync;
        }
    };
    if status.incarnation != replica.incarnation() {
        // The peer still holds a deleted collection of the same name (or
        // already a newer one): its history is not comparable to ours.
        return Step::Resync;
    }
    let (theirs, their_term) = (status.applied, status.last_term);
    let shard = replica.shard();
    let Some((prefix, in_wal)) = blocking(move || {
        // The peer's history is a prefix of ours iff we have its last
        // operation under the same term.
        let prefix = theirs <= shard.applied_seq()
            && matches!(shard.term_at(theirs), Ok(Some(t)) if t == their_term);
        (prefix, shard.has_operations_after(theirs))
    })
    .await
    else {
        return Step::Resync;
    };
    let mut acked = theirs;
    let mut transfer = node.transfer_to(&shard_ref, peer);
    // An empty transfer target gets a snapshot even while the WAL still
    // reaches back to the start: live points, not the whole history.
    let fresh_target =
        transfer.is_some() && theirs == SeqNo(0) && replica.shard().applied_seq() > SeqNo(0);
    let pin: WalPin;
    // The peer's content is a state of ours only from here on: a fuzzy
    // snapshot's pages may reflect operations up to the primary's applied
    // when the last one was read, and a peer at S0 is not yet at S0.
    let mut consistent_from = acked.max(status.consistent_from);
    if !prefix || !in_wal || fresh_target {
        match send_snapshot(node, replica, peer, term, transfer.as_deref()).await {
            Ok((seq, end, p)) => {
                acked = seq;
                consistent_from = end;
                pin = p;
                if let Some(t) = &transfer {
                    t.update(|p| p.snapshot_failures = 0);
                }
            }
            Err((step, reason)) => {
                if let Some(t) = &transfer {
                    snapshot_failed(node, &shard_ref, t, reason).await;
                }
                return step;
            }
        }
        tracing::info!(shard = ?shard_ref, %peer, seq = %acked, diverged = !prefix, "peer caught up from a snapshot");
        metrics::counter!("storage_snapshots_sent_total", "collection" => shard_ref.collection.clone()).increment(1);
    } else {
        pin = replica.shard().pin_wal(acked.next());
    }
    if let Some(t) = &transfer {
        t.update(|p| p.phase = MigrationPhase::Delta);
    }
    stream.acks.record(peer, acked);
    // Not before the transfer's first verification attempt.
    let mut verify_after = Instant::now();
    let mut applied_rx = replica.applied_watch();
    let window = node.options.replicate_window.max(1);
    let (max_ops, max_bytes) = (node.options.replicate_batch, node.options.replicate_bytes);
    // Highest sequence number sent (acknowledged or in flight).
    let mut sent = acked;
    let mut in_flight: FuturesOrdered<PeerFuture> = FuturesOrdered::new();
    loop {
        if *stream.stop.borrow() {
            return Step::Stop;
        }
        let shard = replica.shard();
        pin.advance(acked.next());
        if let Some(t) = transfer.clone() {
            let lag = shard.applied_seq().0.saturating_sub(acked.0);
            if lag <= max_ops as u64 && acked >= consistent_from && Instant::now() >= verify_after {
                // Stop sending; what is in flight lands first.
                while let Some(result) = in_flight.next().await {
                    match result {
                        Ok(StorageResponse::Replicated { applied }) => acked = acked.max(applied),
                        _ => return Step::Resync,
                    }
                }
                stream.acks.record(peer, acked);
                match switch::finish(node, replica, stream, &t, &mut acked).await {
                    Finish::Done => transfer = None,
                    Finish::Retry => verify_after = Instant::now() + Duration::from_secs(1),
                    Finish::Resync => return Step::Resync,
                    Finish::Stop => return Step::Stop,
                }
                sent = acked;
                stream.acks.record(peer, acked);
                continue;
            }
        }
        while in_flight.len() < window && shard.applied_seq() > sent {
            let reader = shard.clone();
            let read = blocking(move || reader.operations_after(sent, max_ops, max_bytes)).await;
            let ops = match read {
                Some(Ok(ops)) => ops,
                Some(Err(ShardError::WalTruncated { .. })) | None => return Step::Resync,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "cannot read the WAL to replicate");
                    return Step::Resync;
                }
            };
            let Some(last) = ops.last().map(|o| o.seq) else {
                break;
            };
            sent = last;
            let req = StorageRequest::Replicate {
                shard: shard_ref.clone(),
                term,
                ops: ops.iter().map(|o| SequencedOperation::clone(o)).collect(),
            };
            in_flight.push_back(node.peers.call(peer, req));
        }
        tokio::select! {
            Some(result) = in_flight.next(), if !in_flight.is_empty() => {
                match result {
                    Ok(StorageResponse::Replicated { applied }) => {
                        metrics::counter!("storage_replicated_ops_total", "collection" => shard_ref.collection.clone(), "peer" => peer.to_string())
                            .increment(applied.0.saturating_sub(acked.0));
                        acked = acked.max(applied);
                        stream.acks.record(peer, acked);
                        if let Some(t) = &transfer {
                            delta_progress(t, acked, replica.shard().applied_seq());
                        }
                        let lag = replica.shard().applied_seq().0.saturating_sub(acked.0);
                        metrics::gauge!("storage_replication_lag_ops", "collection" => shard_ref.collection.clone(), "shard" => shard_ref.shard.to_string(), "peer" => peer.to_string())
                            .set(lag as f64);
                    }
                    Ok(StorageResponse::Error {
                        error: StorageError::Behind { applied },
                    }) if applied >= acked => {
                        // A batch before this one did not arrive (or came
                        // too late): resend everything after `applied`.
                        metrics::counter!("storage_replication_resends_total", "peer" => peer.to_string())
                            .increment(1);
                        in_flight = FuturesOrdered::new();
                        acked = applied;
                        stream.acks.record(peer, acked);
                        sent = acked;
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
                        failed(peer);
                        hold_off_after(node, peer, &e).await;
                        return Step::Resync;
                    }
                }
            }
            r = applied_rx.changed() => if r.is_err() { return Step::Stop },
            // The peer says it is behind what it acknowledged (restarted
            // from an older disk, lost its data): sync again.
            _ = stream.kick.notified() => return Step::Resync,
            _ = stream.stop.changed() => return Step::Stop,
        }
    }
}

/// In the delta phase: points copied in proportion to the operations the
/// target has of the primary's.
fn delta_progress(t: &TransferState, acked: SeqNo, applied: SeqNo) {
    t.update(|p| {
        if p.phase == MigrationPhase::Delta && applied.0 > 0 {
            let share = (acked.0 as f64 / applied.0 as f64).min(1.0);
            p.points_copied = p.points_copied.max((p.points_total as f64 * share) as u64);
            p.bytes_copied = p.bytes_copied.max((p.bytes_total as f64 * share) as u64);
        }
    });
}

/// A snapshot to a transfer's target failed: after
/// [`MAX_SNAPSHOT_FAILURES`] in a row, or at once for a refusal that
/// retrying cannot change, the transfer is aborted.
async fn snapshot_failed(
    node: &Node,
    shard: &protocol::rpc::ShardRef,
    t: &TransferState,
    reason: Failure,
) {
    let mut failures = 0;
    t.update(|p| {
        p.snapshot_failures += 1;
        failures = p.snapshot_failures;
    });
    let to = t.progress().to;
    let give_up = match &reason {
        Failure::Stopped => return,
        Failure::Permanent(_) => true,
        Failure::Transient(_) => failures >= MAX_SNAPSHOT_FAILURES,
    };
    tracing::warn!(shard = ?shard, %to, failures, reason = %reason, "snapshot to the transfer target failed");
    if give_up {
        switch::abort(
            node,
            shard,
            format!("snapshot to node {to} failed {failures} time(s): {reason}"),
        )
        .await;
    }
}

/// Why a snapshot stream ended early.
pub(super) enum Failure {
    /// Leadership ended or a newer term exists: not the target's fault.
    Stopped,
    Transient(String),
    Permanent(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Stopped => write!(f, "stopped"),
            Failure::Transient(r) | Failure::Permanent(r) => write!(f, "{r}"),
        }
    }
}

/// Streams a fuzzy snapshot in pages: S0 = the applied sequence number
/// when it starts; the WAL stays pinned from S0 + 1 (the returned pin)
/// so the operations after it can follow. Returns S0, the applied
/// sequence number after the last page (the peer's content is one of
/// ours once it has applied that far) and the pin. Chunks are bounded by
/// `snapshot_chunk` points and `snapshot_chunk_bytes`, and paced to the
/// map's `rebalancing.throttle_mb_per_sec`.
async fn send_snapshot<R: StreamSource>(
    node: &Node,
    replica: &Arc<R>,
    peer: NodeId,
    term: Term,
    transfer: Option<&TransferState>,
) -> Result<(SeqNo, SeqNo, WalPin), (Step, Failure)> {
    let transient = |r: String| (Step::Resync, Failure::Transient(r));
    let shard = replica.shard();
    let reader = shard.clone();
    let (digest, pin) = blocking(move || {
        // Pinned before S0 is read: a checkpoint running meanwhile cannot
        // truncate past it.
        let pin = reader.pin_wal(SeqNo(0));
        let d = reader.digest();
        pin.advance(d.seq.next());
        (d, pin)
    })
    .await
    .ok_or_else(|| transient("snapshot task failed".into()))?;
    let seq = digest.seq;
    let per_point = shard.config().dimension as u64 * 4 + 24;
    if let Some(t) = transfer {
        t.update(|p| {
            p.phase = MigrationPhase::Snapshot;
            p.points_total = digest.points;
            p.bytes_total = digest.points * per_point;
            p.points_copied = 0;
            p.bytes_copied = 0;
        });
    }
    let (max_points, max_bytes) = (
        node.options.snapshot_chunk.max(1),
        node.options.snapshot_chunk_bytes.max(1),
    );
    let mut after = None;
    let mut first = true;
    let mut pacer = Pacer::new();
    let started = Instant::now();
    let (mut sent_points, mut sent_bytes, mut waited) = (0u64, 0u64, Duration::ZERO);
    tracing::info!(shard = ?replica.shard_ref(), %peer, %seq, points = digest.points, "snapshot starts");
    let collection = replica.shard_ref().collection.clone();
    loop {
        let reader = shard.clone();
        let (page, next, applied) = blocking(move || {
            let (page, next) = reader.snapshot_page(after, max_points, max_bytes);
            (page, next, reader.applied_seq())
        })
        .await
        .ok_or_else(|| transient("snapshot page task failed".into()))?;
        let bytes: u64 = page.iter().map(|p| p.approx_bytes() as u64).sum();
        let n = page.len() as u64;
        let last = next.is_none();
        let chunk = page
            .into_iter()
            .map(|p| SnapshotEntry {
                point: Point {
                    id: p.point.id,
                    vector: p.point.vector,
                    payload: p.point.payload,
                },
                version: p.version,
            })
            .collect();
        let req = StorageRequest::InstallSnapshot {
            shard: replica.shard_ref().clone(),
            term,
            seq,
            chunk,
            first,
            last,
            last_term: Some(digest.last_term),
            consistent_from: last.then_some(applied),
        };
        match call(node, peer, req).await {
            Ok(StorageResponse::Replicated { .. }) => {}
            Ok(StorageResponse::Error {
                error: StorageError::StaleTerm { current, .. },
            }) => {
                replica.observe_term(current);
                return Err((Step::Stop, Failure::Stopped));
            }
            Ok(StorageResponse::Error { error }) if !error.is_transient() => {
                return Err((Step::Resync, Failure::Permanent(error.to_string())));
            }
            Ok(other) => return Err(transient(format!("{other:?}"))),
            Err(e) if e.is_transient() => return Err(transient(e.to_string())),
            Err(e) => return Err((Step::Resync, Failure::Permanent(e.to_string()))),
        }
        metrics::counter!("storage_snapshot_bytes_sent_total", "collection" => collection.clone())
            .increment(bytes);
        if let Some(t) = transfer {
            t.update(|p| {
                p.points_copied += n;
                p.bytes_copied += bytes;
            });
        }
        sent_points += n;
        sent_bytes += bytes;
        if last {
            let secs = started.elapsed().as_secs_f64();
            tracing::info!(shard = ?replica.shard_ref(), %peer, points = sent_points, bytes = sent_bytes, secs,
                throttled_secs = waited.as_secs_f64(), mb_per_sec = sent_bytes as f64 / 1e6 / secs.max(1e-6), "snapshot sent");
            // Read after the last page: no page reflects anything later.
            return Ok((seq, applied, pin));
        }
        after = next;
        first = false;
        let rate = RebalanceSettings::from_map(&node.map()).throttle_mb_per_sec;
        let wait = pacer.sent(bytes, rate);
        if !wait.is_zero() {
            waited += wait;
            tokio::time::sleep(wait).await;
        }
    }
}
