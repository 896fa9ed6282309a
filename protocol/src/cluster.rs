//! The cluster map: nodes, collections, shards, replica sets, primaries and
//! terms, with the epoch that versions it; and the commands that change it.
//!
//! The meta-service owns the one authoritative copy (replicated by Raft);
//! gateways and storage nodes cache it and compare epochs. Only the
//! meta-service applies [`ClusterCommand`]s; everyone else sends them.
//!
//! A replica's life:
//!
//! ```text
//!   SetReplicas / migration target           caught up (SetReplicaState)
//!   ─────────────────────────▶ Initializing ───────────────────────────▶ Active
//!                                    │                                     │
//!                                    └──────────── removed ◀───────────────┘
//!                               (SetReplicas, migration switch, RemoveNode)
//! ```
//!
//! Only an `Active` replica is in sync: it may be promoted to primary and
//! counts towards write acknowledgements. A node's liveness (`NodeState`) is
//! separate: a replica on a dead node stays in the set until the controller
//! replaces it, so that a node that comes back quickly keeps its data.
//!
//! A shard transfer (a migration: `Move` or `Replicate`) of one replica,
//! carried out by the shard's primary, which streams to the target:
//!
//! ```text
//!   Snapshot ──▶ Delta ──▶ Verify ──▶ Switch ──▶ CompleteMigration (in Raft):
//!      │           │          │          │         target Active; a Move drops
//!      │           │          │          │         the source (primary role
//!      │           │          │          │         handed over, term + 1)
//!      └───────────┴──────────┴──────────┴──▶ AbortMigration{reason}: target
//!                                             dropped, source kept, Failed
//! ```
//!
//! Until the switch the target counts neither in a write's
//! acknowledgements nor in its quorum's denominator (only `Active`
//! replicas do). Every finished transfer is counted in
//! [`ClusterMap::transfers`] and the last few are kept with their outcome.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::collection::CollectionConfig;
use crate::ids::{Epoch, NodeId, SeqNo, ShardId, Term};

/// Liveness of a storage node as decided by the meta-service controller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Heartbeating; may hold primaries and receive new replicas.
    #[default]
    Alive,
    /// Missed heartbeats for longer than the grace period.
    Dead,
    /// Being emptied by the operator: keeps serving, gets no new replicas.
    Draining,
}

/// A storage node as registered with the meta-service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: NodeId,
    /// Data-plane address (QUIC) other nodes and gateways connect to.
    pub addr: String,
    /// HTTP address for operators, if any.
    #[serde(default)]
    pub api_addr: Option<String>,
    #[serde(default)]
    pub state: NodeState,
    /// Wall-clock time (ms since the Unix epoch) of the last state change,
    /// as stamped by whoever submitted the command (the state machine never
    /// reads a clock, so that every member applies the same result).
    #[serde(default)]
    pub state_since_ms: u64,
    /// Tells this node's data directory from an earlier one with the same
    /// id: chosen at random when the directory is created (0: unknown, an
    /// older node). A node removed from the map cannot register again with
    /// the same incarnation (see [`ClusterMap::removed_nodes`]).
    #[serde(default)]
    pub incarnation: u64,
}

impl NodeInfo {
    pub fn new(id: NodeId, addr: impl Into<String>) -> Self {
        Self {
            id,
            addr: addr.into(),
            api_addr: None,
            state: NodeState::Alive,
            state_since_ms: 0,
            incarnation: 0,
        }
    }
}

/// Whether a replica holds the shard's full history (see the module diagram).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaState {
    /// Being filled (new replica or migration target); not in sync yet.
    Initializing,
    /// In sync: may be promoted and counts towards acknowledgements.
    #[default]
    Active,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replica {
    pub node: NodeId,
    pub state: ReplicaState,
}

