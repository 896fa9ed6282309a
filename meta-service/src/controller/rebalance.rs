//! Load-based rebalancing: which replicas to move, as a pure function.
//!
//! Load is the number of replicas a placeable (alive, not draining) node
//! holds. When the busiest and the idlest node differ by more than
//! `rebalancing.trigger_threshold` (default 0.20) of the mean, replicas move
//! from the busiest to the idlest node that does not hold the shard yet,
//! non-primary replicas first (moving a primary costs a term change), until
//! the spread is within the threshold or `max_concurrent_migrations`
//! (default 2, counting the ones already running) are under way.
//!
//! Off unless the cluster setting `rebalancing.auto_enabled` is `true`
//! (`UpdateConfig`): a move is a migration the storage nodes carry out
//! (copy, delta, verify, then `CompleteMigration`), so turning it on is
//! the operator's call.

use std::collections::BTreeMap;

use protocol::cluster::{ClusterMap, RebalancePlan, ShardMove, TransferKind};
use protocol::{NodeId, ShardId};

pub const KEY_ENABLED: &str = "rebalancing.auto_enabled";
pub const KEY_THRESHOLD: &str = "rebalancing.trigger_threshold";
pub const KEY_MAX_CONCURRENT: &str = "rebalancing.max_concurrent_migrations";

