//! The shapes of the OpenAPI document that have no Rust type of their own:
//! the handlers read their bodies as JSON values and parse them by hand
//! (so that every refusal names what is wrong), and build most answers
//! with `json!`. These types only describe those shapes; nothing
//! constructs them. Where an answer has a real type (`ScoredOut`,
//! `RecordOut`, `ClusterMetrics`, `TransferView`, `TransfersReport`) the
//! document uses it directly.
//!
//! Every response shape here is checked against the running gateway by
//! `gateway/tests/schemathesis/check.sh`; a field listed without `Option`
//! is required there, so an answer that drops it fails the check.

#![allow(dead_code)]

use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};

pub use crate::api::models::{ExtendedPointId, Payload};
use crate::api::models::{RecordOut, ScoredOut};
pub use crate::transfers::{MigrationPhaseDoc, TransferKindDoc, TransferRecordDoc};

// --- envelopes ---------------------------------------------------------

/// Qdrant's success envelope.
#[derive(ToSchema)]
pub struct Envelope<T: ToSchema> {
    pub result: T,
    pub status: OkStatus,
    /// Seconds spent on the request.
    pub time: f64,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OkStatus {
    Ok,
}

/// Qdrant's error envelope, as every refusal of the gateway is sent
/// (`GatewayError`'s `IntoResponse`), whatever the route.
#[derive(ToSchema)]
pub struct ErrorBody {
    pub status: ErrorStatus,
    pub time: f64,
}

#[derive(ToSchema)]
pub struct ErrorStatus {
    /// What went wrong, e.g. `Bad request: ...`, `Not found: Collection
    /// \`c\` doesn't exist!`.
    pub error: String,
}

// --- common pieces -----------------------------------------------------

/// A vector: an array of numbers, or a one-entry map `{"": [...]}` (the
/// collection's one unnamed vector).
pub struct VectorInput;

impl PartialSchema for VectorInput {
    fn schema() -> RefOr<Schema> {
        one_or_single_entry_map(
            Vec::<f32>::schema(),
            "An array of numbers (the collection's dimension)",
        )
    }
}

impl ToSchema for VectorInput {}

/// `with_payload`: all, none, the listed keys, or include / exclude lists.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum WithPayload {
    All(bool),
    Keys(Vec<String>),
    Selector(PayloadSelectorIn),
}

#[derive(ToSchema)]
#[serde(untagged)]
pub enum PayloadSelectorIn {
    Include { include: Vec<String> },
    Exclude { exclude: Vec<String> },
}

/// `with_vector`: a bool, or a list of vector names (any name means the
/// collection's one vector).
#[derive(ToSchema)]
#[serde(untagged)]
pub enum WithVector {
    All(bool),
    Names(Vec<String>),
}

// --- filters -------------------------------------------------------------

/// Qdrant's filter: every `must` condition, at least one `should`, no
/// `must_not` (nested at most 32 deep).
#[derive(ToSchema)]
#[schema(no_recursion)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub must: Option<Vec<Condition>>,
    pub should: Option<Vec<Condition>>,
    pub must_not: Option<Vec<Condition>>,
}

/// A condition on a payload key (`match` or `range`), on ids, or a
/// nested filter.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum Condition {
    Match(MatchCondition),
    Range(RangeCondition),
    HasId(HasIdCondition),
    #[schema(no_recursion)]
    Nested(Filter),
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchCondition {
    /// Payload key; dots step into nested objects.
    #[schema(pattern = r"^[^.]+(\.[^.]+)*$")]
    pub key: String,
    #[serde(rename = "match")]
    pub r#match: Match,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RangeCondition {
    #[schema(pattern = r"^[^.]+(\.[^.]+)*$")]
    pub key: String,
    pub range: Range,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HasIdCondition {
    #[schema(value_type = Vec<ExtendedPointId>)]
    pub has_id: Vec<Value>,
}

#[derive(ToSchema)]
#[serde(untagged)]
pub enum Match {
    Value { value: MatchValue },
    Any { any: Vec<MatchValue> },
    Except { except: Vec<MatchValue> },
}

#[derive(ToSchema)]
#[serde(untagged)]
pub enum MatchValue {
    Bool(bool),
    Integer(i64),
    Keyword(String),
}

/// At least one bound.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct Range {
    pub gt: Option<f64>,
    pub gte: Option<f64>,
    pub lt: Option<f64>,
    pub lte: Option<f64>,
}

