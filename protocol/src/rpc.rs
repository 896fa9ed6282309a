//! Messages between gateways and storage nodes, and between storage nodes
//! (replication), carried as msgpack frames over QUIC by `transport`.
//!
//! Every data request names its shard and the cluster-map epoch the caller
//! routed with; a node whose map says otherwise answers
//! [`StorageError::StaleEpoch`] or [`StorageError::NotPrimary`] and the
//! caller refreshes its map and retries once.

use serde::{Deserialize, Serialize};

use crate::collection::WriteConsistency;
use crate::ids::{Epoch, NodeId, PointId, SeqNo, ShardId, Term};
use crate::operation::{Operation, SequencedOperation};
use crate::point::{Point, Record};
use crate::search::{CountRequest, ScoredPoint, ScrollRequest, ScrollResponse, SearchRequest};

/// Names one shard replica.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ShardRef {
    pub collection: String,
    pub shard: ShardId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StorageRequest {
    /// A client write, sent to the shard's primary.
    Write {
        shard: ShardRef,
        epoch: Epoch,
        op: Operation,
        consistency: WriteConsistency,
    },
    /// Primary → replica: operations in sequence order under `term`.
    Replicate {
        shard: ShardRef,
        term: Term,
        ops: Vec<SequencedOperation>,
    },
    /// Primary → replica: replace the replica's content with these points
    /// as of `seq` (sent in chunks, in id order; `first` starts over,
    /// `last` ends it). The pages may be read while writes continue: the
    /// replica is then fed the operations after `seq`, which make it whole.
    InstallSnapshot {
        shard: ShardRef,
        term: Term,
        seq: SeqNo,
        chunk: Vec<SnapshotEntry>,
        first: bool,
        last: bool,
        /// The term of the operation at `seq` (the replica's `last_term`
        /// after the install); `term` when absent (older senders).
        #[serde(default)]
        last_term: Option<Term>,
        /// On the last chunk: the primary's applied sequence number when
        /// it read the last page. The pages may reflect operations up to
        /// it, so the replica's content is a state of the primary's
        /// history only once it has applied that far.
        #[serde(default)]
        consistent_from: Option<SeqNo>,
        /// Which snapshot the chunk belongs to (chosen by the sender, new
        /// for every `first`): a replica adds a chunk only to the snapshot
        /// it is receiving, so two streams that both read a snapshot at
        /// the same `seq` (a replication stream restarted while its
        /// predecessor still sends) never mix their pages. Absent from
        /// older senders: then only `term` and `seq` tell snapshots apart.
        #[serde(default)]
        snapshot_id: Option<u64>,
    },
    Search {
        shard: ShardRef,
        epoch: Epoch,
        request: SearchRequest,
    },
    Get {
        shard: ShardRef,
        epoch: Epoch,
        ids: Vec<PointId>,
        with_payload: bool,
        with_vector: bool,
    },
    Scroll {
        shard: ShardRef,
        epoch: Epoch,
        request: ScrollRequest,
    },
    Count {
        shard: ShardRef,
        epoch: Epoch,
        request: CountRequest,
    },
    /// Applied sequence number, term of the last operation, point count
    /// and content checksum of a replica, all at one moment (a transfer
    /// verifies its target with it: the checksum is kept incrementally,
    /// so asking is cheap).
    Status { shard: ShardRef },
    /// The term of the operation at `seq` on this replica, if it still
    /// has it (divergence check after a failover).
    TermAt { shard: ShardRef, seq: SeqNo },
    /// Sent to a shard's primary by a replica that sees, from the gossiped
    /// version vector, that it is behind and not progressing: the primary
    /// restarts its stream to that replica (sync, then WAL delta or
    /// snapshot) at once instead of waiting for its next write or retry.
    CatchUp {
        shard: ShardRef,
        replica: NodeId,
        applied: SeqNo,
    },
    /// How far the replica's indexing and optimisation are (the gateway
    /// asks every replica for a collection's `status` and
    /// `indexed_vectors_count`).
    IndexStatus { shard: ShardRef },
}