/// Phase of a running migration (see the module diagram).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationPhase {
    /// Copying a snapshot of the source replica to the target.
    #[default]
    Snapshot,
    /// Streaming the WAL written since the snapshot, writes continuing.
    Delta,
    /// The target builds the ANN index of what it received (writes still
    /// streaming to it); the source serves reads meanwhile, so that no
    /// read lands on a replica that can only scan exhaustively.
    Index,
    /// Comparing counts and checksums of source and target.
    Verify,
    /// Writes held on the primary while the target takes its last
    /// operations and the meta-service switches the assignment.
    Switch,
}

/// What a transfer leaves behind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// The target replaces the source (Qdrant's `move_shard`).
    #[default]
    Move,
    /// The target is added, the source stays (`replicate_shard`, a
    /// replication factor raised, an under-replicated shard completed).
    Replicate,
}

/// The evidence a transfer's executor gives for its switch: source and
/// target held the same content at one sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub seq: SeqNo,
    pub points: u64,
    pub checksum: u64,
}

/// One replica of one shard copied from `from` to `to` (see the module
/// diagram).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migration {
    pub from: NodeId,
    pub to: NodeId,
    #[serde(default)]
    pub kind: TransferKind,
    pub phase: MigrationPhase,
    /// Progress, as last reported by the executor (the shard's primary).
    #[serde(default, alias = "vectors_copied")]
    pub points_copied: u64,
    #[serde(default, alias = "vectors_total")]
    pub points_total: u64,
    #[serde(default)]
    pub bytes_copied: u64,
    #[serde(default)]
    pub bytes_total: u64,
    /// When the plan was accepted (ms since the Unix epoch, from the command).
    #[serde(default)]
    pub started_at_ms: u64,
    /// When progress was last reported (ms since the Unix epoch); the
    /// controller fails a transfer that stays silent too long.
    #[serde(default)]
    pub updated_at_ms: u64,
}

/// How a transfer ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TransferOutcome {
    Completed,
    Failed { reason: String },
}

/// A finished transfer, as kept in [`TransferStats::recent`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRecord {
    pub collection: String,
    pub shard: ShardId,
    pub from: NodeId,
    pub to: NodeId,
    pub kind: TransferKind,
    #[serde(flatten)]
    pub outcome: TransferOutcome,
    pub points_copied: u64,
    pub bytes_copied: u64,
    pub started_at_ms: u64,
    pub finished_at_ms: u64,
}

/// Counters of finished transfers, replicated with the map so that every
/// gateway and meta member reports the same numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferStats {
    pub completed: u64,
    pub failed: u64,
    /// The last [`TransferStats::KEEP`] finished transfers, oldest first.
    pub recent: Vec<TransferRecord>,
}

impl TransferStats {
    pub const KEEP: usize = 32;

    pub fn record(&mut self, record: TransferRecord) {
        match record.outcome {
            TransferOutcome::Completed => self.completed += 1,
            TransferOutcome::Failed { .. } => self.failed += 1,
        }
        self.recent.push(record);
        let excess = self.recent.len().saturating_sub(Self::KEEP);
        self.recent.drain(..excess);
    }
}

/// One shard of a collection: who holds it, who leads it, under which term.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub id: ShardId,
    /// Replica set in preference order (the ring's order at creation).
    pub replicas: Vec<Replica>,
    /// The replica that orders writes; `None` only when the set is empty.
    pub primary: Option<NodeId>,
    /// Bumped on every change of primary; replicas reject older terms.
    pub term: Term,
    #[serde(default)]
    pub migration: Option<Migration>,
}

impl ShardInfo {
    /// A new shard: every replica in sync (there is nothing to copy yet),
    /// the first one primary, term 1.
    pub fn new(id: ShardId, nodes: impl IntoIterator<Item = NodeId>) -> ShardInfo {
        let replicas: Vec<Replica> = nodes
            .into_iter()
            .map(|node| Replica {
                node,
                state: ReplicaState::Active,
            })
            .collect();
        ShardInfo {
            id,
            primary: replicas.first().map(|r| r.node),
            replicas,
            term: Term(1),
            migration: None,
        }
    }

