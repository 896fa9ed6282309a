//! Reads: one replica per shard, chosen by health and load, with retries
//! on another replica and hedging of slow ones; then fan-out over every
//! shard of a collection.
//!
//! ```text
//!  shard ─▶ candidates: in-sync replicas, alive in the map, not recently
//!           failed, fewest requests in flight (random tie-break)
//!        ─▶ call #1 ──(fails)──────────────▶ call #2 on the next candidate
//!              └──(slow > hedge_delay)──▶ twin call on the next candidate
//!        ─▶ first `need` good answers win (need = 1, majority or all)
//!        ─▶ none left: the shard is missing (503, or listed if partial)
//! ```
//!
//! A shard no replica of the cached map could serve, one of them saying it
//! no longer holds it (`ShardNotFound`), is tried once more on a newer map,
//! if there is one: a transfer's switch moved it, and the node that dropped
//! its copy answered before this gateway's map watch brought the change.
//!
//! Any [`CallError`] moves on to the next replica, transient or not: a
//! permanent one (a refused certificate, a message one node cannot decode
//! during a rolling upgrade) is usually about that node, another replica
//! may well answer, and each replica is tried at most once per read, so
//! nothing loops. `is_transient()` only decides how loudly it is logged;
//! the write path (`writes.rs`) is where it decides whether to retry.

use std::time::Instant;

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use protocol::cluster::{ClusterMap, CollectionInfo, NodeInfo, NodeState, ReplicaState, ShardInfo};
use protocol::rpc::{StorageError, StorageRequest, StorageResponse};
use protocol::{Epoch, ShardId};
use rand::Rng;
use serde::Deserialize;

use crate::client::CallError;
use crate::error::{from_storage, GatewayError, Result};
use crate::gateway::Gateway;

/// Read consistency (`?consistency=`): how many replicas of each shard
/// must answer. With more than one, the answer of the replica that has
/// applied the most operations is used, so a read sees at least every
/// write acknowledged at a matching write consistency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadConsistency {
    #[default]
    One,
    Majority,
    All,
}

impl ReadConsistency {
    fn needed(self, replicas: usize) -> usize {
        match self {
            ReadConsistency::One => 1,
            ReadConsistency::Majority => replicas / 2 + 1,
            ReadConsistency::All => replicas,
        }
        .max(1)
    }
}

/// The answers of a fan-out: one per shard that answered, and the shards
/// no replica could serve (with why).
#[derive(Debug)]
pub struct Gathered {
    pub answers: Vec<(ShardId, StorageResponse)>,
    pub missing: Vec<(ShardId, String)>,
}

enum ShardOutcome {
    Ok(StorageResponse),
    Missing(String),
    /// Missing, and a replica said it no longer holds the shard (or the
    /// map lacks it): a newer map may place it elsewhere.
    Moved(String),
    Fatal(GatewayError),
}

impl ShardOutcome {
    /// No answer: whether to look for a newer map, and why.
    fn missing(why: String, moved: bool) -> ShardOutcome {
        if moved {
            ShardOutcome::Moved(why)
        } else {
            ShardOutcome::Missing(why)
        }
    }
}

/// How far a replica's answer is, for picking the freshest.
fn applied_of(r: &StorageResponse) -> u64 {
    match r {
        StorageResponse::Hits { applied, .. }
        | StorageResponse::Records { applied, .. }
        | StorageResponse::Scrolled { applied, .. }
        | StorageResponse::Counted { applied, .. } => applied.0,
        _ => 0,
    }
}

/// Sort key of a replica, smaller first: on a node the map says is
/// alive, not failing lately, fewest requests in flight, random.
type CandidateRank = (u8, u8, usize, u32);