impl StorageRequest {
    /// A short name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            StorageRequest::Write { .. } => "write",
            StorageRequest::Replicate { .. } => "replicate",
            StorageRequest::InstallSnapshot { .. } => "install_snapshot",
            StorageRequest::Search { .. } => "search",
            StorageRequest::Get { .. } => "get",
            StorageRequest::Scroll { .. } => "scroll",
            StorageRequest::Count { .. } => "count",
            StorageRequest::Status { .. } => "status",
            StorageRequest::TermAt { .. } => "term_at",
            StorageRequest::CatchUp { .. } => "catch_up",
            StorageRequest::IndexStatus { .. } => "index_status",
        }
    }
}

/// A point with the sequence number of its last write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotEntry {
    pub point: Point,
    pub version: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    /// The collection incarnation (`CollectionInfo::created_epoch`) the
    /// replica belongs to: sequence numbers and terms of a deleted
    /// collection say nothing about one created again under its name.
    #[serde(default)]
    pub incarnation: Epoch,
    pub applied: SeqNo,
    pub last_term: Term,
    pub points: u64,
    pub checksum: u64,
    /// Set by a snapshot install (see `InstallSnapshot::consistent_from`):
    /// until `applied` reaches it, `points` and `checksum` may reflect
    /// operations past `applied`, so they cannot be compared with the
    /// primary's at `applied`.
    #[serde(default)]
    pub consistent_from: SeqNo,
}

/// How far a replica's background work is: what a collection's `status`
/// and `indexed_vectors_count` are built from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaIndexStatus {
    /// Live points.
    pub points: u64,
    /// Live points in segments that have the collection's ANN index.
    pub indexed_points: u64,
    /// Live points the background work will index: frozen segments,
    /// sealed segments still searched exactly (after a snapshot install),
    /// and a growing segment large enough to be sealed. A growing segment
    /// below that threshold stays exact on purpose and is not counted
    /// (Qdrant's `indexing_threshold`: small is fully optimised).
    pub pending_points: u64,
    /// Segments holding points (an empty growing segment is not counted).
    pub segments: u64,
    pub optimizer: OptimizerState,
    /// The last failure of background work, until a later round succeeds.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Per declared payload index: live points with a value it indexes.
    #[serde(default)]
    pub payload_index_points: std::collections::BTreeMap<String, u64>,
}

impl ReplicaIndexStatus {
    /// Nothing left to index, nothing running or due, no failure.
    pub fn is_optimized(&self) -> bool {
        self.pending_points == 0
            && self.optimizer == OptimizerState::Idle
            && self.last_error.is_none()
    }
}

/// What a replica's background worker is doing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerState {
    /// Nothing to do.
    #[default]
    Idle,
    /// Work is due but not started: a segment to seal or index, a merge
    /// that waits for the shard to stop taking writes.
    Pending,
    /// Waiting for a slot in the node's index-build budget.
    Waiting,
    /// Building an index or merging segments.
    Running,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StorageResponse {
    Written {
        seq: SeqNo,
        /// Replicas (the primary included) that durably applied it.
        acks: usize,
    },
    /// The replica's applied sequence number after a `Replicate` or
    /// `InstallSnapshot`.
    Replicated {
        applied: SeqNo,
    },
    Hits {
        hits: Vec<ScoredPoint>,
        applied: SeqNo,
    },
    Records {
        records: Vec<Record>,
        applied: SeqNo,
    },
    Scrolled {
        page: ScrollResponse,
        applied: SeqNo,
    },
    Counted {
        count: u64,
        applied: SeqNo,
    },
    Status {
        status: ReplicaStatus,
    },
    TermAt {
        term: Option<Term>,
    },
    /// Answer to `CatchUp`: the primary's applied sequence number, and
    /// whether it had a stream to the replica to restart.
    CatchingUp {
        primary_applied: SeqNo,
        restarted: bool,
    },
    IndexStatus {
        status: ReplicaIndexStatus,
    },
    Error {
        error: StorageError,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StorageError {
    #[error("cluster map is stale: this node is at epoch {current}")]
    StaleEpoch { current: Epoch },
    #[error("this node is not the primary of the shard (primary: {primary:?}, epoch {epoch})")]
    NotPrimary {
        primary: Option<NodeId>,
        epoch: Epoch,
    },
    #[error("term {got} is older than this replica's term {current}")]
    StaleTerm { got: Term, current: Term },
    /// The replica is missing operations before the ones sent.
    #[error("replica is behind: applied {applied}")]
    Behind { applied: SeqNo },
    #[error("write lease expired: this node cannot reach the meta-service majority")]
    LeaseExpired,
    #[error(
        "write reached {acked} of the {required} replicas required in time; it may still apply"
    )]
    ConsistencyNotMet { acked: usize, required: usize },
    #[error("shard {collection}/{shard} is not on this node")]
    ShardNotFound { collection: String, shard: ShardId },
    #[error("bad request: {message}")]
    Invalid { message: String },
    #[error("unavailable: {message}")]
    Unavailable { message: String },
    #[error("internal error: {message}")]
    Internal { message: String },
}

