//! Qdrant's JSON request shapes, parsed into `protocol` types. Every
//! parser refuses bad input with a 400 that says what is wrong, before
//! anything is sent to a shard.

use std::collections::BTreeMap;

use protocol::{
    CollectionConfig, Distance, Filter, Payload, Point, PointId, Record, ScoredPoint, SearchParams,
    WriteConsistency,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{GatewayError, Result};
use crate::scatter::ReadConsistency;

/// Deserialises `v` as `T`, naming `what` in the error.
pub fn parse<T: DeserializeOwned>(v: Value, what: &str) -> Result<T> {
    serde_json::from_value(v)
        .map_err(|e| GatewayError::bad_request(format!("Format error in JSON body ({what}): {e}")))
}

/// Drops `null` members recursively (clients send unset optionals as null;
/// the filter types refuse unknown and null fields).
pub fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

pub fn parse_filter(v: Option<Value>) -> Result<Option<Filter>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(mut v) => {
            strip_nulls(&mut v);
            let f: Filter = serde_json::from_value(v)
                .map_err(|e| GatewayError::bad_request(format!("malformed filter: {e}")))?;
            f.validate()?;
            Ok(Some(f))
        }
    }
}

// ---------- collections ----------

#[derive(Deserialize)]
struct VectorParams {
    size: usize,
    distance: String,
}

#[derive(Deserialize, Default)]
struct HnswIn {
    m: Option<usize>,
    ef_construct: Option<usize>,
}

#[derive(Deserialize)]
struct CreateCollectionIn {
    vectors: Option<Value>,
    shard_number: Option<u32>,
    replication_factor: Option<u32>,
    write_consistency_factor: Option<u32>,
    hnsw_config: Option<HnswIn>,
}

pub fn parse_distance(s: &str) -> Result<Distance> {
    match s {
        "Cosine" | "cosine" => Ok(Distance::Cosine),
        "Dot" | "dot" => Ok(Distance::Dot),
        "Euclid" | "euclid" => Ok(Distance::Euclid),
        other => Err(GatewayError::bad_request(format!(
            "unsupported distance {other:?}: use Cosine, Dot or Euclid"
        ))),
    }
}

pub fn distance_name(d: Distance) -> &'static str {
    match d {
        Distance::Cosine => "Cosine",
        Distance::Dot => "Dot",
        Distance::Euclid => "Euclid",
    }
}

/// Qdrant's `write_consistency_factor` (replicas that must apply) onto our
/// levels: 1 → one, ≥ RF → all, in between → majority.
pub fn write_consistency_from_factor(factor: Option<u32>, rf: u32) -> WriteConsistency {
    match factor {
        None => WriteConsistency::Majority,
        Some(f) if rf <= 1 || f >= rf => WriteConsistency::All,
        Some(f) if f <= 1 => WriteConsistency::One,
        Some(_) => WriteConsistency::Majority,
    }
}

pub fn write_consistency_factor(c: WriteConsistency, rf: u32) -> u32 {
    c.required_acks(rf as usize) as u32
}

/// `PUT /collections/{name}` body → config.
pub fn parse_create_collection(body: Value) -> Result<CollectionConfig> {
    let mut body = body;
    strip_nulls(&mut body);
    let c: CreateCollectionIn = parse(body, "collection config")?;
    let vectors = c.vectors.ok_or_else(|| {
        GatewayError::bad_request("missing `vectors`: {\"size\": N, \"distance\": \"Cosine\"}")
    })?;
    let params: VectorParams =
        match vectors {
            Value::Object(ref m) if m.contains_key("size") => parse(vectors, "vectors")?,
            Value::Object(m) if m.len() == 1 => {
                let (_, v) = m
                    .into_iter()
                    .next()
                    .ok_or_else(|| GatewayError::bad_request("empty `vectors`"))?;
                parse(v, "vectors")?
            }
            _ => return Err(GatewayError::bad_request(
                "`vectors` must be {\"size\": N, \"distance\": ...} (one unnamed vector per point)",
            )),
        };
    let mut config = CollectionConfig::new(params.size, parse_distance(&params.distance)?);
    config.shard_number = c.shard_number.unwrap_or(1);
    config.replication_factor = c.replication_factor.unwrap_or(1);
    config.write_consistency =
        write_consistency_from_factor(c.write_consistency_factor, config.replication_factor);
    let hnsw = c.hnsw_config.unwrap_or_default();
    if let Some(m) = hnsw.m {
        config.hnsw.m = m;
    }
    if let Some(ef) = hnsw.ef_construct {
        config.hnsw.ef_construct = ef;
    }
    config.validate()?;
    Ok(config)
}

// ---------- points ----------

