//! Writes: split by shard, each shard write sent to that shard's primary.
//!
//! A request touching several shards becomes several independent shard
//! writes, sent concurrently. They are not atomic together: if one fails
//! (no primary reachable, consistency not met), the client gets a 503
//! naming the failed shards and how many other shard writes were applied;
//! those stay applied. Every write operation is idempotent (upsert by id,
//! delete, payload set / overwrite / delete / clear), so retrying the whole
//! request is safe and is what a client should do.
//!
//! Per shard: a write in flight to a primary that a newer map no longer
//! names (failed over, or moved by a transfer) is abandoned and sent to
//! the new primary at once, instead of waiting for the old one's answer or
//! the call timeout (safe: writes are idempotent, and the old primary can
//! no longer acknowledge under the new map's term). A `NotPrimary` /
//! `StaleEpoch` answer refreshes the map and
//! retries; other transient refusals (shard not opened yet, lease expired)
//! and transient call errors (node unreachable, connection lost) back off,
//! refresh and retry, bounded by `write_attempts`. Not retried:
//! `ConsistencyNotMet` and a call that timed out (the write may still
//! apply, and the client decides), and a permanent [`CallError`] (TLS
//! refused, undecodable message, bad local config): the same primary would
//! fail the same way on every attempt and no other node may take the
//! write, so the shard fails at once with the reason.

use std::collections::BTreeMap;

use protocol::cluster::NodeState;
use protocol::rpc::{ShardRef, StorageError, StorageRequest, StorageResponse};
use protocol::{Epoch, Operation, SeqNo, ShardId, WriteConsistency};

use crate::client::CallError;
use crate::error::{from_storage, GatewayError, Result};
use crate::gateway::Gateway;

/// The outcome of a (possibly multi-shard) write.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteAck {
    /// Highest sequence number among the shard writes (Qdrant's operation id).
    pub seq: SeqNo,
    pub shards: usize,
}

enum Failure {
    /// Worth reporting as "this shard failed" (503).
    Unavailable(String),
    /// The request itself is wrong: reported as is.
    Fatal(GatewayError),
}

