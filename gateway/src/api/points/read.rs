//! Point reads: retrieve, scroll, count, search (the query API is in
//! [`super::query`], group-by and facets in [`super::groups`]).

use axum::extract::{Path, State};
use axum::response::Response;
use protocol::{CountRequest, PointId, ScrollRequest, SearchRequest, ShardId};
use serde_json::{json, Value};

use super::{object, read_opts, with_missing};
use crate::api::models::{
    self, parse, parse_filter, parse_read_consistency, parse_with_vector, record_out, scored_out,
    PayloadSelector, RecordOut, SearchIn, SearchSpec,
};
use crate::api::openapi::schemas::{self as doc, Envelope};
use crate::api::{ok, started, AppState, JsonBody, Params};
use crate::error::{GatewayError, Result};
use crate::reads::{record_stage, Answer, ReadOptions};

/// Points by id (the ones that exist).
#[utoipa::path(post, path = "/collections/{name}/points", tag = "points", operation_id = "get_points",
    params(doc::CollectionPath, doc::ReadQuery), request_body = doc::PointRequest,
    responses((status = 200, description = "The points found", body = Envelope<Vec<RecordOut>>)))]
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

/// One point, with its payload and vector.
#[utoipa::path(get, path = "/collections/{name}/points/{id}", tag = "points", operation_id = "get_point",
    params(doc::CollectionPath, ("id" = doc::ExtendedPointId, Path, description = "An unsigned integer or a UUID"), doc::ReadQuery),
    responses(
        (status = 200, description = "The point", body = Envelope<RecordOut>),
        (status = 404, description = "No such point or collection", body = doc::ErrorBody),
    ))]
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

/// Points in id order, a page at a time.
#[utoipa::path(post, path = "/collections/{name}/points/scroll", tag = "points", operation_id = "scroll_points",
    params(doc::CollectionPath, doc::ReadQuery), request_body = doc::ScrollRequest,
    responses((status = 200, description = "A page, and the id to continue from", body = Envelope<doc::ScrollResult>)))]
pub async fn scroll(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let opts = read_opts(&q, Some(&body))?;
    let (request, sel) = parse_scroll(body)?;
    let with_vector = request.with_vector;
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

/// Points matching a filter (exact unless `exact: false`).
#[utoipa::path(post, path = "/collections/{name}/points/count", tag = "points", operation_id = "count_points",
    params(doc::CollectionPath, doc::ReadQuery), request_body = doc::CountRequest,
    responses((status = 200, description = "The count", body = Envelope<doc::CountResult>)))]
pub async fn count(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let opts = read_opts(&q, Some(&body))?;
    let request = parse_count(body)?;
    let a = st.gw.count(&name, request, opts).await?;
    Ok(ok(
        with_missing(json!({"count": a.value}), &a.missing_shards),
        t,
    ))
}

/// `POST …/points/scroll` body → the request, and what of each record's
/// payload to show.
pub(crate) fn parse_scroll(body: Value) -> Result<(ScrollRequest, PayloadSelector)> {
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
    Ok((request, sel))
}

/// `POST …/points/count` body → the request.
pub(crate) fn parse_count(body: Value) -> Result<CountRequest> {
    let mut m = object(body)?;
    // Qdrant's default is exact; `exact: false` lets each shard estimate
    // a filtered count from a sample (see `CountRequest::estimate`).
    let exact = match m.remove("exact") {
        None | Some(Value::Null) => true,
        Some(v) => parse(v, "exact")?,
    };
    Ok(CountRequest {
        filter: parse_filter(m.remove("filter"))?,
        estimate: !exact,
    })
}

/// One search body (alone or in a batch) → its vector and spec.
pub(crate) fn parse_search(body: Value) -> Result<(Vec<f32>, SearchSpec)> {
    let mut s: SearchIn = parse(body, "search request")?;
    let spec = s.spec(10)?;
    let vector = s.take_vector()?;
    Ok((vector, spec))
}

/// The `searches` list of a batch body, within the batch limit.
pub(crate) fn parse_searches(body: Value) -> Result<Vec<Value>> {
    let mut m = object(body)?;
    let searches: Vec<Value> = match m.remove("searches") {
        Some(v) => parse(v, "searches")?,
        None => return Err(GatewayError::bad_request("missing `searches`")),
    };
    protocol::search::validate_batch_searches(searches.len())?;
    Ok(searches)
}

/// The request a parsed search becomes (validated against the collection
/// by [`crate::Gateway::search`]).
pub(crate) fn search_request(vector: Vec<f32>, spec: &SearchSpec) -> SearchRequest {
    SearchRequest {
        vector,
        filter: spec.filter.clone(),
        params: spec.params,
        limit: spec.limit,
        offset: spec.offset,
        with_payload: spec.with_payload.wanted(),
        with_vector: spec.with_vector,
        score_threshold: spec.score_threshold,
    }
}

/// Runs one search for a parsed spec and vector.
async fn run_search(
    st: &AppState,
    name: &str,
    vector: Vec<f32>,
    spec: &SearchSpec,
    opts: ReadOptions,
) -> Result<(Vec<models::ScoredOut>, Vec<ShardId>)> {
    let a = st
        .gw
        .search(name, search_request(vector, spec), opts)
        .await?;
    let hits = a
        .value
        .into_iter()
        .map(|h| scored_out(h, &spec.with_payload, spec.with_vector))
        .collect();
    Ok((hits, a.missing_shards))
}

/// Nearest neighbours of a vector.
#[utoipa::path(post, path = "/collections/{name}/points/search", tag = "points", operation_id = "search_points",
    params(doc::CollectionPath, doc::ReadQuery), request_body = doc::SearchRequest,
    responses((status = 200, description = "Hits, best first", body = Envelope<doc::SearchResult>)))]
pub async fn search(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let opts = read_opts(&q, Some(&body))?;
    let (vector, spec) = parse_search(body)?;
    record_stage("parse", t);
    let executed = started();
    let (hits, missing) = run_search(&st, &name, vector, &spec, opts).await?;
    record_stage("execute", executed);
    let responded = started();
    let response = if missing.is_empty() {
        ok(hits, t)
    } else {
        ok(with_missing(hits, &missing), t)
    };
    record_stage("respond", responded);
    Ok(response)
}

/// Several searches; a bad one refuses the batch before any runs.
#[utoipa::path(post, path = "/collections/{name}/points/search/batch", tag = "points", operation_id = "search_batch_points",
    params(doc::CollectionPath, doc::ReadQuery), request_body = doc::SearchBatch,
    responses((status = 200, description = "Hits of each search, in order", body = Envelope<Vec<doc::SearchResult>>)))]
pub async fn search_batch(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let opts = read_opts(&q, Some(&body))?;
    // Parse all first: a bad one refuses the batch before any search runs.
    let parsed = parse_searches(body)?
        .into_iter()
        .map(parse_search)
        .collect::<Result<Vec<_>>>()?;
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
