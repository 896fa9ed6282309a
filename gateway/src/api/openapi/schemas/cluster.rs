//! Collections, aliases, Qdrant's cluster routes, the operator routes.

use super::*;

// --- collections -----------------------------------------------------------

/// `PUT /collections/{name}`. Other Qdrant fields (`optimizers_config`,
/// `on_disk_payload`, ...) are accepted and ignored.
#[derive(ToSchema)]
pub struct CreateCollection {
    pub vectors: VectorsConfig,
    #[schema(minimum = 1, maximum = 1024)]
    pub shard_number: Option<u32>,
    /// At most the number of storage nodes.
    #[schema(minimum = 1, maximum = 16)]
    pub replication_factor: Option<u32>,
    /// Replicas that must apply a write: 1 → one, ≥ the replication factor
    /// → all, else a majority.
    pub write_consistency_factor: Option<u32>,
    pub hnsw_config: Option<HnswConfigIn>,
}

/// `{"size", "distance"}`, or a one-entry map of it (`{"": {...}}`).
pub struct VectorsConfig;

impl PartialSchema for VectorsConfig {
    fn schema() -> RefOr<Schema> {
        one_or_single_entry_map(VectorParams::schema(), "The collection's one vector")
    }
}

impl ToSchema for VectorsConfig {}

#[derive(ToSchema)]
pub struct VectorParams {
    #[schema(minimum = 1, maximum = 65536)]
    pub size: u32,
    pub distance: Distance,
}

#[derive(ToSchema)]
pub enum Distance {
    Cosine,
    Dot,
    Euclid,
}

#[derive(ToSchema)]
pub struct HnswConfigIn {
    #[schema(minimum = 2, maximum = 512)]
    pub m: Option<u32>,
    #[schema(minimum = 1)]
    pub ef_construct: Option<u32>,
}

/// `PATCH /collections/{name}`: only the replication factor can change.
#[derive(ToSchema)]
pub struct UpdateCollection {
    pub params: Option<UpdateParams>,
}

#[derive(ToSchema)]
pub struct UpdateParams {
    #[schema(minimum = 1, maximum = 16)]
    pub replication_factor: Option<u32>,
}

#[derive(ToSchema)]
pub struct CollectionsList {
    pub collections: Vec<CollectionName>,
}

#[derive(ToSchema)]
pub struct CollectionName {
    pub name: String,
}

#[derive(ToSchema)]
pub struct CollectionExists {
    pub exists: bool,
}

/// What qdrant-client's `CollectionInfo` model needs.
#[derive(ToSchema)]
pub struct CollectionInfo {
    /// `green`, `yellow` or `red`.
    pub status: String,
    /// `"ok"` or `{"error": "..."}`.
    pub optimizer_status: Value,
    pub vectors_count: Option<u64>,
    pub indexed_vectors_count: u64,
    pub points_count: u64,
    pub segments_count: u64,
    pub config: CollectionConfigOut,
    pub payload_schema: Value,
}

#[derive(ToSchema)]
pub struct CollectionConfigOut {
    pub params: CollectionParamsOut,
    #[schema(value_type = Object)]
    pub hnsw_config: Value,
    #[schema(value_type = Object)]
    pub optimizer_config: Value,
    #[schema(value_type = Object)]
    pub wal_config: Value,
    pub quantization_config: Option<Value>,
}

#[derive(ToSchema)]
pub struct CollectionParamsOut {
    pub vectors: VectorParams,
    pub shard_number: u32,
    pub replication_factor: u32,
    pub write_consistency_factor: u32,
    pub on_disk_payload: bool,
}

#[derive(ToSchema)]
pub struct ShardKeys {
    /// Always null: collections are sharded by point id.
    pub shard_keys: Option<Vec<String>>,
}

// --- aliases ---------------------------------------------------------------

#[derive(ToSchema)]
pub struct ChangeAliases {
    pub actions: Vec<AliasOperation>,
}

#[derive(ToSchema)]
#[serde(untagged)]
pub enum AliasOperation {
    Create { create_alias: CreateAlias },
    Rename { rename_alias: RenameAlias },
    Delete { delete_alias: DeleteAlias },
}

