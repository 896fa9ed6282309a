//! The query API (`…/points/query`), group-by and facet bodies and answers.

use super::*;

/// A vector, or the id of a stored point whose vector is used.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum VectorOrId {
    Vector(Vec<f32>),
    #[schema(value_type = ExtendedPointId)]
    Id(Value),
}

/// `POST …/points/query`: `query` scores (or orders, or samples) the
/// points; `prefetch` results are fused or re-scored by it.
#[derive(ToSchema)]
pub struct QueryRequest {
    pub prefetch: Option<Vec<Prefetch>>,
    pub query: Option<QueryInput>,
    pub filter: Option<Filter>,
    pub params: Option<SearchParamsIn>,
    pub score_threshold: Option<f32>,
    #[schema(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
    #[schema(minimum = 0, maximum = 10000)]
    pub offset: Option<u32>,
    pub with_payload: Option<WithPayload>,
    pub with_vector: Option<WithVector>,
    pub lookup_from: Option<LookupLocation>,
}

/// One prefetch: evaluated first, its hits feed the level above. Its own
/// `prefetch` nests further (at most 8 levels, 64 nodes in all).
#[derive(ToSchema)]
pub struct Prefetch {
    /// Nested prefetches (the same shape).
    #[schema(value_type = Option<Vec<Object>>)]
    pub prefetch: Option<Vec<Value>>,
    pub query: Option<QueryInput>,
    pub filter: Option<Filter>,
    pub params: Option<SearchParamsIn>,
    pub score_threshold: Option<f32>,
    #[schema(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
    pub lookup_from: Option<LookupLocation>,
}

/// Where ids in the query find their vectors.
#[derive(ToSchema)]
pub struct LookupLocation {
    pub collection: String,
}

/// The query: a vector or id (nearest), or one of Qdrant's query objects.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum QueryInput {
    Vector(Vec<f32>),
    #[schema(value_type = ExtendedPointId)]
    Point(Value),
    Nearest {
        nearest: VectorOrId,
    },
    Recommend {
        recommend: RecommendInput,
    },
    Discover {
        discover: DiscoverInput,
    },
    Context {
        context: Vec<ContextPair>,
    },
    OrderBy {
        order_by: OrderByInput,
    },
    Fusion {
        fusion: FusionKind,
    },
    Rrf {
        rrf: RrfInput,
    },
    Sample {
        sample: SampleKind,
    },
}

#[derive(ToSchema)]
pub struct RecommendInput {
    pub positive: Option<Vec<VectorOrId>>,
    pub negative: Option<Vec<VectorOrId>>,
    pub strategy: Option<RecommendStrategy>,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecommendStrategy {
    AverageVector,
    BestScore,
}

#[derive(ToSchema)]
pub struct DiscoverInput {
    pub target: VectorOrId,
    pub context: Option<Vec<ContextPair>>,
}

#[derive(ToSchema)]
pub struct ContextPair {
    pub positive: VectorOrId,
    pub negative: VectorOrId,
}

#[derive(ToSchema)]
#[serde(untagged)]
pub enum OrderByInput {
    Key(String),
    Spec(OrderBySpec),
}

/// Sort by a numeric payload key; `start_from` is inclusive.
#[derive(ToSchema)]
pub struct OrderBySpec {
    pub key: String,
    pub direction: Option<DirectionIn>,
    pub start_from: Option<f64>,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DirectionIn {
    Asc,
    Desc,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FusionKind {
    Rrf,
    Dbsf,
}

#[derive(ToSchema)]
pub struct RrfInput {
    /// Default 2.
    pub k: Option<u32>,
    /// One per prefetch.
    pub weights: Option<Vec<f32>>,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SampleKind {
    Random,
}

#[derive(ToSchema)]
pub struct QueryResult {
    pub points: Vec<ScoredOut>,
    pub missing_shards: Option<Vec<u32>>,
    pub partial: Option<bool>,
}

/// `with_lookup`: the collection where each group id is a point id.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum WithLookup {
    Collection(String),
    Spec(WithLookupSpec),
}

#[derive(ToSchema)]
pub struct WithLookupSpec {
    pub collection: String,
    pub with_payload: Option<WithPayload>,
    pub with_vectors: Option<WithVector>,
}

/// `POST …/points/query/groups`: a query and how to group its hits.
#[derive(ToSchema)]
pub struct QueryGroupsRequest {
    pub prefetch: Option<Vec<Prefetch>>,
    pub query: Option<QueryInput>,
    pub filter: Option<Filter>,
    pub params: Option<SearchParamsIn>,
    pub score_threshold: Option<f32>,
    pub with_payload: Option<WithPayload>,
    pub with_vector: Option<WithVector>,
    pub lookup_from: Option<LookupLocation>,
    pub group_by: String,
    /// Hits per group, default 3.
    #[schema(minimum = 1, maximum = 100)]
    pub group_size: Option<u32>,
    /// Groups, default 10.
    #[schema(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
    pub with_lookup: Option<WithLookup>,
}

/// `POST …/points/search/groups`.
#[derive(ToSchema)]
pub struct SearchGroupsRequest {
    pub vector: VectorInput,
    pub filter: Option<Filter>,
    pub params: Option<SearchParamsIn>,
    pub score_threshold: Option<f32>,
    pub with_payload: Option<WithPayload>,
    pub with_vector: Option<WithVector>,
    pub group_by: String,
    #[schema(minimum = 1, maximum = 100)]
    pub group_size: u32,
    #[schema(minimum = 1, maximum = 10000)]
    pub limit: u32,
    pub with_lookup: Option<WithLookup>,
}

#[derive(ToSchema)]
pub struct GroupsResult {
    pub groups: Vec<PointGroup>,
    pub missing_shards: Option<Vec<u32>>,
    pub partial: Option<bool>,
}

#[derive(ToSchema)]
pub struct PointGroup {
    /// The payload value (string or integer).
    #[schema(value_type = GroupId)]
    pub id: Value,
    pub hits: Vec<ScoredOut>,
    pub lookup: Option<RecordOut>,
}

#[derive(ToSchema)]
#[serde(untagged)]
pub enum GroupId {
    Int(i64),
    Str(String),
}

/// `POST …/facet`: counts of a payload key's values (always exact).
#[derive(ToSchema)]
pub struct FacetRequest {
    pub key: String,
    pub filter: Option<Filter>,
    #[schema(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
    pub exact: Option<bool>,
}

#[derive(ToSchema)]
pub struct FacetResult {
    pub hits: Vec<FacetHit>,
    pub missing_shards: Option<Vec<u32>>,
    pub partial: Option<bool>,
}

#[derive(ToSchema)]
pub struct FacetHit {
    #[schema(value_type = FacetValue)]
    pub value: Value,
    pub count: u64,
}

#[derive(ToSchema)]
#[serde(untagged)]
pub enum FacetValue {
    Bool(bool),
    Int(i64),
    Str(String),
}