impl Gateway {
    async fn write_shard(
        &self,
        collection: &str,
        shard: ShardId,
        op: Operation,
        consistency: WriteConsistency,
    ) -> std::result::Result<SeqNo, Failure> {
        let shard_ref = ShardRef {
            collection: collection.to_string(),
            shard,
        };
        let mut backoff = self.options.write_backoff;
        let mut last = String::from("no attempt made");
        for attempt in 0..self.options.write_attempts.max(1) {
            if attempt > 0 {
                metrics::counter!("gateway_write_retries_total").increment(1);
            }
            let map = self.maps.get();
            let Some(info) = map.shard(collection, shard) else {
                if !map.collections.contains_key(collection) {
                    return Err(Failure::Fatal(GatewayError::CollectionNotFound {
                        name: collection.to_string(),
                    }));
                }
                last = format!("shard {shard} not in the cluster map");
                self.pause_and_refresh(&mut backoff, Epoch(0)).await;
                continue;
            };
            let Some(node) = info.primary.and_then(|p| map.nodes.get(&p)).cloned() else {
                last = format!("shard {shard} has no primary");
                self.pause_and_refresh(&mut backoff, Epoch(0)).await;
                continue;
            };
            if node.state == NodeState::Dead {
                // Its lease ran out before it was marked dead, so it cannot
                // take the write; the controller promotes a replica only when
                // enough of them are reachable. Fail fast rather than wait
                // out a call timeout per attempt.
                last = format!(
                    "shard {shard}: primary {} is down and no replica can safely take over yet",
                    node.id
                );
                self.pause_and_refresh(&mut backoff, Epoch(0)).await;
                continue;
            }
            let req = StorageRequest::Write {
                shard: shard_ref.clone(),
                epoch: map.epoch,
                op: op.clone(),
                consistency,
            };
            let _in_flight = self.health.begin(node.id);
            let timeout = self.options.shard_timeout;
            let mut maps = self.maps.subscribe();
            self.counters.shard_request();
            let call = tokio::time::timeout(timeout, self.client.call(&node, req));
            let res = tokio::select! {
                r = call => match r {
                    Ok(r) => r,
                    Err(_) => Err(CallError::TimedOut {
                        node: node.id,
                        after: timeout,
                    }),
                },
                () = self.primary_replaced(&mut maps, collection, shard, node.id, info.term) => {
                    metrics::counter!("gateway_write_redirects_total").increment(1);
                    last = format!("primary {} was replaced while the write was in flight", node.id);
                    continue;
                }
            };
            match res {
                Ok(StorageResponse::Written { seq, .. }) => {
                    self.health.success(node.id);
                    return Ok(seq);
                }
                Ok(StorageResponse::Error { error }) => {
                    self.health.success(node.id);
                    last = format!("primary {}: {error}", node.id);
                    match error {
                        StorageError::StaleEpoch { .. } | StorageError::NotPrimary { .. } => {
                            // The map moved (or the node lags behind it):
                            // refresh, let the node catch up, try again.
                            metrics::counter!("gateway_stale_map_retries_total").increment(1);
                            let at_least = match error {
                                StorageError::NotPrimary { epoch, .. } => Epoch(epoch.0),
                                _ => Epoch(0),
                            };
                            self.pause_and_refresh(&mut backoff, at_least).await;
                        }
                        StorageError::ConsistencyNotMet { .. } => {
                            return Err(Failure::Unavailable(last));
                        }
                        e if e.is_transient() => {
                            self.pause_and_refresh(&mut backoff, Epoch(0)).await;
                        }
                        e => return Err(Failure::Fatal(from_storage(e))),
                    }
                }
                Ok(other) => {
                    return Err(Failure::Fatal(GatewayError::Internal {
                        message: format!("unexpected answer to a write: {other:?}"),
                    }))
                }
                Err(CallError::TimedOut { after, .. }) => {
                    // It may still apply; do not pile on.
                    self.health.failure(node.id);
                    return Err(Failure::Unavailable(format!(
                        "primary {} did not answer within {after:?}; the write may still apply",
                        node.id
                    )));
                }
                Err(e) if e.is_transient() => {
                    self.health.failure(node.id);
                    last = format!("primary: {e}");
                    self.pause_and_refresh(&mut backoff, Epoch(0)).await;
                }
                Err(e) => {
                    self.health.failure(node.id);
                    tracing::warn!(shard = %shard, error = %e, "write to the primary failed permanently; not retried");
                    return Err(Failure::Unavailable(format!(
                        "primary: {e} (not retried: retrying does not fix it)"
                    )));
                }
            }
        }
        Err(Failure::Unavailable(last))
    }

    /// Returns once the cached map names another primary for the shard, or
    /// a newer term (never, while it names `primary` under `term`).
    async fn primary_replaced(
        &self,
        maps: &mut tokio::sync::watch::Receiver<Epoch>,
        collection: &str,
        shard: ShardId,
        primary: protocol::NodeId,
        term: protocol::Term,
    ) {
        loop {
            if maps.changed().await.is_err() {
                return std::future::pending().await;
            }
            let map = self.maps.get();
            let still = map
                .shard(collection, shard)
                .is_some_and(|s| s.primary == Some(primary) && s.term == term);
            if !still {
                return;
            }
        }
    }

    async fn pause_and_refresh(&self, backoff: &mut std::time::Duration, at_least: Epoch) {
        tokio::time::sleep(*backoff).await;
        *backoff = (*backoff * 2).min(std::time::Duration::from_secs(1));
        if let Err(e) = self.maps.refresh(at_least).await {
            tracing::warn!(error = %e, "map refresh failed");
        }
    }

