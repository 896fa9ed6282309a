//! `POST …/points/query` and `…/query/batch`: Qdrant's universal query
//! (prefetch, fusion, recommend, discover, context, order_by, sample,
//! lookup_from), evaluated by [`crate::query::Eval`].

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Extension;
use serde_json::{json, Value};

use super::query_parse::{parse_node, NodeIn};
use super::{object, read_opts, with_missing};
use crate::api::models::{parse, parse_with_vector, PayloadSelector, ScoredOut};
use crate::api::openapi::schemas::{self as doc, Envelope};
use crate::api::scope::Scope;
use crate::api::{ok, started, AppState, JsonBody, Params};
use crate::error::{GatewayError, Result};
use crate::query::exec::Fetch;
use crate::query::{Eval, Hit, QueryNode};
use crate::reads::ReadOptions;

/// A parsed query body: the tree, and what the request's own level asks
/// of its answer.
#[derive(Debug)]
pub struct QueryIn {
    pub node: QueryNode,
    pub offset: usize,
    pub with_payload: PayloadSelector,
    pub with_vector: bool,
}

impl QueryIn {
    pub fn fetch(&self) -> Fetch {
        Fetch {
            payload: self.with_payload.wanted(),
            vector: self.with_vector,
        }
    }
}

/// A query body (alone, in a batch, or with group-by fields already
/// taken out) → the tree. `default_limit` is 10 for a query.
pub fn parse_query_body(
    m: serde_json::Map<String, Value>,
    default_limit: usize,
) -> Result<QueryIn> {
    let mut m = m;
    if m.remove("shard_key").is_some_and(|v| !v.is_null()) {
        return Err(GatewayError::NotImplemented {
            feature: "custom sharding (shard keys)",
        });
    }
    let offset = match m.remove("offset") {
        None | Some(Value::Null) => 0,
        Some(v) => parse(v, "offset")?,
    };
    if offset > protocol::search::MAX_SEARCH_HITS {
        return Err(GatewayError::bad_request(format!(
            "offset must be at most {}",
            protocol::search::MAX_SEARCH_HITS
        )));
    }
    let with_payload = PayloadSelector::parse(m.remove("with_payload"), false)?;
    let with_vector = parse_with_vector(m.remove("with_vector"), false)?;
    let n: NodeIn = parse(Value::Object(m), "query request")?;
    let node = parse_node(n, default_limit, 0, &mut 0)?;
    Ok(QueryIn {
        node,
        offset,
        with_payload,
        with_vector,
    })
}

/// A hit as Qdrant's `ScoredPoint`.
pub fn hit_out(h: Hit, sel: &PayloadSelector, with_vector: bool) -> ScoredOut {
    ScoredOut {
        id: h.id,
        version: h.version,
        score: h.score,
        payload: sel.apply(h.payload),
        vector: if with_vector { h.vector } else { None },
        shard_key: None,
        order_value: h.order_value,
    }
}

/// One query body → `{"points": [...]}` (plus missing shards if partial).
async fn run_query(
    st: &AppState,
    name: &str,
    body: Value,
    opts: ReadOptions,
    scope: Option<&Scope>,
) -> Result<Value> {
    let q = parse_query_body(object(body)?, 10)?;
    let fetch = q.fetch();
    let mut eval = Eval::new(&st.gw, name, opts);
    eval.readable = scope.map(|s| s.collections.clone());
    let mut hits = eval
        .node(&q.node, None, q.node.limit, q.offset, fetch)
        .await?;
    eval.complete(&mut hits, fetch).await?;
    let points: Vec<ScoredOut> = hits
        .into_iter()
        .map(|h| hit_out(h, &q.with_payload, q.with_vector))
        .collect();
    let missing: Vec<_> = eval.missing.into_iter().collect();
    Ok(with_missing(json!({"points": points}), &missing))
}

/// `POST …/points/query`: Qdrant's universal query.
#[utoipa::path(post, path = "/collections/{name}/points/query", tag = "points", operation_id = "query_points",
    params(doc::CollectionPath, doc::ReadQuery), request_body = doc::QueryRequest,
    responses((status = 200, description = "Hits, best first (or in order_by order)", body = Envelope<doc::QueryResult>)))]
pub async fn query(
    State(st): State<AppState>,
    Path(name): Path<String>,
    scope: Option<Extension<Scope>>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let opts = read_opts(&q, Some(&body))?;
    let result = run_query(&st, &name, body, opts, scope.as_deref()).await?;
    Ok(ok(result, t))
}

/// `POST …/points/query/batch`: `{"searches": [query, ...]}`.
#[utoipa::path(post, path = "/collections/{name}/points/query/batch", tag = "points", operation_id = "query_batch_points",
    params(doc::CollectionPath, doc::ReadQuery), request_body = doc::QueryBatch,
    responses((status = 200, description = "Hits of each query, in order", body = Envelope<Vec<doc::QueryResult>>)))]
pub async fn query_batch(
    State(st): State<AppState>,
    Path(name): Path<String>,
    scope: Option<Extension<Scope>>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let opts = read_opts(&q, Some(&body))?;
    let searches = super::read::parse_searches(body)?;
    // Parse all first: a bad one refuses the batch before any runs.
    for s in &searches {
        parse_query_body(object(s.clone())?, 10)?;
    }
    let scope = scope.as_deref();
    let runs = searches
        .into_iter()
        .map(|b| run_query(&st, &name, b, opts, scope));
    let out = futures::future::join_all(runs)
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    Ok(ok(out, t))
}
