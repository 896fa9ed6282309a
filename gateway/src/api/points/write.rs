//! Point writes. Each request body is parsed into a [`Write`] (nothing
//! sent yet, so a malformed body changes nothing), which
//! [`Write::execute`] splits into one operation per shard and sends to
//! the primaries. The batch route (`batch`) runs a list of them in order.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::Response;
use protocol::cluster::CollectionInfo;
use protocol::{Operation, Payload, Point, ShardId, WriteConsistency};
use serde_json::{Map, Value};

use super::{object, per_shard_ids, selected, wait_flag};
use crate::api::models::{
    parse, parse_selector, parse_upsert, parse_write_consistency, update_result, Selector,
};
use crate::api::openapi::schemas::{self as doc, Envelope};
use crate::api::{ok, started, AppState, JsonBody, Params};
use crate::error::{GatewayError, Result};
use crate::routing::group_by_shard;
use crate::writes::WriteAck;

/// A point write as a request body describes it.
#[derive(Debug)]
pub(super) enum Write {
    Upsert(Vec<Point>),
    Delete(Selector),
    /// Merge (`overwrite: false`) or replace the payload.
    Payload {
        payload: Payload,
        selector: Selector,
        overwrite: bool,
    },
    DeletePayload {
        keys: Vec<String>,
        selector: Selector,
    },
    ClearPayload(Selector),
}

impl Write {
    /// `PUT …/points` (list or batch form), checked against the
    /// collection's dimension.
    pub(super) fn upsert(body: Value, coll: &CollectionInfo) -> Result<Write> {
        Ok(Write::Upsert(parse_upsert(body, coll.config.dimension)?))
    }

    /// `POST …/points/delete`: `{points}` or `{filter}`.
    pub(super) fn delete(body: Value) -> Result<Write> {
        Ok(Write::Delete(parse_selector(&mut object(body)?)?))
    }

    /// `POST|PUT …/points/payload`: `{payload, points | filter}`.
    pub(super) fn payload(body: Value, overwrite: bool) -> Result<Write> {
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
        Ok(Write::Payload {
            payload,
            selector: parse_selector(&mut m)?,
            overwrite,
        })
    }

    /// `POST …/points/payload/delete`: `{keys, points | filter}`.
    pub(super) fn delete_payload(body: Value) -> Result<Write> {
        let mut m: Map<String, Value> = object(body)?;
        let keys: Vec<String> = match m.remove("keys") {
            Some(k) => parse(k, "keys")?,
            None => return Err(GatewayError::bad_request("missing `keys`")),
        };
        Ok(Write::DeletePayload {
            keys,
            selector: parse_selector(&mut m)?,
        })
    }

    /// `POST …/points/payload/clear`: `{points | filter}`.
    pub(super) fn clear_payload(body: Value) -> Result<Write> {
        Ok(Write::ClearPayload(parse_selector(&mut object(body)?)?))
    }

    /// Splits the write by shard and sends it. A payload write by filter
    /// resolves the filter now, so it sees every earlier write of a batch.
    pub(super) async fn execute(
        self,
        st: &AppState,
        name: &str,
        shard_number: u32,
        consistency: WriteConsistency,
    ) -> Result<WriteAck> {
        let ops: BTreeMap<ShardId, Operation> = match self {
            Write::Upsert(points) => group_by_shard(name, shard_number, points, |p| p.id)
                .into_iter()
                .map(|(s, points)| (s, Operation::Upsert { points }))
                .collect(),
            Write::Delete(Selector::Ids(ids)) => {
                protocol::point::validate_batch_len(ids.len())?;
                per_shard_ids(name, shard_number, ids, |ids| Operation::Delete { ids })
            }
            // Every shard resolves the filter itself, atomically in its order.
            Write::Delete(Selector::Filter(filter)) => (0..shard_number)
                .map(|s| {
                    (
                        ShardId(s),
                        Operation::DeleteByFilter {
                            filter: filter.clone(),
                        },
                    )
                })
                .collect(),
            Write::Payload {
                payload,
                selector,
                overwrite,
            } => {
                selected(st, name, shard_number, selector, |ids| {
                    let payload = payload.clone();
                    if overwrite {
                        Operation::OverwritePayload { ids, payload }
                    } else {
                        Operation::SetPayload { ids, payload }
                    }
                })
                .await?
            }
            Write::DeletePayload { keys, selector } => {
                selected(st, name, shard_number, selector, |ids| {
                    Operation::DeletePayloadKeys {
                        ids,
                        keys: keys.clone(),
                    }
                })
                .await?
            }
            Write::ClearPayload(selector) => {
                selected(st, name, shard_number, selector, |ids| {
                    Operation::ClearPayload { ids }
                })
                .await?
            }
        };
        st.gw.write(name, ops, consistency).await
    }
}

