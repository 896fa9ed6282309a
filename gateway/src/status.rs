//! A collection's `status`, `optimizer_status`, `indexed_vectors_count`
//! and `segments_count`, as Qdrant reports them, from every replica's
//! [`ReplicaIndexStatus`].
//!
//! The gateway asks each replica directly when a client asks (one cheap
//! `IndexStatus` call per replica, all at once) rather than reading what
//! storage nodes put in their heartbeats: heartbeats reach the
//! meta-service, not the gateway, and a status that lags by a heartbeat
//! and a map watch would say `green` just after an ingest, the moment a
//! client waiting for `green` looks.
//!
//! The rule ([`summarize`]):
//!
//! - `red`: a replica's background work failed and has not succeeded
//!   since (Qdrant: an optimizer error); `optimizer_status` carries it.
//! - `yellow`: the replica set is degraded (a replica not active or on a
//!   dead node, a shard that could not count), a replica did not answer,
//!   or a replica has points waiting for an index or work running or due.
//! - `green`: every replica of every shard answered and is fully
//!   optimised. Points a replica keeps exact on purpose (a growing
//!   segment below the seal threshold) do not count as waiting, as in
//!   Qdrant below `indexing_threshold`.
//!
//! `indexed_vectors_count` counts each shard once: the minimum over its
//! active replicas that answered. The minimum, not the primary's, because
//! a search may go to any active replica; the figure is what the least
//! indexed one serves, and it equals the points only when every replica
//! has indexed them, which is what `green` promises. `segments_count` is
//! each shard's primary's (any answering replica's when the primary did
//! not answer), summed, as Qdrant sums its local shards.

use std::collections::BTreeMap;
use std::time::Duration;

use protocol::cluster::{ClusterMap, CollectionInfo, NodeState, ReplicaState};
use protocol::rpc::{ReplicaIndexStatus, ShardRef, StorageRequest, StorageResponse};
use protocol::{NodeId, ShardId};

use crate::gateway::Gateway;

/// The longest a status call to one replica may take: a replica that
/// cannot answer this fast is reported as not answering (yellow) instead
/// of holding the collection's info for the full shard timeout.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// Each replica's answer (`None`: no answer, or not asked because its
/// node is dead).
pub type Reports = BTreeMap<(ShardId, NodeId), Option<ReplicaIndexStatus>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Color {
    Green,
    Yellow,
    Red,
}