    pub fn replica(&self, node: NodeId) -> Option<&Replica> {
        self.replicas.iter().find(|r| r.node == node)
    }

    pub fn holds(&self, node: NodeId) -> bool {
        self.replica(node).is_some()
    }

    pub fn nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.replicas.iter().map(|r| r.node)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CollectionInfo {
    pub name: String,
    pub config: CollectionConfig,
    pub shards: BTreeMap<ShardId, ShardInfo>,
    /// The epoch that created this collection: tells a collection from an
    /// earlier one of the same name (deleted and created again), so storage
    /// nodes never serve the old one's data for the new one.
    #[serde(default)]
    pub created_epoch: Epoch,
}

/// The whole cluster map. `epoch` is bumped by every accepted command, so
/// two maps with the same epoch from the same cluster are identical.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterMap {
    pub epoch: Epoch,
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    pub collections: BTreeMap<String, CollectionInfo>,
    /// Free-form cluster settings (`UpdateConfig`), e.g. rebalancing knobs.
    pub config: BTreeMap<String, String>,
    /// Finished shard transfers.
    #[serde(default)]
    pub transfers: TransferStats,
    /// Collection aliases: alias → collection (Qdrant's aliases). An alias
    /// never has a collection's name; deleting a collection drops its
    /// aliases.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    /// Nodes removed by an operator, by (id, incarnation): such a node
    /// that is still running may not register again (it would come back
    /// as an empty live node and be given shards). The same id with a new
    /// data directory (a new incarnation) may.
    #[serde(default)]
    pub removed_nodes: std::collections::BTreeSet<(NodeId, u64)>,
}

impl ClusterMap {
    /// The collection `name` designates: itself, or the one its alias
    /// points to.
    pub fn resolve<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        if self.collections.contains_key(name) {
            return Some(name);
        }
        self.aliases.get(name).map(String::as_str)
    }

    /// The aliases of `collection`, in name order.
    pub fn aliases_of<'a>(&'a self, collection: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.aliases
            .iter()
            .filter(move |(_, c)| c.as_str() == collection)
            .map(|(a, _)| a.as_str())
    }

    pub fn shard(&self, collection: &str, shard: ShardId) -> Option<&ShardInfo> {
        self.collections.get(collection)?.shards.get(&shard)
    }

    /// Nodes that may receive new replicas (alive and not draining).
    pub fn placeable_nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes
            .values()
            .filter(|n| n.state == NodeState::Alive)
            .map(|n| n.id)
    }

    /// Every `(collection, shard)` with a replica on `node`.
    pub fn shards_on(&self, node: NodeId) -> Vec<(String, ShardId)> {
        let mut out = Vec::new();
        for c in self.collections.values() {
            for s in c.shards.values() {
                if s.holds(node) {
                    out.push((c.name.clone(), s.id));
                }
            }
        }
        out
    }
}

/// The rebalancer's settings, kept in [`ClusterMap::config`] under
/// `rebalancing.*` (changeable at run time with `UpdateConfig`); a missing
/// or unreadable value takes the spec's default.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RebalanceSettings {
    /// Plan moves by itself (node joined, draining, imbalance). Default on.
    pub auto_enabled: bool,
    /// Relative spread of per-node load ((max − min) / mean) that triggers
    /// a rebalance. Default 0.20.
    pub trigger_threshold: f64,
    /// Transfers running at once, cluster-wide. Default 2.
    pub max_concurrent_migrations: usize,
    /// Snapshot streaming rate per transfer, MB/s; 0 means unthrottled.
    /// Default 100.
    pub throttle_mb_per_sec: f64,
    /// A transfer with no progress report for this long is failed.
    /// Default 60 s.
    pub stall_after_ms: u64,
    /// Load differences smaller than this (bytes between the busiest and
    /// the idlest node) are never evened out, whatever their ratio: a tiny
    /// collection's noise is not worth a copy. Default 64 KiB.
    pub min_imbalance_bytes: u64,
}

