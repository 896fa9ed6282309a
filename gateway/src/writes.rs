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
//! Per shard: a `NotPrimary` / `StaleEpoch` answer refreshes the map and
//! retries; other transient refusals (shard not opened yet, lease expired,
//! node unreachable) back off, refresh and retry, bounded by
//! `write_attempts`. `ConsistencyNotMet` is not retried: the write may
//! still apply, and the client decides.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use protocol::rpc::{ShardRef, StorageError, StorageRequest, StorageResponse};
use protocol::{Epoch, Operation, SeqNo, ShardId, WriteConsistency};

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
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
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
            let req = StorageRequest::Write {
                shard: shard_ref.clone(),
                epoch: map.epoch,
                op: op.clone(),
                consistency,
            };
            let _in_flight = self.health.begin(node.id);
            let timeout = self.options.shard_timeout;
            let res = tokio::time::timeout(timeout, self.client.call(&node, req)).await;
            match res {
                Ok(Ok(StorageResponse::Written { seq, .. })) => {
                    self.health.success(node.id);
                    return Ok(seq);
                }
                Ok(Ok(StorageResponse::Error { error })) => {
                    self.health.success(node.id);
                    last = format!("primary {}: {error}", node.id);
                    match error {
                        StorageError::StaleEpoch { .. } | StorageError::NotPrimary { .. } => {
                            // The map moved (or the node lags behind it):
                            // refresh, let the node catch up, try again.
                            self.counters
                                .stale_map_retries
                                .fetch_add(1, Ordering::Relaxed);
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
                Ok(Ok(other)) => {
                    return Err(Failure::Fatal(GatewayError::Internal {
                        message: format!("unexpected answer to a write: {other:?}"),
                    }))
                }
                Ok(Err(e)) => {
                    self.health.failure(node.id);
                    last = format!("primary {}: {e}", node.id);
                    self.pause_and_refresh(&mut backoff, Epoch(0)).await;
                }
                Err(_) => {
                    // Timed out: it may still apply; do not pile on.
                    self.health.failure(node.id);
                    return Err(Failure::Unavailable(format!(
                        "primary {} did not answer within {timeout:?}; the write may still apply",
                        node.id
                    )));
                }
            }
        }
        Err(Failure::Unavailable(last))
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
