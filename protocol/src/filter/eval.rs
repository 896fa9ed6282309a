//! Deciding whether one point passes a filter.

use serde_json::Value;

use super::{
    datetime, geo, text, Condition, DatetimeRange, FieldCondition, Filter, Match, MatchValue,
    Range, RangeInterface, ValuesCount,
};
use crate::ids::PointId;
use crate::point::Payload;

impl Filter {
    /// Whether the point with `id` and `payload` passes the filter.
    pub fn matches(&self, id: PointId, payload: Option<&Payload>) -> bool {
        self.matches_in(Some(id), payload)
    }

    /// `id` is `None` inside a `nested` condition: an array element has no
    /// id, so `has_id` there matches nothing.
    fn matches_in(&self, id: Option<PointId>, payload: Option<&Payload>) -> bool {
        let holds = |c: &Condition| c.matches(id, payload);
        self.must.iter().all(holds)
            && (self.should.is_empty() || self.should.iter().any(holds))
            && !self.must_not.iter().any(holds)
            && self
                .min_should
                .as_ref()
                .is_none_or(|m| m.conditions.iter().filter(|c| holds(c)).count() >= m.min_count)
    }
}

impl Condition {
    fn matches(&self, id: Option<PointId>, payload: Option<&Payload>) -> bool {
        match self {
            Condition::Field(f) => f.matches(payload),
            Condition::IsEmpty(c) => is_empty(payload, &c.is_empty.key),
            Condition::IsNull(c) => is_null(payload, &c.is_null.key),
            Condition::HasId(h) => id.is_some_and(|id| h.has_id.contains(&id)),
            Condition::Nested(n) => {
                let key = &n.nested.key;
                let key = key
                    .strip_suffix("[]")
                    .filter(|k| !k.is_empty())
                    .unwrap_or(key);
                values_at(payload, key, false)
                    .into_iter()
                    .filter_map(Value::as_array)
                    .flatten()
                    .filter_map(Value::as_object)
                    .any(|element| n.nested.filter.matches_in(None, Some(element)))
            }
            Condition::Filter(f) => f.matches_in(id, payload),
        }
    }
}

impl FieldCondition {
    fn matches(&self, payload: Option<&Payload>) -> bool {
        if let Some(vc) = &self.values_count {
            return values_count(&values_at(payload, &self.key, false), vc);
        }
        if let Some(want) = self.is_empty {
            return is_empty(payload, &self.key) == want;
        }
        if let Some(want) = self.is_null {
            return is_null(payload, &self.key) == want;
        }
        let values = values_at(payload, &self.key, true);
        let any = |f: &dyn Fn(&Value) -> bool| values.iter().any(|v| f(v));
        if let Some(m) = &self.r#match {
            return any(&|v| m.matches(v));
        }
        match &self.range {
            Some(RangeInterface::Float(r)) => {
                return any(&|v| v.as_f64().is_some_and(|x| r.contains(x)))
            }
            Some(RangeInterface::DateTime(r)) => return any(&|v| r.matches(v)),
            None => {}
        }
        if let Some(b) = &self.geo_bounding_box {
            return any(&|v| geo::point_of(v).is_some_and(|p| b.contains(p)));
        }
        if let Some(r) = &self.geo_radius {
            return any(&|v| geo::point_of(v).is_some_and(|p| r.contains(p)));
        }
        if let Some(p) = &self.geo_polygon {
            return any(&|v| geo::point_of(v).is_some_and(|pt| p.contains(pt)));
        }
        false
    }
}

impl Match {
    fn matches(&self, v: &Value) -> bool {
        match self {
            Match::Value { value } => value.equals(v),
            Match::Any { any } => any.iter().any(|a| a.equals(v)),
            // `null` is absence, not a value outside the list.
            Match::Except { except } => !v.is_null() && !except.iter().any(|e| e.equals(v)),
            Match::Text { text } => v.as_str().is_some_and(|s| text::contains_all(s, text)),
            Match::TextAny { text_any } => {
                v.as_str().is_some_and(|s| text::contains_any(s, text_any))
            }
            Match::Phrase { phrase } => {
                v.as_str().is_some_and(|s| text::contains_phrase(s, phrase))
            }
        }
    }
}

impl MatchValue {
    fn equals(&self, v: &Value) -> bool {
        match (self, v) {
            (MatchValue::Bool(a), Value::Bool(b)) => a == b,
            // A float payload value never equals an integer condition.
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

impl DatetimeRange {
    fn matches(&self, v: &Value) -> bool {
        let Some(t) = v.as_str().and_then(datetime::parse_datetime) else {
            return false;
        };
        self.gt.as_ref().is_none_or(|b| t > b.micros())
            && self.gte.as_ref().is_none_or(|b| t >= b.micros())
            && self.lt.as_ref().is_none_or(|b| t < b.micros())
            && self.lte.as_ref().is_none_or(|b| t <= b.micros())
    }
}

/// `values` as found (not flattened): one count per value, an array counts
/// its elements, `null` 0; no value at all counts 0. Matches when one count
/// meets every bound.
fn values_count(values: &[&Value], vc: &ValuesCount) -> bool {
    let count = |v: &&Value| match v {
        Value::Null => 0,
        Value::Array(a) => a.len(),
        _ => 1,
    };
    let meets = |n: usize| {
        vc.gt.is_none_or(|b| n > b)
            && vc.gte.is_none_or(|b| n >= b)
            && vc.lt.is_none_or(|b| n < b)
            && vc.lte.is_none_or(|b| n <= b)
    };
    if values.iter().all(|v| v.is_null()) {
        return meets(0);
    }
    values.iter().map(count).any(meets)
}

/// No value at the key, or every value there is `null` or `[]`.
fn is_empty(payload: Option<&Payload>, key: &str) -> bool {
    values_at(payload, key, false).iter().all(|v| match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        _ => false,
    })
}

/// Some value at the key is `null`, or an array holding a `null`.
fn is_null(payload: Option<&Payload>, key: &str) -> bool {
    values_at(payload, key, false).iter().any(|v| match v {
        Value::Null => true,
        Value::Array(a) => a.iter().any(Value::is_null),
        _ => false,
    })
}

/// The values at a dotted `path`, descending into arrays on the way. With
/// `flat`, an array at the end gives its elements (what `match` and
/// `range` test); without, the array itself (what `values_count`,
/// `is_empty` and `is_null` look at). A segment's `[]` suffix changes
/// nothing but, at the end, flattens.
pub fn values_at<'a>(payload: Option<&'a Payload>, path: &str, flat: bool) -> Vec<&'a Value> {
    let mut out = Vec::new();
    let Some(payload) = payload else { return out };
    let flat = flat || path.ends_with("[]");
    let parts: Vec<&str> = path
        .split('.')
        .map(|s| s.strip_suffix("[]").unwrap_or(s))
        .collect();
    let Some((first, rest)) = parts.split_first() else {
        return out;
    };
    if let Some(root) = payload.get(*first) {
        descend(root, rest, flat, &mut out);
    }
    out
}

fn descend<'a>(value: &'a Value, rest: &[&str], flat: bool, out: &mut Vec<&'a Value>) {
    match (value, rest.split_first()) {
        (Value::Array(items), None) if flat => {
            items.iter().for_each(|v| descend(v, rest, flat, out))
        }
        (v, None) => out.push(v),
        (Value::Array(items), Some(_)) => items.iter().for_each(|v| descend(v, rest, flat, out)),
        (Value::Object(map), Some((key, tail))) => {
            if let Some(v) = map.get(*key) {
                descend(v, tail, flat, out);
            }
        }
        _ => {}
    }
}