impl RebalanceSettings {
    pub const KEY_ENABLED: &'static str = "rebalancing.auto_enabled";
    pub const KEY_THRESHOLD: &'static str = "rebalancing.trigger_threshold";
    pub const KEY_MAX_CONCURRENT: &'static str = "rebalancing.max_concurrent_migrations";
    pub const KEY_THROTTLE: &'static str = "rebalancing.throttle_mb_per_sec";
    pub const KEY_STALL_AFTER_MS: &'static str = "rebalancing.stall_after_ms";
    pub const KEY_MIN_IMBALANCE_BYTES: &'static str = "rebalancing.min_imbalance_bytes";

    /// Every key this type reads, for validating `UpdateConfig`.
    pub const KEYS: [&'static str; 6] = [
        Self::KEY_ENABLED,
        Self::KEY_THRESHOLD,
        Self::KEY_MAX_CONCURRENT,
        Self::KEY_THROTTLE,
        Self::KEY_STALL_AFTER_MS,
        Self::KEY_MIN_IMBALANCE_BYTES,
    ];

    pub fn from_map(map: &ClusterMap) -> Self {
        let d = Self::default();
        let get = |key: &str| map.config.get(key).map(String::as_str);
        Self {
            auto_enabled: get(Self::KEY_ENABLED)
                .and_then(|v| v.parse().ok())
                .unwrap_or(d.auto_enabled),
            trigger_threshold: get(Self::KEY_THRESHOLD)
                .and_then(|v| v.parse().ok())
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .unwrap_or(d.trigger_threshold),
            max_concurrent_migrations: get(Self::KEY_MAX_CONCURRENT)
                .and_then(|v| v.parse().ok())
                .unwrap_or(d.max_concurrent_migrations),
            throttle_mb_per_sec: get(Self::KEY_THROTTLE)
                .and_then(|v| v.parse().ok())
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .unwrap_or(d.throttle_mb_per_sec),
            stall_after_ms: get(Self::KEY_STALL_AFTER_MS)
                .and_then(|v| v.parse().ok())
                .unwrap_or(d.stall_after_ms),
            min_imbalance_bytes: get(Self::KEY_MIN_IMBALANCE_BYTES)
                .and_then(|v| v.parse().ok())
                .unwrap_or(d.min_imbalance_bytes),
        }
    }

    /// Whether `value` is acceptable for `key` (`None` for a key that is
    /// not a rebalancing setting).
    pub fn check(key: &str, value: &str) -> Option<Result<(), String>> {
        let ok = match key {
            Self::KEY_ENABLED => value.parse::<bool>().is_ok(),
            Self::KEY_THRESHOLD | Self::KEY_THROTTLE => value
                .parse::<f64>()
                .is_ok_and(|v| v.is_finite() && v >= 0.0),
            Self::KEY_MAX_CONCURRENT | Self::KEY_STALL_AFTER_MS | Self::KEY_MIN_IMBALANCE_BYTES => {
                value.parse::<u64>().is_ok()
            }
            _ => return None,
        };
        Some(if ok {
            Ok(())
        } else {
            Err(format!("`{value}` is not a valid value for {key}"))
        })
    }
}

impl Default for RebalanceSettings {
    fn default() -> Self {
        Self {
            auto_enabled: true,
            trigger_threshold: 0.20,
            max_concurrent_migrations: 2,
            throttle_mb_per_sec: 100.0,
            stall_after_ms: 60_000,
            min_imbalance_bytes: 64 << 10,
        }
    }
}

/// One replica move of a rebalancing plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMove {
    pub collection: String,
    pub shard: ShardId,
    pub from: NodeId,
    pub to: NodeId,
    #[serde(default)]
    pub kind: TransferKind,
}

/// A rebalancing plan: replica moves, each started as a migration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebalancePlan {
    pub moves: Vec<ShardMove>,
    /// When the plan was made (ms since the Unix epoch).
    #[serde(default)]
    pub created_at_ms: u64,
}

