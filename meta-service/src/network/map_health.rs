//! What the cluster map says about the data plane's health, as the
//! numbers `/metrics` exports and the alert rules in `deploy/monitoring`
//! watch: nodes per state, shards short of replicas, shards without a
//! primary able to take writes.
//!
//! Computed from the map alone (no calls to the nodes), so every member
//! answers the same numbers for the same epoch. A node counts as down
//! once the controller has marked it `Dead` (after `--node-dead-after-ms`
//! of silence).

use protocol::cluster::{ClusterMap, NodeState, ReplicaState};
use protocol::NodeId;

/// Counts over the whole map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapHealth {
    pub nodes_alive: usize,
    pub nodes_dead: usize,
    pub nodes_draining: usize,
    /// Shards with fewer in-sync replicas on nodes not dead than their
    /// collection's replication factor.
    pub shards_under_replicated: usize,
    /// Shards whose primary is missing or on a dead node: writes to them
    /// fail until the controller promotes a replica.
    pub shards_unavailable: usize,
}

pub fn map_health(map: &ClusterMap) -> MapHealth {
    let mut h = MapHealth::default();
    for node in map.nodes.values() {
        match node.state {
            NodeState::Alive => h.nodes_alive += 1,
            NodeState::Dead => h.nodes_dead += 1,
            NodeState::Draining => h.nodes_draining += 1,
        }
    }
    // A node missing from the map counts as down, like a dead one.
    let up = |n: NodeId| {
        map.nodes
            .get(&n)
            .is_some_and(|i| i.state != NodeState::Dead)
    };
    for collection in map.collections.values() {
        let wanted = collection.config.replication_factor as usize;
        for shard in collection.shards.values() {
            let in_sync = shard
                .replicas
                .iter()
                .filter(|r| r.state == ReplicaState::Active && up(r.node))
                .count();
            if in_sync < wanted {
                h.shards_under_replicated += 1;
            }
            if !shard.primary.is_some_and(up) {
                h.shards_unavailable += 1;
            }
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::cluster::{CollectionInfo, NodeInfo, Replica, ShardInfo};
    use protocol::{CollectionConfig, Distance, ShardId};

    fn map(rf: u32, shards: Vec<ShardInfo>, states: &[NodeState]) -> ClusterMap {
        let mut map = ClusterMap::default();
        for (i, state) in states.iter().enumerate() {
            let id = NodeId(i as u64 + 1);
            let mut node = NodeInfo::new(id, format!("n{id}:7950"));
            node.state = *state;
            map.nodes.insert(id, node);
        }
        let mut config = CollectionConfig::new(4, Distance::Cosine);
        config.replication_factor = rf;
        map.collections.insert(
            "c".into(),
            CollectionInfo {
                name: "c".into(),
                config,
                shards: shards.into_iter().map(|s| (s.id, s)).collect(),
                created_epoch: Default::default(),
            },
        );
        map
    }

    fn shard(id: u32, nodes: &[u64]) -> ShardInfo {
        ShardInfo::new(ShardId(id), nodes.iter().map(|n| NodeId(*n)))
    }

    #[test]
    fn a_healthy_map_counts_nothing_missing() {
        use NodeState::*;
        let m = map(
            2,
            vec![shard(0, &[1, 2]), shard(1, &[2, 3])],
            &[Alive, Alive, Draining],
        );
        let h = map_health(&m);
        assert_eq!((h.nodes_alive, h.nodes_dead, h.nodes_draining), (2, 0, 1));
        assert_eq!((h.shards_under_replicated, h.shards_unavailable), (0, 0));
    }

    #[test]
    fn a_dead_node_leaves_its_shards_under_replicated_and_its_primaries_unavailable() {
        use NodeState::*;
        let m = map(
            2,
            vec![shard(0, &[1, 2]), shard(1, &[2, 3])],
            &[Dead, Alive, Alive],
        );
        let h = map_health(&m);
        assert_eq!(h.nodes_dead, 1);
        // Shard 0 lost a replica and its primary (node 1); shard 1 is whole.
        assert_eq!((h.shards_under_replicated, h.shards_unavailable), (1, 1));
    }

    #[test]
    fn a_replica_still_copying_does_not_count_as_in_sync() {
        use NodeState::*;
        let mut s = shard(0, &[1]);
        s.replicas.push(Replica {
            node: NodeId(2),
            state: ReplicaState::Initializing,
        });
        let h = map_health(&map(2, vec![s], &[Alive, Alive]));
        assert_eq!((h.shards_under_replicated, h.shards_unavailable), (1, 0));
    }
}
