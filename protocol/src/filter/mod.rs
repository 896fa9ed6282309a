//! Payload filters in Qdrant's JSON shape, and their evaluation against one
//! point. Evaluation is pure so every replica decides alike.
//!
//! ```json
//! {"must": [{"key": "city.name", "match": {"value": "London"}}],
//!  "should": [{"key": "price", "range": {"gte": 10, "lt": 20}}, {"has_id": [1, 2]}],
//!  "must_not": [{"must": [{"key": "sold", "match": {"value": true}}]}],
//!  "min_should": {"conditions": [{"is_empty": {"key": "tags"}}, {"key": "bio", "match": {"text": "rust"}}],
//!                 "min_count": 1}}
//! ```
//!
//! Keys are dotted paths into nested objects (`a.b`, `a[].b`); an array
//! anywhere on the path matches when any of its elements does (as in
//! Qdrant). The conditions and their edge cases (a missing field, `null`,
//! `[]`) follow Qdrant as its client's local mode reproduces it, which the
//! qdrant-client test compares against.
//!
//! Layout: this file holds the types and [`Filter::validate`]; `eval`
//! decides a point, `geo`, `datetime` and `text` the conditions that need
//! more than a comparison.

mod datetime;
mod eval;
mod geo;
#[cfg(test)]
mod tests;
mod text;

use serde::{Deserialize, Serialize};

pub use datetime::{parse_datetime, DateTime};
pub use eval::values_at;
pub use geo::{point_of, GeoBoundingBox, GeoLineString, GeoPoint, GeoPolygon, GeoRadius};
pub use text::tokenize;

use crate::error::ValidationError;
use crate::ids::PointId;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub should: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must_not: Vec<Condition>,
    /// At least `min_count` of `conditions` hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_should: Option<MinShould>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinShould {
    pub conditions: Vec<Condition>,
    pub min_count: usize,
}

/// One condition. Untagged: each shape has a distinct required key, and a
/// nested filter (all fields optional) comes last.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Condition {
    /// Boxed: by far the largest shape.
    Field(Box<FieldCondition>),
    IsEmpty(IsEmptyCondition),
    IsNull(IsNullCondition),
    HasId(HasIdCondition),
    Nested(NestedCondition),
    Filter(Box<Filter>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HasIdCondition {
    pub has_id: Vec<PointId>,
}

/// `{"is_empty": {"key": "k"}}`: the key is missing, `null` or `[]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsEmptyCondition {
    pub is_empty: PayloadField,
}

/// `{"is_null": {"key": "k"}}`: the key holds `null` (or an array with a
/// `null` in it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsNullCondition {
    pub is_null: PayloadField,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadField {
    pub key: String,
}

/// `{"nested": {"key": "k", "filter": {...}}}`: `k` is an array of
/// objects, and the whole filter must hold within one of them (keys in it
/// are relative to the element).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NestedCondition {
    pub nested: Nested,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nested {
    pub key: String,
    pub filter: Filter,
}

/// A condition on one payload key: exactly one of the optional fields.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldCondition {
    pub key: String,
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub r#match: Option<Match>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<RangeInterface>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_bounding_box: Option<GeoBoundingBox>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_radius: Option<GeoRadius>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_polygon: Option<GeoPolygon>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_count: Option<ValuesCount>,
    /// `true`: the same as `{"is_empty": {"key": ...}}`; `false`: its negation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_empty: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_null: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Match {
    Value {
        value: MatchValue,
    },
    /// Every word of `text` is a word of the value (lowercased words of
    /// letters and digits; see [`tokenize`]).
    Text {
        text: String,
    },
    /// At least one word of `text_any` is a word of the value.
    TextAny {
        text_any: String,
    },
    /// The words of `phrase` appear in the value consecutively, in order.
    Phrase {
        phrase: String,
    },
    Any {
        any: Vec<MatchValue>,
    },
    Except {
        except: Vec<MatchValue>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MatchValue {
    Bool(bool),
    Integer(i64),
    Keyword(String),
}

/// A numeric range, or a datetime range (bounds as RFC 3339 strings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RangeInterface {
    Float(Range),
    DateTime(DatetimeRange),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<f64>,
}

/// Bounds are datetimes in the formats Qdrant reads (see
/// [`parse_datetime`]); a payload value matches when it is a string in one
/// of those formats inside the bounds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatetimeRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<DateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<DateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<DateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<DateTime>,
}