impl Gateway {
    /// In-sync (`Active`) replicas of `shard` in the order to try them.
    /// `Initializing` replicas are still being filled and never serve reads.
    pub(crate) fn candidates(&self, map: &ClusterMap, shard: &ShardInfo) -> Vec<NodeInfo> {
        let mut rng = rand::rng();
        let mut ranked: Vec<(CandidateRank, NodeInfo)> = shard
            .replicas
            .iter()
            .filter(|r| r.state == ReplicaState::Active)
            .filter_map(|r| {
                let node = map.nodes.get(&r.node)?;
                let key = (
                    u8::from(node.state == NodeState::Dead),
                    u8::from(self.health.suspected(node.id)),
                    self.health.in_flight(node.id),
                    rng.random::<u32>(),
                );
                Some((key, node.clone()))
            })
            .collect();
        ranked.sort_by_key(|a| a.0);
        ranked.into_iter().map(|(_, n)| n).collect()
    }

    /// One call to one node, bounded by the shard timeout and counted.
    async fn call_node(
        &self,
        node: NodeInfo,
        req: StorageRequest,
    ) -> (NodeInfo, Result<StorageResponse, CallError>) {
        let _in_flight = self.health.begin(node.id);
        self.counters.read_request();
        let timeout = self.options.shard_timeout;
        let kind = req.kind();
        let sent = std::time::Instant::now();
        let res = match tokio::time::timeout(timeout, self.client.call(&node, req)).await {
            Ok(r) => r,
            Err(_) => Err(CallError::TimedOut {
                node: node.id,
                after: timeout,
            }),
        };
        // Round trip as the gateway sees it: QUIC, codec and the node's work.
        metrics::histogram!("gateway_shard_call_seconds", "kind" => kind)
            .record(sent.elapsed().as_secs_f64());
        (node, res)
    }

    /// Reads one shard: `need` good answers from distinct replicas, retried
    /// and hedged across the candidates; the freshest answer wins.
    async fn read_shard(
        &self,
        map: &ClusterMap,
        shard: &ShardInfo,
        req: &StorageRequest,
        consistency: ReadConsistency,
    ) -> ShardOutcome {
        let candidates = self.candidates(map, shard);
        let in_sync = shard
            .replicas
            .iter()
            .filter(|r| r.state == ReplicaState::Active)
            .count();
        let need = consistency.needed(in_sync);
        if candidates.len() < need || candidates.is_empty() {
            return ShardOutcome::Missing(format!(
                "{} in-sync replica(s), {need} needed",
                candidates.len()
            ));
        }
        let mut next = candidates.into_iter();
        let mut pending = FuturesUnordered::new();
        for node in next.by_ref().take(need) {
            pending.push(self.call_node(node, req.clone()));
        }
        let mut good: Vec<StorageResponse> = Vec::new();
        let mut last_error = String::from("no replica answered");
        let mut moved = false;
        let hedge = self.options.hedge_delay;
        loop {
            let timer = async {
                match hedge {
                    Some(d) if next.len() > 0 => tokio::time::sleep(d).await,
                    _ => futures::future::pending::<()>().await,
                }
            };
            tokio::select! {
                done = pending.next() => {
                    let Some((node, res)) = done else {
                        return ShardOutcome::missing(last_error, moved);
                    };
                    match res {
                        Ok(StorageResponse::Error { error }) if !error.is_transient() => {
                            self.health.success(node.id);
                            return ShardOutcome::Fatal(from_storage(error));
                        }
                        Ok(StorageResponse::Error { error }) => {
                            moved |= matches!(error, StorageError::ShardNotFound { .. });
                            last_error = format!("node {}: {error}", node.id);
                        }
                        Ok(resp) => {
                            self.health.success(node.id);
                            good.push(resp);
                            if good.len() >= need {
                                let best = good
                                    .into_iter()
                                    .max_by_key(applied_of)
                                    .map(ShardOutcome::Ok);
                                return best.unwrap_or(ShardOutcome::Missing(last_error));
                            }
                            continue;
                        }
                        Err(e) => {
                            self.health.failure(node.id);
                            if !e.is_transient() {
                                // No retry fixes it on this node: someone has to act.
                                tracing::warn!(shard = %shard.id, error = %e, "replica failed permanently; trying another");
                            }
                            last_error = e.to_string();
                        }
                    }
                    tracing::debug!(shard = %shard.id, error = %last_error, "replica failed");
                    if let Some(node) = next.next() {
                        metrics::counter!("gateway_retries_total").increment(1);
                        pending.push(self.call_node(node, req.clone()));
                    } else if pending.is_empty() {
                        return ShardOutcome::missing(last_error, moved);
                    }
                }
                _ = timer => {
                    if let Some(node) = next.next() {
                        metrics::counter!("gateway_hedges_total").increment(1);
                        pending.push(self.call_node(node, req.clone()));
                    }
                }
            }
        }
    }