/// A dense vector, or a one-entry map of named vectors (`{"": [...]}`).
fn parse_vector(v: Value) -> Result<Vec<f32>> {
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

#[derive(Deserialize, Default)]
pub struct ParamsIn {
    pub hnsw_ef: Option<usize>,
    #[serde(default)]
    pub exact: Option<bool>,
}

impl ParamsIn {
    pub fn into_params(self) -> SearchParams {
        SearchParams {
            hnsw_ef: self.hnsw_ef,
            exact: self.exact.unwrap_or(false),
        }
    }
}

/// Common fields of search and query bodies.
#[derive(Deserialize)]
pub struct SearchIn {
    pub vector: Option<Value>,
    pub query: Option<Value>,
    pub filter: Option<Value>,
    pub params: Option<ParamsIn>,
    pub limit: Option<usize>,
    pub top: Option<usize>,
    pub offset: Option<usize>,
    pub with_payload: Option<Value>,
    pub with_vector: Option<Value>,
    pub score_threshold: Option<f32>,
    pub prefetch: Option<Value>,
}

/// What a search-like request asks for, before the vector is known.
pub struct SearchSpec {
    pub filter: Option<Filter>,
    pub params: SearchParams,
    pub limit: usize,
    pub offset: usize,
    pub with_payload: PayloadSelector,
    pub with_vector: bool,
    pub score_threshold: Option<f32>,
}

/// The `query` of `POST …/points/query`: a vector, or a point id whose
/// vector is used.
pub enum QueryTarget {
    Vector(Vec<f32>),
    Point(PointId),
}

pub fn parse_query_target(v: Value) -> Result<QueryTarget> {
    match v {
        Value::Array(_) => Ok(QueryTarget::Vector(parse(v, "query")?)),
        Value::Number(_) | Value::String(_) => Ok(QueryTarget::Point(parse(v, "query")?)),
        Value::Object(mut m) => match m.remove("nearest") {
            Some(inner) => parse_query_target(inner),
            None => Err(GatewayError::bad_request(
                "unsupported query: use a vector, {\"nearest\": vector}, or a point id",
            )),
        },
        _ => Err(GatewayError::bad_request(
            "query must be a vector or a point id",
        )),
    }
}

impl SearchIn {
    pub fn spec(&mut self, default_limit: usize) -> Result<SearchSpec> {
        Ok(SearchSpec {
            filter: parse_filter(self.filter.take())?,
            params: self.params.take().unwrap_or_default().into_params(),
            limit: self.limit.or(self.top).unwrap_or(default_limit),
            offset: self.offset.unwrap_or(0),
            with_payload: PayloadSelector::parse(self.with_payload.take(), false)?,
            with_vector: parse_with_vector(self.with_vector.take(), false)?,
            score_threshold: self.score_threshold,
        })
    }

    pub fn take_vector(&mut self) -> Result<Vec<f32>> {
        match self.vector.take() {
            Some(v) => parse_vector(v),
            None => Err(GatewayError::bad_request("missing `vector`")),
        }
    }
}

/// Points selected by ids or by a filter (`{"points": [...]}` / `{"filter": {...}}`).
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

// ---------- answers ----------

#[derive(Serialize)]
pub struct ScoredOut {
    pub id: PointId,
    pub version: u64,
    pub score: f32,
    pub payload: Option<Payload>,
    pub vector: Option<Vec<f32>>,
    pub shard_key: Option<Value>,
    pub order_value: Option<Value>,
}

pub fn scored_out(p: ScoredPoint, sel: &PayloadSelector, with_vector: bool) -> ScoredOut {
    ScoredOut {
        id: p.id,
        version: p.version,
        score: p.score,
        payload: sel.apply(p.payload),
        vector: if with_vector { p.vector } else { None },
        shard_key: None,
        order_value: None,
    }
}

#[derive(Serialize)]
pub struct RecordOut {
    pub id: PointId,
    pub payload: Option<Payload>,
    pub vector: Option<Vec<f32>>,
    pub shard_key: Option<Value>,
    pub order_value: Option<Value>,
}

pub fn record_out(r: Record, sel: &PayloadSelector, with_vector: bool) -> RecordOut {
    RecordOut {
        id: r.id,
        payload: sel.apply(r.payload),
        vector: if with_vector { r.vector } else { None },
        shard_key: None,
        order_value: None,
    }
}

/// `?consistency=` on reads: `one`, `majority` / `quorum`, `all`, or a
/// number (1 → one, otherwise majority).
pub fn parse_read_consistency(q: &BTreeMap<String, String>) -> Result<ReadConsistency> {
    match q.get("consistency").map(String::as_str) {
        None | Some("one") | Some("1") => Ok(ReadConsistency::One),
        Some("majority") | Some("quorum") => Ok(ReadConsistency::Majority),
        Some("all") => Ok(ReadConsistency::All),
        Some(n) if n.parse::<u32>().is_ok() => Ok(ReadConsistency::Majority),
        Some(other) => Err(GatewayError::bad_request(format!(
            "consistency must be one, majority, quorum, all or a number, not {other:?}"
        ))),
    }
}

/// `?write_consistency=` on writes, else the collection's default.
pub fn parse_write_consistency(
    q: &BTreeMap<String, String>,
    default: WriteConsistency,
) -> Result<WriteConsistency> {
    match q.get("write_consistency").map(String::as_str) {
        None => Ok(default),
        Some("one") => Ok(WriteConsistency::One),
        Some("majority") | Some("quorum") => Ok(WriteConsistency::Majority),
        Some("all") => Ok(WriteConsistency::All),
        Some(other) => Err(GatewayError::bad_request(format!(
            "write_consistency must be one, majority or all, not {other:?}"
        ))),
    }
}

/// `?partial=true` (or a `"partial": true` body flag).
pub fn parse_partial(q: &BTreeMap<String, String>, body: Option<&Value>) -> Result<bool> {
    let from_body = body
        .and_then(|b| b.get("partial"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match q.get("partial").map(String::as_str) {
        None => Ok(from_body),
        Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(from_body),
        Some(other) => Err(GatewayError::bad_request(format!(
            "partial must be true or false, not {other:?}"
        ))),
    }
}

pub fn update_result(seq: u64, wait: bool) -> Value {
    json!({"operation_id": seq, "status": if wait { "completed" } else { "acknowledged" }})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_collection_shapes() {
        let c = parse_create_collection(json!({
            "vectors": {"size": 4, "distance": "Cosine"},
            "shard_number": 3, "replication_factor": 2, "write_consistency_factor": 1,
            "hnsw_config": {"m": 8, "ef_construct": 50},
            "on_disk_payload": null, "optimizers_config": null
        }))
        .unwrap();
        assert_eq!(c.dimension, 4);
        assert_eq!(c.distance, Distance::Cosine);
        assert_eq!((c.shard_number, c.replication_factor), (3, 2));
        assert_eq!(c.write_consistency, WriteConsistency::One);
        assert_eq!((c.hnsw.m, c.hnsw.ef_construct), (8, 50));
        let named =
            parse_create_collection(json!({"vectors": {"": {"size": 2, "distance": "Dot"}}}))
                .unwrap();
        assert_eq!(named.dimension, 2);
        for bad in [
            json!({}),
            json!({"vectors": {"size": 0, "distance": "Cosine"}}),
            json!({"vectors": {"size": 4, "distance": "Manhattan"}}),
            json!({"vectors": {"size": "x", "distance": "Dot"}}),
            json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 0}),
            json!([1, 2]),
        ] {
            assert!(parse_create_collection(bad.clone()).is_err(), "{bad}");
        }
    }

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
        for bad in [
            json!({"points": [{"id": 1, "vector": [1.0]}]}),
            json!({"points": [{"id": -1, "vector": [1.0, 2.0]}]}),
            json!({"points": [{"id": 1, "vector": [1.0, 1e39]}]}),
            json!({"points": [{"id": 1, "vector": [1.0, 2.0], "payload": [1]}]}),
            json!({"batch": {"ids": [1, 2], "vectors": [[1, 2]]}}),
            json!({"nothing": []}),
            json!("x"),
        ] {
            let e = parse_upsert(bad.clone(), 2).unwrap_err();
            assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn selectors_and_params() {
        assert_eq!(
            PayloadSelector::parse(None, true).unwrap(),
            PayloadSelector::All
        );
        assert_eq!(
            PayloadSelector::parse(Some(json!(["a"])), false).unwrap(),
            PayloadSelector::Include(vec!["a".into()])
        );
        let mut p = Payload::new();
        p.insert("a".into(), json!(1));
        p.insert("b".into(), json!(2));
        let ex = PayloadSelector::parse(Some(json!({"exclude": ["a"]})), false).unwrap();
        assert_eq!(ex.apply(Some(p)).unwrap().len(), 1);
        let q: BTreeMap<String, String> = [("consistency".to_string(), "all".to_string())].into();
        assert_eq!(parse_read_consistency(&q).unwrap(), ReadConsistency::All);
        let q: BTreeMap<String, String> = [("consistency".to_string(), "most".to_string())].into();
        assert!(parse_read_consistency(&q).is_err());
        assert!(matches!(
            parse_query_target(json!([1.0, 2.0])).unwrap(),
            QueryTarget::Vector(_)
        ));
        assert!(matches!(
            parse_query_target(json!({"nearest": [1.0]})).unwrap(),
            QueryTarget::Vector(_)
        ));
        assert!(matches!(
            parse_query_target(json!(7)).unwrap(),
            QueryTarget::Point(_)
        ));
        assert!(parse_query_target(json!({"recommend": {}})).is_err());
        assert!(parse_filter(Some(
            json!({"must": [{"key": "a", "match": {"value": 1}, "range": null}]})
        ))
        .unwrap()
        .is_some());
        assert!(parse_filter(Some(json!({"must": [{"key": "a"}]}))).is_err());
        assert_eq!(
            write_consistency_from_factor(Some(2), 3),
            WriteConsistency::Majority
        );
        assert_eq!(
            write_consistency_from_factor(Some(3), 3),
            WriteConsistency::All
        );
        assert_eq!(write_consistency_factor(WriteConsistency::Majority, 3), 2);
    }
}