/// A change to the cluster map, replicated through Raft and applied by the
/// meta-service state machine. Refusals are [`CommandError`]s and change
/// nothing; every accepted command bumps the epoch by one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClusterCommand {
    /// Creates the collection and its `shard_number` shards, each with the
    /// first `replication_factor` distinct alive nodes clockwise on the ring
    /// (key `"{collection}/{shard}"`); primary = first replica, term 1.
    CreateCollection {
        name: String,
        config: CollectionConfig,
    },
    DeleteCollection {
        name: String,
    },
    /// Adds one shard; `replicas` overrides the ring's choice.
    CreateShard {
        collection: String,
        shard: ShardId,
        #[serde(default)]
        replicas: Option<Vec<NodeId>>,
    },
    DeleteShard {
        collection: String,
        shard: ShardId,
    },
    /// Registers a storage node, or updates its addresses; marks it alive.
    AddNode {
        node: NodeInfo,
    },
    /// Forgets a node. Refused while it still holds replicas.
    RemoveNode {
        node: NodeId,
    },
    /// Liveness change decided by the controller (or an operator: draining).
    SetNodeState {
        node: NodeId,
        state: NodeState,
        at_ms: u64,
    },
    /// Starts one migration per move.
    RebalanceShards {
        plan: RebalancePlan,
    },
    /// Progress of the running transfer to `to`, from its executor.
    UpdateMigration {
        collection: String,
        shard: ShardId,
        to: NodeId,
        phase: MigrationPhase,
        #[serde(alias = "vectors_copied")]
        points_copied: u64,
        #[serde(alias = "vectors_total")]
        points_total: u64,
        #[serde(default)]
        bytes_copied: u64,
        #[serde(default)]
        bytes_total: u64,
        #[serde(default)]
        at_ms: u64,
    },
    /// Switches the assignment of the transfer to `to`, in phase `Switch`
    /// and with its executor's [`Verification`]: the target becomes
    /// `Active`; a `Move` drops the source (the target takes over as
    /// primary with term + 1 if the source was primary).
    CompleteMigration {
        collection: String,
        shard: ShardId,
        to: NodeId,
        verified: Verification,
        #[serde(default)]
        at_ms: u64,
    },
    /// Ends the running transfer as failed: the target replica is dropped,
    /// the source kept, the reason recorded.
    AbortMigration {
        collection: String,
        shard: ShardId,
        #[serde(default)]
        reason: String,
        #[serde(default)]
        at_ms: u64,
    },
    /// Declares (`Some`) or drops (`None`) the payload index on `field`;
    /// every replica builds or drops it when it sees the new map.
    SetPayloadIndex {
        collection: String,
        field: String,
        index: Option<crate::payload_index::PayloadIndexSpec>,
    },
    /// Changes a collection's replication factor; the controller then adds
    /// replicas by transfers, or drops the surplus.
    SetReplicationFactor {
        collection: String,
        replication_factor: u32,
    },
    UpdateConfig {
        key: String,
        value: String,
    },
    /// Replaces a shard's replica set. Kept nodes keep their state, new ones
    /// start `Initializing`. Refused if it drops the primary: a dead
    /// primary's successor is chosen by the controller's failover rule
    /// (`PromotePrimary`) first, a live primary leaves by a `Move` transfer.
    SetReplicas {
        collection: String,
        shard: ShardId,
        replicas: Vec<NodeId>,
    },
    SetReplicaState {
        collection: String,
        shard: ShardId,
        node: NodeId,
        state: ReplicaState,
    },
    /// Makes `node` primary with term + 1. With `expected_term`, refused
    /// unless the shard is still at that term (so a stale controller cannot
    /// promote twice).
    PromotePrimary {
        collection: String,
        shard: ShardId,
        node: NodeId,
        #[serde(default)]
        expected_term: Option<Term>,
    },
    /// Compare-and-set: applies `command` only if the map is still at
    /// `epoch` (one epoch bump in all). The controller sends every decision
    /// this way, so a decision made on a map that has since moved on is
    /// refused instead of undoing a newer change.
    IfEpoch {
        epoch: Epoch,
        command: Box<ClusterCommand>,
    },
    /// Qdrant's `change_aliases`: the actions apply in order, all or none
    /// (one epoch bump), so an alias is switched from one collection to
    /// another without a moment where it resolves to neither.
    ChangeAliases {
        actions: Vec<AliasAction>,
    },
}