    /// Sends the request built by `make` for each shard of `coll` to one
    /// (or, by `consistency`, several) replicas, concurrently. Missing
    /// shards fail the whole read with a 503 unless `partial` is set.
    pub(crate) async fn fan_out(
        &self,
        map: &ClusterMap,
        coll: &CollectionInfo,
        consistency: ReadConsistency,
        partial: bool,
        make: impl Fn(ShardId) -> StorageRequest,
    ) -> Result<Gathered> {
        let started = Instant::now();
        self.counters.fanout(coll.shards.len());
        let calls = coll.shards.values().map(|shard| {
            let req = make(shard.id);
            async move {
                (
                    shard.id,
                    self.read_shard(map, shard, &req, consistency).await,
                )
            }
        });
        let mut results = futures::future::join_all(calls).await;
        self.retry_missing_on_newer_map(map, &coll.name, consistency, &mut results, &make)
            .await;
        let mut gathered = Gathered {
            answers: Vec::new(),
            missing: Vec::new(),
        };
        for (shard, outcome) in results {
            match outcome {
                ShardOutcome::Ok(r) => gathered.answers.push((shard, r)),
                ShardOutcome::Missing(why) | ShardOutcome::Moved(why) => {
                    gathered.missing.push((shard, why))
                }
                ShardOutcome::Fatal(e) => return Err(e),
            }
        }
        metrics::histogram!("gateway_fanout_seconds").record(started.elapsed().as_secs_f64());
        if !gathered.missing.is_empty() {
            if !partial {
                return Err(GatewayError::ShardsUnavailable {
                    collection: coll.name.clone(),
                    shards: gathered.missing.iter().map(|(s, _)| *s).collect(),
                    reason: gathered
                        .missing
                        .iter()
                        .map(|(s, why)| format!("shard {s}: {why}"))
                        .collect::<Vec<_>>()
                        .join("; "),
                });
            }
            metrics::counter!("gateway_partial_answers_total").increment(1);
        }
        Ok(gathered)
    }

    /// Tries the shards of `results` that moved (a replica no longer holds
    /// it) once more, on the newest map, if it is newer than `map` (see the
    /// module doc). Shards that are merely unreachable are not: every read
    /// during an outage would ask the meta-service for the map.
    async fn retry_missing_on_newer_map<R: Into<Option<StorageRequest>>>(
        &self,
        map: &ClusterMap,
        collection: &str,
        consistency: ReadConsistency,
        results: &mut [(ShardId, ShardOutcome)],
        make: impl Fn(ShardId) -> R,
    ) {
        if !results
            .iter()
            .any(|(_, o)| matches!(o, ShardOutcome::Moved(_)))
        {
            return;
        }
        let newer = match self.maps.refresh(Epoch(map.epoch.0 + 1)).await {
            Ok(newer) if newer.epoch > map.epoch => newer,
            Ok(_) => return,
            Err(e) => {
                tracing::debug!(error = %e, "no newer map to retry missing shards on");
                return;
            }
        };
        let Some(coll) = newer.collections.get(collection) else {
            return;
        };
        for (sid, outcome) in results.iter_mut() {
            if !matches!(outcome, ShardOutcome::Moved(_)) {
                continue;
            }
            let (Some(shard), Some(req)) = (coll.shards.get(sid), make(*sid).into()) else {
                continue;
            };
            metrics::counter!("gateway_read_retries_on_newer_map_total").increment(1);
            *outcome = self.read_shard(&newer, shard, &req, consistency).await;
        }
    }

