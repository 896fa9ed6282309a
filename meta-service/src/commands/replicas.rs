//! Replica sets, replica states and primaries of one shard.

use std::collections::BTreeMap;

use protocol::cluster::{ClusterMap, CommandError, NodeState, Replica, ReplicaState};
use protocol::{NodeId, ShardId, Term};

use super::lookup::{
    check_replica_list, invalid, not_a_replica, require_alive, shard_mut, shard_ref,
};

/// Replaces a shard's replica set. Kept nodes keep their state, new ones
/// start `Initializing`; a dropped primary hands over as [`successor`]
/// says.
pub(super) fn set_replicas(
    map: &mut ClusterMap,
    collection: &str,
    shard: ShardId,
    replicas: &[NodeId],
) -> Result<(), CommandError> {
    check_replica_list(map, replicas)?;
    let s = shard_ref(map, collection, shard)?;
    if s.migration.is_some() {
        return Err(CommandError::MigrationInProgress {
            collection: collection.to_string(),
            shard,
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
    let new_primary = if primary_kept {
        None
    } else {
        Some(successor(map, s.primary, &new)?)
    };
    let s = shard_mut(map, collection, shard)?;
    if let Some(node) = new_primary {
        s.primary = Some(node);
        s.term = Term(s.term.0 + 1);
    }
    s.replicas = new;
    Ok(())
}

/// Who takes over from a primary a new replica set drops.
///
/// A live primary hands over to the first in-sync replica on a live node.
/// A dead one is refused: which replica holds every acknowledged write is
/// known only from the replicas' reports, which the leader's controller
/// has and the state machine has not, so its successor is chosen there
/// (`controller::failover_candidate`, then `PromotePrimary`) and the set
/// changed afterwards. Electing by list position here would bypass that
/// rule: it could pick a replica on a dead node, or one on the minority
/// side that lacks writes acknowledged at `majority`.
fn successor(
    map: &ClusterMap,
    primary: Option<NodeId>,
    new: &[Replica],
) -> Result<NodeId, CommandError> {
    let alive = |n: NodeId| {
        map.nodes
            .get(&n)
            .is_some_and(|i| i.state == NodeState::Alive)
    };
    if let Some(p) = primary {
        if map.nodes.get(&p).is_none_or(|i| i.state == NodeState::Dead) {
            return Err(invalid(&format!(
                "the primary (node {p}) is dead: promote its successor first (PromotePrimary)"
            )));
        }
    }
    new.iter()
        .find(|r| r.state == ReplicaState::Active && alive(r.node))
        .map(|r| r.node)
        .ok_or_else(|| {
            invalid("the new replica set keeps no in-sync replica on a live node to be primary")
        })
}

/// A primary stays `Active`: demoting it would leave the shard without an
/// in-sync writer.
pub(super) fn set_replica_state(
    map: &mut ClusterMap,
    collection: &str,
    shard: ShardId,
    node: NodeId,
    state: ReplicaState,
) -> Result<(), CommandError> {
    let s = shard_ref(map, collection, shard)?;
    let r = s
        .replica(node)
        .ok_or_else(|| not_a_replica(collection, shard, node))?;
    if r.state == state {
        return Err(invalid(&format!(
            "replica on node {node} is already {state:?}"
        )));
    }
    if s.primary == Some(node) && state != ReplicaState::Active {
        return Err(invalid("the primary replica cannot leave the active state"));
    }
    let s = shard_mut(map, collection, shard)?;
    for r in s.replicas.iter_mut().filter(|r| r.node == node) {
        r.state = state;
    }
    Ok(())
}

/// Makes an in-sync replica on an alive node primary, term + 1; with
/// `expected_term`, only if the shard is still at that term (so a stale
/// controller cannot promote twice).
pub(super) fn promote_primary(
    map: &mut ClusterMap,
    collection: &str,
    shard: ShardId,
    node: NodeId,
    expected_term: Option<Term>,
) -> Result<(), CommandError> {
    let s = shard_ref(map, collection, shard)?;
    if let Some(expected) = expected_term {
        if expected != s.term {
            return Err(CommandError::TermMismatch {
                collection: collection.to_string(),
                shard,
                expected,
                actual: s.term,
            });
        }
    }
    let r = s
        .replica(node)
        .ok_or_else(|| not_a_replica(collection, shard, node))?;
    if r.state != ReplicaState::Active {
        return Err(CommandError::ReplicaNotInSync {
            collection: collection.to_string(),
            shard,
            node,
        });
    }
    require_alive(map, node)?;
    let s = shard_mut(map, collection, shard)?;
    s.primary = Some(node);
    s.term = Term(s.term.0 + 1);
    Ok(())
}