/// One step of [`ClusterCommand::ChangeAliases`], with Qdrant's rules:
/// `Create` needs an existing collection and a name that is no
/// collection's, and replaces an alias of the same name; `Rename` needs
/// the old alias; `Delete` of a missing alias changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AliasAction {
    Create { alias: String, collection: String },
    Rename { old: String, new: String },
    Delete { alias: String },
}

impl ClusterCommand {
    /// The command itself, without an [`ClusterCommand::IfEpoch`] guard.
    pub fn unguarded(&self) -> &ClusterCommand {
        match self {
            ClusterCommand::IfEpoch { command, .. } => command.unguarded(),
            other => other,
        }
    }

    /// Short name for logs and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            ClusterCommand::CreateCollection { .. } => "create_collection",
            ClusterCommand::DeleteCollection { .. } => "delete_collection",
            ClusterCommand::CreateShard { .. } => "create_shard",
            ClusterCommand::DeleteShard { .. } => "delete_shard",
            ClusterCommand::AddNode { .. } => "add_node",
            ClusterCommand::RemoveNode { .. } => "remove_node",
            ClusterCommand::SetNodeState { .. } => "set_node_state",
            ClusterCommand::RebalanceShards { .. } => "rebalance_shards",
            ClusterCommand::UpdateMigration { .. } => "update_migration",
            ClusterCommand::CompleteMigration { .. } => "complete_migration",
            ClusterCommand::AbortMigration { .. } => "abort_migration",
            ClusterCommand::SetReplicationFactor { .. } => "set_replication_factor",
            ClusterCommand::SetPayloadIndex { .. } => "set_payload_index",
            ClusterCommand::UpdateConfig { .. } => "update_config",
            ClusterCommand::SetReplicas { .. } => "set_replicas",
            ClusterCommand::SetReplicaState { .. } => "set_replica_state",
            ClusterCommand::PromotePrimary { .. } => "promote_primary",
            ClusterCommand::ChangeAliases { .. } => "change_aliases",
            ClusterCommand::IfEpoch { command, .. } => command.kind(),
        }
    }
}

/// Why the state machine refused a command. None is transient: the same
/// command against the same map is refused again.
#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum CommandError {
    #[error("collection `{name}` already exists")]
    CollectionExists { name: String },
    #[error("collection `{name}` not found")]
    CollectionNotFound { name: String },
    #[error("shard {shard} of `{collection}` already exists")]
    ShardExists { collection: String, shard: ShardId },
    #[error("shard {shard} of `{collection}` not found")]
    ShardNotFound { collection: String, shard: ShardId },
    #[error("node {node} is not registered")]
    NodeNotFound { node: NodeId },
    #[error(
        "node {node} was removed from the cluster; to join again it needs an empty data directory"
    )]
    NodeRemoved { node: NodeId },
    #[error("node {node} is not alive")]
    NodeNotAlive { node: NodeId },
    #[error("node {node} still holds {replicas} replica(s)")]
    NodeHoldsReplicas { node: NodeId, replicas: usize },
    #[error("need {needed} placeable node(s), {available} available")]
    NotEnoughNodes { needed: usize, available: usize },
    #[error("node {node} holds no replica of shard {shard} of `{collection}`")]
    NotAReplica {
        collection: String,
        shard: ShardId,
        node: NodeId,
    },
    #[error("replica of shard {shard} of `{collection}` on node {node} is not in sync")]
    ReplicaNotInSync {
        collection: String,
        shard: ShardId,
        node: NodeId,
    },
    #[error("shard {shard} of `{collection}` is at term {actual}, expected {expected}")]
    TermMismatch {
        collection: String,
        shard: ShardId,
        expected: Term,
        actual: Term,
    },
    #[error("shard {shard} of `{collection}` is already migrating")]
    MigrationInProgress { collection: String, shard: ShardId },
    #[error("shard {shard} of `{collection}` has no migration")]
    NoMigration { collection: String, shard: ShardId },
    #[error("the transfer of shard {shard} of `{collection}` to node {to} is not ready to switch: {reason}")]
    TransferNotReady {
        collection: String,
        shard: ShardId,
        to: NodeId,
        reason: String,
    },
    #[error("the map is at epoch {actual}, the command expected {expected}")]
    EpochMismatch { expected: Epoch, actual: Epoch },
    #[error("invalid command: {reason}")]
    Invalid { reason: String },
    #[error("alias `{alias}` not found")]
    AliasNotFound { alias: String },
}

