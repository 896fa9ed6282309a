//! Group-by (`…/points/query/groups`, `…/points/search/groups`) and facet
//! counts (`…/facet`). Groups are built from the query's global ranking
//! (hits merged over all shards), read in growing prefixes until the first
//! `limit` groups are full or the ranking ends; facets count the values of
//! every point the filter passes, read shard by shard through the gateway.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Extension;
use protocol::PointId;
use serde::Deserialize;
use serde_json::{json, Value};

use super::query::{hit_out, parse_query_body, QueryIn};
use super::read::parse_search;
use super::{object, read_opts, with_missing};
use crate::api::models::{parse, parse_filter, record_out, PayloadSelector};
use crate::api::openapi::schemas::{self as doc, Envelope};
use crate::api::scope::Scope;
use crate::api::{ok, started, AppState, JsonBody, Params};
use crate::error::{GatewayError, Result};
use crate::query::exec::Fetch;
use crate::query::tree::{QueryKind, VectorInput};
use crate::query::values::{assemble_groups, count_facet, group_ids, top_facets, GroupId};
use crate::query::{Eval, QueryNode};
use crate::reads::ReadOptions;

/// Largest `group_size` (Qdrant's bound as well).
const MAX_GROUP_SIZE: usize = 100;

/// The group-by fields of a body.
struct GroupSpec {
    key: String,
    size: usize,
    limit: usize,
    lookup: Option<Lookup>,
}

/// `with_lookup`: where each group's id is looked up as a point id.
struct Lookup {
    collection: String,
    with_payload: PayloadSelector,
    with_vector: bool,
}

fn take_group_spec(
    m: &mut serde_json::Map<String, Value>,
    default_size: Option<usize>,
    default_limit: Option<usize>,
) -> Result<GroupSpec> {
    let key: String = match m.remove("group_by") {
        Some(v) if !v.is_null() => parse(v, "group_by")?,
        _ => return Err(GatewayError::bad_request("missing `group_by`")),
    };
    let number = |v: Option<Value>, what: &str, default: Option<usize>| -> Result<usize> {
        match (v, default) {
            (Some(v), _) if !v.is_null() => parse(v, what),
            (_, Some(d)) => Ok(d),
            _ => Err(GatewayError::bad_request(format!("missing `{what}`"))),
        }
    };
    let size = number(m.remove("group_size"), "group_size", default_size)?;
    let limit = number(m.remove("limit"), "limit", default_limit)?;
    if key.is_empty() {
        return Err(GatewayError::bad_request("group_by is empty"));
    }
    if size == 0 || size > MAX_GROUP_SIZE {
        return Err(GatewayError::bad_request(format!(
            "group_size must be between 1 and {MAX_GROUP_SIZE}"
        )));
    }
    if limit == 0 || limit * size > protocol::search::MAX_SEARCH_HITS {
        return Err(GatewayError::bad_request(format!(
            "limit must be at least 1 and limit × group_size at most {}",
            protocol::search::MAX_SEARCH_HITS
        )));
    }
    let lookup = match m.remove("with_lookup") {
        None | Some(Value::Null) => None,
        Some(Value::String(collection)) => Some(Lookup {
            collection,
            with_payload: PayloadSelector::All,
            with_vector: false,
        }),
        Some(v) => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct WithLookup {
                collection: String,
                with_payload: Option<Value>,
                with_vectors: Option<Value>,
            }
            let w: WithLookup = parse(v, "with_lookup")?;
            Some(Lookup {
                collection: w.collection,
                with_payload: PayloadSelector::parse(w.with_payload, true)?,
                with_vector: parse_with_vector_opt(w.with_vectors)?,
            })
        }
    };
    Ok(GroupSpec {
        key,
        size,
        limit,
        lookup,
    })
}

fn parse_with_vector_opt(v: Option<Value>) -> Result<bool> {
    crate::api::models::parse_with_vector(v, false)
}

/// The groups of a query: `{"groups": [{"id", "hits", "lookup"?}]}`.
async fn grouped(
    st: &AppState,
    name: &str,
    q: QueryIn,
    spec: GroupSpec,
    opts: ReadOptions,
    scope: Option<Scope>,
) -> Result<Value> {
    let max = protocol::search::MAX_SEARCH_HITS;
    // Payloads are needed to group; the answer shows what was asked.
    let fetch = Fetch {
        payload: true,
        vector: q.with_vector,
    };
    let mut eval = Eval::new(&st.gw, name, opts);
    eval.readable = scope.map(|s| s.collections);
    let mut want = (spec.limit * spec.size * 4).clamp(16, max);
    // Bounded: `want` grows 4× per round up to `max`, where it stops.
    let (hits, groups) = loop {
        let mut hits = eval.node(&q.node, None, want, 0, fetch).await?;
        eval.complete(&mut hits, fetch).await?;
        let ids: Vec<Vec<GroupId>> = hits
            .iter()
            .map(|h| {
                h.payload
                    .as_ref()
                    .map(|p| group_ids(p, &spec.key))
                    .unwrap_or_default()
            })
            .collect();
        let g = assemble_groups(&ids, spec.limit, spec.size);
        if !g.incomplete || hits.len() < want || want == max {
            break (hits, g.groups);
        }
        want = (want * 4).min(max);
    };
    let lookups = match &spec.lookup {
        Some(l) => {
            let ids: Vec<PointId> = groups
                .iter()
                .filter_map(|(g, _)| group_point_id(g))
                .collect();
            let target = eval.readable(&l.collection).await?;
            let records = st
                .gw
                .retrieve(
                    &target,
                    ids,
                    l.with_payload.wanted(),
                    l.with_vector,
                    opts.consistency,
                )
                .await?;
            records.into_iter().map(|r| (r.id, r)).collect()
        }
        None => HashMap::new(),
    };
    let out: Vec<Value> = groups
        .into_iter()
        .map(|(g, members)| {
            let hits: Vec<_> = members
                .into_iter()
                .filter_map(|i| hits.get(i).cloned())
                .map(|h| hit_out(h, &q.with_payload, q.with_vector))
                .collect();
            let mut group = json!({"id": g.to_json(), "hits": hits});
            if let Some(l) = &spec.lookup {
                let lookup = group_point_id(&g)
                    .and_then(|id| lookups.get(&id).cloned())
                    .map(|r| record_out(r, &l.with_payload, l.with_vector));
                group["lookup"] = serde_json::to_value(lookup).unwrap_or(Value::Null);
            }
            group
        })
        .collect();
    let missing: Vec<_> = eval.missing.into_iter().collect();
    Ok(with_missing(json!({"groups": out}), &missing))
}