    /// Reads a subset of shards (point lookups): like [`Gateway::fan_out`]
    /// restricted to `shards`.
    pub(crate) async fn read_shards(
        &self,
        map: &ClusterMap,
        coll: &CollectionInfo,
        shards: Vec<(ShardId, StorageRequest)>,
        consistency: ReadConsistency,
    ) -> Result<Vec<StorageResponse>> {
        let requests: std::collections::HashMap<ShardId, StorageRequest> =
            shards.iter().cloned().collect();
        let calls = shards.into_iter().map(|(sid, req)| async move {
            match coll.shards.get(&sid) {
                Some(shard) => (sid, self.read_shard(map, shard, &req, consistency).await),
                None => (sid, ShardOutcome::Moved("shard not in the map".into())),
            }
        });
        let mut results = futures::future::join_all(calls).await;
        self.retry_missing_on_newer_map(map, &coll.name, consistency, &mut results, |s| {
            requests.get(&s).cloned()
        })
        .await;
        let mut out = Vec::new();
        let mut missing = Vec::new();
        for (sid, outcome) in results {
            match outcome {
                ShardOutcome::Ok(r) => out.push(r),
                ShardOutcome::Missing(why) | ShardOutcome::Moved(why) => missing.push((sid, why)),
                ShardOutcome::Fatal(e) => return Err(e),
            }
        }
        if !missing.is_empty() {
            return Err(GatewayError::ShardsUnavailable {
                collection: coll.name.clone(),
                shards: missing.iter().map(|(s, _)| *s).collect(),
                reason: missing
                    .iter()
                    .map(|(s, why)| format!("shard {s}: {why}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use protocol::cluster::{CollectionInfo, Replica};
    use protocol::rpc::{ShardRef, StorageError};
    use protocol::{CollectionConfig, CountRequest, Distance, Epoch, NodeId, SeqNo, Term};

    use super::*;
    use crate::client::{CallFuture, ShardClient};
    use crate::gateway::RoutingOptions;
    use crate::map::{MetaApi, MetaFuture};

    /// A meta-service that is never reached in these tests.
    struct NoMeta;

    impl MetaApi for NoMeta {
        fn cluster_map(&self) -> MetaFuture<'_, ClusterMap> {
            Box::pin(async { Err(meta_client::MetaClientError::NoMembers) })
        }
        fn watch(&self, _: Epoch, _: Duration) -> MetaFuture<'_, Option<ClusterMap>> {
            Box::pin(async { Err(meta_client::MetaClientError::NoMembers) })
        }
        fn create_collection(&self, _: String, _: CollectionConfig) -> MetaFuture<'_, Epoch> {
            Box::pin(async { Err(meta_client::MetaClientError::NoMembers) })
        }
        fn delete_collection(&self, _: String) -> MetaFuture<'_, Epoch> {
            Box::pin(async { Err(meta_client::MetaClientError::NoMembers) })
        }
        fn submit(&self, _: protocol::cluster::ClusterCommand) -> MetaFuture<'_, Epoch> {
            Box::pin(async { Err(meta_client::MetaClientError::NoMembers) })
        }
        fn rebalance(&self) -> MetaFuture<'_, meta_client::RebalanceAck> {
            Box::pin(async { Err(meta_client::MetaClientError::NoMembers) })
        }
    }

    /// A meta-service whose map is `0` (and which never long-polls).
    struct MapMeta(ClusterMap);

