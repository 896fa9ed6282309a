//! Applying a [`ClusterCommand`] to a [`ClusterMap`]: validation and
//! effect, as one pure function.
//!
//! This is the whole state machine of the meta-service. It must be
//! deterministic (every member applies the same log and must end with the
//! same map), so it never reads a clock or a random number: times come in
//! the commands. A refused command leaves the map untouched (validation
//! happens before the first write); an accepted one bumps the epoch by one.

use std::collections::BTreeMap;

use protocol::cluster::{
    ClusterCommand, ClusterMap, CollectionInfo, CommandError, Migration, MigrationPhase, NodeState,
    Replica, ReplicaState, ShardInfo,
};
use protocol::ring::{shard_key, HashRing};
use protocol::{Epoch, NodeId, ShardId, Term};

/// Applies `cmd` to `map`. On `Ok` the map changed and its epoch is the
/// returned one; on `Err` the map is exactly as before.
pub fn apply(map: &mut ClusterMap, cmd: &ClusterCommand) -> Result<Epoch, CommandError> {
    // Every arm validates against `map` first and only then mutates, so a
    // refusal never leaves a half-applied change.
    match cmd {
        ClusterCommand::IfEpoch { epoch, command } => {
            if matches!(**command, ClusterCommand::IfEpoch { .. }) {
                return Err(invalid("nested epoch guards"));
            }
            if map.epoch != *epoch {
                return Err(CommandError::EpochMismatch {
                    expected: *epoch,
                    actual: map.epoch,
                });
            }
            // The inner command bumps the epoch (once) if it applies.
            return apply(map, command);
        }
        ClusterCommand::CreateCollection { name, config } => {
            if name.is_empty() || name.len() > 255 || name.contains('/') {
                return Err(invalid(
                    "collection name must be 1..=255 characters without '/'",
                ));
            }
            if map.collections.contains_key(name) {
                return Err(CommandError::CollectionExists { name: name.clone() });
            }
            config.validate().map_err(|e| invalid(&e.to_string()))?;
            let ring = placement_ring(map);
            let rf = config.replication_factor as usize;
            if ring.len() < rf {
                return Err(CommandError::NotEnoughNodes {
                    needed: rf,
                    available: ring.len(),
                });
            }
            let shards = (0..config.shard_number)
                .map(ShardId)
                .map(|id| {
                    (
                        id,
                        new_shard(id, ring.replicas_for(shard_key(name, id).as_bytes(), rf)),
                    )
                })
                .collect();
            map.collections.insert(
                name.clone(),
                CollectionInfo {
                    name: name.clone(),
                    config: config.clone(),
                    shards,
                    created_epoch: Epoch(map.epoch.0 + 1),
                },
            );
        }
        ClusterCommand::DeleteCollection { name } => {
            if map.collections.remove(name).is_none() {
                return Err(CommandError::CollectionNotFound { name: name.clone() });
            }
        }
        ClusterCommand::CreateShard {
            collection,
            shard,
            replicas,
        } => {
            let coll = collection_ref(map, collection)?;
            if coll.shards.contains_key(shard) {
                return Err(CommandError::ShardExists {
                    collection: collection.clone(),
                    shard: *shard,
                });
            }
            let nodes = match replicas {
                Some(nodes) => {
                    check_replica_list(map, nodes)?;
                    nodes.clone()
                }
                None => {
                    let rf = coll.config.replication_factor as usize;
                    let ring = placement_ring(map);
                    if ring.len() < rf {
                        return Err(CommandError::NotEnoughNodes {
                            needed: rf,
                            available: ring.len(),
                        });
                    }
                    ring.replicas_for(shard_key(collection, *shard).as_bytes(), rf)
                }
            };
            collection_mut(map, collection)?
                .shards
                .insert(*shard, new_shard(*shard, nodes));
        }
        ClusterCommand::DeleteShard { collection, shard } => {
            if collection_mut(map, collection)?
                .shards
                .remove(shard)
                .is_none()
            {
                return Err(shard_not_found(collection, *shard));
            }
        }
        ClusterCommand::AddNode { node } => {
            if node.addr.is_empty() {
                return Err(invalid("node address must not be empty"));
            }
            let old_state = map.nodes.get(&node.id).map(|n| n.state);
            let mut info = node.clone();
            // Re-registering (a restart) keeps an operator's drain; anything
            // else comes back alive.
            info.state = match old_state {
                Some(NodeState::Draining) => NodeState::Draining,
                _ => NodeState::Alive,
            };
            map.nodes.insert(info.id, info);
            if old_state == Some(NodeState::Dead) {
                // Back from the dead: its replicas missed writes, so none may
                // be promoted until it has caught up (see `controller`).
                mark_behind(map, node.id);
            }
        }
        ClusterCommand::RemoveNode { node } => {
            if !map.nodes.contains_key(node) {
                return Err(CommandError::NodeNotFound { node: *node });
            }
            let held = map.shards_on(*node).len();
            if held > 0 {
                return Err(CommandError::NodeHoldsReplicas {
                    node: *node,
                    replicas: held,
                });
            }
            map.nodes.remove(node);
        }
        ClusterCommand::SetNodeState { node, state, at_ms } => {
            let info = map
                .nodes
                .get_mut(node)
                .ok_or(CommandError::NodeNotFound { node: *node })?;
            if info.state == *state {
                return Err(invalid(&format!("node {node} is already {state:?}")));
            }
            let was_dead = info.state == NodeState::Dead;
            info.state = *state;
            info.state_since_ms = *at_ms;
            if was_dead {
                mark_behind(map, *node);
            }
        }
        ClusterCommand::RebalanceShards { plan } => {
            if plan.moves.is_empty() {
                return Err(invalid("empty rebalance plan"));
            }
            let mut seen = std::collections::BTreeSet::new();
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
        }
        ClusterCommand::UpdateMigration {
            collection,
            shard,
            phase,
            vectors_copied,
            vectors_total,
        } => {
            let s = shard_mut(map, collection, *shard)?;
            let m = s
                .migration
                .as_mut()
                .ok_or_else(|| no_migration(collection, *shard))?;
            m.phase = *phase;
            m.vectors_copied = *vectors_copied;
            m.vectors_total = *vectors_total;
        }
        ClusterCommand::CompleteMigration { collection, shard } => {
            let s = shard_ref(map, collection, *shard)?;
            let m = s
                .migration
                .as_ref()
                .ok_or_else(|| no_migration(collection, *shard))?;
            if m.phase != MigrationPhase::Verify {
                return Err(invalid("a migration completes only after the verify phase"));
            }
            let (from, to) = (m.from, m.to);
            let s = shard_mut(map, collection, *shard)?;
            s.migration = None;
            s.replicas.retain(|r| r.node != from);
            for r in s.replicas.iter_mut().filter(|r| r.node == to) {
                r.state = ReplicaState::Active;
            }
            if s.primary == Some(from) {
                s.primary = Some(to);
                s.term = Term(s.term.0 + 1);
            }
        }
        ClusterCommand::AbortMigration { collection, shard } => {
            let s = shard_ref(map, collection, *shard)?;
            let to = s
                .migration
                .as_ref()
                .ok_or_else(|| no_migration(collection, *shard))?
                .to;
            let s = shard_mut(map, collection, *shard)?;
            s.migration = None;
            s.replicas.retain(|r| r.node != to);
        }
        ClusterCommand::UpdateConfig { key, value } => {
            if key.is_empty() {
                return Err(invalid("config key must not be empty"));
            }
            map.config.insert(key.clone(), value.clone());
        }
        ClusterCommand::SetReplicas {
            collection,
            shard,
            replicas,
        } => {
            check_replica_list(map, replicas)?;
            let s = shard_ref(map, collection, *shard)?;
            if s.migration.is_some() {
                return Err(CommandError::MigrationInProgress {
                    collection: collection.clone(),
                    shard: *shard,
                });
            }
            let old: BTreeMap<NodeId, ReplicaState> =
                s.replicas.iter().map(|r| (r.node, r.state)).collect();
            let new: Vec<Replica> = replicas
                .iter()
                .map(|&node| Replica {
                    node,
                    state: old
                        .get(&node)
                        .copied()
                        .unwrap_or(ReplicaState::Initializing),
                })
                .collect();
            let primary_kept = s.primary.is_some_and(|p| replicas.contains(&p));
            if !primary_kept && !new.iter().any(|r| r.state == ReplicaState::Active) {
                return Err(invalid(
                    "the new replica set keeps no in-sync replica to be primary",
                ));
            }
            let s = shard_mut(map, collection, *shard)?;
            if !primary_kept {
                s.primary = new
                    .iter()
                    .find(|r| r.state == ReplicaState::Active)
                    .map(|r| r.node);
                s.term = Term(s.term.0 + 1);
            }
            s.replicas = new;
        }
        ClusterCommand::SetReplicaState {
            collection,
            shard,
            node,
            state,
        } => {
            let s = shard_ref(map, collection, *shard)?;
            let r = s
                .replica(*node)
                .ok_or_else(|| not_a_replica(collection, *shard, *node))?;
            if r.state == *state {
                return Err(invalid(&format!(
                    "replica on node {node} is already {state:?}"
                )));
            }
            if s.primary == Some(*node) && *state != ReplicaState::Active {
                return Err(invalid("the primary replica cannot leave the active state"));
            }
            let s = shard_mut(map, collection, *shard)?;
            for r in s.replicas.iter_mut().filter(|r| r.node == *node) {
                r.state = *state;
            }
        }
        ClusterCommand::PromotePrimary {
            collection,
            shard,
            node,
            expected_term,
        } => {
            let s = shard_ref(map, collection, *shard)?;
            if let Some(expected) = expected_term {
                if *expected != s.term {
                    return Err(CommandError::TermMismatch {
                        collection: collection.clone(),
                        shard: *shard,
                        expected: *expected,
                        actual: s.term,
                    });
                }
            }
            let r = s
                .replica(*node)
                .ok_or_else(|| not_a_replica(collection, *shard, *node))?;
            if r.state != ReplicaState::Active {
                return Err(CommandError::ReplicaNotInSync {
                    collection: collection.clone(),
                    shard: *shard,
                    node: *node,
                });
            }
            require_alive(map, *node)?;
            let s = shard_mut(map, collection, *shard)?;
            s.primary = Some(*node);
            s.term = Term(s.term.0 + 1);
        }
    }
    map.epoch = Epoch(map.epoch.0 + 1);
    Ok(map.epoch)
}

