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

use std::sync::atomic::Ordering;
use std::time::Instant;

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use protocol::cluster::{ClusterMap, CollectionInfo, NodeInfo, NodeState, ReplicaState, ShardInfo};
use protocol::rpc::{StorageRequest, StorageResponse};
use protocol::ShardId;
use rand::Rng;
use serde::Deserialize;

use crate::client::ClientError;
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
    Fatal(GatewayError),
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
    ) -> (NodeInfo, Result<StorageResponse, ClientError>) {
        let _in_flight = self.health.begin(node.id);
        self.counters.shard_request(self.started);
        let timeout = self.options.shard_timeout;
        let res = match tokio::time::timeout(timeout, self.client.call(&node, req)).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout(timeout)),
        };
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
                        return ShardOutcome::Missing(last_error);
                    };
                    match res {
                        Ok(StorageResponse::Error { error }) if !error.is_transient() => {
                            self.health.success(node.id);
                            return ShardOutcome::Fatal(from_storage(error));
                        }
                        Ok(StorageResponse::Error { error }) => {
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
                            last_error = format!("node {}: {e}", node.id);
                        }
                    }
                    tracing::debug!(shard = %shard.id, error = %last_error, "replica failed");
                    if let Some(node) = next.next() {
                        self.counters.retries.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("gateway_retries_total").increment(1);
                        pending.push(self.call_node(node, req.clone()));
                    } else if pending.is_empty() {
                        return ShardOutcome::Missing(last_error);
                    }
                }
                _ = timer => {
                    if let Some(node) = next.next() {
                        self.counters.hedges.fetch_add(1, Ordering::Relaxed);
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
        self.counters.fanouts.fetch_add(1, Ordering::Relaxed);
        metrics::histogram!("gateway_fanout_shards").record(coll.shards.len() as f64);
        let calls = coll.shards.values().map(|shard| {
            let req = make(shard.id);
            async move {
                (
                    shard.id,
                    self.read_shard(map, shard, &req, consistency).await,
                )
            }
        });
        let results = futures::future::join_all(calls).await;
        let mut gathered = Gathered {
            answers: Vec::new(),
            missing: Vec::new(),
        };
        for (shard, outcome) in results {
            match outcome {
                ShardOutcome::Ok(r) => gathered.answers.push((shard, r)),
                ShardOutcome::Missing(why) => gathered.missing.push((shard, why)),
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
            self.counters
                .partial_answers
                .fetch_add(1, Ordering::Relaxed);
            metrics::counter!("gateway_partial_answers_total").increment(1);
        }
        Ok(gathered)
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
        let calls = shards.into_iter().map(|(sid, req)| async move {
            match coll.shards.get(&sid) {
                Some(shard) => (sid, self.read_shard(map, shard, &req, consistency).await),
                None => (sid, ShardOutcome::Missing("shard not in the map".into())),
            }
        });
        let mut out = Vec::new();
        let mut missing = Vec::new();
        for (sid, outcome) in futures::future::join_all(calls).await {
            match outcome {
                ShardOutcome::Ok(r) => out.push(r),
                ShardOutcome::Missing(why) => missing.push((sid, why)),
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
    use super::*;

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
