//! Upsert bodies (list and batch forms), point selectors, and what to
//! return of each point (`with_payload`, `with_vector`).

use protocol::{Filter, Payload, Point, PointId};
use serde::Deserialize;
use serde_json::Value;

use super::{parse, parse_filter};
use crate::error::{GatewayError, Result};

/// A dense vector, or a one-entry map of named vectors (`{"": [...]}`),
/// of a magnitude that keeps every score finite (see [`check_magnitude`]).
pub(super) fn parse_vector(v: Value) -> Result<Vec<f32>> {
    let vector = parse_vector_form(v)?;
    check_magnitude(&vector)?;
    Ok(vector)
}

/// Largest squared norm of a vector: a quarter of `f32::MAX`, so that a
/// dot product (at most |a|·|b|) and a squared Euclidean distance (at
/// most 2|a|² + 2|b|²) of two accepted vectors stay finite. Larger
/// vectors made scores overflow to infinity, which JSON cannot carry: the
/// hits came back with `"score": null` (found by probing the OpenAPI
/// document's schemas: `score` is a number).
pub const MAX_SQUARED_NORM: f64 = f32::MAX as f64 / 4.0;

pub fn check_magnitude(vector: &[f32]) -> Result<()> {
    let squared: f64 = vector.iter().map(|x| f64::from(*x) * f64::from(*x)).sum();
    // NaN and infinite components are refused later, by name.
    if squared.is_finite() && squared > MAX_SQUARED_NORM {
        return Err(GatewayError::bad_request(format!(
            "vector too large: its squared norm {squared:e} exceeds {MAX_SQUARED_NORM:e} \
             (scores against it would overflow)"
        )));
    }
    Ok(())
}

fn parse_vector_form(v: Value) -> Result<Vec<f32>> {
    match v {
        Value::Array(_) => parse(v, "vector"),
        Value::Object(m) if m.len() == 1 => {
            let (_, inner) = m
                .into_iter()
                .next()
                .ok_or_else(|| GatewayError::bad_request("empty vector map"))?;
            match inner {
                // `{"name": "x", "vector": [...]}` (search's NamedVector).
                Value::String(_) => {
                    Err(GatewayError::bad_request("named vectors are not supported"))
                }
                other => parse(other, "vector"),
            }
        }
        Value::Object(m) if m.contains_key("vector") => {
            parse(m.get("vector").cloned().unwrap_or(Value::Null), "vector")
        }
        _ => Err(GatewayError::bad_request(
            "vector must be an array of numbers",
        )),
    }
}

fn parse_payload(v: Option<Value>) -> Result<Option<Payload>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => Ok(Some(protocol::point::payload_from_value(v)?)),
    }
}

#[derive(Deserialize)]
struct PointIn {
    id: PointId,
    vector: Value,
    #[serde(default)]
    payload: Option<Value>,
}

#[derive(Deserialize)]
struct BatchIn {
    ids: Vec<PointId>,
    vectors: Vec<Value>,
    #[serde(default)]
    payloads: Option<Vec<Option<Value>>>,
}

/// `PUT …/points` (list or batch form) → points, validated against
/// `dimension`.
pub fn parse_upsert(body: Value, dimension: usize) -> Result<Vec<Point>> {
    let Value::Object(mut m) = body else {
        return Err(GatewayError::bad_request("body must be a JSON object"));
    };
    let points: Vec<Point> = if let Some(list) = m.remove("points") {
        let list: Vec<PointIn> = parse(list, "points")?;
        list.into_iter()
            .map(|p| {
                Ok(Point {
                    id: p.id,
                    vector: parse_vector(p.vector)?,
                    payload: parse_payload(p.payload)?,
                })
            })
            .collect::<Result<_>>()?
    } else if let Some(batch) = m.remove("batch") {
        let b: BatchIn = parse(batch, "batch")?;
        if b.vectors.len() != b.ids.len() {
            return Err(GatewayError::bad_request(format!(
                "batch has {} ids and {} vectors",
                b.ids.len(),
                b.vectors.len()
            )));
        }
        let payloads = b.payloads.unwrap_or_default();
        if !payloads.is_empty() && payloads.len() != b.ids.len() {
            return Err(GatewayError::bad_request(format!(
                "batch has {} ids and {} payloads",
                b.ids.len(),
                payloads.len()
            )));
        }
        let mut payloads = payloads.into_iter();
        b.ids
            .into_iter()
            .zip(b.vectors)
            .map(|(id, v)| {
                Ok(Point {
                    id,
                    vector: parse_vector(v)?,
                    payload: parse_payload(payloads.next().flatten())?,
                })
            })
            .collect::<Result<_>>()?
    } else {
        return Err(GatewayError::bad_request(
            "body needs `points` (a list of {id, vector, payload}) or `batch` ({ids, vectors, payloads})",
        ));
    };
    protocol::point::validate_batch_len(points.len())?;
    for p in &points {
        p.validate(dimension)
            .map_err(|e| GatewayError::bad_request(format!("point {}: {e}", p.id)))?;
    }
    Ok(points)
}