/// Bounds on how many values a key holds (an array counts its elements,
/// a missing key or `null` counts 0, anything else 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValuesCount {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<usize>,
}

/// Deepest nesting of filters inside filters (the outer filter is level
/// 1; a `nested` condition's filter is one level down). Evaluation
/// recurses once per level on every point a shard tests, so depth is
/// bounded where requests come in; real filters use a few.
pub const MAX_FILTER_DEPTH: usize = 32;

impl Filter {
    /// Refuses filters that parse but mean nothing (a field condition with
    /// none or several of `match`, `range`, `geo_*`, `values_count`,
    /// `is_empty`, `is_null`; an empty key; a range without bounds, NaN
    /// bounds; an invalid geo shape; `min_count` 0) and filters nested
    /// deeper than [`MAX_FILTER_DEPTH`].
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.validate_at(1)
    }

    fn validate_at(&self, depth: usize) -> Result<(), ValidationError> {
        if depth > MAX_FILTER_DEPTH {
            return Err(ValidationError::FilterTooDeep {
                limit: MAX_FILTER_DEPTH,
            });
        }
        if let Some(m) = &self.min_should {
            if m.min_count == 0 {
                return malformed("min_should.min_count must be 1 or larger".into());
            }
        }
        self.conditions().try_for_each(|c| c.validate(depth))
    }

    fn conditions(&self) -> impl Iterator<Item = &Condition> {
        let min_should = self.min_should.iter().flat_map(|m| &m.conditions);
        self.must
            .iter()
            .chain(&self.should)
            .chain(&self.must_not)
            .chain(min_should)
    }
}

fn malformed<T>(reason: String) -> Result<T, ValidationError> {
    Err(ValidationError::MalformedFilter { reason })
}

/// A key is dotted segments, each non-empty; a segment may end in `[]`
/// (Qdrant's "every element of this array", which is what a plain segment
/// does here too).
fn validate_key(key: &str) -> Result<(), ValidationError> {
    let bad_segment = |s: &str| s.strip_suffix("[]").unwrap_or(s).is_empty();
    if key.is_empty() || key.split('.').any(bad_segment) {
        return malformed(format!("invalid key {key:?}"));
    }
    Ok(())
}

impl Condition {
    fn validate(&self, depth: usize) -> Result<(), ValidationError> {
        match self {
            Condition::Field(f) => f.validate(),
            Condition::IsEmpty(c) => validate_key(&c.is_empty.key),
            Condition::IsNull(c) => validate_key(&c.is_null.key),
            Condition::HasId(_) => Ok(()),
            Condition::Nested(n) => {
                validate_key(&n.nested.key)?;
                n.nested.filter.validate_at(depth + 1)
            }
            Condition::Filter(f) => f.validate_at(depth + 1),
        }
    }
}

impl FieldCondition {
    fn validate(&self) -> Result<(), ValidationError> {
        let key = &self.key;
        validate_key(key)?;
        let given = [
            self.r#match.is_some(),
            self.range.is_some(),
            self.geo_bounding_box.is_some(),
            self.geo_radius.is_some(),
            self.geo_polygon.is_some(),
            self.values_count.is_some(),
            self.is_empty.is_some(),
            self.is_null.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return malformed(format!(
                "condition on {key:?} needs exactly one of `match`, `range`, `geo_bounding_box`, \
                 `geo_radius`, `geo_polygon`, `values_count`, `is_empty`, `is_null`"
            ));
        }
        match &self.range {
            Some(RangeInterface::Float(r)) => {
                let bounds = [r.gt, r.gte, r.lt, r.lte];
                if bounds.iter().all(Option::is_none) {
                    return malformed(format!("range on {key:?} has no bound"));
                }
                if bounds.iter().flatten().any(|b| b.is_nan()) {
                    return malformed(format!("range on {key:?} has a NaN bound"));
                }
            }
            Some(RangeInterface::DateTime(r))
                if [&r.gt, &r.gte, &r.lt, &r.lte].iter().all(|b| b.is_none()) =>
            {
                return malformed(format!("range on {key:?} has no bound"));
            }
            _ => {}
        }
        let geo = |r: Result<(), String>| r.or_else(|e| malformed(format!("{e} (key {key:?})")));
        if let Some(b) = &self.geo_bounding_box {
            geo(b.validate())?;
        }
        if let Some(r) = &self.geo_radius {
            geo(r.validate())?;
        }
        if let Some(p) = &self.geo_polygon {
            geo(p.validate())?;
        }
        Ok(())
    }
}
