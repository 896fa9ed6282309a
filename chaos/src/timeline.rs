//! The cluster map sampled over a scenario, and the pure queries the
//! recovery times come from: when did the meta-service mark a node dead,
//! when did the shards a node led get another primary.

use std::collections::BTreeMap;
use std::time::Duration;

use protocol::cluster::{ClusterMap, NodeState};

/// What the runner keeps of one map read.
#[derive(Clone, Debug, PartialEq)]
pub struct MapSample {
    /// On the scenario's clock (see `History::now`).
    pub at: Duration,
    pub epoch: u64,
    pub nodes: BTreeMap<u64, NodeState>,
    /// For each node marked dead: when the meta-service marked it (its
    /// wall clock, ms since the Unix epoch; the containers share the
    /// host's clock).
    pub dead_since_ms: BTreeMap<u64, u64>,
    /// `(collection, shard)` → primary.
    pub primaries: BTreeMap<(String, u32), Option<u64>>,
}

impl MapSample {
    pub fn from_map(at: Duration, map: &ClusterMap) -> MapSample {
        MapSample {
            at,
            epoch: map.epoch.0,
            nodes: map.nodes.values().map(|n| (n.id.0, n.state)).collect(),
            dead_since_ms: map
                .nodes
                .values()
                .filter(|n| n.state == NodeState::Dead)
                .map(|n| (n.id.0, n.state_since_ms))
                .collect(),
            primaries: map
                .collections
                .values()
                .flat_map(|c| {
                    c.shards
                        .values()
                        .map(|s| ((c.name.clone(), s.id.0), s.primary.map(|p| p.0)))
                })
                .collect(),
        }
    }
}

/// Time from `t` to the first sample at or after `t` that satisfies `pred`.
pub fn first_after(
    samples: &[MapSample],
    t: Duration,
    pred: impl Fn(&MapSample) -> bool,
) -> Option<Duration> {
    samples
        .iter()
        .filter(|s| s.at >= t)
        .find(|s| pred(s))
        .map(|s| s.at - t)
}

/// Time from `t` until the map first says `node` is dead.
pub fn marked_dead(samples: &[MapSample], node: u64, t: Duration) -> Option<Duration> {
    first_after(samples, t, |s| s.nodes.get(&node) == Some(&NodeState::Dead))
}

/// When (the meta-service's wall clock, Unix ms) `node` was first marked
/// dead after `t`.
pub fn dead_mark_unix_ms(samples: &[MapSample], node: u64, t: Duration) -> Option<u64> {
    samples
        .iter()
        .filter(|s| s.at >= t)
        .find_map(|s| s.dead_since_ms.get(&node).copied())
}

/// Time from `t` until every one of `shards` has a primary other than
/// `old` (a shard missing from a sample does not qualify).
pub fn primaries_moved(
    samples: &[MapSample],
    shards: &[(String, u32)],
    old: u64,
    t: Duration,
) -> Option<Duration> {
    first_after(samples, t, |s| {
        shards
            .iter()
            .all(|k| matches!(s.primaries.get(k), Some(Some(p)) if *p != old))
    })
}

/// What changed in the cluster over a scenario, from the map samples.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ClusterChanges {
    /// Per storage node, how many times the meta-service marked it dead.
    pub dead_marks: BTreeMap<u64, u32>,
    /// Shard primaries replaced by another node (failovers, primaries
    /// handed over by a transfer), counted over consecutive samples.
    pub primary_changes: u32,
    /// The most primary changes of any one shard (more than one in a
    /// single fault is flapping).
    pub most_changes_of_one_shard: u32,
}

pub fn changes(samples: &[MapSample]) -> ClusterChanges {
    let mut out = ClusterChanges::default();
    let mut per_shard: BTreeMap<&(String, u32), u32> = BTreeMap::new();
    for pair in samples.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        for (node, state) in &after.nodes {
            let was_dead = before.nodes.get(node) == Some(&NodeState::Dead);
            if *state == NodeState::Dead && !was_dead {
                *out.dead_marks.entry(*node).or_default() += 1;
            }
        }
        for (shard, primary) in &after.primaries {
            if let (Some(Some(old)), Some(new)) = (before.primaries.get(shard), primary) {
                if old != new {
                    out.primary_changes += 1;
                    *per_shard.entry(shard).or_default() += 1;
                }
            }
        }
    }
    out.most_changes_of_one_shard = per_shard.values().copied().max().unwrap_or(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: u64, dead: bool, primary: u64) -> MapSample {
        MapSample {
            at: Duration::from_millis(at_ms),
            epoch: at_ms,
            nodes: BTreeMap::from([
                (1, NodeState::Alive),
                (
                    2,
                    if dead {
                        NodeState::Dead
                    } else {
                        NodeState::Alive
                    },
                ),
            ]),
            dead_since_ms: if dead {
                BTreeMap::from([(2, 1_000_000 + at_ms)])
            } else {
                BTreeMap::new()
            },
            primaries: BTreeMap::from([(("c".to_string(), 0), Some(primary))]),
        }
    }

    #[test]
    fn detection_and_new_primary_times() {
        let s = vec![
            sample(0, false, 2),
            sample(1000, false, 2),
            sample(2000, true, 2),
            sample(2500, true, 1),
        ];
        let t = Duration::from_millis(500);
        assert_eq!(marked_dead(&s, 2, t), Some(Duration::from_millis(1500)));
        assert_eq!(marked_dead(&s, 1, t), None);
        assert_eq!(dead_mark_unix_ms(&s, 2, t), Some(1_002_000));
        assert_eq!(dead_mark_unix_ms(&s, 1, t), None);
        let shards = vec![("c".to_string(), 0)];
        assert_eq!(
            primaries_moved(&s, &shards, 2, t),
            Some(Duration::from_millis(2000))
        );
        let unknown = vec![("d".to_string(), 0)];
        assert_eq!(primaries_moved(&s, &unknown, 2, t), None);
    }

    #[test]
    fn changes_count_dead_marks_and_replaced_primaries() {
        let samples = vec![
            sample(0, false, 1),
            sample(100, true, 1),
            sample(200, true, 2),
            sample(300, false, 2),
            sample(400, true, 3),
        ];
        let c = changes(&samples);
        assert_eq!(c.dead_marks.get(&2), Some(&2), "{c:?}");
        assert_eq!(c.primary_changes, 2);
        assert_eq!(
            c.most_changes_of_one_shard, 2,
            "both changes are shard c/0's"
        );
        assert_eq!(changes(&samples[..1]), ClusterChanges::default());
    }
}