/// What a storage node reports about one of its replicas in a heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaReport {
    pub collection: String,
    pub shard: ShardId,
    /// Highest sequence number durably applied.
    pub applied: SeqNo,
    /// The term the replica is following.
    pub term: Term,
    /// Live points and their approximate stored size (vectors and
    /// payloads), the load the rebalancer evens out.
    #[serde(default)]
    pub points: u64,
    #[serde(default)]
    pub bytes: u64,
    /// The replica's WAL refuses writes after a failed write or fsync
    /// (until the node reopens it): the controller moves its primary role.
    #[serde(default)]
    pub poisoned: bool,
    /// Only from the shard's primary: how long the oldest operation that
    /// some peer has not acknowledged yet has been waiting, in ms (0 when
    /// every peer has everything). It grows while a peer is silent, unlike
    /// a difference of sequence numbers, which only moves on an ack.
    #[serde(default)]
    pub lag_ms: Option<u64>,
}

/// Periodic liveness report from a storage node to the meta-service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub node: NodeId,
    /// The epoch of the map the node is working with.
    #[serde(default)]
    pub epoch: Epoch,
    #[serde(default)]
    pub replicas: Vec<ReplicaReport>,
    /// Shard reads (searches, gets, scrolls, counts) the node served in
    /// the last minute.
    #[serde(default)]
    pub reads_last_minute: u64,
}

/// Answer to a heartbeat: the current epoch, so a node with an older map
/// knows to refresh it, and a lease.
///
/// An ack is only sent by a leader that has just confirmed its leadership
/// with a quorum, so it proves the majority side saw the node. The node may
/// act as primary for `lease_ms` after it *sent* the heartbeat; the
/// controller declares a node dead (and promotes another primary) only
/// after a longer silence, so an isolated primary stops taking writes
/// before its successor starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAck {
    pub epoch: Epoch,
    /// Meta member id of the Raft leader that took the heartbeat.
    pub leader: Option<u64>,
    /// How long the node may keep acting as primary without another ack.
    #[serde(default)]
    pub lease_ms: u64,
}

/// What the meta leader knows from the latest heartbeats (soft state, not
/// in the Raft log): replication lag per shard and each node's read load.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStats {
    pub shards: Vec<ShardLag>,
    pub nodes: Vec<NodeLoad>,
}

/// A shard's replication lag as its primary last reported it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardLag {
    pub collection: String,
    pub shard: ShardId,
    pub primary: NodeId,
    /// See [`ReplicaReport::lag_ms`].
    pub lag_ms: u64,
    /// How old that report is: a primary that stopped reporting (dead,
    /// hung) leaves its last figure here, growing older.
    pub reported_ms_ago: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLoad {
    pub node: NodeId,
    /// See [`Heartbeat::reads_last_minute`].
    pub reads_last_minute: u64,
    pub reported_ms_ago: u64,
}