impl Color {
    pub fn as_str(self) -> &'static str {
        match self {
            Color::Green => "green",
            Color::Yellow => "yellow",
            Color::Red => "red",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectionIndexStatus {
    pub status: Color,
    /// The first replica failure, `None` for Qdrant's `"ok"`.
    pub optimizer_error: Option<String>,
    pub indexed_vectors: u64,
    pub segments: u64,
}

impl Gateway {
    /// Asks every replica of the collection for its index status, all at
    /// once; replicas on dead nodes are not asked.
    pub async fn index_reports(&self, map: &ClusterMap, coll: &CollectionInfo) -> Reports {
        let timeout = self.options.shard_timeout.min(STATUS_TIMEOUT);
        let calls = coll.shards.values().flat_map(|s| {
            s.replicas.iter().map(move |r| {
                let node = map
                    .nodes
                    .get(&r.node)
                    .filter(|n| n.state != NodeState::Dead)
                    .cloned();
                let req = StorageRequest::IndexStatus {
                    shard: ShardRef {
                        collection: coll.name.clone(),
                        shard: s.id,
                    },
                };
                let client = self.client.clone();
                async move {
                    let answer = match node {
                        Some(n) => tokio::time::timeout(timeout, client.call(&n, req)).await,
                        None => return ((s.id, r.node), None),
                    };
                    let status = match answer {
                        Ok(Ok(StorageResponse::IndexStatus { status })) => Some(status),
                        other => {
                            tracing::debug!(collection = %coll.name, shard = %s.id, node = %r.node,
                                answer = ?other, "no index status from replica");
                            None
                        }
                    };
                    ((s.id, r.node), status)
                }
            })
        });
        futures::future::join_all(calls).await.into_iter().collect()
    }
}

/// The collection's status from the replicas' reports; `degraded` is the
/// replica-set check the caller made (a shard that could not count, a
/// replica not active or on a dead node).
pub fn summarize(
    coll: &CollectionInfo,
    reports: &Reports,
    degraded: bool,
) -> CollectionIndexStatus {
    let mut all_optimized = true;
    let mut error = None;
    let mut indexed = 0;
    let mut segments = 0;
    for shard in coll.shards.values() {
        let mut min_indexed: Option<u64> = None;
        let mut shard_segments = None;
        for r in &shard.replicas {
            let Some(st) = reports.get(&(shard.id, r.node)).and_then(|s| s.as_ref()) else {
                all_optimized = false;
                continue;
            };
            all_optimized &= st.is_optimized();
            if error.is_none() {
                error = st
                    .last_error
                    .as_ref()
                    .map(|e| format!("shard {} on node {}: {e}", shard.id, r.node));
            }
            if r.state == ReplicaState::Active {
                min_indexed =
                    Some(min_indexed.map_or(st.indexed_points, |m| m.min(st.indexed_points)));
            }
            if shard.primary == Some(r.node) || shard_segments.is_none() {
                shard_segments = Some(st.segments);
            }
        }
        indexed += min_indexed.unwrap_or(0);
        segments += shard_segments.unwrap_or(0);
    }
    let status = if error.is_some() {
        Color::Red
    } else if degraded || !all_optimized {
        Color::Yellow
    } else {
        Color::Green
    };
    CollectionIndexStatus {
        status,
        optimizer_error: error,
        indexed_vectors: indexed,
        segments,
    }
}

#[cfg(test)]
mod tests {
    use protocol::cluster::{Replica, ShardInfo};
    use protocol::rpc::OptimizerState;
    use protocol::{CollectionConfig, Distance, Epoch};

    use super::*;

    /// Two shards on nodes 1-3, RF 2: shard 0 on (1, 2), shard 1 on (2, 3);
    /// primaries 1 and 2.
    fn coll() -> CollectionInfo {
        let shard = |id: u32, nodes: [u64; 2]| ShardInfo::new(ShardId(id), nodes.map(NodeId));
        CollectionInfo {
            name: "c".into(),
            config: CollectionConfig::new(4, Distance::Dot),
            shards: [
                (ShardId(0), shard(0, [1, 2])),
                (ShardId(1), shard(1, [2, 3])),
            ]
            .into_iter()
            .collect(),
            created_epoch: Epoch(1),
        }
    }

    fn done(points: u64, segments: u64) -> Option<ReplicaIndexStatus> {
        Some(ReplicaIndexStatus {
            points,
            indexed_points: points,
            segments,
            ..ReplicaIndexStatus::default()
        })
    }

    fn all_done() -> Reports {
        [
            ((ShardId(0), NodeId(1)), done(100, 1)),
            ((ShardId(0), NodeId(2)), done(100, 2)),
            ((ShardId(1), NodeId(2)), done(50, 1)),
            ((ShardId(1), NodeId(3)), done(50, 1)),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn green_when_every_replica_is_indexed_counting_each_shard_once() {
        let s = summarize(&coll(), &all_done(), false);
        assert_eq!(s.status, Color::Green);
        assert_eq!(s.optimizer_error, None);
        assert_eq!(s.indexed_vectors, 150);
        // Shard 0's primary (node 1) has 1 segment, shard 1's 1.
        assert_eq!(s.segments, 2);
    }

    #[test]
    fn one_replica_still_indexing_makes_it_yellow_and_counts_the_least_indexed() {
        let mut r = all_done();
        r.insert(
            (ShardId(0), NodeId(2)),
            Some(ReplicaIndexStatus {
                points: 100,
                indexed_points: 60,
                pending_points: 40,
                segments: 2,
                optimizer: OptimizerState::Running,
                last_error: None,
                payload_index_points: Default::default(),
            }),
        );
        let s = summarize(&coll(), &r, false);
        assert_eq!(s.status, Color::Yellow);
        assert_eq!(s.indexed_vectors, 60 + 50);
        for state in [OptimizerState::Pending, OptimizerState::Waiting] {
            let mut r = all_done();
            r.insert(
                (ShardId(1), NodeId(3)),
                Some(ReplicaIndexStatus {
                    optimizer: state,
                    ..done(50, 2).expect("some")
                }),
            );
            assert_eq!(
                summarize(&coll(), &r, false).status,
                Color::Yellow,
                "{state:?}"
            );
        }
    }

    #[test]
    fn small_collections_kept_exact_on_purpose_are_green() {
        // Below the seal threshold: nothing indexed, nothing pending.
        let mut r = all_done();
        for v in r.values_mut() {
            *v = Some(ReplicaIndexStatus {
                points: 10,
                indexed_points: 0,
                segments: 1,
                ..ReplicaIndexStatus::default()
            });
        }
        let s = summarize(&coll(), &r, false);
        assert_eq!(s.status, Color::Green);
        assert_eq!(s.indexed_vectors, 0);
    }

    #[test]
    fn a_silent_replica_or_a_degraded_set_is_yellow() {
        let mut r = all_done();
        r.insert((ShardId(1), NodeId(3)), None);
        let s = summarize(&coll(), &r, false);
        assert_eq!(s.status, Color::Yellow);
        // Shard 1 still counted from the replica that answered.
        assert_eq!(s.indexed_vectors, 150);
        let mut r = all_done();
        r.remove(&(ShardId(0), NodeId(1)));
        let s = summarize(&coll(), &r, false);
        assert_eq!(s.status, Color::Yellow);
        // Primary missing: segments from the other replica.
        assert_eq!(s.segments, 3);
        assert_eq!(summarize(&coll(), &all_done(), true).status, Color::Yellow);
    }

    #[test]
    fn an_initializing_replica_does_not_lower_the_indexed_count_but_keeps_it_yellow() {
        let mut c = coll();
        if let Some(s) = c.shards.get_mut(&ShardId(1)) {
            s.replicas.push(Replica {
                node: NodeId(1),
                state: ReplicaState::Initializing,
            });
        }
        let mut r = all_done();
        r.insert(
            (ShardId(1), NodeId(1)),
            Some(ReplicaIndexStatus {
                points: 20,
                pending_points: 20,
                segments: 1,
                ..ReplicaIndexStatus::default()
            }),
        );
        let s = summarize(&c, &r, true);
        assert_eq!(s.status, Color::Yellow);
        assert_eq!(s.indexed_vectors, 150);
    }

    #[test]
    fn a_failed_optimizer_is_red_with_its_error() {
        let mut r = all_done();
        r.insert(
            (ShardId(1), NodeId(2)),
            Some(ReplicaIndexStatus {
                last_error: Some("no space left on device".into()),
                ..done(50, 1).expect("some")
            }),
        );
        let s = summarize(&coll(), &r, true);
        assert_eq!(s.status, Color::Red);
        let e = s.optimizer_error.expect("error reported");
        assert!(e.contains("no space left") && e.contains("node 2"), "{e}");
    }
}