#[derive(ToSchema)]
pub struct CreateAlias {
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\.?$"
    )]
    pub collection_name: String,
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\.?$"
    )]
    pub alias_name: String,
}

#[derive(ToSchema)]
pub struct RenameAlias {
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\.?$"
    )]
    pub old_alias_name: String,
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\.?$"
    )]
    pub new_alias_name: String,
}

#[derive(ToSchema)]
pub struct DeleteAlias {
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\.?$"
    )]
    pub alias_name: String,
}

#[derive(ToSchema)]
pub struct AliasesList {
    pub aliases: Vec<AliasDescription>,
}

#[derive(ToSchema)]
pub struct AliasDescription {
    pub alias_name: String,
    pub collection_name: String,
}

// --- cluster (Qdrant's) ----------------------------------------------------

/// `POST /collections/{name}/cluster`: one operation.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum ClusterOperation {
    Move { move_shard: MoveShard },
    Replicate { replicate_shard: MoveShard },
    Abort { abort_transfer: AbortTransfer },
    Drop { drop_replica: DropReplica },
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveShard {
    pub shard_id: u32,
    pub from_peer_id: u64,
    pub to_peer_id: u64,
    /// `stream_records`, `snapshot` or `wal_delta` (all carried out the
    /// same way).
    pub method: Option<String>,
    pub to_shard_id: Option<u32>,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AbortTransfer {
    pub shard_id: u32,
    pub from_peer_id: u64,
    pub to_peer_id: u64,
    pub to_shard_id: Option<u32>,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DropReplica {
    pub shard_id: u32,
    pub peer_id: u64,
}

#[derive(ToSchema)]
pub struct CollectionClusterInfo {
    pub peer_id: u64,
    pub shard_count: u64,
    pub local_shards: Vec<Value>,
    pub remote_shards: Vec<RemoteShard>,
    pub shard_transfers: Vec<ShardTransferInfo>,
}

#[derive(ToSchema)]
pub struct RemoteShard {
    pub shard_id: u32,
    pub peer_id: u64,
    /// `Active`, `Dead`, `Partial` or `Initializing`.
    pub state: String,
    pub is_primary: bool,
    pub term: u64,
}

#[derive(ToSchema)]
pub struct ShardTransferInfo {
    pub shard_id: u32,
    pub from: u64,
    pub to: u64,
    pub sync: bool,
    pub method: String,
    pub comment: String,
}

/// Qdrant's `GET /cluster`, storage nodes as peers.
#[derive(ToSchema)]
pub struct QdrantClusterInfo {
    pub status: String,
    pub peer_id: u64,
    #[schema(value_type = Object)]
    pub peers: Value,
    #[schema(value_type = Object)]
    pub raft_info: Value,
    #[schema(value_type = Object)]
    pub consensus_thread_status: Value,
    #[schema(value_type = Object)]
    pub message_send_failures: Value,
}

// --- operator routes -------------------------------------------------------

/// `GET /api/cluster/health`.
#[derive(ToSchema)]
pub struct ClusterHealth {
    /// `healthy`, `degraded` or `unhealthy` (then the status is 503).
    pub status: String,
    pub epoch: u64,
    pub meta_service_last_contact_secs: Option<f64>,
    pub nodes: HealthNodes,
    pub shards: HealthShards,
}

#[derive(ToSchema)]
pub struct HealthNodes {
    pub total: u64,
    pub alive: u64,
    pub draining: u64,
    pub dead: u64,
}

#[derive(ToSchema)]
pub struct HealthShards {
    pub under_replicated: u64,
    /// `collection/shard` of each shard without a live replica.
    pub unavailable: Vec<String>,
}

/// `GET /api/cluster/topology`.
#[derive(ToSchema)]
pub struct Topology {
    pub epoch: u64,
    pub nodes: Vec<TopologyNode>,
    pub collections: Vec<TopologyCollection>,
    /// The cluster settings (`UpdateConfig`), key → value.
    pub config: std::collections::BTreeMap<String, String>,
    pub transfers: crate::transfers::TransfersReport,
}

#[derive(ToSchema)]
pub struct TopologyNode {
    pub id: u64,
    pub addr: String,
    pub api_addr: Option<String>,
    pub state: NodeStateDoc,
    pub state_since_ms: u64,
    #[schema(value_type = Object)]
    pub gateway_view: Value,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeStateDoc {
    Alive,
    Dead,
    Draining,
}

#[derive(ToSchema)]
pub struct TopologyCollection {
    pub name: String,
    pub shard_number: u32,
    pub replication_factor: u32,
    pub shards: Vec<TopologyShard>,
}

#[derive(ToSchema)]
pub struct TopologyShard {
    pub id: u32,
    pub primary: Option<u64>,
    pub term: u64,
    pub replicas: Vec<TopologyReplica>,
    pub migration: Option<crate::transfers::TransferView>,
}

#[derive(ToSchema)]
pub struct TopologyReplica {
    pub node: u64,
    /// `initializing` or `active`.
    pub state: String,
}

/// `GET /api/cluster/nodes`.
#[derive(ToSchema)]
pub struct NodesList {
    pub epoch: u64,
    pub nodes: Vec<NodeView>,
}

#[derive(ToSchema)]
pub struct NodeView {
    pub id: u64,
    pub addr: String,
    pub api_addr: Option<String>,
    pub state: NodeStateDoc,
    pub state_since_ms: u64,
    pub replicas: u64,
    pub primaries: u64,
    /// `collection/shard` of each replica it holds.
    pub shards: Vec<String>,
    pub transfers_in: u64,
    pub transfers_out: u64,
}

#[derive(ToSchema)]
pub struct DrainResult {
    pub node: u64,
    pub state: String,
    pub epoch: u64,
    /// Replicas it still holds.
    pub replicas: u64,
}

#[derive(ToSchema)]
pub struct RemoveResult {
    pub node: u64,
    pub removed: bool,
    pub epoch: u64,
}

#[derive(ToSchema)]
pub struct RebalanceResult {
    pub epoch: u64,
    pub moves: Vec<ShardMoveDoc>,
    pub created_at_ms: u64,
}

#[derive(ToSchema)]
pub struct ShardMoveDoc {
    pub collection: String,
    pub shard: u32,
    pub from: u64,
    pub to: u64,
    pub kind: TransferKindDoc,
}

/// `GET|PUT /api/cluster/settings`: `rebalancing.*` key → value.
#[derive(ToSchema)]
pub struct RebalanceSettingsDoc {
    #[serde(rename = "rebalancing.auto_enabled")]
    pub auto_enabled: bool,
    #[serde(rename = "rebalancing.trigger_threshold")]
    pub trigger_threshold: f64,
    #[serde(rename = "rebalancing.max_concurrent_migrations")]
    pub max_concurrent_migrations: u64,
    #[serde(rename = "rebalancing.throttle_mb_per_sec")]
    pub throttle_mb_per_sec: f64,
    #[serde(rename = "rebalancing.stall_after_ms")]
    pub stall_after_ms: u64,
    #[serde(rename = "rebalancing.min_imbalance_bytes")]
    pub min_imbalance_bytes: u64,
}

/// `PUT /api/cluster/settings`: the keys to change, values as strings,
/// numbers or booleans.
#[derive(ToSchema)]
#[schema(min_properties = 1)]
pub struct SettingsUpdate {
    #[serde(rename = "rebalancing.auto_enabled")]
    pub auto_enabled: Option<bool>,
    #[serde(rename = "rebalancing.trigger_threshold")]
    #[schema(minimum = 0)]
    pub trigger_threshold: Option<f64>,
    #[serde(rename = "rebalancing.max_concurrent_migrations")]
    pub max_concurrent_migrations: Option<u64>,
    #[serde(rename = "rebalancing.throttle_mb_per_sec")]
    #[schema(minimum = 0)]
    pub throttle_mb_per_sec: Option<f64>,
    #[serde(rename = "rebalancing.stall_after_ms")]
    pub stall_after_ms: Option<u64>,
    #[serde(rename = "rebalancing.min_imbalance_bytes")]
    pub min_imbalance_bytes: Option<u64>,
}

/// `GET /`: bare, as Qdrant's.
#[derive(ToSchema)]
pub struct VersionInfo {
    pub title: String,
    pub version: String,
}
