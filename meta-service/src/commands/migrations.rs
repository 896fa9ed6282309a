//! Migrations (rebalancing): start, report progress, complete, abort. A
//! migration adds its target as an `Initializing` replica; completing it
//! drops the source (handing over the primary role if the source had it),
//! aborting drops the target.

use std::collections::BTreeSet;

use protocol::cluster::{
    ClusterMap, CommandError, Migration, MigrationPhase, RebalancePlan, Replica, ReplicaState,
};
use protocol::{ShardId, Term};

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
            phase: MigrationPhase::Snapshot,
            vectors_copied: 0,
            vectors_total: 0,
            started_at_ms: plan.created_at_ms,
        });
    }
    Ok(())
}

pub(super) fn update_migration(
    map: &mut ClusterMap,
    collection: &str,
    shard: ShardId,
    phase: MigrationPhase,
    vectors_copied: u64,
    vectors_total: u64,
) -> Result<(), CommandError> {
    let s = shard_mut(map, collection, shard)?;
    let m = s
        .migration
        .as_mut()
        .ok_or_else(|| no_migration(collection, shard))?;
    m.phase = phase;
    m.vectors_copied = vectors_copied;
    m.vectors_total = vectors_total;
    Ok(())
}

/// Switches the assignment from source to target, after the verify phase.
pub(super) fn complete_migration(
    map: &mut ClusterMap,
    collection: &str,
    shard: ShardId,
) -> Result<(), CommandError> {
    let s = shard_ref(map, collection, shard)?;
    let m = s
        .migration
        .as_ref()
        .ok_or_else(|| no_migration(collection, shard))?;
    if m.phase != MigrationPhase::Verify {
        return Err(invalid("a migration completes only after the verify phase"));
    }
    let (from, to) = (m.from, m.to);
    let s = shard_mut(map, collection, shard)?;
    s.migration = None;
    s.replicas.retain(|r| r.node != from);
    for r in s.replicas.iter_mut().filter(|r| r.node == to) {
        r.state = ReplicaState::Active;
    }
    if s.primary == Some(from) {
        s.primary = Some(to);
        s.term = Term(s.term.0 + 1);
    }
    Ok(())
}

pub(super) fn abort_migration(
    map: &mut ClusterMap,
    collection: &str,
    shard: ShardId,
) -> Result<(), CommandError> {
    let s = shard_ref(map, collection, shard)?;
    let to = s
        .migration
        .as_ref()
        .ok_or_else(|| no_migration(collection, shard))?
        .to;
    let s = shard_mut(map, collection, shard)?;
    s.migration = None;
    s.replicas.retain(|r| r.node != to);
    Ok(())
}
