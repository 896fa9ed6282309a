//! The end of a transfer, run by the primary's stream to the target once
//! the target has (nearly) caught up:
//!
//! ```text
//!   Index:  the target's IndexStatus: still indexing what it received?
//!           ──▶ retry in a second (writes stream on; bounded wait)
//!   Verify: nothing in flight, target at s ── Status ──▶ (s, points, checksum)
//!           == the primary's ring entry for s?  no ──▶ AbortMigration
//!   Switch: close the write gate (writes wait, they do not fail)
//!           send the last operations; target at the primary's applied a
//!           Status again == the primary's digest at a?  no ──▶ AbortMigration
//!           CompleteMigration{verified: (a, points, checksum)}
//!             ├─ accepted (epoch e) ─▶ this node adopts a map ≥ e
//!             ├─ refused / not sent ─▶ reopen the gate, retry in a second
//!             └─ no answer ─▶ learn the outcome from a linearizable map read
//!           reopen the gate: held writes proceed under the new map (or
//!           fail with NotPrimary and are retried on the new primary)
//! ```
//!
//! Every write acknowledged before the switch is on the target, whether
//! or not the source was the primary: writes were held until the target
//! had all of them, and are released only once this node follows the map
//! that made the switch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::cluster::{ClusterCommand, ClusterMap, MigrationPhase, Verification};
use protocol::rpc::{
    OptimizerState, ReplicaIndexStatus, ShardRef, StorageRequest, StorageResponse,
};
use protocol::{SeqNo, SequencedOperation};

use super::leadership::{Stream, StreamSource};
use super::peer_call::{blocking, call};
use super::transfer::{now_ms, SubmitError, TransferState};
use super::Node;

/// How the end of a transfer went.
pub(super) enum Finish {
    /// Switched: the map no longer has the transfer.
    Done,
    /// Not now (refused, not caught up, meta-service unreachable): the
    /// stream carries on and tries again.
    Retry,
    Resync,
    Stop,
}

/// How long the switch waits for the target's last operations before it
/// reopens the gate and tries again later (the target was within one
/// batch when the gate closed: a target slower than this is not ready,
/// and writes should not wait for it).
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the switch waits for the map watch to bring the epoch its
/// `CompleteMigration` produced before it reads the map itself (writes
/// are held meanwhile).
const MAP_PUSH_WAIT: Duration = Duration::from_millis(300);

/// The longest a transfer waits for its target to index what it received;
/// then it switches anyway (a replica still scanning exhaustively is
/// slow, not wrong).
const INDEX_WAIT_CAP: Duration = Duration::from_secs(600);

/// Whether a target may start serving reads: it is as far indexed as the
/// source, give or take 1 point in 20. Not "nothing pending": a growing
/// segment under writes stays exact until writes pause or it fills up, on
/// the source as much as on the target.
fn index_ready(target: &ReplicaIndexStatus, source: &ReplicaIndexStatus) -> bool {
    target.pending_points <= source.pending_points + target.points / 20
}

/// Whether to hold the switch for the target's index: not ready, still
/// being worked on (an index build that failed or never starts would hold
/// it for nothing), and not waited for too long already.
fn wait_for_index(
    target: &ReplicaIndexStatus,
    source: &ReplicaIndexStatus,
    waited: Duration,
) -> bool {
    !index_ready(target, source)
        && target.optimizer != OptimizerState::Idle
        && target.last_error.is_none()
        && waited < INDEX_WAIT_CAP
}

