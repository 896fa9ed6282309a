//! Point writes and reads: request bodies and results.

use super::*;

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

#[derive(ToSchema)]
pub struct QueryBatch {
    #[schema(max_items = 1000)]
    pub searches: Vec<QueryRequest>,
}
