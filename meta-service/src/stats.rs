//! The cluster's soft figures (replication lag, read load) as the leader
//! last heard them in heartbeats: never in the Raft log, since they change
//! every beat and a new leader hears them again within one.

use protocol::cluster::{ClusterMap, ClusterStats, NodeLoad, ShardLag};

use crate::liveness::Liveness;

/// Lag of every shard whose primary reported one, and every node's reads.
pub fn cluster_stats(live: &Liveness, map: &ClusterMap, now_ms: u64) -> ClusterStats {
    let mut stats = ClusterStats::default();
    for (name, collection) in &map.collections {
        for shard in collection.shards.values() {
            let Some(primary) = shard.primary else {
                continue;
            };
            let Some(report) = live.nodes.get(&primary) else {
                continue;
            };
            if let Some(lag_ms) = report.lag_ms.get(&(name.clone(), shard.id)) {
                stats.shards.push(ShardLag {
                    collection: name.clone(),
                    shard: shard.id,
                    primary,
                    lag_ms: *lag_ms,
                    reported_ms_ago: now_ms.saturating_sub(report.last_seen_ms),
                });
            }
        }
    }
    let mut nodes: Vec<_> = live.nodes.iter().collect();
    nodes.sort_by_key(|(id, _)| **id);
    for (id, report) in nodes {
        if map.nodes.contains_key(id) {
            stats.nodes.push(NodeLoad {
                node: *id,
                reads_last_minute: report.reads_last_minute,
                reported_ms_ago: now_ms.saturating_sub(report.last_seen_ms),
            });
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::apply;
    use crate::liveness::DeadAfter;
    use protocol::cluster::{ClusterCommand, Heartbeat, NodeInfo, ReplicaReport};
    use protocol::{CollectionConfig, Distance, NodeId, SeqNo, ShardId, Term};

    fn beat(live: &mut Liveness, node: u64, at_ms: u64, lag_ms: Option<u64>, reads: u64) {
        let hb = Heartbeat {
            node: NodeId(node),
            epoch: Default::default(),
            replicas: vec![ReplicaReport {
                collection: "c".into(),
                shard: ShardId(0),
                applied: SeqNo(1),
                term: Term(1),
                points: 0,
                bytes: 0,
                poisoned: false,
                lag_ms,
            }],
            reads_last_minute: reads,
        };
        live.record(&hb, at_ms, DeadAfter::fixed(5_000));
    }

    /// Only the map's primary speaks for a shard's lag (a deposed primary
    /// that still reports one is not listened to), and a silent primary's
    /// figure is shown with its growing age.
    #[test]
    fn a_shard_lag_comes_from_its_primary_and_ages() {
        let mut map = ClusterMap::default();
        for id in 1..=2 {
            let node = NodeInfo::new(NodeId(id), format!("127.0.0.1:{id}"));
            apply(&mut map, &ClusterCommand::AddNode { node }).unwrap();
        }
        let mut config = CollectionConfig::new(4, Distance::Dot);
        config.replication_factor = 2;
        config.shard_number = 1;
        let create = ClusterCommand::CreateCollection {
            name: "c".into(),
            config,
        };
        apply(&mut map, &create).unwrap();
        let primary = map.collections["c"].shards[&ShardId(0)].primary.unwrap();
        let other = if primary == NodeId(1) { 2 } else { 1 };

        let mut live = Liveness::default();
        beat(&mut live, other, 1_000, Some(9_999), 3);
        assert!(cluster_stats(&live, &map, 1_000).shards.is_empty());

        beat(&mut live, primary.0, 1_000, Some(1_200), 60);
        let stats = cluster_stats(&live, &map, 1_500);
        assert_eq!(
            stats.shards,
            vec![ShardLag {
                collection: "c".into(),
                shard: ShardId(0),
                primary,
                lag_ms: 1_200,
                reported_ms_ago: 500,
            }]
        );
        let reads: Vec<_> = stats.nodes.iter().map(|n| n.reads_last_minute).collect();
        assert_eq!(reads.iter().sum::<u64>(), 63);
    }
}
