//! Point routes: writes (upsert, delete, payload ops) split per shard and
//! sent to primaries; reads (retrieve, scroll, count, search, query)
//! scatter-gathered.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::Response;
use protocol::{
    CountRequest, Operation, PointId, ScrollRequest, SearchRequest, ShardId, WriteConsistency,
};
use serde_json::{json, Value};

use super::models::{
    self, parse, parse_filter, parse_partial, parse_read_consistency, parse_selector, parse_upsert,
    parse_with_vector, parse_write_consistency, record_out, scored_out, update_result,
    PayloadSelector, QueryTarget, SearchIn, SearchSpec, Selector,
};
use super::{ok, started, AppState, JsonBody, Params};
use crate::error::{GatewayError, Result};
use crate::reads::{Answer, ReadOptions};
use crate::routing::group_by_shard;

/// Largest number of points a filter may select for a payload write.
const MAX_FILTER_SELECTED: usize = 100_000;

fn object(body: Value) -> Result<serde_json::Map<String, Value>> {
    match body {
        Value::Object(m) => Ok(m),
        _ => Err(GatewayError::bad_request("body must be a JSON object")),
    }
}

fn wait_flag(q: &BTreeMap<String, String>) -> bool {
    q.get("wait").is_none_or(|w| w != "false")
}

fn read_opts(q: &BTreeMap<String, String>, body: Option<&Value>) -> Result<ReadOptions> {
    Ok(ReadOptions {
        consistency: parse_read_consistency(q)?,
        partial: parse_partial(q, body)?,
    })
}

/// A read's result, with `missing_shards` added when some are missing.
fn with_missing<T: serde::Serialize>(value: T, missing: &[ShardId]) -> Value {
    let mut v = serde_json::to_value(value).unwrap_or(Value::Null);
    if !missing.is_empty() {
        let list: Vec<u32> = missing.iter().map(|s| s.0).collect();
        match &mut v {
            Value::Object(m) => {
                m.insert("missing_shards".into(), json!(list));
                m.insert("partial".into(), json!(true));
            }
            other => {
                *other = json!({"points": other.take(), "missing_shards": list, "partial": true});
            }
        }
    }
    v
}

/// Splits ids by shard into one operation per shard.
fn per_shard_ids(
    collection: &str,
    shard_number: u32,
    ids: Vec<PointId>,
    op: impl Fn(Vec<PointId>) -> Operation,
) -> BTreeMap<ShardId, Operation> {
    group_by_shard(collection, shard_number, ids, |i| *i)
        .into_iter()
        .map(|(s, ids)| (s, op(ids)))
        .collect()
}

async fn write_consistency(
    st: &AppState,
    name: &str,
    q: &BTreeMap<String, String>,
) -> Result<(u32, WriteConsistency)> {
    let (_, coll) = st.gw.collection(name).await?;
    let c = parse_write_consistency(q, coll.config.write_consistency)?;
    Ok((coll.config.shard_number, c))
}

pub async fn upsert(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let (_, coll) = st.gw.collection(&name).await?;
    let consistency = parse_write_consistency(&q, coll.config.write_consistency)?;
    let points = parse_upsert(body, coll.config.dimension)?;
    let ops = group_by_shard(&name, coll.config.shard_number, points, |p| p.id)
        .into_iter()
        .map(|(s, points)| (s, Operation::Upsert { points }))
        .collect();
    let ack = st.gw.write(&name, ops, consistency).await?;
    Ok(ok(update_result(ack.seq.0, wait_flag(&q)), t))
}

/// Resolves a selector into per-shard operations.
async fn selected(
    st: &AppState,
    name: &str,
    shard_number: u32,
    selector: Selector,
    op: impl Fn(Vec<PointId>) -> Operation,
) -> Result<BTreeMap<ShardId, Operation>> {
    let ids = match selector {
        Selector::Ids(ids) => ids,
        Selector::Filter(f) => st.gw.ids_matching(name, f, MAX_FILTER_SELECTED).await?,
    };
    protocol::point::validate_batch_len(ids.len())?;
    Ok(per_shard_ids(name, shard_number, ids, op))
}

pub async fn delete(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let (shard_number, consistency) = write_consistency(&st, &name, &q).await?;
    let mut m = object(body)?;
    let ops = match parse_selector(&mut m)? {
        Selector::Ids(ids) => {
            protocol::point::validate_batch_len(ids.len())?;
            per_shard_ids(&name, shard_number, ids, |ids| Operation::Delete { ids })
        }
        // Every shard resolves the filter itself, atomically in its order.
        Selector::Filter(filter) => (0..shard_number)
            .map(|s| {
                (
                    ShardId(s),
                    Operation::DeleteByFilter {
                        filter: filter.clone(),
                    },
                )
            })
            .collect(),
    };
    let ack = st.gw.write(&name, ops, consistency).await?;
    Ok(ok(update_result(ack.seq.0, wait_flag(&q)), t))
}

