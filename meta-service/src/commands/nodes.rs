//! Storage nodes: register, remove, change state; and what a node that
//! comes back from the dead does to its replicas.

use protocol::cluster::{ClusterMap, CommandError, NodeInfo, NodeState, ReplicaState};
use protocol::NodeId;

use super::lookup::invalid;

/// Registers a node, or updates it (a restart re-registers).
pub(super) fn add_node(map: &mut ClusterMap, node: &NodeInfo) -> Result<(), CommandError> {
    if node.addr.is_empty() {
        return Err(invalid("node address must not be empty"));
    }
    if node.incarnation != 0 && map.removed_nodes.contains(&(node.id, node.incarnation)) {
        return Err(CommandError::NodeRemoved { node: node.id });
    }
    let old_state = map.nodes.get(&node.id).map(|n| n.state);
    let mut info = node.clone();
    // Re-registering (a restart) keeps an operator's drain; anything else
    // comes back alive.
    info.state = match old_state {
        Some(NodeState::Draining) => NodeState::Draining,
        _ => NodeState::Alive,
    };
    map.nodes.insert(info.id, info);
    if old_state == Some(NodeState::Dead) {
        // Back from the dead: its replicas missed writes, so none may be
        // promoted until it has caught up (see `controller`).
        mark_behind(map, node.id);
    }
    Ok(())
}

/// Only a node that holds no replica may leave the map.
pub(super) fn remove_node(map: &mut ClusterMap, node: NodeId) -> Result<(), CommandError> {
    if !map.nodes.contains_key(&node) {
        return Err(CommandError::NodeNotFound { node });
    }
    let held = map.shards_on(node).len();
    if held > 0 {
        return Err(CommandError::NodeHoldsReplicas {
            node,
            replicas: held,
        });
    }
    if let Some(info) = map.nodes.remove(&node) {
        if info.incarnation != 0 {
            map.removed_nodes.insert((node, info.incarnation));
        }
    }
    Ok(())
}

pub(super) fn set_node_state(
    map: &mut ClusterMap,
    node: NodeId,
    state: NodeState,
    at_ms: u64,
) -> Result<(), CommandError> {
    let info = map
        .nodes
        .get_mut(&node)
        .ok_or(CommandError::NodeNotFound { node })?;
    if info.state == state {
        return Err(invalid(&format!("node {node} is already {state:?}")));
    }
    let was_dead = info.state == NodeState::Dead;
    info.state = state;
    info.state_since_ms = at_ms;
    if was_dead {
        mark_behind(map, node);
    }
    Ok(())
}

/// Marks `node`'s replicas `Initializing`, except where it is primary
/// (there it was the only choice; its term keeps writers ordered).
fn mark_behind(map: &mut ClusterMap, node: NodeId) {
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
