//! Replica sets, replica states and primaries of one shard.

use std::collections::BTreeMap;

use protocol::cluster::{ClusterMap, CommandError, NodeState, Replica, ReplicaState};
use protocol::{NodeId, ShardId, Term};

use super::lookup::{
    check_replica_list, invalid, not_a_replica, require_alive, shard_mut, shard_ref,
};

/// Replaces a shard's replica set. Kept nodes keep their state, new ones
/// start `Initializing`. The primary must be kept (see [`primary_kept`]).
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
    primary_kept(map, s.primary, replicas)?;
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
    let s = shard_mut(map, collection, shard)?;
    if s.primary.is_none() {
        // A shard emptied earlier: its first replica starts it afresh.
        s.primary = replicas.first().copied();
        s.term = Term(s.term.0 + 1);
    }
    s.replicas = new;
    Ok(())
}

/// A new replica set must keep the primary.
///
/// Which replica holds every acknowledged write is known only from the
/// replicas' reports (the leader's controller has them, the state machine
/// has not) or from a transfer's verified switch. So a dead primary's
/// successor is chosen by the controller (`controller::failover_candidate`,
/// then `PromotePrimary`) and a live primary leaves by a `Move` transfer,
/// whose executor holds writes until the target has every one of them.
/// Electing by list position here could pick a replica on a dead node, or
/// one that lacks writes acknowledged at `majority`.
fn primary_kept(
    map: &ClusterMap,
    primary: Option<NodeId>,
    replicas: &[NodeId],
) -> Result<(), CommandError> {
    let Some(p) = primary.filter(|p| !replicas.contains(p)) else {
        return Ok(());
    };
    if map.nodes.get(&p).is_none_or(|i| i.state == NodeState::Dead) {
        return Err(invalid(&format!(
            "the primary (node {p}) is dead: promote its successor first (PromotePrimary)"
        )));
    }
    Err(invalid(&format!(
        "the replica set must keep the primary (node {p}): move it with a transfer, whose switch hands the primary role over"
    )))
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