/// A group id as a point id, for `with_lookup` (non-negative integers and
/// UUIDs; other groups get no lookup).
fn group_point_id(g: &GroupId) -> Option<PointId> {
    match g {
        GroupId::Int(i) => u64::try_from(*i).ok().map(PointId::Num),
        GroupId::Str(s) => s.parse().ok(),
    }
}

/// `POST …/points/query/groups`: a query's hits grouped by a payload key.
#[utoipa::path(post, path = "/collections/{name}/points/query/groups", tag = "points", operation_id = "query_points_groups",
    params(doc::CollectionPath, doc::ReadQuery), request_body = doc::QueryGroupsRequest,
    responses((status = 200, description = "Groups in order of their best hit", body = Envelope<doc::GroupsResult>)))]
pub async fn query_groups(
    State(st): State<AppState>,
    Path(name): Path<String>,
    scope: Option<Extension<Scope>>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let opts = read_opts(&q, Some(&body))?;
    let mut m = object(body)?;
    let spec = take_group_spec(&mut m, Some(3), Some(10))?;
    let query = parse_query_body(m, 10)?;
    let result = grouped(&st, &name, query, spec, opts, scope.map(|s| s.0)).await?;
    Ok(ok(result, t))
}

/// `POST …/points/search/groups`: a search's hits grouped by a payload key.
#[utoipa::path(post, path = "/collections/{name}/points/search/groups", tag = "points", operation_id = "search_point_groups",
    params(doc::CollectionPath, doc::ReadQuery), request_body = doc::SearchGroupsRequest,
    responses((status = 200, description = "Groups in order of their best hit", body = Envelope<doc::GroupsResult>)))]
pub async fn search_groups(
    State(st): State<AppState>,
    Path(name): Path<String>,
    scope: Option<Extension<Scope>>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let opts = read_opts(&q, Some(&body))?;
    let mut m = object(body)?;
    let spec = take_group_spec(&mut m, None, None)?;
    let (vector, s) = parse_search(Value::Object(m))?;
    let query = QueryIn {
        node: QueryNode {
            prefetch: Vec::new(),
            query: Some(QueryKind::Nearest(VectorInput::Dense(vector))),
            filter: s.filter,
            params: s.params,
            score_threshold: s.score_threshold,
            limit: spec.limit,
            lookup_from: None,
        },
        offset: 0,
        with_payload: s.with_payload,
        with_vector: s.with_vector,
    };
    let result = grouped(&st, &name, query, spec, opts, scope.map(|s| s.0)).await?;
    Ok(ok(result, t))
}

/// `POST …/facet`: how many points hold each value of a payload key.
#[utoipa::path(post, path = "/collections/{name}/facet", tag = "points", operation_id = "facet",
    params(doc::CollectionPath, doc::ReadQuery), request_body = doc::FacetRequest,
    responses((status = 200, description = "Values by count, most frequent first", body = Envelope<doc::FacetResult>)))]
pub async fn facet(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let opts = read_opts(&q, Some(&body))?;
    let mut m = object(body)?;
    let key: String = match m.remove("key") {
        Some(v) if !v.is_null() => parse(v, "key")?,
        _ => return Err(GatewayError::bad_request("missing `key`")),
    };
    let limit: usize = match m.remove("limit") {
        None | Some(Value::Null) => 10,
        Some(v) => parse(v, "limit")?,
    };
    if limit == 0 || limit > protocol::search::MAX_SEARCH_HITS {
        return Err(GatewayError::bad_request(format!(
            "limit must be between 1 and {}",
            protocol::search::MAX_SEARCH_HITS
        )));
    }
    // Counts are always exact: `exact: false` is accepted and changes nothing.
    let _exact: Option<bool> = match m.remove("exact") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse(v, "exact")?),
    };
    let filter = parse_filter(m.remove("filter"))?;
    if m.remove("shard_key").is_some_and(|v| !v.is_null()) {
        return Err(GatewayError::NotImplemented {
            feature: "custom sharding (shard keys)",
        });
    }
    let mut eval = Eval::new(&st.gw, &name, opts);
    let records = eval.scan(filter, true, false, None).await?;
    let mut counts = HashMap::new();
    for r in &records {
        if let Some(p) = &r.payload {
            count_facet(&mut counts, p, &key);
        }
    }
    let hits: Vec<Value> = top_facets(counts, limit)
        .into_iter()
        .map(|(v, count)| json!({"value": v.to_json(), "count": count}))
        .collect();
    let missing: Vec<_> = eval.missing.into_iter().collect();
    Ok(ok(with_missing(json!({"hits": hits}), &missing), t))
}
