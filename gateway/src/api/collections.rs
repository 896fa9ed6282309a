//! `GET /collections`, `PUT|GET|DELETE /collections/{name}`,
//! `GET /collections/{name}/exists`.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Extension;
use protocol::cluster::{NodeState, ReplicaState};
use serde_json::json;

use super::models::{distance_name, parse_create_collection, write_consistency_factor};
use super::openapi::schemas::{self as doc, Envelope};
use super::scope::Scope;
use super::{ok, started, AppState, JsonBody};
use crate::error::Result;
use crate::reads::ReadOptions;
use crate::status::summarize;

/// `GET /collections` (a scoped key sees its collections only).
#[utoipa::path(get, path = "/collections", tag = "collections", operation_id = "get_collections",
    responses((status = 200, description = "Collection names", body = Envelope<doc::CollectionsList>)))]
pub async fn list(State(st): State<AppState>, scope: Option<Extension<Scope>>) -> Result<Response> {
    let t = started();
    let map = st.gw.maps().refresh(protocol::Epoch(0)).await?;
    let scope = scope.map(|Extension(s)| s);
    let names: Vec<_> = map
        .collections
        .keys()
        .filter(|n| Scope::shows(scope.as_ref(), n))
        .map(|n| json!({"name": n}))
        .collect();
    Ok(ok(json!({"collections": names}), t))
}

/// Creates a collection (its shards placed by the meta-service).
#[utoipa::path(put, path = "/collections/{name}", tag = "collections", operation_id = "create_collection",
    params(doc::CollectionPath),
    request_body = doc::CreateCollection,
    responses(
        (status = 200, description = "Created", body = Envelope<bool>),
        (status = 409, description = "A collection of this name exists", body = doc::ErrorBody),
    ))]
pub async fn create(
    State(st): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    let config = parse_create_collection(body)?;
    st.gw.create_collection(&name, config).await?;
    Ok(ok(true, t))
}

/// Deletes a collection and its aliases; `false` if there was none.
#[utoipa::path(delete, path = "/collections/{name}", tag = "collections", operation_id = "delete_collection",
    params(doc::CollectionPath),
    responses((status = 200, description = "Whether a collection was deleted", body = Envelope<bool>)))]
pub async fn delete(State(st): State<AppState>, Path(name): Path<String>) -> Result<Response> {
    let t = started();
    let deleted = st.gw.delete_collection(&name).await?;
    Ok(ok(deleted, t))
}

#[utoipa::path(get, path = "/collections/{name}/exists", tag = "collections", operation_id = "collection_exists",
    params(doc::CollectionPath),
    responses((status = 200, description = "Whether the collection (or alias) exists", body = Envelope<doc::CollectionExists>)))]
pub async fn exists(State(st): State<AppState>, Path(name): Path<String>) -> Result<Response> {
    let t = started();
    let map = st.gw.maps().refresh(protocol::Epoch(0)).await?;
    Ok(ok(
        json!({"exists": map.collections.contains_key(&name)}),
        t,
    ))
}

/// What qdrant-client's `CollectionInfo` model needs. `points_count` is
/// counted across shards (shards that cannot answer are left out and the
/// status turns yellow); `status`, `optimizer_status`,
/// `indexed_vectors_count` and `segments_count` come from every replica's
/// index status (see [`crate::status`] for the rule).
#[utoipa::path(get, path = "/collections/{name}", tag = "collections", operation_id = "get_collection",
    params(doc::CollectionPath),
    responses((status = 200, description = "Status, counts and configuration", body = Envelope<doc::CollectionInfo>)))]
pub async fn info(State(st): State<AppState>, Path(name): Path<String>) -> Result<Response> {
    let t = started();
    let (map, coll) = st.gw.collection(&name).await?;
    let count = st
        .gw
        .count(
            &name,
            protocol::CountRequest::default(),
            ReadOptions {
                partial: true,
                ..ReadOptions::default()
            },
        )
        .await?;
    let reports = st.gw.index_reports(&map, &coll).await;
    let degraded = !count.missing_shards.is_empty()
        || coll.shards.values().any(|s| {
            s.replicas.iter().any(|r| {
                r.state != ReplicaState::Active
                    || map
                        .nodes
                        .get(&r.node)
                        .is_none_or(|n| n.state == NodeState::Dead)
            })
        });
    let index = summarize(&coll, &reports, degraded);
    let c = &coll.config;
    let result = json!({
        "status": index.status.as_str(),
        "optimizer_status": match &index.optimizer_error {
            None => json!("ok"),
            Some(e) => json!({"error": e}),
        },
        "vectors_count": null,
        "indexed_vectors_count": index.indexed_vectors,
        "points_count": count.value,
        "segments_count": index.segments,
        "config": {
            "params": {
                "vectors": {"size": c.dimension, "distance": distance_name(c.distance)},
                "shard_number": c.shard_number,
                "sharding_method": null,
                "replication_factor": c.replication_factor,
                "write_consistency_factor": write_consistency_factor(c.write_consistency, c.replication_factor),
                "read_fan_out_factor": null,
                "on_disk_payload": false,
                "sparse_vectors": null,
            },
            "hnsw_config": {
                "m": c.hnsw.m,
                "ef_construct": c.hnsw.ef_construct,
                "full_scan_threshold": 10000,
                "max_indexing_threads": 0,
                "on_disk": false,
                "payload_m": null,
            },
            "optimizer_config": {
                "deleted_threshold": 0.2,
                "vacuum_min_vector_number": 1000,
                "default_segment_number": 0,
                "max_segment_size": null,
                "memmap_threshold": null,
                "indexing_threshold": 20000,
                "flush_interval_sec": 5,
                "max_optimization_threads": null,
            },
            "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0},
            "quantization_config": null,
        },
        "payload_schema": crate::api::payload_indexes::payload_schema(&coll, &reports),
    });
    Ok(ok(result, t))
}