/// Verifies and switches the transfer to `stream.peer`; `acked` is what
/// the target has (nothing in flight).
pub(super) async fn finish<R: StreamSource>(
    node: &Arc<Node>,
    replica: &Arc<R>,
    stream: &mut Stream,
    t: &TransferState,
    acked: &mut SeqNo,
) -> Finish {
    let Some(coordinator) = node.coordinator() else {
        return Finish::Retry;
    };
    let shard_ref = replica.shard_ref().clone();
    let peer = stream.peer;
    if let Some(st) = target_index(node, &shard_ref, peer).await {
        let now = now_ms();
        let since = t.progress().index_wait_since_ms.unwrap_or(now);
        let waited = Duration::from_millis(now.saturating_sub(since));
        let ours = replica.shard().index_status();
        if wait_for_index(&st, &ours, waited) {
            t.update(|p| {
                p.phase = MigrationPhase::Index;
                p.target_indexed = st.indexed_points;
                p.index_checks += 1;
                p.index_wait_since_ms.get_or_insert(now);
            });
            return Finish::Retry;
        }
        if !index_ready(&st, &ours) {
            tracing::warn!(shard = ?shard_ref, to = %peer, pending = st.pending_points, points = st.points,
                waited_s = waited.as_secs(), error = ?st.last_error,
                "switching before the target indexed what it received: its reads scan exhaustively until it has");
        }
    }
    t.update(|p| {
        p.phase = MigrationPhase::Verify;
        p.points_copied = p.points_total.max(p.points_copied);
        p.bytes_copied = p.bytes_total.max(p.bytes_copied);
    });
    // Verify while writes continue: the target at `acked` against the
    // primary's digest right after that operation.
    let s = *acked;
    let theirs = match status(node, &shard_ref, peer).await {
        Some(st) => st,
        None => return Finish::Resync,
    };
    if theirs.0 != s {
        return Finish::Resync;
    }
    let shard = replica.shard();
    let Some(ours) = shard.digest_at(s) else {
        // Too far back for the ring (should not happen: the target is
        // within a batch of the primary); try again.
        return Finish::Retry;
    };
    if (theirs.1, theirs.2) != ours {
        abort(
            node,
            &shard_ref,
            format!(
                "verification failed at seq {s}: target has {} points / checksum {:#x}, source {} / {:#x}",
                theirs.1, theirs.2, ours.0, ours.1
            ),
        )
        .await;
        return Finish::Retry;
    }
    // The map must say Switch (or Verify) before CompleteMigration.
    let p = t.progress();
    let switch_report = ClusterCommand::UpdateMigration {
        collection: shard_ref.collection.clone(),
        shard: shard_ref.shard,
        to: peer,
        phase: MigrationPhase::Switch,
        points_copied: p.points_copied,
        points_total: p.points_total,
        bytes_copied: p.bytes_copied,
        bytes_total: p.bytes_total,
        at_ms: now_ms(),
    };
    if let Err(e) = coordinator.submit(switch_report).await {
        tracing::info!(shard = ?shard_ref, to = %peer, error = %e, "transfer cannot enter its switch phase yet");
        return Finish::Retry;
    }
    t.update(|p| p.phase = MigrationPhase::Switch);

    let hold = replica.write_gate().write_owned().await;
    let held_at = Instant::now();
    let outcome = switch_held(node, replica, stream, acked, &coordinator).await;
    let held = held_at.elapsed();
    drop(hold);
    metrics::histogram!("storage_transfer_switch_hold_seconds").record(held.as_secs_f64());
    metrics::gauge!("storage_transfer_last_switch_hold_ms", "collection" => shard_ref.collection.clone(), "shard" => shard_ref.shard.to_string())
        .set(held.as_secs_f64() * 1000.0);
    t.update(|p| p.last_hold_ms = Some(held.as_millis() as u64));
    tracing::info!(shard = ?shard_ref, to = %peer, hold_ms = held.as_millis() as u64, done = matches!(outcome, Finish::Done), "transfer switch");
    outcome
}

