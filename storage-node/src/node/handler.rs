//! Inbound requests: one function per request kind, each answering with a
//! typed error rather than failing the connection.

use std::sync::Arc;

use protocol::cluster::{Replica, ReplicaState};
use protocol::rpc::{ReplicaStatus, ShardRef, StorageError, StorageRequest, StorageResponse};
use protocol::{Epoch, NodeId, Operation, WriteConsistency};

use super::replica::{to_storage_error, LocalReplica};
use super::Node;

impl Node {
    /// Serves one request.
    pub async fn handle(self: &Arc<Self>, request: StorageRequest) -> StorageResponse {
        let kind = request.kind();
        let started = std::time::Instant::now();
        let response = self.dispatch(request).await;
        metrics::histogram!("storage_request_seconds", "kind" => kind)
            .record(started.elapsed().as_secs_f64());
        response
    }

    async fn dispatch(self: &Arc<Self>, request: StorageRequest) -> StorageResponse {
        let result = match request {
            StorageRequest::Write {
                shard,
                epoch,
                op,
                consistency,
            } => self.write(&shard, epoch, op, consistency).await,
            StorageRequest::Replicate { shard, term, ops } => match self.local(&shard) {
                Ok(r) => r
                    .apply_replicated(term, ops)
                    .await
                    .map(|applied| StorageResponse::Replicated { applied }),
                Err(e) => Err(e),
            },
            StorageRequest::InstallSnapshot {
                shard,
                term,
                seq,
                chunk,
                first,
                last,
                last_term,
                consistent_from,
                snapshot_id,
            } => match self.local(&shard) {
                Ok(r) => r
                    .install_chunk(
                        term,
                        seq,
                        last_term.unwrap_or(term),
                        chunk,
                        first,
                        last,
                        consistent_from.unwrap_or(seq),
                        snapshot_id,
                    )
                    .await
                    .map(|applied| StorageResponse::Replicated { applied }),
                Err(e) => Err(e),
            },
            StorageRequest::Search { shard, request, .. } => {
                self.read(&shard, move |r| {
                    let s = r.shard();
                    let applied = s.applied_seq();
                    let searched = std::time::Instant::now();
                    let hits = s.search(&request);
                    // The engine alone (segments, FAISS, payloads), without
                    // the queueing and the RPC around it.
                    metrics::histogram!("storage_search_seconds")
                        .record(searched.elapsed().as_secs_f64());
                    hits.map(|hits| StorageResponse::Hits { hits, applied })
                })
                .await
            }
            StorageRequest::Get {
                shard,
                ids,
                with_payload,
                with_vector,
                ..
            } => {
                self.read(&shard, move |r| {
                    let s = r.shard();
                    Ok(StorageResponse::Records {
                        records: s.get(&ids, with_payload, with_vector),
                        applied: s.applied_seq(),
                    })
                })
                .await
            }
            StorageRequest::Scroll { shard, request, .. } => {
                self.read(&shard, move |r| {
                    let s = r.shard();
                    let applied = s.applied_seq();
                    s.scroll(&request)
                        .map(|page| StorageResponse::Scrolled { page, applied })
                })
                .await
            }
            StorageRequest::Count { shard, request, .. } => {
                self.read(&shard, move |r| {
                    let s = r.shard();
                    let applied = s.applied_seq();
                    s.count(&request).map(|count| StorageResponse::Counted {
                        count: count as u64,
                        applied,
                    })
                })
                .await
            }
            StorageRequest::Status { shard } => {
                // Cheap (the checksum is kept incrementally) and read at
                // one moment: a transfer verifies its target with it.
                self.local(&shard).map(|r| {
                    let d = r.shard().digest();
                    StorageResponse::Status {
                        status: ReplicaStatus {
                            incarnation: r.incarnation,
                            applied: d.seq,
                            last_term: d.last_term,
                            points: d.points,
                            checksum: d.checksum,
                            consistent_from: r.consistent_from(),
                        },
                    }
                })
            }
            StorageRequest::IndexStatus { shard } => self.local(&shard).map(|r| {
                // Counts kept per segment: one pass under the read lock.
                StorageResponse::IndexStatus {
                    status: r.shard().index_status(),
                }
            }),
            StorageRequest::TermAt { shard, seq } => {
                self.read(&shard, move |r| {
                    r.shard()
                        .term_at(seq)
                        .map(|term| StorageResponse::TermAt { term })
                })
                .await
            }
            StorageRequest::CatchUp {
                shard,
                replica,
                applied,
            } => self.local(&shard).map(|r| {
                let restarted = r.kick(replica);
                let primary_applied = r.shard().applied_seq();
                tracing::info!(shard = ?shard, %replica, replica_applied = %applied, %primary_applied, restarted, "replica asked to catch up");
                metrics::counter!("storage_catch_up_requests_total", "collection" => shard.collection.clone())
                    .increment(1);
                StorageResponse::CatchingUp {
                    primary_applied,
                    restarted,
                }
            }),
        };
        result.unwrap_or_else(|error| StorageResponse::Error { error })
    }

