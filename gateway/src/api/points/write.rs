//! Point writes: each request becomes one operation per shard.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::Response;
use protocol::{Operation, ShardId};
use serde_json::Value;

use super::{object, per_shard_ids, selected, wait_flag, write_consistency};
use crate::api::models::{
    parse, parse_selector, parse_upsert, parse_write_consistency, update_result, Selector,
};
use crate::api::{ok, started, AppState, JsonBody, Params};
use crate::error::{GatewayError, Result};
use crate::routing::group_by_shard;

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
