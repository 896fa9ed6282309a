//! Qdrant routes of features this cluster does not have. Each answers
//! 501 naming the feature, so that a client (the official `qdrant-client`
//! raises it as `UnexpectedResponse`) learns why, instead of meeting a
//! bare "no such route" 404 or an answer its models cannot parse.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use serde_json::json;

use super::openapi::schemas::{self as doc, Envelope};
use super::{ok, started, AppState};
use crate::error::{GatewayError, Result};

/// `(path, feature)`: every method of `path` answers 501 for `feature`.
pub(super) const ROUTES: &[(&str, &str)] = &[
    ("/snapshots", "full (storage) snapshots"),
    ("/snapshots/{snapshot}", "full (storage) snapshots"),
    ("/collections/{name}/snapshots", "collection snapshots"),
    (
        "/collections/{name}/snapshots/upload",
        "collection snapshots",
    ),
    (
        "/collections/{name}/snapshots/recover",
        "collection snapshots",
    ),
    (
        "/collections/{name}/snapshots/{snapshot}",
        "collection snapshots",
    ),
    (
        "/collections/{name}/shards/{shard}/snapshot",
        "shard snapshots",
    ),
    (
        "/collections/{name}/shards/{shard}/snapshots",
        "shard snapshots",
    ),
    (
        "/collections/{name}/shards/{shard}/snapshots/upload",
        "shard snapshots",
    ),
    (
        "/collections/{name}/shards/{shard}/snapshots/recover",
        "shard snapshots",
    ),
    (
        "/collections/{name}/shards/{shard}/snapshots/{snapshot}",
        "shard snapshots",
    ),
    (
        "/collections/{name}/shards/delete",
        "custom sharding (shard keys)",
    ),
    ("/collections/{name}/vectors/{vector}", "named vectors"),
    (
        "/collections/{name}/optimizations",
        "the optimizations report",
    ),
    ("/collections/{name}/points/vectors", "update_vectors"),
    (
        "/collections/{name}/points/vectors/delete",
        "delete_vectors",
    ),
    (
        "/collections/{name}/points/search/matrix/pairs",
        "the search matrix",
    ),
    (
        "/collections/{name}/points/search/matrix/offsets",
        "the search matrix",
    ),
    ("/collections/{name}/points/recommend", "recommend"),
    ("/collections/{name}/points/recommend/batch", "recommend"),
    ("/collections/{name}/points/recommend/groups", "recommend"),
    ("/collections/{name}/points/discover", "discover"),
    ("/collections/{name}/points/discover/batch", "discover"),
    ("/cluster/telemetry", "telemetry"),
    ("/telemetry", "telemetry"),
    (
        "/cluster/recover",
        "peer recovery (storage nodes recover by themselves)",
    ),
];

/// Adds the 501 routes (the OpenAPI document describes them from the
/// same table, see `openapi::finish`).
pub fn routes(mut r: Router<AppState>) -> Router<AppState> {
    for (path, feature) in ROUTES {
        let feature: &'static str = feature;
        r = r.route(
            path,
            any(move || async move { GatewayError::NotImplemented { feature } }),
        );
    }
    r
}

/// `PUT /collections/{name}/shards`: creating a shard key.
#[utoipa::path(put, path = "/collections/{name}/shards", tag = "unsupported", operation_id = "create_shard_key",
    params(doc::CollectionPath),
    responses((status = 501, description = "Not implemented: custom sharding (shard keys)", body = doc::ErrorBody)))]
pub async fn create_shard_key() -> GatewayError {
    GatewayError::NotImplemented {
        feature: "custom sharding (shard keys)",
    }
}

#[utoipa::path(get, path = "/collections/{name}/shards", tag = "collections", operation_id = "list_shard_keys",
    params(doc::CollectionPath),
    responses((status = 200, description = "No shard keys", body = Envelope<doc::ShardKeys>)))]
/// Qdrant's `list_shard_keys`: our collections are sharded by point id
/// (Qdrant's `auto`), so they have no shard keys: `null`, as Qdrant
/// answers for them.
pub async fn shard_keys(State(st): State<AppState>, Path(name): Path<String>) -> Result<Response> {
    let t = started();
    st.gw.collection(&name).await?;
    Ok(ok(json!({"shard_keys": null}), t))
}