/// `with_payload`: a bool, a list of keys, or `{include|exclude: [...]}`.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum PayloadSelector {
    #[default]
    None,
    All,
    Include(Vec<String>),
    Exclude(Vec<String>),
}

impl PayloadSelector {
    pub fn parse(v: Option<Value>, default_all: bool) -> Result<Self> {
        let v = match v {
            None | Some(Value::Null) => {
                return Ok(if default_all { Self::All } else { Self::None })
            }
            Some(v) => v,
        };
        match v {
            Value::Bool(true) => Ok(Self::All),
            Value::Bool(false) => Ok(Self::None),
            Value::Array(_) => Ok(Self::Include(parse(v, "with_payload")?)),
            Value::Object(mut m) => {
                if let Some(i) = m.remove("include") {
                    Ok(Self::Include(parse(i, "with_payload.include")?))
                } else if let Some(e) = m.remove("exclude") {
                    Ok(Self::Exclude(parse(e, "with_payload.exclude")?))
                } else {
                    Err(GatewayError::bad_request(
                        "with_payload object needs `include` or `exclude`",
                    ))
                }
            }
            _ => Err(GatewayError::bad_request(
                "with_payload must be a bool, a list of keys or {include|exclude}",
            )),
        }
    }

    pub fn wanted(&self) -> bool {
        !matches!(self, Self::None)
    }

    pub fn apply(&self, payload: Option<Payload>) -> Option<Payload> {
        match self {
            Self::None => None,
            Self::All => Some(payload.unwrap_or_default()),
            Self::Include(keys) => Some(
                payload
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(k, _)| keys.contains(k))
                    .collect(),
            ),
            Self::Exclude(keys) => Some(
                payload
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(k, _)| !keys.contains(k))
                    .collect(),
            ),
        }
    }
}

/// `with_vector`: a bool or a list of vector names (any name: the one vector).
pub fn parse_with_vector(v: Option<Value>, default: bool) -> Result<bool> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(b),
        Some(Value::Array(a)) => Ok(!a.is_empty()),
        Some(_) => Err(GatewayError::bad_request(
            "with_vector must be a bool or a list of names",
        )),
    }
}

/// Points selected by ids or by a filter (`{"points": [...]}` / `{"filter": {...}}`).
#[derive(Debug)]
pub enum Selector {
    Ids(Vec<PointId>),
    Filter(Filter),
}

pub fn parse_selector(m: &mut serde_json::Map<String, Value>) -> Result<Selector> {
    if let Some(p) = m.remove("points").filter(|v| !v.is_null()) {
        return Ok(Selector::Ids(parse(p, "points")?));
    }
    if let Some(f) = parse_filter(m.remove("filter"))? {
        return Ok(Selector::Filter(f));
    }
    Err(GatewayError::bad_request(
        "select points with `points` (ids) or `filter`",
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn upsert_forms_and_bad_input() {
        let list = parse_upsert(
            json!({"points": [{"id": 1, "vector": [1.0, 2.0], "payload": {"a": 1}},
                              {"id": "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "vector": [0, 1]}]}),
            2,
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        assert!(list[0].payload.is_some());
        let batch = parse_upsert(
            json!({"batch": {"ids": [1, 2], "vectors": [[1, 2], [3, 4]], "payloads": [{"x": 1}, null]}}),
            2,
        )
        .unwrap();
        assert_eq!(batch[1].payload, None);
        // Just under the magnitude limit: accepted.
        let edge = (MAX_SQUARED_NORM / 2.0).sqrt() as f32 * 0.999;
        assert!(parse_upsert(json!({"points": [{"id": 1, "vector": [edge, edge]}]}), 2).is_ok());
        for bad in [
            json!({"points": [{"id": 1, "vector": [1.0]}]}),
            json!({"points": [{"id": -1, "vector": [1.0, 2.0]}]}),
            json!({"points": [{"id": 1, "vector": [1.0, 1e39]}]}),
            json!({"points": [{"id": 1, "vector": [1.0, 1e19]}]}),
            json!({"points": [{"id": 1, "vector": [3e38, 3e38]}]}),
            json!({"points": [{"id": 1, "vector": [1.0, 2.0], "payload": [1]}]}),
            json!({"batch": {"ids": [1, 2], "vectors": [[1, 2]]}}),
            json!({"nothing": []}),
            json!("x"),
        ] {
            let e = parse_upsert(bad.clone(), 2).unwrap_err();
            assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