/// Marks `node`'s replicas `Initializing`, except where it is primary
/// (there it was the only choice; its term keeps writers ordered).
pub(crate) fn mark_behind(map: &mut ClusterMap, node: NodeId) {
    for coll in map.collections.values_mut() {
        for shard in coll.shards.values_mut() {
            if shard.primary == Some(node) {
                continue;
            }
            for r in shard.replicas.iter_mut().filter(|r| r.node == node) {
                r.state = ReplicaState::Initializing;
            }
        }
    }
}

/// The ring of nodes that may receive new replicas.
pub fn placement_ring(map: &ClusterMap) -> HashRing {
    HashRing::new(map.placeable_nodes())
}

fn new_shard(id: ShardId, nodes: Vec<NodeId>) -> ShardInfo {
    ShardInfo {
        id,
        primary: nodes.first().copied(),
        replicas: nodes
            .into_iter()
            .map(|node| Replica {
                node,
                state: ReplicaState::Active,
            })
            .collect(),
        term: Term(1),
        migration: None,
    }
}

fn check_replica_list(map: &ClusterMap, nodes: &[NodeId]) -> Result<(), CommandError> {
    if nodes.is_empty() {
        return Err(invalid("a replica set must not be empty"));
    }
    let distinct: std::collections::BTreeSet<_> = nodes.iter().collect();
    if distinct.len() != nodes.len() {
        return Err(invalid("a replica set must not repeat a node"));
    }
    for node in nodes {
        if !map.nodes.contains_key(node) {
            return Err(CommandError::NodeNotFound { node: *node });
        }
    }
    Ok(())
}