fn setting<T: std::str::FromStr>(map: &ClusterMap, key: &str, default: T) -> T {
    map.config
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Replica counts of the placeable nodes.
pub fn loads(map: &ClusterMap) -> BTreeMap<NodeId, usize> {
    let mut loads: BTreeMap<NodeId, usize> = map.placeable_nodes().map(|n| (n, 0)).collect();
    for c in map.collections.values() {
        for s in c.shards.values() {
            for n in s.nodes() {
                if let Some(l) = loads.get_mut(&n) {
                    *l += 1;
                }
            }
        }
    }
    loads
}

/// The moves to start now, if rebalancing is enabled and needed.
pub fn plan(map: &ClusterMap, now_ms: u64) -> Option<RebalancePlan> {
    if !setting(map, KEY_ENABLED, false) {
        return None;
    }
    let threshold: f64 = setting(map, KEY_THRESHOLD, 0.20);
    let max_concurrent: usize = setting(map, KEY_MAX_CONCURRENT, 2);
    let running = map
        .collections
        .values()
        .flat_map(|c| c.shards.values())
        .filter(|s| s.migration.is_some())
        .count();
    let mut budget = max_concurrent.saturating_sub(running);
    let mut loads = loads(map);
    if loads.len() < 2 {
        return None;
    }
    let mut moved: Vec<(String, ShardId)> = Vec::new();
    let mut moves = Vec::new();
    while budget > 0 {
        let total: usize = loads.values().sum();
        let mean = total as f64 / loads.len() as f64;
        let (&busiest, &max) = loads
            .iter()
            .max_by_key(|(n, l)| (**l, std::cmp::Reverse(**n)))?;
        let (&idlest, &min) = loads.iter().min_by_key(|(n, l)| (**l, **n))?;
        if mean == 0.0 || ((max - min) as f64) / mean <= threshold || max - min < 2 {
            break;
        }
        // A shard on the busiest node, not on the idlest, not migrating,
        // not moved in this plan; non-primary replicas first.
        let candidate = map
            .collections
            .values()
            .flat_map(|c| c.shards.values().map(move |s| (c, s)))
            .filter(|(c, s)| {
                s.holds(busiest)
                    && !s.holds(idlest)
                    && s.migration.is_none()
                    && !moved.contains(&(c.name.clone(), s.id))
            })
            .min_by_key(|(c, s)| (s.primary == Some(busiest), c.name.clone(), s.id));
        let Some((c, s)) = candidate else { break };
        moved.push((c.name.clone(), s.id));
        moves.push(ShardMove {
            collection: c.name.clone(),
            shard: s.id,
            from: busiest,
            to: idlest,
            kind: TransferKind::Move,
        });
        *loads.entry(busiest).or_default() -= 1;
        *loads.entry(idlest).or_default() += 1;
        budget -= 1;
    }
    (!moves.is_empty()).then_some(RebalancePlan {
        moves,
        created_at_ms: now_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::apply;
    use protocol::cluster::{ClusterCommand, NodeInfo, NodeState};
    use protocol::{CollectionConfig, Distance};

    fn map(nodes: u64, shards: u32, rf: u32) -> ClusterMap {
        let mut map = ClusterMap::default();
        for id in 1..=nodes {
            let node = NodeInfo::new(NodeId(id), format!("127.0.0.1:{id}"));
            apply(&mut map, &ClusterCommand::AddNode { node }).unwrap();
        }
        let mut config = CollectionConfig::new(4, Distance::Dot);
        config.shard_number = shards;
        config.replication_factor = rf;
        apply(
            &mut map,
            &ClusterCommand::CreateCollection {
                name: "c".into(),
                config,
            },
        )
        .unwrap();
        let on = ClusterCommand::UpdateConfig {
            key: KEY_ENABLED.into(),
            value: "true".into(),
        };
        apply(&mut map, &on).unwrap();
        map
    }

    #[test]
    fn off_unless_enabled() {
        let mut m = map(3, 12, 1);
        let node = NodeInfo::new(NodeId(9), "127.0.0.1:9");
        apply(&mut m, &ClusterCommand::AddNode { node }).unwrap();
        assert!(plan(&m, 0).is_some());
        let off = ClusterCommand::UpdateConfig {
            key: KEY_ENABLED.into(),
            value: "false".into(),
        };
        apply(&mut m, &off).unwrap();
        assert!(plan(&m, 0).is_none());
    }

    #[test]
    fn balanced_cluster_stays_put() {
        assert!(
            plan(&map(3, 8, 3), 0).is_none(),
            "every node holds every shard"
        );
        let m = map(3, 30, 2);
        let l = loads(&m);
        let (max, min) = (l.values().max().unwrap(), l.values().min().unwrap());
        assert!(plan(&m, 0).is_none() || max - min >= 2, "{l:?}");
    }

    #[test]
    fn new_node_gets_replicas_within_the_concurrency_cap() {
        let mut m = map(3, 12, 2);
        let node = NodeInfo::new(NodeId(4), "127.0.0.1:4");
        apply(&mut m, &ClusterCommand::AddNode { node }).unwrap();
        let p = plan(&m, 42).expect("a plan");
        assert_eq!(p.moves.len(), 2, "capped at 2 concurrent migrations");
        assert!(p.moves.iter().all(|mv| mv.to == NodeId(4)));
        assert_eq!(p.created_at_ms, 42);
        let epoch = apply(&mut m, &ClusterCommand::RebalanceShards { plan: p }).unwrap();
        assert!(epoch.0 > 0);
        // Both slots taken: nothing more until one finishes.
        assert!(plan(&m, 43).is_none());
        let more = ClusterCommand::UpdateConfig {
            key: KEY_MAX_CONCURRENT.into(),
            value: "10".into(),
        };
        apply(&mut m, &more).unwrap();
        let p = plan(&m, 44).expect("more moves");
        let l = loads(&m);
        assert!(p.moves.len() <= 8, "{p:?} {l:?}");
    }

    #[test]
    fn draining_and_dead_nodes_are_not_targets() {
        let mut m = map(3, 12, 1);
        for (id, state) in [(4, NodeState::Draining), (5, NodeState::Dead)] {
            let node = NodeInfo::new(NodeId(id), format!("127.0.0.1:{id}"));
            apply(&mut m, &ClusterCommand::AddNode { node }).unwrap();
            let st = ClusterCommand::SetNodeState {
                node: NodeId(id),
                state,
                at_ms: 1,
            };
            apply(&mut m, &st).unwrap();
        }
        if let Some(p) = plan(&m, 0) {
            assert!(p.moves.iter().all(|mv| mv.to.0 <= 3), "{p:?}");
        }
    }
}