/// The switch, with the gate closed.
async fn switch_held<R: StreamSource>(
    node: &Arc<Node>,
    replica: &Arc<R>,
    stream: &mut Stream,
    acked: &mut SeqNo,
    coordinator: &Arc<dyn super::Coordinator>,
) -> Finish {
    let shard_ref = replica.shard_ref().clone();
    let peer = stream.peer;
    let shard = replica.shard();
    // Nothing is applied while the gate is closed: `applied` is final.
    let applied = shard.applied_seq();
    match tokio::time::timeout(
        CATCH_UP_TIMEOUT,
        send_until(node, replica, stream, acked, applied),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(f)) => return f,
        Err(_) => return Finish::Retry,
    }
    let ours = shard.digest();
    let theirs = match status(node, &shard_ref, peer).await {
        Some(st) => st,
        None => return Finish::Retry,
    };
    if theirs != (ours.seq, ours.points, ours.checksum) {
        abort(
            node,
            &shard_ref,
            format!(
                "verification failed at the switch: target at seq {} with {} points / {:#x}, source at {} with {} / {:#x}",
                theirs.0, theirs.1, theirs.2, ours.seq, ours.points, ours.checksum
            ),
        )
        .await;
        return Finish::Retry;
    }
    let complete = ClusterCommand::CompleteMigration {
        collection: shard_ref.collection.clone(),
        shard: shard_ref.shard,
        to: peer,
        verified: Verification {
            seq: ours.seq,
            points: ours.points,
            checksum: ours.checksum,
        },
        at_ms: now_ms(),
    };
    let epoch = match coordinator.submit(complete).await {
        Ok(epoch) => Some(epoch),
        Err(SubmitError::Refused(e)) => {
            tracing::info!(shard = ?shard_ref, to = %peer, error = %e, "transfer switch refused; streaming on");
            return Finish::Retry;
        }
        Err(SubmitError::NotSent(e)) => {
            tracing::info!(shard = ?shard_ref, to = %peer, error = %e, "transfer switch not sent; streaming on");
            return Finish::Retry;
        }
        Err(SubmitError::Unknown(e)) => {
            tracing::warn!(shard = ?shard_ref, to = %peer, error = %e, "transfer switch outcome unknown; reading the map");
            None
        }
    };
    // Writes stay held until this node follows a map with the outcome:
    // releasing them earlier could acknowledge, as the old primary, a
    // write the new primary never gets.
    let deadline = Instant::now() + MAP_PUSH_WAIT;
    if let Some(e) = epoch {
        while node.map().epoch < e && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if node.map().epoch >= e {
            return Finish::Done;
        }
    }
    loop {
        match coordinator.current_map().await {
            Ok(map) => {
                let switched = switched(&map, &shard_ref, peer);
                let at_least = epoch.is_none_or(|e| map.epoch >= e);
                if at_least {
                    node.apply_map_boxed(map).await;
                    return if switched || epoch.is_some() {
                        Finish::Done
                    } else {
                        Finish::Retry
                    };
                }
            }
            Err(e) => {
                tracing::warn!(shard = ?shard_ref, error = %e, "cannot read the map after a switch; writes stay held");
            }
        }
        if *stream.stop.borrow() {
            // Leadership ended meanwhile (the map moved on without us):
            // nothing more to release into.
            return Finish::Stop;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether `map` shows the transfer to `to` completed: no longer running
/// and `to` an active holder.
fn switched(map: &ClusterMap, shard: &ShardRef, to: protocol::NodeId) -> bool {
    map.shard(&shard.collection, shard.shard).is_some_and(|i| {
        i.migration.as_ref().is_none_or(|m| m.to != to)
            && i.replica(to)
                .is_some_and(|r| r.state == protocol::cluster::ReplicaState::Active)
    })
}

/// Sends operations one batch at a time until the target acknowledged
/// `until`.
async fn send_until<R: StreamSource>(
    node: &Node,
    replica: &Arc<R>,
    stream: &mut Stream,
    acked: &mut SeqNo,
    until: SeqNo,
) -> Result<(), Finish> {
    let shard = replica.shard();
    let (max_ops, max_bytes) = (node.options.replicate_batch, node.options.replicate_bytes);
    while *acked < until {
        let from = *acked;
        let reader = shard.clone();
        let ops = match blocking(move || reader.operations_after(from, max_ops, max_bytes)).await {
            Some(Ok(ops)) if !ops.is_empty() => ops,
            _ => return Err(Finish::Resync),
        };
        let req = StorageRequest::Replicate {
            shard: replica.shard_ref().clone(),
            term: stream.term,
            ops: ops.iter().map(|o| SequencedOperation::clone(o)).collect(),
        };
        match call(node, stream.peer, req).await {
            Ok(StorageResponse::Replicated { applied }) if applied > *acked => {
                *acked = applied;
                stream.acks.record(stream.peer, applied);
            }
            _ => return Err(Finish::Resync),
        }
    }
    Ok(())
}

/// The target's (applied, points, checksum).
async fn status(
    node: &Node,
    shard: &ShardRef,
    peer: protocol::NodeId,
) -> Option<(SeqNo, u64, u64)> {
    match call(
        node,
        peer,
        StorageRequest::Status {
            shard: shard.clone(),
        },
    )
    .await
    {
        Ok(StorageResponse::Status { status }) => {
            Some((status.applied, status.points, status.checksum))
        }
        _ => None,
    }
}

/// The target's index progress (`None`: it did not answer; the switch
/// then does not wait for it).
async fn target_index(
    node: &Node,
    shard: &ShardRef,
    peer: protocol::NodeId,
) -> Option<ReplicaIndexStatus> {
    match call(
        node,
        peer,
        StorageRequest::IndexStatus {
            shard: shard.clone(),
        },
    )
    .await
    {
        Ok(StorageResponse::IndexStatus { status }) => Some(status),
        _ => None,
    }
}

/// Ends the shard's transfer as failed; the map then drops the target
/// (its node removes the replica).
pub(super) async fn abort(node: &Node, shard: &ShardRef, reason: String) {
    let Some(c) = node.coordinator() else {
        tracing::warn!(shard = ?shard, %reason, "transfer failed; no meta-service to abort it with");
        return;
    };
    tracing::warn!(shard = ?shard, %reason, "aborting transfer");
    metrics::counter!("storage_transfers_aborted_total", "collection" => shard.collection.clone())
        .increment(1);
    let cmd = ClusterCommand::AbortMigration {
        collection: shard.collection.clone(),
        shard: shard.shard,
        reason,
        at_ms: now_ms(),
    };
    if let Err(e) = c.submit(cmd).await {
        tracing::warn!(shard = ?shard, error = %e, "abort not accepted");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(points: u64, pending: u64, optimizer: OptimizerState) -> ReplicaIndexStatus {
        ReplicaIndexStatus {
            points,
            indexed_points: points - pending,
            pending_points: pending,
            segments: 2,
            optimizer,
            last_error: None,
            payload_index_points: Default::default(),
        }
    }

    #[test]
    fn the_switch_waits_while_the_target_indexes_and_not_longer() {
        let source = status(80_000, 0, OptimizerState::Idle);
        let building = status(80_000, 80_000, OptimizerState::Running);
        assert!(wait_for_index(&building, &source, Duration::ZERO));
        // Queued behind the node's build budget is still being worked on.
        let queued = status(80_000, 40_000, OptimizerState::Waiting);
        assert!(wait_for_index(&queued, &source, Duration::from_secs(30)));
        // 1 point in 20 left: ready.
        let nearly = status(80_000, 4_000, OptimizerState::Running);
        assert!(!wait_for_index(&nearly, &source, Duration::ZERO));
        // Under writes the source has an exact growing segment too: the
        // target need not be better indexed than the source.
        let source_under_writes = status(80_000, 15_000, OptimizerState::Pending);
        let target_under_writes = status(80_000, 18_000, OptimizerState::Pending);
        assert!(!wait_for_index(
            &target_under_writes,
            &source_under_writes,
            Duration::ZERO
        ));
        // Nobody working on it, or it failed: waiting would not help.
        let idle = status(80_000, 80_000, OptimizerState::Idle);
        assert!(!wait_for_index(&idle, &source, Duration::ZERO));
        let failed = ReplicaIndexStatus {
            last_error: Some("disk full".into()),
            ..building.clone()
        };
        assert!(!wait_for_index(&failed, &source, Duration::ZERO));
        // Bounded.
        assert!(!wait_for_index(&building, &source, INDEX_WAIT_CAP));
        // A small shard (no index due below the threshold) never waits.
        let small = status(500, 0, OptimizerState::Idle);
        assert!(!wait_for_index(&small, &small, Duration::ZERO));
    }
}