    impl MetaApi for MapMeta {
        fn cluster_map(&self) -> MetaFuture<'_, ClusterMap> {
            let map = self.0.clone();
            Box::pin(async move { Ok(map) })
        }
        fn watch(&self, _: Epoch, _: Duration) -> MetaFuture<'_, Option<ClusterMap>> {
            NoMeta.watch(Epoch(0), Duration::ZERO)
        }
        fn create_collection(&self, n: String, c: CollectionConfig) -> MetaFuture<'_, Epoch> {
            NoMeta.create_collection(n, c)
        }
        fn delete_collection(&self, n: String) -> MetaFuture<'_, Epoch> {
            NoMeta.delete_collection(n)
        }
        fn submit(&self, c: protocol::cluster::ClusterCommand) -> MetaFuture<'_, Epoch> {
            NoMeta.submit(c)
        }
        fn rebalance(&self) -> MetaFuture<'_, meta_client::RebalanceAck> {
            NoMeta.rebalance()
        }
    }

    /// A shard moved (an RF 1 transfer switched to node 2): node 1 already
    /// dropped its copy, the gateway's cached map still names it. The read
    /// is served on the newer map instead of failing the shard.
    #[tokio::test]
    async fn a_shard_no_replica_serves_is_tried_again_on_a_newer_map() {
        use ReplicaState::*;
        let old = map(&[(1, Active)]);
        let mut moved = map(&[(2, Active)]);
        moved.epoch = Epoch(2);
        let behaviour = [
            (
                1,
                Behaviour::Refuse(StorageError::ShardNotFound {
                    collection: "c".into(),
                    shard: ShardId(0),
                }),
            ),
            (2, Behaviour::Count(Duration::ZERO)),
        ];
        let fake = || {
            Arc::new(Fake(
                behaviour
                    .iter()
                    .map(|(n, b)| (NodeId(*n), b.clone()))
                    .collect(),
            ))
        };
        let gw = Gateway::new(Arc::new(MapMeta(moved)), fake(), RoutingOptions::default());
        gw.maps.offer(old.clone());
        let coll = old.collections["c"].clone();
        let got = gw
            .fan_out(&old, &coll, ReadConsistency::One, false, |_| count_req())
            .await
            .expect("served on the newer map");
        assert!(matches!(
            got.answers[..],
            [(ShardId(0), StorageResponse::Counted { count: 2, .. })]
        ));
        assert_eq!(gw.maps.get().epoch, Epoch(2));

        // Merely unreachable (nobody said the shard moved): no map fetch,
        // so an outage does not turn every read into a meta-service call.
        let mut moved = map(&[(2, Active)]);
        moved.epoch = Epoch(2);
        let unreachable = Arc::new(Fake(HashMap::from([
            (NodeId(1), Behaviour::Unreachable),
            (NodeId(2), Behaviour::Count(Duration::ZERO)),
        ])));
        let gw = Gateway::new(
            Arc::new(MapMeta(moved)),
            unreachable,
            RoutingOptions::default(),
        );
        gw.maps.offer(old.clone());
        assert!(gw
            .fan_out(&old, &coll, ReadConsistency::One, false, |_| count_req())
            .await
            .is_err());
        assert_eq!(gw.maps.get().epoch, Epoch(1), "the map was fetched");

        // No newer map: the shard stays missing (503), nothing loops.
        let gw = Gateway::new(
            Arc::new(MapMeta(old.clone())),
            fake(),
            RoutingOptions::default(),
        );
        gw.maps.offer(old.clone());
        let err = gw
            .fan_out(&old, &coll, ReadConsistency::One, false, |_| count_req())
            .await
            .expect_err("no replica anywhere");
        assert!(
            matches!(err, GatewayError::ShardsUnavailable { .. }),
            "{err:?}"
        );
    }

    /// Per node: a delay, then a count answer (applied = node id), an
    /// error answer, or no answer.
    #[derive(Clone)]
    enum Behaviour {
        Count(Duration),
        Refuse(StorageError),
        Unreachable,
        /// No answer, for a reason retrying does not fix.
        CertificateRefused,
    }

    struct Fake(HashMap<NodeId, Behaviour>);

    impl ShardClient for Fake {
        fn call(&self, node: &NodeInfo, _req: StorageRequest) -> CallFuture {
            let b = self
                .0
                .get(&node.id)
                .cloned()
                .unwrap_or(Behaviour::Unreachable);
            let id = node.id.0;
            Box::pin(async move {
                match b {
                    Behaviour::Count(d) => {
                        tokio::time::sleep(d).await;
                        Ok(StorageResponse::Counted {
                            count: id,
                            applied: SeqNo(id),
                        })
                    }
                    Behaviour::Refuse(error) => Ok(StorageResponse::Error { error }),
                    Behaviour::Unreachable => Err(CallError::Unreachable {
                        node: NodeId(id),
                        reason: "down".into(),
                    }),
                    Behaviour::CertificateRefused => Err(CallError::Tls {
                        node: NodeId(id),
                        reason: "certificate expired".into(),
                    }),
                }
            })
        }
    }

    fn map(states: &[(u64, ReplicaState)]) -> ClusterMap {
        let shard = ShardInfo {
            id: ShardId(0),
            replicas: states
                .iter()
                .map(|(n, s)| Replica {
                    node: NodeId(*n),
                    state: *s,
                })
                .collect(),
            primary: Some(NodeId(states[0].0)),
            term: Term(1),
            migration: None,
        };
        ClusterMap {
            epoch: Epoch(1),
            nodes: states
                .iter()
                .map(|(n, _)| (NodeId(*n), NodeInfo::new(NodeId(*n), format!("n{n}"))))
                .collect(),
            collections: BTreeMap::from([(
                "c".to_string(),
                CollectionInfo {
                    name: "c".into(),
                    config: CollectionConfig::new(2, Distance::Dot),
                    shards: BTreeMap::from([(ShardId(0), shard)]),
                    created_epoch: Epoch(1),
                },
            )]),
            config: BTreeMap::new(),
            ..ClusterMap::default()
        }
    }

    fn gateway(behaviour: &[(u64, Behaviour)], hedge: Option<Duration>) -> Arc<Gateway> {
        Gateway::new(
            Arc::new(NoMeta),
            Arc::new(Fake(
                behaviour
                    .iter()
                    .map(|(n, b)| (NodeId(*n), b.clone()))
                    .collect(),
            )),
            RoutingOptions {
                hedge_delay: hedge,
                ..RoutingOptions::default()
            },
        )
    }

    fn count_req() -> StorageRequest {
        StorageRequest::Count {
            shard: ShardRef {
                collection: "c".into(),
                shard: ShardId(0),
            },
            epoch: Epoch(1),
            request: CountRequest::default(),
        }
    }

    async fn read(gw: &Gateway, m: &ClusterMap, c: ReadConsistency) -> ShardOutcome {
        let shard = &m.collections["c"].shards[&ShardId(0)];
        gw.read_shard(m, shard, &count_req(), c).await
    }

    #[tokio::test]
    async fn candidates_skip_initializing_and_prefer_healthy_idle_nodes() {
        use ReplicaState::*;
        let gw = gateway(&[], None);
        let mut m = map(&[(1, Active), (2, Active), (3, Initializing), (4, Active)]);
        if let Some(n) = m.nodes.get_mut(&NodeId(1)) {
            n.state = NodeState::Dead;
        }
        gw.health.failure(NodeId(2));
        let _busy = gw.health.begin(NodeId(4));
        let shard = m.collections["c"].shards[&ShardId(0)].clone();
        let order: Vec<u64> = gw.candidates(&m, &shard).iter().map(|n| n.id.0).collect();
        // 4 is busy but healthy; 2 failed lately; 1 is dead; 3 never serves.
        assert_eq!(order, vec![4, 2, 1]);
    }

    #[tokio::test]
    async fn retries_on_another_replica_and_reports_missing() {
        use ReplicaState::*;
        let m = map(&[(1, Active), (2, Active)]);
        let gw = gateway(
            &[
                (1, Behaviour::Unreachable),
                (2, Behaviour::Count(Duration::ZERO)),
            ],
            None,
        );
        for _ in 0..5 {
            assert!(matches!(
                read(&gw, &m, ReadConsistency::One).await,
                ShardOutcome::Ok(_)
            ));
        }
        let gw = gateway(
            &[
                (1, Behaviour::Unreachable),
                (
                    2,
                    Behaviour::Refuse(StorageError::Unavailable {
                        message: "x".into(),
                    }),
                ),
            ],
            None,
        );
        assert!(matches!(
            read(&gw, &m, ReadConsistency::One).await,
            ShardOutcome::Missing(_)
        ));
        let gw = gateway(
            &[
                (
                    1,
                    Behaviour::Refuse(StorageError::Invalid {
                        message: "bad".into(),
                    }),
                ),
                (
                    2,
                    Behaviour::Refuse(StorageError::Invalid {
                        message: "bad".into(),
                    }),
                ),
            ],
            None,
        );
        assert!(matches!(
            read(&gw, &m, ReadConsistency::One).await,
            ShardOutcome::Fatal(_)
        ));
    }

    #[tokio::test]
    async fn a_permanent_call_error_still_moves_to_another_replica() {
        use ReplicaState::*;
        let m = map(&[(1, Active), (2, Active)]);
        let gw = gateway(
            &[
                (1, Behaviour::CertificateRefused),
                (2, Behaviour::Count(Duration::ZERO)),
            ],
            None,
        );
        // Candidates are shuffled: whichever is tried first, node 2 answers.
        for _ in 0..5 {
            match read(&gw, &m, ReadConsistency::One).await {
                ShardOutcome::Ok(StorageResponse::Counted { count, .. }) => assert_eq!(count, 2),
                _ => panic!("no answer"),
            }
        }
        // Every replica refused: the shard is missing (a 503), with the
        // reason, and each replica was tried once.
        let gw = gateway(
            &[
                (1, Behaviour::CertificateRefused),
                (2, Behaviour::CertificateRefused),
            ],
            None,
        );
        match read(&gw, &m, ReadConsistency::One).await {
            ShardOutcome::Missing(why) => assert!(why.contains("TLS"), "{why}"),
            _ => panic!("expected the shard to be missing"),
        }
        let requests: u64 = [1, 2]
            .iter()
            .map(|n| gw.health.stats(NodeId(*n)).requests())
            .sum();
        assert_eq!(requests, 2);
    }

    #[tokio::test]
    async fn a_slow_replica_is_hedged() {
        use ReplicaState::*;
        let m = map(&[(1, Active), (2, Active)]);
        let slow = Duration::from_secs(5);
        // Whichever replica is tried first, the answer comes from the fast
        // one (directly, or hedged after 20 ms), never after the slow one.
        let gw_fast = gateway(
            &[
                (1, Behaviour::Count(Duration::from_millis(1))),
                (2, Behaviour::Count(slow)),
            ],
            Some(Duration::from_millis(20)),
        );
        for _ in 0..5 {
            let t = Instant::now();
            match read(&gw_fast, &m, ReadConsistency::One).await {
                ShardOutcome::Ok(StorageResponse::Counted { count, .. }) => assert_eq!(count, 1),
                _ => panic!("no answer"),
            }
            assert!(t.elapsed() < Duration::from_secs(1));
        }
    }

    #[tokio::test]
    async fn majority_takes_the_freshest_answer() {
        use ReplicaState::*;
        let m = map(&[(1, Active), (2, Active), (3, Active)]);
        let d = Duration::ZERO;
        let gw = gateway(
            &[
                (1, Behaviour::Count(d)),
                (2, Behaviour::Count(d)),
                (3, Behaviour::Count(d)),
            ],
            None,
        );
        match read(&gw, &m, ReadConsistency::All).await {
            ShardOutcome::Ok(r) => assert_eq!(applied_of(&r), 3),
            _ => panic!("no answer"),
        }
        let gw = gateway(
            &[(1, Behaviour::Count(d)), (2, Behaviour::Unreachable)],
            None,
        );
        assert!(matches!(
            read(&gw, &m, ReadConsistency::All).await,
            ShardOutcome::Missing(_)
        ));
        assert!(matches!(
            read(&gw, &m, ReadConsistency::Majority).await,
            ShardOutcome::Missing(_)
        ));
    }

    #[test]
    fn replicas_needed_per_level() {
        assert_eq!(ReadConsistency::One.needed(3), 1);
        assert_eq!(ReadConsistency::Majority.needed(3), 2);
        assert_eq!(ReadConsistency::Majority.needed(2), 2);
        assert_eq!(ReadConsistency::All.needed(3), 3);
        assert_eq!(ReadConsistency::All.needed(0), 1);
        let resp = StorageResponse::Counted {
            count: 1,
            applied: protocol::SeqNo(9),
        };
        assert_eq!(applied_of(&resp), 9);
    }
}
