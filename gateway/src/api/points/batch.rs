//! `POST /collections/{name}/points/batch`: Qdrant's batch update, a list
//! of operations applied one after the other, each acknowledged before the
//! next is sent (so a filter in a later operation sees the earlier ones).
//!
//! The whole list is parsed first: a malformed or unsupported operation
//! refuses the batch before anything is written. Once writing, an
//! operation that fails ends the batch with its error; the operations
//! before it stay applied (as in Qdrant, a batch is ordered, not atomic).
//! The answer is one `UpdateResult` per operation.

use axum::extract::{Path, State};
use axum::response::Response;
use protocol::cluster::CollectionInfo;
use serde_json::Value;

use super::write::Write;
use super::{object, wait_flag};
use crate::api::models::{parse, parse_write_consistency, update_result};
use crate::api::openapi::schemas::{self as doc, Envelope};
use crate::api::{ok, started, AppState, JsonBody, Params};
use crate::error::{GatewayError, Result};

/// Qdrant's batch operations that this cluster cannot do yet.
const UNSUPPORTED: [&str; 2] = ["update_vectors", "delete_vectors"];

#[utoipa::path(post, path = "/collections/{name}/points/batch", tag = "points", operation_id = "batch_update",
    params(doc::CollectionPath, doc::WriteQuery), request_body = doc::UpdateOperations,
    responses((status = 200, description = "One result per operation", body = Envelope<Vec<doc::UpdateResult>>)))]
pub async fn batch(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let (_, coll) = st.gw.collection(&name).await?;
    let consistency = parse_write_consistency(&q, coll.config.write_consistency)?;
    let writes = parse_batch(body, &coll)?;
    let mut results = Vec::with_capacity(writes.len());
    for w in writes {
        let ack = w
            .execute(&st, &name, coll.config.shard_number, consistency)
            .await?;
        results.push(update_result(ack.seq.0, wait_flag(&q)));
    }
    Ok(ok(results, t))
}

/// `{"operations": [...]}` → every write, in order; the first bad one
/// refuses the whole list, naming its index.
pub(super) fn parse_batch(body: Value, coll: &CollectionInfo) -> Result<Vec<Write>> {
    let mut m = object(body)?;
    let operations: Vec<Value> = match m.remove("operations") {
        Some(v) => parse(v, "operations")?,
        None => return Err(GatewayError::bad_request("missing `operations`")),
    };
    operations
        .into_iter()
        .enumerate()
        .map(|(i, op)| {
            parse_operation(op, coll)
                .map_err(|e| GatewayError::bad_request(format!("operation {i}: {}", message(e))))
        })
        .collect()
}

/// `{"upsert": {...}}`, `{"delete": {...}}`, ... → the write it describes.
fn parse_operation(op: Value, coll: &CollectionInfo) -> Result<Write> {
    let m = object(op)?;
    let mut entries = m.into_iter();
    let (Some((kind, body)), None) = (entries.next(), entries.next()) else {
        return Err(GatewayError::bad_request(
            "each operation is an object with exactly one key, e.g. {\"upsert\": {...}}",
        ));
    };
    match kind.as_str() {
        "upsert" => Write::upsert(body, coll),
        "delete" => Write::delete(body),
        "set_payload" => Write::payload(body, false),
        "overwrite_payload" => Write::payload(body, true),
        "delete_payload" => Write::delete_payload(body),
        "clear_payload" => Write::clear_payload(body),
        k if UNSUPPORTED.contains(&k) => Err(GatewayError::bad_request(format!(
            "`{k}` is not supported by this cluster (batches may hold upsert, delete, \
             set_payload, overwrite_payload, delete_payload, clear_payload)"
        ))),
        k => Err(GatewayError::bad_request(format!(
            "unknown batch operation `{k}`"
        ))),
    }
}

/// The error's message without the "Bad request: " its display adds.
fn message(e: GatewayError) -> String {
    match e {
        GatewayError::BadRequest { message } => message,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use protocol::{CollectionConfig, Distance, Epoch};
    use serde_json::json;

    use super::*;

    fn coll() -> CollectionInfo {
        CollectionInfo {
            name: "c".into(),
            config: CollectionConfig::new(2, Distance::Dot),
            shards: Default::default(),
            created_epoch: Epoch(1),
        }
    }

    #[test]
    fn every_supported_kind_parses_and_the_others_are_named() {
        for op in [
            json!({"upsert": {"points": [{"id": 1, "vector": [1.0, 2.0]}]}}),
            json!({"upsert": {"batch": {"ids": [1], "vectors": [[1.0, 2.0]]}}}),
            json!({"delete": {"points": [1, 2]}}),
            json!({"delete": {"filter": {"must": [{"key": "a", "match": {"value": 1}}]}}}),
            json!({"set_payload": {"payload": {"a": 1}, "points": [1]}}),
            json!({"overwrite_payload": {"payload": {"a": 1}, "filter": {}}}),
            json!({"delete_payload": {"keys": ["a"], "points": [1]}}),
            json!({"clear_payload": {"points": [1]}}),
        ] {
            assert!(parse_operation(op.clone(), &coll()).is_ok(), "{op}");
        }
        for kind in UNSUPPORTED {
            let e = parse_operation(json!({ kind: {"points": []} }), &coll()).unwrap_err();
            assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
            assert!(e.to_string().contains(kind), "{e}");
        }
        for bad in [
            json!({"upsert": {"points": [{"id": 1, "vector": [1.0]}]}}),
            json!({"upsert": {}, "delete": {}}),
            json!({}),
            json!({"drop_everything": {}}),
            json!([1]),
        ] {
            assert!(parse_operation(bad.clone(), &coll()).is_err(), "{bad}");
        }
    }
}
