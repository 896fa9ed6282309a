//! Shard transfers (migrations): start, report progress, complete, abort.
//! A transfer adds its target as an `Initializing` replica; the shard's
//! primary streams to it and reports. Completing it (only in phase
//! `Verify` or `Switch`, with the executor's verification) makes the
//! target `Active` and, for a `Move`, drops the source (handing over the
//! primary role if the source had it); aborting drops the target. Both
//! are recorded in the map's transfer counters.

use std::collections::BTreeSet;

use protocol::cluster::{
    ClusterMap, CommandError, Migration, MigrationPhase, RebalancePlan, Replica, ReplicaState,
    TransferKind, TransferOutcome, TransferRecord, Verification,
};
use protocol::{NodeId, ShardId, Term};

use super::lookup::{invalid, no_migration, not_a_replica, require_alive, shard_mut, shard_ref};

/// Starts one migration per move; all moves are checked before the first
/// starts.
pub(super) fn rebalance_shards(
    map: &mut ClusterMap,
    plan: &RebalancePlan,
) -> Result<(), CommandError> {
    if plan.moves.is_empty() {
        return Err(invalid("empty rebalance plan"));
    }
    let mut seen = BTreeSet::new();
    for mv in &plan.moves {
        let shard = shard_ref(map, &mv.collection, mv.shard)?;
        if !seen.insert((mv.collection.as_str(), mv.shard)) || shard.migration.is_some() {
            return Err(CommandError::MigrationInProgress {
                collection: mv.collection.clone(),
                shard: mv.shard,
            });
        }
        if !shard.holds(mv.from) {
            return Err(not_a_replica(&mv.collection, mv.shard, mv.from));
        }
        if shard.holds(mv.to) {
            return Err(invalid(&format!(
                "node {} already holds shard {}",
                mv.to, mv.shard
            )));
        }
        if shard.primary.is_none() {
            return Err(invalid(&format!(
                "shard {} of `{}` has no primary to stream from",
                mv.shard, mv.collection
            )));
        }
        require_alive(map, mv.to)?;
    }
    for mv in &plan.moves {
        let shard = shard_mut(map, &mv.collection, mv.shard)?;
        shard.replicas.push(Replica {
            node: mv.to,
            state: ReplicaState::Initializing,
        });
        shard.migration = Some(Migration {
            from: mv.from,
            to: mv.to,
            kind: mv.kind,
            phase: MigrationPhase::Snapshot,
            points_copied: 0,
            points_total: 0,
            bytes_copied: 0,
            bytes_total: 0,
            started_at_ms: plan.created_at_ms,
            updated_at_ms: plan.created_at_ms,
        });
    }
    Ok(())
}

/// A progress report of the executor.
pub(super) struct Progress {
    pub phase: MigrationPhase,
    pub points_copied: u64,
    pub points_total: u64,
    pub bytes_copied: u64,
    pub bytes_total: u64,
    pub at_ms: u64,
}

/// The running migration of the shard, if it goes to `to` (a report or a
/// switch meant for an earlier transfer of the same shard is refused).
fn migration_to<'a>(
    map: &'a ClusterMap,
    collection: &str,
    shard: ShardId,
    to: NodeId,
) -> Result<&'a Migration, CommandError> {
    let s = shard_ref(map, collection, shard)?;
    match &s.migration {
        Some(m) if m.to == to => Ok(m),
        _ => Err(no_migration(collection, shard)),
    }
}

pub(super) fn update_migration(
    map: &mut ClusterMap,
    collection: &str,
    shard: ShardId,
    to: NodeId,
    progress: Progress,
) -> Result<(), CommandError> {
    migration_to(map, collection, shard, to)?;
    let s = shard_mut(map, collection, shard)?;
    let Some(m) = s.migration.as_mut() else {
        return Err(no_migration(collection, shard));
    };
    m.phase = progress.phase;
    m.points_copied = progress.points_copied;
    m.points_total = progress.points_total;
    m.bytes_copied = progress.bytes_copied;
    m.bytes_total = progress.bytes_total;
    m.updated_at_ms = m.updated_at_ms.max(progress.at_ms);
    Ok(())
}

/// Switches the assignment to the target, after verification.
pub(super) fn complete_migration(
    map: &mut ClusterMap,
    collection: &str,
    shard: ShardId,
    to: NodeId,
    verified: &Verification,
    at_ms: u64,
) -> Result<(), CommandError> {
    let m = migration_to(map, collection, shard, to)?.clone();
    let not_ready = |reason: &str| CommandError::TransferNotReady {
        collection: collection.to_string(),
        shard,
        to,
        reason: reason.to_string(),
    };
    if !matches!(m.phase, MigrationPhase::Verify | MigrationPhase::Switch) {
        return Err(not_ready(&format!(
            "it is in phase {:?}; a transfer switches only after its verify phase",
            m.phase
        )));
    }
    if verified.seq.0 == 0 && verified.points > 0 {
        return Err(not_ready("the verification names no sequence number"));
    }
    let s = shard_mut(map, collection, shard)?;
    s.migration = None;
    for r in s.replicas.iter_mut().filter(|r| r.node == to) {
        r.state = ReplicaState::Active;
    }
    if m.kind == TransferKind::Move {
        s.replicas.retain(|r| r.node != m.from);
        if s.primary == Some(m.from) {
            s.primary = Some(to);
            s.term = Term(s.term.0 + 1);
        }
    }
    map.transfers.record(record(
        collection,
        shard,
        &m,
        TransferOutcome::Completed,
        at_ms,
    ));
    Ok(())
}

pub(super) fn abort_migration(
    map: &mut ClusterMap,
    collection: &str,
    shard: ShardId,
    reason: &str,
    at_ms: u64,
) -> Result<(), CommandError> {
    let s = shard_ref(map, collection, shard)?;
    let m = s
        .migration
        .clone()
        .ok_or_else(|| no_migration(collection, shard))?;
    let s = shard_mut(map, collection, shard)?;
    s.migration = None;
    s.replicas.retain(|r| r.node != m.to);
    let reason = if reason.is_empty() {
        "aborted".to_string()
    } else {
        reason.to_string()
    };
    map.transfers.record(record(
        collection,
        shard,
        &m,
        TransferOutcome::Failed { reason },
        at_ms,
    ));
    Ok(())
}

fn record(
    collection: &str,
    shard: ShardId,
    m: &Migration,
    outcome: TransferOutcome,
    at_ms: u64,
) -> TransferRecord {
    TransferRecord {
        collection: collection.to_string(),
        shard,
        from: m.from,
        to: m.to,
        kind: m.kind,
        outcome,
        points_copied: m.points_copied,
        bytes_copied: m.bytes_copied,
        started_at_ms: m.started_at_ms,
        finished_at_ms: at_ms,
    }
}
