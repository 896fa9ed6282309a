//! Qdrant's filter, as `protocol::filter` parses it: one schema per
//! condition shape, so a body the document allows is one the gateway
//! takes.

use serde_json::Value;
use utoipa::ToSchema;

use super::ExtendedPointId;

/// Qdrant's filter: every `must` condition, at least one `should`, no
/// `must_not`, at least `min_should.min_count` of `min_should.conditions`
/// (nested at most 32 deep).
#[derive(ToSchema)]
#[schema(no_recursion)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub must: Option<Vec<Condition>>,
    pub should: Option<Vec<Condition>>,
    pub must_not: Option<Vec<Condition>>,
    #[schema(no_recursion)]
    pub min_should: Option<MinShould>,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MinShould {
    #[schema(no_recursion)]
    pub conditions: Vec<Condition>,
    #[schema(minimum = 1)]
    pub min_count: u64,
}

/// A condition on a payload key (`match`, `range`, `geo_*`,
/// `values_count`, `is_empty`, `is_null`), on ids, on array elements
/// (`nested`), or a nested filter.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum Condition {
    Match(MatchCondition),
    Range(RangeCondition),
    GeoBoundingBox(GeoBoundingBoxCondition),
    GeoRadius(GeoRadiusCondition),
    GeoPolygon(GeoPolygonCondition),
    ValuesCount(ValuesCountCondition),
    IsEmptyFlag(IsEmptyFlagCondition),
    IsNullFlag(IsNullFlagCondition),
    IsEmpty(IsEmptyCondition),
    IsNull(IsNullCondition),
    HasId(HasIdCondition),
    #[schema(no_recursion)]
    Nested(NestedCondition),
    #[schema(no_recursion)]
    Filter(Filter),
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchCondition {
    #[schema(pattern = r"^[^.]*[^.\[\]][^.]*(\[\])?(\.[^.]*[^.\[\]][^.]*(\[\])?)*$")]
    pub key: String,
    #[serde(rename = "match")]
    pub r#match: Match,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RangeCondition {
    #[schema(pattern = r"^[^.]*[^.\[\]][^.]*(\[\])?(\.[^.]*[^.\[\]][^.]*(\[\])?)*$")]
    pub key: String,
    pub range: RangeInterface,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GeoBoundingBoxCondition {
    #[schema(pattern = r"^[^.]*[^.\[\]][^.]*(\[\])?(\.[^.]*[^.\[\]][^.]*(\[\])?)*$")]
    pub key: String,
    pub geo_bounding_box: GeoBoundingBox,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GeoRadiusCondition {
    #[schema(pattern = r"^[^.]*[^.\[\]][^.]*(\[\])?(\.[^.]*[^.\[\]][^.]*(\[\])?)*$")]
    pub key: String,
    pub geo_radius: GeoRadius,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GeoPolygonCondition {
    #[schema(pattern = r"^[^.]*[^.\[\]][^.]*(\[\])?(\.[^.]*[^.\[\]][^.]*(\[\])?)*$")]
    pub key: String,
    pub geo_polygon: GeoPolygon,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValuesCountCondition {
    #[schema(pattern = r"^[^.]*[^.\[\]][^.]*(\[\])?(\.[^.]*[^.\[\]][^.]*(\[\])?)*$")]
    pub key: String,
    pub values_count: ValuesCount,
}

/// `{"key": k, "is_empty": true}`: the same as `{"is_empty": {"key": k}}`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IsEmptyFlagCondition {
    #[schema(pattern = r"^[^.]*[^.\[\]][^.]*(\[\])?(\.[^.]*[^.\[\]][^.]*(\[\])?)*$")]
    pub key: String,
    pub is_empty: bool,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IsNullFlagCondition {
    #[schema(pattern = r"^[^.]*[^.\[\]][^.]*(\[\])?(\.[^.]*[^.\[\]][^.]*(\[\])?)*$")]
    pub key: String,
    pub is_null: bool,
}

/// The key is missing, `null` or `[]`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IsEmptyCondition {
    pub is_empty: PayloadField,
}

/// The key holds `null` (or an array with a `null`).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IsNullCondition {
    pub is_null: PayloadField,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayloadField {
    #[schema(pattern = r"^[^.]*[^.\[\]][^.]*(\[\])?(\.[^.]*[^.\[\]][^.]*(\[\])?)*$")]
    pub key: String,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HasIdCondition {
    #[schema(value_type = Vec<ExtendedPointId>)]
    pub has_id: Vec<Value>,
}

/// The filter holds within one element of the array at `key`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NestedCondition {
    #[schema(no_recursion)]
    pub nested: Nested,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Nested {
    #[schema(pattern = r"^[^.]*[^.\[\]][^.]*(\[\])?(\.[^.]*[^.\[\]][^.]*(\[\])?)*$")]
    pub key: String,
    #[schema(no_recursion)]
    pub filter: Filter,
}

/// Exact values, or full text: `text` (every word), `text_any` (a word),
/// `phrase` (the words in order).
#[derive(ToSchema)]
#[serde(untagged)]
pub enum Match {
    Value { value: MatchValue },
    Text { text: String },
    TextAny { text_any: String },
    Phrase { phrase: String },
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

#[derive(ToSchema)]
#[serde(untagged)]
pub enum RangeInterface {
    Float(Range),
    DateTime(DatetimeRange),
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

/// At least one bound; each an RFC 3339 datetime (`2024-05-01T12:00:00Z`;
/// a date alone, or no offset, means UTC).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct DatetimeRange {
    #[schema(format = DateTime)]
    pub gt: Option<String>,
    #[schema(format = DateTime)]
    pub gte: Option<String>,
    #[schema(format = DateTime)]
    pub lt: Option<String>,
    #[schema(format = DateTime)]
    pub lte: Option<String>,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GeoPoint {
    #[schema(minimum = -180, maximum = 180)]
    pub lon: f64,
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GeoBoundingBox {
    pub top_left: GeoPoint,
    pub bottom_right: GeoPoint,
}

/// Within `radius` meters of `center`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GeoRadius {
    pub center: GeoPoint,
    #[schema(minimum = 0)]
    pub radius: f64,
}

/// Each ring: at least 4 points, the last equal to the first.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GeoPolygon {
    pub exterior: GeoLineString,
    pub interiors: Option<Vec<GeoLineString>>,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GeoLineString {
    #[schema(min_items = 4)]
    pub points: Vec<GeoPoint>,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValuesCount {
    pub gt: Option<u64>,
    pub gte: Option<u64>,
    pub lt: Option<u64>,
    pub lte: Option<u64>,
}