async fn payload_write(
    st: AppState,
    name: String,
    q: BTreeMap<String, String>,
    body: Value,
    overwrite: bool,
) -> Result<Response> {
    let t = started();
    let (shard_number, consistency) = write_consistency(&st, &name, &q).await?;
    let mut m = object(body)?;
    if m.get("key").is_some_and(|k| !k.is_null()) {
        return Err(GatewayError::bad_request(
            "payload `key` (nested set) is not supported",
        ));
    }
    let payload = match m.remove("payload") {
        Some(v) => protocol::point::payload_from_value(v)?,
        None => return Err(GatewayError::bad_request("missing `payload`")),
    };
    protocol::point::validate_payload(&payload)?;
    let selector = parse_selector(&mut m)?;
    let ops = selected(&st, &name, shard_number, selector, |ids| {
        if overwrite {
            Operation::OverwritePayload {
                ids,
                payload: payload.clone(),
            }
        } else {
            Operation::SetPayload {
                ids,
                payload: payload.clone(),
            }
        }
    })
    .await?;
    let ack = st.gw.write(&name, ops, consistency).await?;
    Ok(ok(update_result(ack.seq.0, wait_flag(&q)), t))
}

pub async fn set_payload(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    payload_write(st, name, q.0, body, false).await
}

pub async fn overwrite_payload(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    payload_write(st, name, q.0, body, true).await
}

pub async fn delete_payload(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let (shard_number, consistency) = write_consistency(&st, &name, &q).await?;
    let mut m = object(body)?;
    let keys: Vec<String> = match m.remove("keys") {
        Some(k) => parse(k, "keys")?,
        None => return Err(GatewayError::bad_request("missing `keys`")),
    };
    let selector = parse_selector(&mut m)?;
    let ops = selected(&st, &name, shard_number, selector, |ids| {
        Operation::DeletePayloadKeys {
            ids,
            keys: keys.clone(),
        }
    })
    .await?;
    let ack = st.gw.write(&name, ops, consistency).await?;
    Ok(ok(update_result(ack.seq.0, wait_flag(&q)), t))
}

pub async fn clear_payload(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let (shard_number, consistency) = write_consistency(&st, &name, &q).await?;
    let mut m = object(body)?;
    let selector = parse_selector(&mut m)?;
    let ops = selected(&st, &name, shard_number, selector, |ids| {
        Operation::ClearPayload { ids }
    })
    .await?;
    let ack = st.gw.write(&name, ops, consistency).await?;
    Ok(ok(update_result(ack.seq.0, wait_flag(&q)), t))
}

// ---------- reads ----------

pub async fn retrieve(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let consistency = parse_read_consistency(&q)?;
    let mut m = object(body)?;
    let ids: Vec<PointId> = match m.remove("ids") {
        Some(v) => parse(v, "ids")?,
        None => return Err(GatewayError::bad_request("missing `ids`")),
    };
    let sel = PayloadSelector::parse(m.remove("with_payload"), true)?;
    let with_vector = parse_with_vector(m.remove("with_vector"), false)?;
    let records = st
        .gw
        .retrieve(&name, ids, sel.wanted(), with_vector, consistency)
        .await?;
    let out: Vec<_> = records
        .into_iter()
        .map(|r| record_out(r, &sel, with_vector))
        .collect();
    Ok(ok(out, t))
}

pub async fn get_point(
    State(st): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    q: Params,
) -> Result<Response> {
    let t = started();
    let consistency = parse_read_consistency(&q)?;
    let pid: PointId = id.parse().map_err(|_| {
        GatewayError::bad_request(format!(
            "invalid point id {id:?}: use an unsigned integer or a UUID"
        ))
    })?;
    let mut records = st
        .gw
        .retrieve(&name, vec![pid], true, true, consistency)
        .await?;
    match records.pop() {
        Some(r) => Ok(ok(record_out(r, &PayloadSelector::All, true), t)),
        None => Err(GatewayError::PointNotFound { id }),
    }
}

pub async fn scroll(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let opts = read_opts(&q, Some(&body))?;
    let mut m = object(body)?;
    if m.get("order_by").is_some_and(|v| !v.is_null()) {
        return Err(GatewayError::bad_request(
            "scroll `order_by` is not supported",
        ));
    }
    let offset: Option<PointId> = match m.remove("offset") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse(v, "offset")?),
    };
    let limit: usize = match m.remove("limit") {
        None | Some(Value::Null) => 10,
        Some(v) => parse(v, "limit")?,
    };
    let sel = PayloadSelector::parse(m.remove("with_payload"), true)?;
    let with_vector = parse_with_vector(m.remove("with_vector"), false)?;
    let request = ScrollRequest {
        offset,
        limit,
        filter: parse_filter(m.remove("filter"))?,
        with_payload: sel.wanted(),
        with_vector,
    };
    let Answer {
        value: (points, next),
        missing_shards,
    } = st.gw.scroll(&name, request, opts).await?;
    let points: Vec<_> = points
        .into_iter()
        .map(|r| record_out(r, &sel, with_vector))
        .collect();
    let result = with_missing(
        json!({"points": points, "next_page_offset": next}),
        &missing_shards,
    );
    Ok(ok(result, t))
}