// --- parameters ----------------------------------------------------------

/// The collection (or, on the routes that read, an alias of it).
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CollectionPath {
    /// 1 to 255 bytes of ASCII letters, digits, `_`, `-` and `.`, not
    /// starting with `.` or `-`, without `..`.
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = r"^[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\.?$"
    )]
    pub name: String,
}

/// A storage node id.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct NodePath {
    pub id: u64,
}

/// Query parameters of the point writes.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WriteQuery {
    /// `false` answers `acknowledged` instead of `completed`; either way
    /// the answer comes once the write consistency is met.
    pub wait: Option<bool>,
    /// Replicas that must apply the write (default: the collection's).
    pub write_consistency: Option<WriteConsistencyParam>,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WriteConsistencyParam {
    One,
    Majority,
    Quorum,
    All,
}

/// Query parameters of the point reads.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadQuery {
    /// `one` (default), `majority` / `quorum`, `all`, or a number of
    /// replicas (1: one, more: majority).
    #[param(pattern = r"^(one|majority|quorum|all|[0-9]{1,9})$")]
    pub consistency: Option<String>,
    /// `true`: answer with the shards that could be read, listing the
    /// missing ones in `missing_shards`, instead of failing with 503.
    pub partial: Option<bool>,
}

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

/// `single`, or an object with exactly one member of the same schema.
fn one_or_single_entry_map(single: RefOr<Schema>, description: &str) -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(single.clone())
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .additional_properties(Some(single))
                .min_properties(Some(1))
                .max_properties(Some(1)),
        )
        .description(Some(description))
        .into()
}

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

// --- point writes ----------------------------------------------------------

/// `PUT /collections/{name}/points`: a list of points, or columns.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum PointInsertOperations {
    List { points: Vec<PointStruct> },
    Batch { batch: PointsBatch },
}

#[derive(ToSchema)]
pub struct PointStruct {
    #[schema(value_type = ExtendedPointId)]
    pub id: Value,
    pub vector: VectorInput,
    #[schema(value_type = Option<Payload>)]
    pub payload: Option<Value>,
}

#[derive(ToSchema)]
pub struct PointsBatch {
    #[schema(value_type = Vec<ExtendedPointId>)]
    pub ids: Vec<Value>,
    pub vectors: Vec<VectorInput>,
    #[schema(value_type = Option<Vec<Option<Payload>>>)]
    pub payloads: Option<Vec<Value>>,
}

/// Points chosen by id, or by a filter.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum PointsSelector {
    Ids {
        #[schema(value_type = Vec<ExtendedPointId>)]
        points: Vec<Value>,
    },
    Filter {
        filter: Filter,
    },
}

/// `POST|PUT …/points/payload`: the payload and the points (`points` or
/// `filter`).
#[derive(ToSchema)]
pub struct SetPayload {
    #[schema(value_type = Payload)]
    pub payload: Value,
    #[schema(value_type = Option<Vec<ExtendedPointId>>)]
    pub points: Option<Vec<Value>>,
    pub filter: Option<Filter>,
}

/// `POST …/points/payload/delete`.
#[derive(ToSchema)]
pub struct DeletePayload {
    pub keys: Vec<String>,
    #[schema(value_type = Option<Vec<ExtendedPointId>>)]
    pub points: Option<Vec<Value>>,
    pub filter: Option<Filter>,
}

/// `POST …/points/batch`: operations applied in order.
#[derive(ToSchema)]
pub struct UpdateOperations {
    pub operations: Vec<UpdateOperation>,
}

#[derive(ToSchema)]
#[serde(untagged)]
pub enum UpdateOperation {
    Upsert { upsert: PointInsertOperations },
    Delete { delete: PointsSelector },
    SetPayload { set_payload: SetPayload },
    OverwritePayload { overwrite_payload: SetPayload },
    DeletePayload { delete_payload: DeletePayload },
    ClearPayload { clear_payload: PointsSelector },
}