impl StorageError {
    /// Whether the same request may succeed later or elsewhere (after a map
    /// refresh, on another replica, after a failover).
    pub fn is_transient(&self) -> bool {
        match self {
            StorageError::StaleEpoch { .. }
            | StorageError::NotPrimary { .. }
            | StorageError::StaleTerm { .. }
            | StorageError::Behind { .. }
            | StorageError::LeaseExpired
            | StorageError::ConsistencyNotMet { .. }
            | StorageError::ShardNotFound { .. }
            | StorageError::Unavailable { .. } => true,
            StorageError::Invalid { .. } | StorageError::Internal { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, encode};

    #[test]
    fn messages_round_trip() {
        let shard = ShardRef {
            collection: "c".into(),
            shard: ShardId(2),
        };
        let reqs = vec![
            StorageRequest::Write {
                shard: shard.clone(),
                epoch: Epoch(3),
                op: Operation::Delete {
                    ids: vec![PointId::Num(1)],
                },
                consistency: WriteConsistency::All,
            },
            StorageRequest::Search {
                shard: shard.clone(),
                epoch: Epoch(1),
                request: SearchRequest::new(vec![1.0], 3),
            },
            StorageRequest::CatchUp {
                shard: shard.clone(),
                replica: NodeId(4),
                applied: SeqNo(17),
            },
            StorageRequest::InstallSnapshot {
                shard: shard.clone(),
                term: Term(3),
                seq: SeqNo(40),
                chunk: vec![SnapshotEntry {
                    point: Point {
                        id: PointId::Num(7),
                        vector: vec![0.5, -1.0],
                        payload: None,
                    },
                    version: 39,
                }],
                first: false,
                last: true,
                last_term: Some(Term(2)),
                consistent_from: Some(SeqNo(45)),
                snapshot_id: Some(0x5eed),
            },
            StorageRequest::Status {
                shard: shard.clone(),
            },
            StorageRequest::IndexStatus { shard },
        ];
        for r in reqs {
            let back: StorageRequest = decode(&encode(&r).unwrap()).unwrap();
            assert_eq!(back, r);
        }
        let resp = StorageResponse::Error {
            error: StorageError::NotPrimary {
                primary: Some(NodeId(2)),
                epoch: Epoch(9),
            },
        };
        let back: StorageResponse = decode(&encode(&resp).unwrap()).unwrap();
        assert_eq!(back, resp);
        let resp = StorageResponse::IndexStatus {
            status: ReplicaIndexStatus {
                points: 10,
                indexed_points: 8,
                pending_points: 2,
                segments: 2,
                optimizer: OptimizerState::Waiting,
                last_error: Some("disk full".into()),
                payload_index_points: [("city".to_string(), 7)].into(),
            },
        };
        let back: StorageResponse = decode(&encode(&resp).unwrap()).unwrap();
        assert_eq!(back, resp);
    }

    #[test]
    fn a_replica_is_optimized_only_with_nothing_pending_running_or_failed() {
        let done = ReplicaIndexStatus {
            points: 10,
            indexed_points: 10,
            segments: 1,
            ..ReplicaIndexStatus::default()
        };
        assert!(done.is_optimized());
        // Points kept exact below the threshold are not pending.
        let small = ReplicaIndexStatus {
            points: 500,
            indexed_points: 0,
            ..done.clone()
        };
        assert!(small.is_optimized());
        let pending = ReplicaIndexStatus {
            pending_points: 1,
            ..done.clone()
        };
        assert!(!pending.is_optimized());
        for state in [
            OptimizerState::Pending,
            OptimizerState::Waiting,
            OptimizerState::Running,
        ] {
            let busy = ReplicaIndexStatus {
                optimizer: state,
                ..done.clone()
            };
            assert!(!busy.is_optimized(), "{state:?}");
        }
        let failed = ReplicaIndexStatus {
            last_error: Some("x".into()),
            ..done
        };
        assert!(!failed.is_optimized());
    }
}