    fn local(&self, shard: &ShardRef) -> Result<Arc<LocalReplica>, StorageError> {
        self.replica(shard)
            .ok_or_else(|| StorageError::ShardNotFound {
                collection: shard.collection.clone(),
                shard: shard.shard,
            })
    }

    /// Runs a read on a blocking thread (FAISS searches are CPU-bound).
    async fn read<F>(&self, shard: &ShardRef, f: F) -> Result<StorageResponse, StorageError>
    where
        F: FnOnce(&LocalReplica) -> crate::Result<StorageResponse> + Send + 'static,
    {
        let replica = self.local(shard)?;
        self.reads.add(1);
        metrics::counter!("storage_shard_reads_total").increment(1);
        tokio::task::spawn_blocking(move || f(&replica).map_err(to_storage_error))
            .await
            .map_err(|e| StorageError::Internal {
                message: e.to_string(),
            })?
    }

    async fn write(
        self: &Arc<Self>,
        shard: &ShardRef,
        epoch: Epoch,
        op: Operation,
        consistency: WriteConsistency,
    ) -> Result<StorageResponse, StorageError> {
        // Taken before the map is read: a transfer's switch closes the
        // gate, and a write held there sees the map the switch produced.
        let gate = match self.replica(shard) {
            Some(r) => Some((r.clone(), r.write_gate().await)),
            None => None,
        };
        let map = self.map();
        let Some(info) = map.shard(&shard.collection, shard.shard) else {
            return Err(if epoch > map.epoch {
                StorageError::StaleEpoch { current: map.epoch }
            } else {
                StorageError::ShardNotFound {
                    collection: shard.collection.clone(),
                    shard: shard.shard,
                }
            });
        };
        if info.primary != Some(self.id) {
            return Err(if epoch > map.epoch {
                StorageError::StaleEpoch { current: map.epoch }
            } else {
                StorageError::NotPrimary {
                    primary: info.primary,
                    epoch: map.epoch,
                }
            });
        }
        if !self.lease.is_valid() {
            return Err(StorageError::LeaseExpired);
        }
        let Some((replica, gate)) = gate else {
            return Err(StorageError::ShardNotFound {
                collection: shard.collection.clone(),
                shard: shard.shard,
            });
        };
        let active: Vec<NodeId> = info
            .replicas
            .iter()
            .filter(|r| r.node != self.id && r.state == ReplicaState::Active)
            .map(|r| r.node)
            .collect();
        let required = required_acks(&info.replicas, consistency);
        let (seq, acks) = replica
            .write(op, required, &active, self.options.write_timeout, gate)
            .await?;
        // Checked again before acknowledging: a primary that hung (SIGSTOP,
        // a stalled disk) in the middle of this write may have been replaced
        // meanwhile, and the replicas that acknowledged may not know yet. Its
        // lease ends before the controller may declare it dead, so a valid
        // lease now means no successor exists yet. Otherwise the outcome is
        // reported as unknown (the client retries; upserts are idempotent).
        if !self.lease.is_valid() {
            metrics::counter!("storage_writes_unacknowledged_lease_expired_total").increment(1);
            return Err(StorageError::LeaseExpired);
        }
        // When this node last acknowledged a write of the shard (wall
        // clock): the chaos suite's hung-primary scenario checks that a
        // primary frozen past its replacement acknowledged nothing after.
        metrics::gauge!(
            "storage_last_write_ack_unix_ms",
            "collection" => shard.collection.clone(),
            "shard" => shard.shard.to_string()
        )
        .set(super::now_ms() as f64);
        Ok(StorageResponse::Written { seq, acks })
    }
}

/// Acknowledgements a write needs, the primary's own included: the
/// consistency level over the `Active` replicas only. A replica still
/// being filled (`Initializing`, e.g. a transfer's target) counts neither
/// in the acknowledgements nor in the denominator, so a shard keeps its
/// normal write availability while it is copied (an RF 1 shard being
/// moved takes `majority` writes with its one active replica).
pub(crate) fn required_acks(replicas: &[Replica], consistency: WriteConsistency) -> usize {
    let active = replicas
        .iter()
        .filter(|r| r.state == ReplicaState::Active)
        .count();
    consistency.required_acks(active.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replicas(states: &[ReplicaState]) -> Vec<Replica> {
        states
            .iter()
            .enumerate()
            .map(|(i, s)| Replica {
                node: NodeId(i as u64 + 1),
                state: *s,
            })
            .collect()
    }

    #[test]
    fn initializing_replicas_are_not_in_the_quorum() {
        use ReplicaState::*;
        let rf1_moving = replicas(&[Active, Initializing]);
        assert_eq!(required_acks(&rf1_moving, WriteConsistency::Majority), 1);
        let rf3_moving = replicas(&[Active, Active, Active, Initializing]);
        assert_eq!(required_acks(&rf3_moving, WriteConsistency::Majority), 2);
        assert_eq!(required_acks(&rf3_moving, WriteConsistency::All), 3);
        let rf3 = replicas(&[Active, Active, Active]);
        assert_eq!(required_acks(&rf3, WriteConsistency::Majority), 2);
    }
}