/// `PUT /collections/{name}/index`: accepted and ignored (filters need
/// no payload index here).
#[derive(ToSchema)]
pub struct CreateFieldIndex {
    pub field_name: Option<String>,
    pub field_schema: Option<Value>,
}

/// Qdrant's `UpdateResult`.
#[derive(ToSchema)]
pub struct UpdateResult {
    pub operation_id: u64,
    pub status: UpdateStatus,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UpdateStatus {
    Acknowledged,
    Completed,
}

// --- point reads -----------------------------------------------------------

/// `POST /collections/{name}/points`: points by id.
#[derive(ToSchema)]
pub struct PointRequest {
    #[schema(value_type = Vec<ExtendedPointId>)]
    pub ids: Vec<Value>,
    pub with_payload: Option<WithPayload>,
    pub with_vector: Option<WithVector>,
}

#[derive(ToSchema)]
pub struct ScrollRequest {
    #[schema(value_type = Option<ExtendedPointId>)]
    pub offset: Option<Value>,
    #[schema(minimum = 0, maximum = 10000)]
    pub limit: Option<u32>,
    pub filter: Option<Filter>,
    pub with_payload: Option<WithPayload>,
    pub with_vector: Option<WithVector>,
}

#[derive(ToSchema)]
pub struct ScrollResult {
    pub points: Vec<RecordOut>,
    #[schema(value_type = Option<ExtendedPointId>)]
    pub next_page_offset: Option<Value>,
    /// Present (with `partial: true`) when `partial` was asked for and
    /// some shards could not be read.
    pub missing_shards: Option<Vec<u32>>,
    pub partial: Option<bool>,
}

#[derive(ToSchema)]
pub struct CountRequest {
    pub filter: Option<Filter>,
    /// `false`: shards may estimate a filtered count from a sample.
    pub exact: Option<bool>,
}

#[derive(ToSchema)]
pub struct CountResult {
    pub count: u64,
    pub missing_shards: Option<Vec<u32>>,
    pub partial: Option<bool>,
}

#[derive(ToSchema)]
pub struct SearchParamsIn {
    pub hnsw_ef: Option<u32>,
    pub exact: Option<bool>,
}

/// `POST …/points/search`.
#[derive(ToSchema)]
pub struct SearchRequest {
    pub vector: VectorInput,
    pub filter: Option<Filter>,
    pub params: Option<SearchParamsIn>,
    /// Default 10.
    #[schema(minimum = 0, maximum = 10000)]
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    pub with_payload: Option<WithPayload>,
    pub with_vector: Option<WithVector>,
    pub score_threshold: Option<f32>,
}

#[derive(ToSchema)]
pub struct SearchBatch {
    #[schema(max_items = 1000)]
    pub searches: Vec<SearchRequest>,
}

/// A search's hits; with `partial` and missing shards, an object that
/// lists them.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum SearchResult {
    Complete(Vec<ScoredOut>),
    Partial(PartialHits),
}

#[derive(ToSchema)]
pub struct PartialHits {
    pub points: Vec<ScoredOut>,
    pub missing_shards: Vec<u32>,
    pub partial: bool,
}

/// `POST …/points/query`: a vector, `{"nearest": vector}`, or the id of a
/// stored point whose vector is used.
#[derive(ToSchema)]
pub struct QueryRequest {
    pub query: QueryInput,
    pub filter: Option<Filter>,
    pub params: Option<SearchParamsIn>,
    #[schema(minimum = 0, maximum = 10000)]
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    pub with_payload: Option<WithPayload>,
    pub with_vector: Option<WithVector>,
    pub score_threshold: Option<f32>,
}

#[derive(ToSchema)]
#[serde(untagged)]
pub enum QueryInput {
    Vector(Vec<f32>),
    Nearest {
        nearest: Vec<f32>,
    },
    #[schema(value_type = ExtendedPointId)]
    Point(Value),
}

#[derive(ToSchema)]
pub struct QueryBatch {
    #[schema(max_items = 1000)]
    pub searches: Vec<QueryRequest>,
}

#[derive(ToSchema)]
pub struct QueryResult {
    pub points: Vec<ScoredOut>,
    pub missing_shards: Option<Vec<u32>>,
    pub partial: Option<bool>,
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