    /// Applies per-shard operations concurrently (see the module docs for
    /// what a partial failure means).
    pub(crate) async fn write(
        &self,
        collection: &str,
        ops: BTreeMap<ShardId, Operation>,
        consistency: WriteConsistency,
    ) -> Result<WriteAck> {
        let total = ops.len();
        let calls = ops.into_iter().map(|(shard, op)| async move {
            (
                shard,
                self.write_shard(collection, shard, op, consistency).await,
            )
        });
        let results = futures::future::join_all(calls).await;
        let mut ack = WriteAck {
            seq: SeqNo(0),
            shards: total,
        };
        let mut failed = Vec::new();
        let mut reasons = Vec::new();
        for (shard, r) in results {
            match r {
                Ok(seq) => ack.seq = ack.seq.max(seq),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Unavailable(why)) => {
                    failed.push(shard);
                    reasons.push(format!("shard {shard}: {why}"));
                }
            }
        }
        if failed.is_empty() {
            return Ok(ack);
        }
        Err(GatewayError::WriteFailed {
            collection: collection.to_string(),
            applied: total - failed.len(),
            failed,
            reason: reasons.join("; "),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use parking_lot::Mutex;
    use protocol::cluster::{
        ClusterMap, CollectionInfo, NodeInfo, Replica, ReplicaState, ShardInfo,
    };
    use protocol::{CollectionConfig, Distance, NodeId, PointId, Term};

    use super::*;
    use crate::gateway::RoutingOptions;
    use crate::testkit::{FixedMeta, FnClient};

    /// Two shards on nodes 1 and 2; shard 0's primary is `primary0`.
    fn map(epoch: u64, primary0: u64) -> ClusterMap {
        let shard = |id: u32, primary: u64| ShardInfo {
            id: ShardId(id),
            replicas: [1, 2]
                .iter()
                .map(|n| Replica {
                    node: NodeId(*n),
                    state: ReplicaState::Active,
                })
                .collect(),
            primary: Some(NodeId(primary)),
            term: Term(epoch),
            migration: None,
        };
        let mut config = CollectionConfig::new(2, Distance::Dot);
        config.shard_number = 2;
        ClusterMap {
            epoch: Epoch(epoch),
            nodes: [1, 2]
                .iter()
                .map(|n| (NodeId(*n), NodeInfo::new(NodeId(*n), format!("n{n}"))))
                .collect(),
            collections: BTreeMap::from([(
                "c".to_string(),
                CollectionInfo {
                    name: "c".into(),
                    config,
                    shards: BTreeMap::from([
                        (ShardId(0), shard(0, primary0)),
                        (ShardId(1), shard(1, 1)),
                    ]),
                    created_epoch: Epoch(1),
                },
            )]),
            config: BTreeMap::new(),
            ..ClusterMap::default()
        }
    }

    fn delete(ids: &[u64]) -> Operation {
        Operation::Delete {
            ids: ids.iter().map(|i| PointId::Num(*i)).collect(),
        }
    }

    fn gateway(meta_map: ClusterMap, cached: ClusterMap, client: FnClient) -> Arc<Gateway> {
        let gw = Gateway::new(
            Arc::new(FixedMeta(Mutex::new(meta_map))),
            Arc::new(client),
            RoutingOptions {
                write_backoff: Duration::from_millis(1),
                ..RoutingOptions::default()
            },
        );
        gw.maps.offer(cached);
        gw
    }

    #[tokio::test]
    async fn not_primary_refreshes_the_map_and_retries() {
        // The cached map says node 1 leads shard 0; the meta-service knows
        // node 2 does (epoch 2). Node 1 refuses; node 2 takes it.
        let client = FnClient {
            handler: Box::new(|node, _| {
                Ok(if node == NodeId(1) {
                    StorageResponse::Error {
                        error: StorageError::NotPrimary {
                            primary: Some(NodeId(2)),
                            epoch: Epoch(2),
                        },
                    }
                } else {
                    StorageResponse::Written {
                        seq: SeqNo(7),
                        acks: 2,
                    }
                })
            }),
            calls: Default::default(),
        };
        let calls = client.calls.clone();
        let gw = gateway(map(2, 2), map(1, 1), client);
        let ack = gw
            .write(
                "c",
                BTreeMap::from([(ShardId(0), delete(&[1]))]),
                WriteConsistency::Majority,
            )
            .await
            .unwrap();
        assert_eq!(ack.seq, SeqNo(7));
        assert_eq!(*calls.lock(), vec![NodeId(1), NodeId(2)]);
        assert_eq!(gw.map().epoch, Epoch(2));
    }

    /// Never answers calls to `hangs_on` (a hung or killed primary);
    /// others write.
    struct HangingOn {
        hangs_on: NodeId,
        calls: Arc<Mutex<Vec<NodeId>>>,
    }

    impl crate::client::ShardClient for HangingOn {
        fn call(&self, node: &NodeInfo, _: StorageRequest) -> crate::client::CallFuture {
            self.calls.lock().push(node.id);
            let hangs = node.id == self.hangs_on;
            Box::pin(async move {
                if hangs {
                    std::future::pending::<()>().await;
                }
                Ok(StorageResponse::Written {
                    seq: SeqNo(9),
                    acks: 1,
                })
            })
        }
    }

    #[tokio::test]
    async fn a_write_in_flight_moves_to_the_new_primary_at_once() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let client = HangingOn {
            hangs_on: NodeId(1),
            calls: calls.clone(),
        };
        let gw = Gateway::new(
            Arc::new(FixedMeta(Mutex::new(map(1, 1)))),
            Arc::new(client),
            RoutingOptions {
                write_backoff: Duration::from_millis(1),
                ..RoutingOptions::default()
            },
        );
        gw.maps.offer(map(1, 1));
        let started = std::time::Instant::now();
        let writer = {
            let gw = gw.clone();
            tokio::spawn(async move {
                gw.write(
                    "c",
                    BTreeMap::from([(ShardId(0), delete(&[1]))]),
                    WriteConsistency::Majority,
                )
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(*calls.lock(), vec![NodeId(1)], "in flight to node 1");
        // The map moves on: node 2 leads shard 0 under a newer term.
        gw.maps.offer(map(2, 2));
        let ack = tokio::time::timeout(Duration::from_secs(2), writer)
            .await
            .expect("the write waited for the old primary")
            .expect("join")
            .expect("written");
        assert_eq!(ack.seq, SeqNo(9));
        assert_eq!(*calls.lock(), vec![NodeId(1), NodeId(2)]);
        assert!(started.elapsed() < RoutingOptions::default().shard_timeout);
    }

    #[tokio::test]
    async fn a_failed_shard_is_named_and_the_others_applied() {
        // Shard 0 (primary 1) cannot meet its consistency; shard 1 (primary 1
        // too) is fine: answer by the op's ids.
        let client = FnClient {
            handler: Box::new(|_, req| {
                Ok(match req {
                    StorageRequest::Write { shard, .. } if shard.shard == ShardId(0) => {
                        StorageResponse::Error {
                            error: StorageError::ConsistencyNotMet {
                                acked: 1,
                                required: 2,
                            },
                        }
                    }
                    _ => StorageResponse::Written {
                        seq: SeqNo(3),
                        acks: 2,
                    },
                })
            }),
            calls: Default::default(),
        };
        let calls = client.calls.clone();
        let gw = gateway(map(1, 1), map(1, 1), client);
        let ops = BTreeMap::from([(ShardId(0), delete(&[1])), (ShardId(1), delete(&[2]))]);
        match gw.write("c", ops, WriteConsistency::Majority).await {
            Err(GatewayError::WriteFailed {
                failed, applied, ..
            }) => {
                assert_eq!(failed, vec![ShardId(0)]);
                assert_eq!(applied, 1);
            }
            other => panic!("{other:?}"),
        }
        // ConsistencyNotMet is not retried.
        assert_eq!(calls.lock().len(), 2);
    }

    #[tokio::test]
    async fn a_primary_marked_dead_is_not_called() {
        let client = FnClient {
            handler: Box::new(|_, _| {
                Ok(StorageResponse::Written {
                    seq: SeqNo(1),
                    acks: 2,
                })
            }),
            calls: Default::default(),
        };
        let calls = client.calls.clone();
        let mut dead = map(1, 1);
        if let Some(n) = dead.nodes.get_mut(&NodeId(1)) {
            n.state = NodeState::Dead;
        }
        let gw = gateway(dead.clone(), dead, client);
        let r = gw
            .write(
                "c",
                BTreeMap::from([(ShardId(0), delete(&[1]))]),
                WriteConsistency::Majority,
            )
            .await;
        match r {
            Err(GatewayError::WriteFailed { failed, .. }) => assert_eq!(failed, vec![ShardId(0)]),
            other => panic!("{other:?}"),
        }
        assert!(calls.lock().is_empty(), "the dead primary was called");
    }

    #[tokio::test]
    async fn unreachable_primary_is_retried_then_reported() {
        let (r, calls) = write_failing_with(CallError::Unreachable {
            node: NodeId(1),
            reason: "down".into(),
        })
        .await;
        assert!(matches!(r, Err(GatewayError::WriteFailed { .. })), "{r:?}");
        assert_eq!(calls, RoutingOptions::default().write_attempts as usize);
        // A refusal no retry fixes comes back as the client's error.
        let client = FnClient {
            handler: Box::new(|_, _| {
                Ok(StorageResponse::Error {
                    error: StorageError::Invalid {
                        message: "bad op".into(),
                    },
                })
            }),
            calls: Default::default(),
        };
        let gw = gateway(map(1, 1), map(1, 1), client);
        let r = gw
            .write(
                "c",
                BTreeMap::from([(ShardId(0), delete(&[1]))]),
                WriteConsistency::One,
            )
            .await;
        assert!(matches!(r, Err(GatewayError::BadRequest { .. })), "{r:?}");
        let r = gw
            .write(
                "gone",
                BTreeMap::from([(ShardId(0), delete(&[1]))]),
                WriteConsistency::One,
            )
            .await;
        assert!(
            matches!(r, Err(GatewayError::CollectionNotFound { .. })),
            "{r:?}"
        );
    }

    /// Shard 0's write, against a client that always fails with `error`:
    /// the outcome and how many calls were made.
    async fn write_failing_with(error: CallError) -> (Result<WriteAck>, usize) {
        let client = FnClient {
            handler: Box::new(move |_, _| Err(error.clone())),
            calls: Default::default(),
        };
        let calls = client.calls.clone();
        let gw = gateway(map(1, 1), map(1, 1), client);
        let r = gw
            .write(
                "c",
                BTreeMap::from([(ShardId(0), delete(&[1]))]),
                WriteConsistency::One,
            )
            .await;
        let n = calls.lock().len();
        (r, n)
    }

    #[tokio::test]
    async fn only_transient_call_errors_are_retried() {
        let attempts = RoutingOptions::default().write_attempts as usize;
        let node = NodeId(1);
        let lost = CallError::ConnectionLost {
            node,
            reason: "reset".into(),
        };
        let (r, calls) = write_failing_with(lost).await;
        assert!(matches!(r, Err(GatewayError::WriteFailed { .. })), "{r:?}");
        assert_eq!(calls, attempts);
        // A certificate the primary refuses stays refused: one call, and
        // the shard fails at once with the reason.
        let tls = CallError::Tls {
            node,
            reason: "certificate expired".into(),
        };
        match write_failing_with(tls).await {
            (Err(GatewayError::WriteFailed { failed, reason, .. }), 1) => {
                assert_eq!(failed, vec![ShardId(0)]);
                assert!(reason.contains("certificate expired"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let malformed = CallError::Refused {
            node,
            reason: transport::Refusal::Malformed,
        };
        assert_eq!(write_failing_with(malformed).await.1, 1);
        // The client's own timeout is not retried either: the write may
        // still apply.
        let timed_out = CallError::TimedOut {
            node,
            after: Duration::from_millis(5),
        };
        match write_failing_with(timed_out).await {
            (Err(GatewayError::WriteFailed { reason, .. }), 1) => {
                assert!(reason.contains("may still apply"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
