//! Do the replicas of every shard agree? Pure comparison of what the
//! storage nodes report on `GET /replicas` against the cluster map's
//! assignment.
//!
//! A shard has converged when every node the map assigns it to reports the
//! replica (of the collection's current incarnation) with the same point
//! count and content checksum.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One node's `GET /replicas` answer.
#[derive(Clone, Debug, Deserialize)]
pub struct NodeReplicas {
    pub node: u64,
    #[serde(default)]
    pub epoch: u64,
    pub replicas: Vec<ReplicaReport>,
}

/// One replica as its node reports it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct ReplicaReport {
    pub collection: String,
    pub shard: u32,
    #[serde(default)]
    pub incarnation: u64,
    pub applied: u64,
    pub term: u64,
    pub primary: bool,
    pub points: u64,
    pub checksum: u64,
}

/// Where the map puts one shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardAssignment {
    pub collection: String,
    pub shard: u32,
    /// The collection's incarnation (`created_epoch`).
    pub incarnation: u64,
    pub nodes: Vec<u64>,
}

/// The state of one shard's replicas.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Agreement {
    /// Every assigned replica reports this count and checksum.
    Equal { points: u64, checksum: u64 },
    /// These assigned nodes did not report the replica (down, or not open).
    Missing { nodes: Vec<u64> },
    /// Reports differ: (node, points, checksum, applied).
    Differ { reports: Vec<(u64, u64, u64, u64)> },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShardState {
    pub collection: String,
    pub shard: u32,
    pub agreement: Agreement,
}

/// Compares the reports of the nodes (`node id → its replicas`; a node
/// that did not answer is simply absent) against the assignment.
pub fn compare(
    assignment: &[ShardAssignment],
    reports: &BTreeMap<u64, Vec<ReplicaReport>>,
) -> Vec<ShardState> {
    assignment
        .iter()
        .map(|a| {
            let mut missing = Vec::new();
            let mut seen = Vec::new();
            for node in &a.nodes {
                let found = reports.get(node).and_then(|rs| {
                    rs.iter().find(|r| {
                        r.collection == a.collection
                            && r.shard == a.shard
                            && r.incarnation == a.incarnation
                    })
                });
                match found {
                    Some(r) => seen.push((*node, r.points, r.checksum, r.applied)),
                    None => missing.push(*node),
                }
            }
            let agreement = if !missing.is_empty() {
                Agreement::Missing { nodes: missing }
            } else if seen
                .windows(2)
                .any(|w| (w[0].1, w[0].2) != (w[1].1, w[1].2))
            {
                Agreement::Differ { reports: seen }
            } else {
                match seen.first() {
                    Some(&(_, points, checksum, _)) => Agreement::Equal { points, checksum },
                    None => Agreement::Missing { nodes: Vec::new() },
                }
            };
            ShardState {
                collection: a.collection.clone(),
                shard: a.shard,
                agreement,
            }
        })
        .collect()
}

/// Every shard's replicas agree (and there is at least one shard).
pub fn converged(states: &[ShardState]) -> bool {
    !states.is_empty()
        && states
            .iter()
            .all(|s| matches!(s.agreement, Agreement::Equal { .. }))
}

/// Total points over the shards, once converged.
pub fn total_points(states: &[ShardState]) -> Option<u64> {
    states
        .iter()
        .map(|s| match s.agreement {
            Agreement::Equal { points, .. } => Some(points),
            _ => None,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(shard: u32, points: u64, checksum: u64) -> ReplicaReport {
        ReplicaReport {
            collection: "c".into(),
            shard,
            incarnation: 7,
            applied: points,
            term: 1,
            primary: false,
            points,
            checksum,
        }
    }

    fn assign(shard: u32, nodes: &[u64]) -> ShardAssignment {
        ShardAssignment {
            collection: "c".into(),
            shard,
            incarnation: 7,
            nodes: nodes.to_vec(),
        }
    }

    #[test]
    fn equal_replicas_converge() {
        let a = vec![assign(0, &[1, 2, 3]), assign(1, &[2, 3, 4])];
        let reports = BTreeMap::from([
            (1, vec![rep(0, 10, 99)]),
            (2, vec![rep(0, 10, 99), rep(1, 5, 7)]),
            (3, vec![rep(0, 10, 99), rep(1, 5, 7)]),
            (4, vec![rep(1, 5, 7)]),
        ]);
        let s = compare(&a, &reports);
        assert!(converged(&s));
        assert_eq!(total_points(&s), Some(15));
    }

    #[test]
    fn a_differing_checksum_or_count_does_not_converge() {
        let a = vec![assign(0, &[1, 2])];
        let reports = BTreeMap::from([(1, vec![rep(0, 10, 99)]), (2, vec![rep(0, 10, 98)])]);
        let s = compare(&a, &reports);
        assert!(!converged(&s));
        assert!(matches!(s[0].agreement, Agreement::Differ { .. }));
        let reports = BTreeMap::from([(1, vec![rep(0, 10, 99)]), (2, vec![rep(0, 9, 99)])]);
        assert!(!converged(&compare(&a, &reports)));
        assert_eq!(total_points(&compare(&a, &reports)), None);
    }

    #[test]
    fn a_silent_node_or_an_old_incarnation_counts_as_missing() {
        let a = vec![assign(0, &[1, 2])];
        let reports = BTreeMap::from([(1, vec![rep(0, 10, 99)])]);
        let s = compare(&a, &reports);
        assert_eq!(s[0].agreement, Agreement::Missing { nodes: vec![2] });
        let mut old = rep(0, 10, 99);
        old.incarnation = 3;
        let reports = BTreeMap::from([(1, vec![rep(0, 10, 99)]), (2, vec![old])]);
        assert!(!converged(&compare(&a, &reports)));
        // Reports of shards nobody asked about do not matter; no shards at
        // all is not "converged".
        assert!(!converged(&compare(&[], &reports)));
    }
}
