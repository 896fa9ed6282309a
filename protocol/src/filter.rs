//! Payload filters in Qdrant's JSON shape, and their evaluation against one
//! point. Evaluation is pure so every replica decides alike.
//!
//! ```json
//! {"must": [{"key": "city.name", "match": {"value": "London"}}],
//!  "should": [{"key": "price", "range": {"gte": 10, "lt": 20}}, {"has_id": [1, 2]}],
//!  "must_not": [{"must": [{"key": "sold", "match": {"value": true}}]}]}
//! ```
//!
//! Keys are dotted paths into nested objects; an array anywhere on the path
//! matches when any of its elements does (as in Qdrant).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ValidationError;
use crate::ids::PointId;
use crate::point::Payload;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub should: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must_not: Vec<Condition>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Condition {
    Field(FieldCondition),
    HasId(HasIdCondition),
    Nested(Box<Filter>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HasIdCondition {
    pub has_id: Vec<PointId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldCondition {
    pub key: String,
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub r#match: Option<Match>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Match {
    Value { value: MatchValue },
    Any { any: Vec<MatchValue> },
    Except { except: Vec<MatchValue> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MatchValue {
    Bool(bool),
    Integer(i64),
    Keyword(String),
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

/// Deepest nesting of filters inside filters (the outer filter is level
/// 1). Evaluation recurses once per level on every point a shard tests,
/// so depth is bounded where requests come in; real filters use a few.
pub const MAX_FILTER_DEPTH: usize = 32;

impl Filter {
    /// Refuses filters that parse but mean nothing (a field condition with
    /// neither or both of `match` and `range`, an empty key, a range without
    /// bounds, NaN bounds) and filters nested deeper than
    /// [`MAX_FILTER_DEPTH`].
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.validate_at(1)
    }

    fn validate_at(&self, depth: usize) -> Result<(), ValidationError> {
        if depth > MAX_FILTER_DEPTH {
            return Err(ValidationError::FilterTooDeep {
                limit: MAX_FILTER_DEPTH,
            });
        }
        self.conditions().try_for_each(|c| c.validate(depth))
    }

    fn conditions(&self) -> impl Iterator<Item = &Condition> {
        self.must.iter().chain(&self.should).chain(&self.must_not)
    }

    /// Whether the point with `id` and `payload` passes the filter.
    pub fn matches(&self, id: PointId, payload: Option<&Payload>) -> bool {
        self.must.iter().all(|c| c.matches(id, payload))
            && (self.should.is_empty() || self.should.iter().any(|c| c.matches(id, payload)))
            && !self.must_not.iter().any(|c| c.matches(id, payload))
    }
}

impl Condition {
    fn validate(&self, depth: usize) -> Result<(), ValidationError> {
        let bad = |reason: String| Err(ValidationError::MalformedFilter { reason });
        match self {
            Condition::Field(f) => {
                if f.key.is_empty() || f.key.split('.').any(str::is_empty) {
                    return bad(format!("invalid key {:?}", f.key));
                }
                match (&f.r#match, &f.range) {
                    (Some(_), None) => Ok(()),
                    (None, Some(r)) => {
                        let bounds = [r.gt, r.gte, r.lt, r.lte];
                        if bounds.iter().all(Option::is_none) {
                            bad(format!("range on {:?} has no bound", f.key))
                        } else if bounds.iter().flatten().any(|b| b.is_nan()) {
                            bad(format!("range on {:?} has a NaN bound", f.key))
                        } else {
                            Ok(())
                        }
                    }
                    _ => bad(format!(
                        "condition on {:?} needs exactly one of `match` and `range`",
                        f.key
                    )),
                }
            }
            Condition::HasId(_) => Ok(()),
            Condition::Nested(f) => f.validate_at(depth + 1),
        }
    }

    fn matches(&self, id: PointId, payload: Option<&Payload>) -> bool {
        match self {
            Condition::Field(f) => {
                let mut values = Vec::new();
                if let Some(p) = payload {
                    collect_path(p, &f.key, &mut values);
                }
                f.matches_values(&values)
            }
            Condition::HasId(h) => h.has_id.contains(&id),
            Condition::Nested(f) => f.matches(id, payload),
        }
    }
}

impl FieldCondition {
    fn matches_values(&self, values: &[&Value]) -> bool {
        if let Some(m) = &self.r#match {
            return match m {
                Match::Value { value } => values.iter().any(|v| value.equals(v)),
                Match::Any { any } => values.iter().any(|v| any.iter().any(|a| a.equals(v))),
                // A missing field is "not any of" the given values.
                Match::Except { except } => {
                    values.is_empty() || values.iter().any(|v| !except.iter().any(|e| e.equals(v)))
                }
            };
        }
        if let Some(r) = &self.range {
            return values
                .iter()
                .filter_map(|v| v.as_f64())
                .any(|x| r.contains(x));
        }
        false
    }
}

impl MatchValue {
    fn equals(&self, v: &Value) -> bool {
        match (self, v) {
            (MatchValue::Bool(a), Value::Bool(b)) => a == b,
            (MatchValue::Integer(a), Value::Number(n)) => n.as_i64() == Some(*a),
            (MatchValue::Keyword(a), Value::String(b)) => a == b,
            _ => false,
        }
    }
}

impl Range {
    pub fn contains(&self, x: f64) -> bool {
        self.gt.is_none_or(|b| x > b)
            && self.gte.is_none_or(|b| x >= b)
            && self.lt.is_none_or(|b| x < b)
            && self.lte.is_none_or(|b| x <= b)
    }
}

/// Collects the leaf values at a dotted `path`, descending into arrays on
/// the way and flattening an array at the leaf.
fn collect_path<'a>(payload: &'a Payload, path: &str, out: &mut Vec<&'a Value>) {
    let mut parts = path.split('.');
    let Some(first) = parts.next() else { return };
    let Some(root) = payload.get(first) else {
        return;
    };
    let rest: Vec<&str> = parts.collect();
    descend(root, &rest, out);
}

fn descend<'a>(value: &'a Value, rest: &[&str], out: &mut Vec<&'a Value>) {
    match (value, rest.split_first()) {
        (Value::Array(items), _) => items.iter().for_each(|v| descend(v, rest, out)),
        (v, None) => out.push(v),
        (Value::Object(map), Some((key, tail))) => {
            if let Some(v) = map.get(*key) {
                descend(v, tail, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A filter `depth` levels deep: each level nests the next in `must`.
    fn nested(depth: usize) -> Filter {
        let mut f = Filter {
            must: vec![Condition::HasId(HasIdCondition {
                has_id: vec![PointId::Num(1)],
            })],
            ..Filter::default()
        };
        for _ in 1..depth {
            f = Filter {
                must: vec![Condition::Nested(Box::new(f))],
                ..Filter::default()
            };
        }
        f
    }

    #[test]
    fn nesting_is_limited() {
        assert_eq!(nested(MAX_FILTER_DEPTH).validate(), Ok(()));
        let err = nested(MAX_FILTER_DEPTH + 1).validate().unwrap_err();
        assert_eq!(
            err,
            ValidationError::FilterTooDeep {
                limit: MAX_FILTER_DEPTH
            }
        );
        assert!(err.to_string().contains("limit of 32"), "{err}");
    }

    fn payload(v: Value) -> Payload {
        v.as_object().cloned().unwrap()
    }

    fn filter(v: Value) -> Filter {
        let f: Filter = serde_json::from_value(v).unwrap();
        f.validate().unwrap();
        f
    }

    #[test]
    fn match_value_any_except() {
        let p = payload(json!({"color": "red", "n": 3, "ok": true, "tags": ["a", "b"]}));
        let id = PointId::Num(1);
        assert!(
            filter(json!({"must": [{"key": "color", "match": {"value": "red"}}]}))
                .matches(id, Some(&p))
        );
        assert!(
            !filter(json!({"must": [{"key": "color", "match": {"value": "blue"}}]}))
                .matches(id, Some(&p))
        );
        assert!(
            filter(json!({"must": [{"key": "n", "match": {"value": 3}}]})).matches(id, Some(&p))
        );
        assert!(
            filter(json!({"must": [{"key": "ok", "match": {"value": true}}]}))
                .matches(id, Some(&p))
        );
        assert!(
            filter(json!({"must": [{"key": "tags", "match": {"value": "b"}}]}))
                .matches(id, Some(&p))
        );
        assert!(
            filter(json!({"must": [{"key": "color", "match": {"any": ["x", "red"]}}]}))
                .matches(id, Some(&p))
        );
        assert!(
            !filter(json!({"must": [{"key": "color", "match": {"except": ["red"]}}]}))
                .matches(id, Some(&p))
        );
        assert!(
            filter(json!({"must": [{"key": "missing", "match": {"except": ["red"]}}]}))
                .matches(id, Some(&p))
        );
        assert!(
            !filter(json!({"must": [{"key": "missing", "match": {"value": "red"}}]}))
                .matches(id, None)
        );
    }

    #[test]
    fn range_nested_and_has_id() {
        let p = payload(json!({"a": {"b": [{"c": 5.5}, {"c": 1}]}, "price": 10}));
        let id = PointId::Num(7);
        assert!(
            filter(json!({"must": [{"key": "a.b.c", "range": {"gt": 5}}]})).matches(id, Some(&p))
        );
        assert!(
            !filter(json!({"must": [{"key": "a.b.c", "range": {"gt": 6}}]})).matches(id, Some(&p))
        );
        assert!(
            filter(json!({"must": [{"key": "price", "range": {"gte": 10, "lte": 10}}]}))
                .matches(id, Some(&p))
        );
        assert!(
            !filter(json!({"must": [{"key": "price", "range": {"lt": 10}}]})).matches(id, Some(&p))
        );
        assert!(filter(json!({"must": [{"has_id": [7, 8]}]})).matches(id, Some(&p)));
        assert!(!filter(json!({"must_not": [{"has_id": [7]}]})).matches(id, Some(&p)));
        let nested = json!({"should": [{"has_id": [1]}, {"must": [{"key": "price", "match": {"value": 10}}]}]});
        assert!(filter(nested).matches(id, Some(&p)));
        assert!(!filter(json!({"should": [{"has_id": [1]}]})).matches(id, Some(&p)));
        assert!(Filter::default().matches(id, None));
    }

    #[test]
    fn refuses_malformed_filters() {
        let bad = [
            json!({"must": [{"key": "a"}]}),
            json!({"must": [{"key": "a", "range": {}}]}),
            json!({"must": [{"key": "", "match": {"value": 1}}]}),
            json!({"must": [{"key": "a..b", "match": {"value": 1}}]}),
            json!({"must": [{"key": "a", "match": {"value": 1}, "range": {"gt": 1}}]}),
        ];
        for b in bad {
            let parsed: Result<Filter, _> = serde_json::from_value(b.clone());
            let refused = match parsed {
                Err(_) => true,
                Ok(f) => f.validate().is_err(),
            };
            assert!(refused, "accepted {b}");
        }
        assert!(serde_json::from_value::<Filter>(json!({"mustt": []})).is_err());
        assert!(serde_json::from_value::<Filter>(
            json!({"must": [{"key": "a", "match": {"valu": 1}}]})
        )
        .is_err());
    }
}