fn require_alive(map: &ClusterMap, node: NodeId) -> Result<(), CommandError> {
    match map.nodes.get(&node) {
        None => Err(CommandError::NodeNotFound { node }),
        Some(n) if n.state != NodeState::Alive => Err(CommandError::NodeNotAlive { node }),
        Some(_) => Ok(()),
    }
}

fn collection_ref<'a>(map: &'a ClusterMap, name: &str) -> Result<&'a CollectionInfo, CommandError> {
    map.collections
        .get(name)
        .ok_or_else(|| CommandError::CollectionNotFound {
            name: name.to_string(),
        })
}

fn collection_mut<'a>(
    map: &'a mut ClusterMap,
    name: &str,
) -> Result<&'a mut CollectionInfo, CommandError> {
    map.collections
        .get_mut(name)
        .ok_or_else(|| CommandError::CollectionNotFound {
            name: name.to_string(),
        })
}

fn shard_ref<'a>(
    map: &'a ClusterMap,
    collection: &str,
    shard: ShardId,
) -> Result<&'a ShardInfo, CommandError> {
    collection_ref(map, collection)?
        .shards
        .get(&shard)
        .ok_or_else(|| shard_not_found(collection, shard))
}

fn shard_mut<'a>(
    map: &'a mut ClusterMap,
    collection: &str,
    shard: ShardId,
) -> Result<&'a mut ShardInfo, CommandError> {
    collection_mut(map, collection)?
        .shards
        .get_mut(&shard)
        .ok_or_else(|| shard_not_found(collection, shard))
}

fn invalid(reason: &str) -> CommandError {
    CommandError::Invalid {
        reason: reason.to_string(),
    }
}

fn shard_not_found(collection: &str, shard: ShardId) -> CommandError {
    CommandError::ShardNotFound {
        collection: collection.to_string(),
        shard,
    }
}

fn not_a_replica(collection: &str, shard: ShardId, node: NodeId) -> CommandError {
    CommandError::NotAReplica {
        collection: collection.to_string(),
        shard,
        node,
    }
}

fn no_migration(collection: &str, shard: ShardId) -> CommandError {
    CommandError::NoMigration {
        collection: collection.to_string(),
        shard,
    }
}

#[cfg(test)]
mod tests;
