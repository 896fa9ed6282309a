//! The shapes of the OpenAPI document that have no Rust type of their own:
//! the handlers read their bodies as JSON values and parse them by hand
//! (so that every refusal names what is wrong), and build most answers
//! with `json!`. These types only describe those shapes; nothing
//! constructs them. Where an answer has a real type (`ScoredOut`,
//! `RecordOut`, `ClusterMetrics`, `TransferView`, `TransfersReport`) the
//! document uses it directly.
//!
//! Here: envelopes, ids, vectors, query parameters; [`filter`]: filters;
//! [`points`]: point writes and reads; [`query`]: the query API, group-by
//! and facets; [`cluster`]: collections,
//! aliases, Qdrant's cluster routes and the operator routes.
//!
//! Every response shape here is checked against the running gateway by
//! `gateway/tests/schemathesis/check.sh`; a field listed without `Option`
//! is required there, so an answer that drops it fails the check.

#![allow(dead_code)]

mod cluster;
mod filter;
mod points;
mod query;

pub use cluster::*;
pub use filter::*;
pub use points::*;
pub use query::*;

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
    /// `false` answers `acknowledged` (instead of `completed`) as soon as
    /// each shard's primary has the write durably logged, unless a
    /// `write_consistency` is given, which is then met first.
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
