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
use protocol::cluster::MigrationPhase;
use protocol::rpc::{StorageError, StorageRequest, StorageResponse};
use protocol::{SeqNo, SequencedOperation};

use super::leadership::{Stream, StreamSource};
use super::peer_call::{blocking, call, failed, hold_off_after, Step};
use super::snapshot_send::{send_snapshot, snapshot_failed};
use super::switch::{self, Finish};
use super::transfer::TransferState;
use super::{Node, PeerFuture};
use crate::shard::WalPin;
use crate::ShardError;

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
    // The peer's mark stays: a write applied before this stream ended may
    // still count it, and a successor under the same term shares the marks
    // (`LocalReplica::lead` forgets the peers that left).
    tracing::debug!(shard = ?replica.shard_ref(), peer = %stream.peer, "replicator stopped");
}

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
        match send_snapshot(node, replica, peer, term, transfer.as_deref(), &stream.stop).await {
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
        let retry_due_later = transfer.is_some() && verify_after > Instant::now();
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
            // A transfer that is to try its switch again (the target still
            // indexing, a refused switch) must not wait for the next write:
            // on an idle shard there may be none, and the transfer would
            // stall until the controller aborts it.
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(verify_after)),
                if retry_due_later => {}
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
        p.target_acked = acked.0;
        if p.phase == MigrationPhase::Delta && applied.0 > 0 {
            let share = (acked.0 as f64 / applied.0 as f64).min(1.0);
            p.points_copied = p.points_copied.max((p.points_total as f64 * share) as u64);
            p.bytes_copied = p.bytes_copied.max((p.bytes_total as f64 * share) as u64);
        }
    });
}