pub async fn count(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let opts = read_opts(&q, Some(&body))?;
    let mut m = object(body)?;
    let request = CountRequest {
        filter: parse_filter(m.remove("filter"))?,
    };
    let a = st.gw.count(&name, request, opts).await?;
    Ok(ok(
        with_missing(json!({"count": a.value}), &a.missing_shards),
        t,
    ))
}

/// Runs one search for a parsed spec and vector.
async fn run_search(
    st: &AppState,
    name: &str,
    vector: Vec<f32>,
    spec: &SearchSpec,
    opts: ReadOptions,
) -> Result<(Vec<models::ScoredOut>, Vec<ShardId>)> {
    let request = SearchRequest {
        vector,
        filter: spec.filter.clone(),
        params: spec.params,
        limit: spec.limit,
        offset: spec.offset,
        with_payload: spec.with_payload.wanted(),
        with_vector: spec.with_vector,
        score_threshold: spec.score_threshold,
    };
    let a = st.gw.search(name, request, opts).await?;
    let hits = a
        .value
        .into_iter()
        .map(|h| scored_out(h, &spec.with_payload, spec.with_vector))
        .collect();
    Ok((hits, a.missing_shards))
}

pub async fn search(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let opts = read_opts(&q, Some(&body))?;
    let mut s: SearchIn = parse(body, "search request")?;
    let spec = s.spec(10)?;
    let vector = s.take_vector()?;
    let (hits, missing) = run_search(&st, &name, vector, &spec, opts).await?;
    if missing.is_empty() {
        Ok(ok(hits, t))
    } else {
        Ok(ok(with_missing(hits, &missing), t))
    }
}

pub async fn search_batch(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let opts = read_opts(&q, Some(&body))?;
    let mut m = object(body)?;
    let searches: Vec<Value> = match m.remove("searches") {
        Some(v) => parse(v, "searches")?,
        None => return Err(GatewayError::bad_request("missing `searches`")),
    };
    // Parse all first: a bad one refuses the batch before any search runs.
    let mut parsed = Vec::with_capacity(searches.len());
    for v in searches {
        let mut s: SearchIn = parse(v, "search request")?;
        let spec = s.spec(10)?;
        let vector = s.take_vector()?;
        parsed.push((vector, spec));
    }
    let runs = parsed.into_iter().map(|(vector, spec)| {
        let st = &st;
        let name = &name;
        async move { run_search(st, name, vector, &spec, opts).await }
    });
    let mut out = Vec::new();
    for r in futures::future::join_all(runs).await {
        let (hits, missing) = r?;
        out.push(if missing.is_empty() {
            serde_json::to_value(hits).unwrap_or(Value::Null)
        } else {
            with_missing(hits, &missing)
        });
    }
    Ok(ok(out, t))
}

/// One query body → `{"points": [...]}` (plus missing shards if partial).
async fn run_query(st: &AppState, name: &str, body: Value, opts: ReadOptions) -> Result<Value> {
    let mut s: SearchIn = parse(body, "query request")?;
    if s.prefetch.as_ref().is_some_and(|p| !p.is_null()) {
        return Err(GatewayError::bad_request(
            "query `prefetch` is not supported",
        ));
    }
    let spec = s.spec(10)?;
    let target = match s.query.take() {
        Some(v) => models::parse_query_target(v)?,
        None => return Err(GatewayError::bad_request("missing `query`")),
    };
    let vector = match target {
        QueryTarget::Vector(v) => v,
        QueryTarget::Point(id) => {
            let mut found = st
                .gw
                .retrieve(name, vec![id], false, true, opts.consistency)
                .await?;
            match found.pop().and_then(|r| r.vector) {
                Some(v) => v,
                None => return Err(GatewayError::PointNotFound { id: id.to_string() }),
            }
        }
    };
    let (hits, missing) = run_search(st, name, vector, &spec, opts).await?;
    Ok(with_missing(json!({"points": hits}), &missing))
}

/// `POST …/points/query`: nearest neighbours of a vector (or of a stored
/// point's vector), answered as `{"points": [...]}`.
pub async fn query(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let opts = read_opts(&q, Some(&body))?;
    let result = run_query(&st, &name, body, opts).await?;
    Ok(ok(result, t))
}

/// `POST …/points/query/batch`: `{"searches": [query, ...]}`.
pub async fn query_batch(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let opts = read_opts(&q, Some(&body))?;
    let mut m = object(body)?;
    let searches: Vec<Value> = match m.remove("searches") {
        Some(v) => parse(v, "searches")?,
        None => return Err(GatewayError::bad_request("missing `searches`")),
    };
    let runs = searches.into_iter().map(|b| run_query(&st, &name, b, opts));
    let out = futures::future::join_all(runs)
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    Ok(ok(out, t))
}

/// `PUT /collections/{c}/index` and `DELETE …/index/{field}`: accepted and
/// ignored (filters are evaluated without payload indexes), so clients
/// that create indexes keep working.
pub async fn payload_index(
    State(st): State<AppState>,
    Path(params): Path<std::collections::HashMap<String, String>>,
) -> Result<Response> {
    let t = started();
    let name = params.get("name").cloned().unwrap_or_default();
    st.gw.collection(&name).await?;
    Ok(ok(update_result(0, true), t))
}