/// A cluster map as served by one meta member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterMapView {
    pub map: ClusterMap,
    /// The meta member that answered and the leader it knew of.
    pub served_by: u64,
    pub leader: Option<u64>,
    /// Whether the read went through the leader's linearizable check.
    pub linearizable: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, encode};
    use crate::collection::Distance;

    fn sample_map() -> ClusterMap {
        let mut map = ClusterMap {
            epoch: Epoch(7),
            ..Default::default()
        };
        map.nodes
            .insert(NodeId(1), NodeInfo::new(NodeId(1), "127.0.0.1:1"));
        let shard = ShardInfo {
            id: ShardId(0),
            replicas: vec![Replica {
                node: NodeId(1),
                state: ReplicaState::Active,
            }],
            primary: Some(NodeId(1)),
            term: Term(1),
            migration: Some(Migration {
                from: NodeId(1),
                to: NodeId(2),
                kind: TransferKind::Move,
                phase: MigrationPhase::Delta,
                points_copied: 5,
                points_total: 10,
                bytes_copied: 50,
                bytes_total: 100,
                started_at_ms: 1,
                updated_at_ms: 2,
            }),
        };
        map.collections.insert(
            "c".into(),
            CollectionInfo {
                name: "c".into(),
                config: CollectionConfig::new(4, Distance::Dot),
                shards: [(ShardId(0), shard)].into_iter().collect(),
                created_epoch: Epoch(1),
            },
        );
        map
    }

    #[test]
    fn map_round_trips_json_and_msgpack() {
        let mut map = sample_map();
        map.aliases.insert("prod".into(), "c".into());
        assert_eq!(map.resolve("prod"), Some("c"));
        assert_eq!(map.resolve("c"), Some("c"));
        assert_eq!(map.resolve("x"), None);
        assert_eq!(map.aliases_of("c").collect::<Vec<_>>(), vec!["prod"]);
        let json = serde_json::to_string(&map).unwrap();
        assert_eq!(serde_json::from_str::<ClusterMap>(&json).unwrap(), map);
        assert_eq!(decode::<ClusterMap>(&encode(&map).unwrap()).unwrap(), map);
        assert_eq!(
            map.shards_on(NodeId(1)),
            vec![("c".to_string(), ShardId(0))]
        );
        assert!(map.shards_on(NodeId(2)).is_empty());
    }

    #[test]
    fn commands_and_errors_round_trip() {
        let cmd = ClusterCommand::PromotePrimary {
            collection: "c".into(),
            shard: ShardId(1),
            node: NodeId(2),
            expected_term: Some(Term(3)),
        };
        let json = serde_json::to_value(&cmd).unwrap();
        assert_eq!(json["type"], "promote_primary");
        assert_eq!(serde_json::from_value::<ClusterCommand>(json).unwrap(), cmd);
        assert_eq!(
            decode::<ClusterCommand>(&encode(&cmd).unwrap()).unwrap(),
            cmd
        );
        let aliases = ClusterCommand::ChangeAliases {
            actions: vec![
                AliasAction::Delete { alias: "a".into() },
                AliasAction::Create {
                    alias: "a".into(),
                    collection: "c".into(),
                },
                AliasAction::Rename {
                    old: "a".into(),
                    new: "b".into(),
                },
            ],
        };
        let json = serde_json::to_value(&aliases).unwrap();
        assert_eq!(json["type"], "change_aliases");
        assert_eq!(json["actions"][1]["action"], "create");
        assert_eq!(
            decode::<ClusterCommand>(&encode(&aliases).unwrap()).unwrap(),
            aliases
        );
        let err = CommandError::NodeNotFound { node: NodeId(9) };
        let json = serde_json::to_string(&err).unwrap();
        assert_eq!(serde_json::from_str::<CommandError>(&json).unwrap(), err);
        assert_eq!(err.to_string(), "node 9 is not registered");
    }
}
