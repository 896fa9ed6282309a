//! The snapshot half of a replication stream: a fuzzy snapshot read in
//! pages (id order, bounded in points and bytes) while writes continue,
//! paced to `rebalancing.throttle_mb_per_sec`, with the WAL pinned from
//! the snapshot's sequence number on; and what a failed snapshot means
//! for a transfer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::cluster::{MigrationPhase, RebalanceSettings};
use protocol::rpc::{SnapshotEntry, StorageError, StorageRequest, StorageResponse};
use protocol::{NodeId, Point, SeqNo, Term};
use tokio::sync::watch;

use super::leadership::StreamSource;
use super::peer_call::{blocking, call, Step};
use super::switch;
use super::transfer::{Pacer, TransferState};
use super::Node;
use crate::shard::WalPin;

/// Snapshot attempts to a transfer's target that may fail in a row
/// before the transfer is aborted.
const MAX_SNAPSHOT_FAILURES: u32 = 5;

/// A snapshot to a transfer's target failed: after
/// [`MAX_SNAPSHOT_FAILURES`] in a row, or at once for a refusal that
/// retrying cannot change, the transfer is aborted.
pub(super) async fn snapshot_failed(
    node: &Node,
    shard: &protocol::rpc::ShardRef,
    t: &TransferState,
    reason: Failure,
) {
    if matches!(reason, Failure::Stopped) {
        // Not the target's fault: a replaced stream or an ended leadership.
        return;
    }
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

/// A name for a new snapshot, unique in this process and (seeded by the
/// clock) across its restarts: see `InstallSnapshot::snapshot_id`.
fn new_snapshot_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let _ = NEXT.compare_exchange(
        0,
        super::transfer::now_ms() << 16,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// Keeps a transfer's totals at or above what was copied: the shard may
/// grow while the snapshot is read, and chunks weigh their payloads,
/// which the first estimate (vectors only) leaves out. The byte total
/// follows the average point weight seen so far.
pub(super) fn count_copied(p: &mut super::transfer::TransferProgress, points: u64, bytes: u64) {
    p.points_copied += points;
    p.bytes_copied += bytes;
    p.points_total = p.points_total.max(p.points_copied);
    if p.points_copied > 0 {
        let per_point = p.bytes_copied as f64 / p.points_copied as f64;
        p.bytes_total = p
            .bytes_total
            .max((p.points_total as f64 * per_point) as u64);
    }
    p.bytes_total = p.bytes_total.max(p.bytes_copied);
}

/// Streams a fuzzy snapshot in pages: S0 = the applied sequence number
/// when it starts; the WAL stays pinned from S0 + 1 (the returned pin)
/// so the operations after it can follow. Returns S0, the applied
/// sequence number after the last page (the peer's content is one of
/// ours once it has applied that far) and the pin. Chunks are bounded by
/// `snapshot_chunk` points and `snapshot_chunk_bytes`, and paced to the
/// map's `rebalancing.throttle_mb_per_sec`. Stops before the next chunk
/// once `stop` is set (the stream was replaced: its successor sends its
/// own snapshot, under its own `snapshot_id`).
pub(super) async fn send_snapshot<R: StreamSource>(
    node: &Node,
    replica: &Arc<R>,
    peer: NodeId,
    term: Term,
    transfer: Option<&TransferState>,
    stop: &watch::Receiver<bool>,
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
    // The next page is read while the current one travels (one page
    // ahead, so at most two are in memory): reading and sending overlap.
    let read_page = |after: Option<protocol::PointId>| {
        let reader = shard.clone();
        tokio::task::spawn_blocking(move || {
            let (page, next) = reader.snapshot_page(after, max_points, max_bytes);
            (page, next, reader.applied_seq())
        })
    };
    let mut ahead = read_page(None);
    let mut first = true;
    let mut pacer = Pacer::new();
    let started = Instant::now();
    let (mut sent_points, mut sent_bytes, mut waited) = (0u64, 0u64, Duration::ZERO);
    tracing::info!(shard = ?replica.shard_ref(), %peer, %seq, points = digest.points, "snapshot starts");
    let collection = replica.shard_ref().collection.clone();
    let snapshot_id = new_snapshot_id();
    loop {
        if *stop.borrow() {
            return Err((Step::Stop, Failure::Stopped));
        }
        let (page, next, applied) = (&mut ahead)
            .await
            .map_err(|_| transient("snapshot page task failed".into()))?;
        let bytes: u64 = page.iter().map(|p| p.approx_bytes() as u64).sum();
        let n = page.len() as u64;
        let last = next.is_none();
        if !last {
            ahead = read_page(next);
        }
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
            snapshot_id: Some(snapshot_id),
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
            t.update(|p| count_copied(p, n, bytes));
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
        first = false;
        let rate = RebalanceSettings::from_map(&node.map()).throttle_mb_per_sec;
        let wait = pacer.sent(bytes, rate);
        if !wait.is_zero() {
            waited += wait;
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::transfer::TransferProgress;

    #[test]
    fn copied_never_exceeds_the_totals() {
        // Estimated from 100 points of 2-d vectors (32 bytes each); the
        // chunks weigh their payloads and the shard grew meanwhile.
        let mut p = TransferProgress {
            points_total: 100,
            bytes_total: 100 * 32,
            ..TransferProgress::default()
        };
        count_copied(&mut p, 60, 60 * 50);
        assert!(p.bytes_copied <= p.bytes_total && p.points_copied <= p.points_total);
        // The byte total follows the weight seen: 100 points of 50 bytes.
        assert_eq!(p.bytes_total, 100 * 50);
        count_copied(&mut p, 60, 60 * 50);
        assert_eq!((p.points_copied, p.points_total), (120, 120));
        assert_eq!((p.bytes_copied, p.bytes_total), (6_000, 6_000));
        // Totals never shrink.
        count_copied(&mut p, 1, 10);
        assert!(p.bytes_total >= 6_000 && p.bytes_copied <= p.bytes_total);
    }
}
