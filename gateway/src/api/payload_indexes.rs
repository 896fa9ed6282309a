//! `PUT /collections/{name}/index` and `DELETE …/index/{field}`: declare
//! or drop a payload index. The declaration goes into the collection's
//! config through the meta-service; every replica builds the index when
//! its map watch brings the change (and on open, so new replicas and
//! restarts have it too). An index only speeds filtered reads up: their
//! answers are the same with or without it. `payload_schema` in the
//! collection info lists the declarations (see [`payload_schema`]).

use axum::extract::{Path, State};
use axum::response::Response;
use protocol::cluster::{ClusterCommand, CollectionInfo};
use protocol::PayloadIndexSpec;
use serde_json::{json, Map, Value};

use crate::api::models::update_result;
use crate::api::openapi::schemas::{self as doc, Envelope};
use crate::api::{ok, started, AppState, JsonBody};
use crate::error::{GatewayError, Result};
use crate::status::Reports;

#[utoipa::path(put, path = "/collections/{name}/index", tag = "collections", operation_id = "create_field_index",
    params(doc::CollectionPath), request_body = doc::CreateFieldIndex,
    responses((status = 200, description = "Declared; replicas build it", body = Envelope<doc::UpdateResult>)))]
pub async fn create(
    State(st): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let (field, spec) = parse_create(body)?;
    let (_, coll) = st.gw.collection(&name).await?;
    st.gw
        .submit(ClusterCommand::SetPayloadIndex {
            collection: coll.name.clone(),
            field,
            index: Some(spec),
        })
        .await?;
    Ok(ok(update_result(0, true), t))
}

#[utoipa::path(delete, path = "/collections/{name}/index/{field}", tag = "collections", operation_id = "delete_field_index",
    params(doc::CollectionPath, ("field" = String, Path, description = "Payload key")),
    responses((status = 200, description = "Dropped (or there was none)", body = Envelope<doc::UpdateResult>)))]
pub async fn delete(
    State(st): State<AppState>,
    Path((name, field)): Path<(String, String)>,
) -> Result<Response> {
    let t = started();
    let (_, coll) = st.gw.collection(&name).await?;
    if coll.config.payload_indexes.contains_key(&field) {
        st.gw
            .submit(ClusterCommand::SetPayloadIndex {
                collection: coll.name.clone(),
                field,
                index: None,
            })
            .await?;
    }
    Ok(ok(update_result(0, true), t))
}

/// `{"field_name": "k", "field_schema": "keyword" | {"type": ..., ...}}`.
fn parse_create(body: Value) -> Result<(String, PayloadIndexSpec)> {
    let Value::Object(mut m) = body else {
        return Err(GatewayError::bad_request("body must be a JSON object"));
    };
    let field = match m.remove("field_name") {
        Some(Value::String(f)) if !f.is_empty() => f,
        _ => {
            return Err(GatewayError::bad_request(
                "`field_name` must be a non-empty string",
            ))
        }
    };
    let schema = match m.remove("field_schema") {
        Some(v) if !v.is_null() => v,
        _ => {
            return Err(GatewayError::bad_request(
                "`field_schema` is required (e.g. \"keyword\")",
            ))
        }
    };
    if let Some(k) = m.keys().next() {
        return Err(GatewayError::bad_request(format!("unknown field `{k}`")));
    }
    Ok((field, PayloadIndexSpec::from_field_schema(&schema)?))
}

/// Qdrant's `payload_schema`: each declared index with its type, the
/// parameters it was declared with, and `points`: per shard the most any
/// replica reports (a replica still building reports fewer), summed.
pub fn payload_schema(coll: &CollectionInfo, reports: &Reports) -> Value {
    let mut out = Map::new();
    for (key, spec) in &coll.config.payload_indexes {
        let points: u64 = coll
            .shards
            .keys()
            .map(|sid| {
                reports
                    .range((*sid, protocol::NodeId(0))..=(*sid, protocol::NodeId(u64::MAX)))
                    .filter_map(|(_, r)| r.as_ref()?.payload_index_points.get(key).copied())
                    .max()
                    .unwrap_or(0)
            })
            .sum();
        let mut info = json!({"data_type": spec.data_type.as_str(), "points": points});
        if let Some(p) = &spec.params {
            info["params"] = Value::Object(p.clone());
        }
        out.insert(key.clone(), info);
    }
    Value::Object(out)
}