/// One write route: parse the body against the collection, send, answer
/// Qdrant's `UpdateResult`.
async fn run(
    st: AppState,
    name: String,
    q: BTreeMap<String, String>,
    parse_body: impl FnOnce(&CollectionInfo) -> Result<Write>,
) -> Result<Response> {
    let t = started();
    let (_, coll) = st.gw.collection(&name).await?;
    let consistency = parse_write_consistency(&q, coll.config.write_consistency)?;
    let write = parse_body(&coll)?;
    let ack = write
        .execute(&st, &name, coll.config.shard_number, consistency)
        .await?;
    Ok(ok(update_result(ack.seq.0, wait_flag(&q)), t))
}

/// Inserts or replaces points (a list, or columns).
#[utoipa::path(put, path = "/collections/{name}/points", tag = "points", operation_id = "upsert_points",
    params(doc::CollectionPath, doc::WriteQuery), request_body = doc::PointInsertOperations,
    responses((status = 200, description = "Applied by the write consistency's replicas", body = Envelope<doc::UpdateResult>)))]
pub async fn upsert(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    run(st, name, q.0, |coll| Write::upsert(body, coll)).await
}

/// Deletes points by id or by filter.
#[utoipa::path(post, path = "/collections/{name}/points/delete", tag = "points", operation_id = "delete_points",
    params(doc::CollectionPath, doc::WriteQuery), request_body = doc::PointsSelector,
    responses((status = 200, description = "Applied", body = Envelope<doc::UpdateResult>)))]
pub async fn delete(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    run(st, name, q.0, |_| Write::delete(body)).await
}

/// Merges keys into the payload of the selected points.
#[utoipa::path(post, path = "/collections/{name}/points/payload", tag = "points", operation_id = "set_payload",
    params(doc::CollectionPath, doc::WriteQuery), request_body = doc::SetPayload,
    responses((status = 200, description = "Applied", body = Envelope<doc::UpdateResult>)))]
pub async fn set_payload(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    run(st, name, q.0, |_| Write::payload(body, false)).await
}

/// Replaces the payload of the selected points.
#[utoipa::path(put, path = "/collections/{name}/points/payload", tag = "points", operation_id = "overwrite_payload",
    params(doc::CollectionPath, doc::WriteQuery), request_body = doc::SetPayload,
    responses((status = 200, description = "Applied", body = Envelope<doc::UpdateResult>)))]
pub async fn overwrite_payload(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    run(st, name, q.0, |_| Write::payload(body, true)).await
}

/// Deletes payload keys of the selected points.
#[utoipa::path(post, path = "/collections/{name}/points/payload/delete", tag = "points", operation_id = "delete_payload",
    params(doc::CollectionPath, doc::WriteQuery), request_body = doc::DeletePayload,
    responses((status = 200, description = "Applied", body = Envelope<doc::UpdateResult>)))]
pub async fn delete_payload(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    run(st, name, q.0, |_| Write::delete_payload(body)).await
}

/// Removes the whole payload of the selected points.
#[utoipa::path(post, path = "/collections/{name}/points/payload/clear", tag = "points", operation_id = "clear_payload",
    params(doc::CollectionPath, doc::WriteQuery), request_body = doc::PointsSelector,
    responses((status = 200, description = "Applied", body = Envelope<doc::UpdateResult>)))]
pub async fn clear_payload(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    run(st, name, q.0, |_| Write::clear_payload(body)).await
}
