//! The operator routes of an elastic cluster (ours, not Qdrant's):
//!
//! - `GET /api/cluster/nodes`: storage nodes with what they hold.
//! - `POST /api/cluster/nodes/{id}/drain`: the controller moves every
//!   replica off the node; it keeps serving meanwhile.
//! - `DELETE /api/cluster/nodes/{id}` (and Qdrant's `DELETE
//!   /cluster/peer/{id}`): forget a node; 409 while it holds replicas.
//! - `POST /api/cluster/rebalance`: plan and start a rebalance now.
//! - `GET|PUT /api/cluster/settings`: the `rebalancing.*` settings.
//! - `GET /api/cluster/transfers`: running transfers with progress, and
//!   the recently finished ones.
//!
//! Write routes need the read-write key (the auth layer: only GETs pass
//! with the read-only key).

use axum::extract::{Path, State};
use axum::response::Response;
use protocol::cluster::{ClusterCommand, ClusterMap, NodeState, RebalanceSettings};
use protocol::NodeId;
use serde_json::{json, Map, Value};

use super::openapi::schemas::{self as doc, Envelope};
use super::{ok, started, AppState, JsonBody, Params};
use crate::error::{GatewayError, Result};
use crate::operator::now_ms;
use crate::transfers::TransfersReport;

fn node_json(map: &ClusterMap, id: NodeId) -> Option<Value> {
    let n = map.nodes.get(&id)?;
    let shards = map.shards_on(id);
    let primaries = map
        .collections
        .values()
        .flat_map(|c| c.shards.values())
        .filter(|s| s.primary == Some(id))
        .count();
    let (mut incoming, mut outgoing) = (0, 0);
    for s in map.collections.values().flat_map(|c| c.shards.values()) {
        if let Some(m) = &s.migration {
            incoming += usize::from(m.to == id);
            outgoing += usize::from(m.from == id);
        }
    }
    Some(json!({
        "id": id.0, "addr": n.addr, "api_addr": n.api_addr, "state": n.state,
        "state_since_ms": n.state_since_ms,
        "replicas": shards.len(), "primaries": primaries,
        "shards": shards.iter().map(|(c, s)| format!("{c}/{s}")).collect::<Vec<_>>(),
        "transfers_in": incoming, "transfers_out": outgoing,
    }))
}

/// Storage nodes with what they hold (read from the meta-service).
#[utoipa::path(get, path = "/api/cluster/nodes", tag = "operator", operation_id = "list_nodes",
    responses((status = 200, description = "Every registered storage node", body = Envelope<doc::NodesList>)))]
pub async fn list(State(st): State<AppState>) -> Result<Response> {
    let t = started();
    let map = st.gw.fresh_map().await?;
    let nodes: Vec<Value> = map
        .nodes
        .keys()
        .filter_map(|id| node_json(&map, *id))
        .collect();
    Ok(ok(json!({"epoch": map.epoch.0, "nodes": nodes}), t))
}

/// A node id from the path; a 400 in the usual envelope if it is not one.
fn node_id(raw: &str) -> Result<u64> {
    raw.parse()
        .map_err(|_| GatewayError::bad_request(format!("`{raw}` is not a node id")))
}

fn unknown_node(id: u64) -> GatewayError {
    GatewayError::NotFound {
        message: format!("node {id} is not registered"),
    }
}

/// Marks the node `Draining`; answers with what it still holds. Draining a
/// node that already drains is not an error (the CLI's `--wait` retries).
#[utoipa::path(post, path = "/api/cluster/nodes/{id}/drain", tag = "operator", operation_id = "drain_node",
    params(doc::NodePath),
    responses((status = 200, description = "The node drains; what it still holds", body = Envelope<doc::DrainResult>)))]
pub async fn drain(State(st): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    let t = started();
    let id = node_id(&id)?;
    let node = NodeId(id);
    let map = st.gw.fresh_map().await?;
    let info = map.nodes.get(&node).ok_or_else(|| unknown_node(id))?;
    let epoch = match info.state {
        NodeState::Draining => map.epoch,
        NodeState::Alive | NodeState::Dead => {
            st.gw
                .submit(ClusterCommand::SetNodeState {
                    node,
                    state: NodeState::Draining,
                    at_ms: now_ms(),
                })
                .await?
        }
    };
    let map = st.gw.map();
    Ok(ok(
        json!({"node": id, "state": "draining", "epoch": epoch.0,
               "replicas": map.shards_on(node).len()}),
        t,
    ))
}

/// Forgets the node; 409 with its replica count while it holds any.
#[utoipa::path(delete, path = "/api/cluster/nodes/{id}", tag = "operator", operation_id = "remove_node",
    params(doc::NodePath),
    responses(
        (status = 200, description = "Forgotten", body = Envelope<doc::RemoveResult>),
        (status = 409, description = "The node still holds replicas", body = doc::ErrorBody),
    ))]
pub async fn remove(State(st): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    let t = started();
    let id = node_id(&id)?;
    let epoch = st
        .gw
        .submit(ClusterCommand::RemoveNode { node: NodeId(id) })
        .await?;
    Ok(ok(
        json!({"node": id, "removed": true, "epoch": epoch.0}),
        t,
    ))
}

/// Qdrant's `DELETE /cluster/peer/{peer_id}`: the same, answering `true`.
#[utoipa::path(delete, path = "/cluster/peer/{id}", tag = "cluster", operation_id = "remove_peer",
    params(doc::NodePath, ("force" = Option<bool>, Query, description = "`true` is refused: drain the peer first")),
    responses(
        (status = 200, description = "Forgotten", body = Envelope<bool>),
        (status = 409, description = "The peer still holds replicas", body = doc::ErrorBody),
    ))]
pub async fn remove_peer(
    State(st): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response> {
    let t = started();
    let id = node_id(&id)?;
    if params.get("force").is_some_and(|f| f == "true") {
        return Err(GatewayError::bad_request(
            "force: a peer that holds replicas cannot be removed; drain it first",
        ));
    }
    st.gw
        .submit(ClusterCommand::RemoveNode { node: NodeId(id) })
        .await?;
    Ok(ok(true, t))
}

/// Plans a rebalance now and starts its moves.
#[utoipa::path(post, path = "/api/cluster/rebalance", tag = "operator", operation_id = "rebalance",
    responses((status = 200, description = "The plan that was started (possibly no move)", body = Envelope<doc::RebalanceResult>)))]
pub async fn rebalance(State(st): State<AppState>) -> Result<Response> {
    let t = started();
    let ack = st.gw.rebalance().await?;
    Ok(ok(
        json!({"epoch": ack.epoch.0, "moves": ack.plan.moves, "created_at_ms": ack.plan.created_at_ms}),
        t,
    ))
}

/// The effective settings (a missing or unreadable value is its default).
fn settings_json(map: &ClusterMap) -> Value {
    let s = RebalanceSettings::from_map(map);
    let pairs = [
        (RebalanceSettings::KEY_ENABLED, json!(s.auto_enabled)),
        (RebalanceSettings::KEY_THRESHOLD, json!(s.trigger_threshold)),
        (
            RebalanceSettings::KEY_MAX_CONCURRENT,
            json!(s.max_concurrent_migrations),
        ),
        (
            RebalanceSettings::KEY_THROTTLE,
            json!(s.throttle_mb_per_sec),
        ),
        (
            RebalanceSettings::KEY_STALL_AFTER_MS,
            json!(s.stall_after_ms),
        ),
        (
            RebalanceSettings::KEY_MIN_IMBALANCE_BYTES,
            json!(s.min_imbalance_bytes),
        ),
    ];
    Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<Map<String, Value>>(),
    )
}

/// The effective `rebalancing.*` settings.
#[utoipa::path(get, path = "/api/cluster/settings", tag = "operator", operation_id = "get_settings",
    responses((status = 200, description = "Setting → value", body = Envelope<doc::RebalanceSettingsDoc>)))]
pub async fn get_settings(State(st): State<AppState>) -> Result<Response> {
    let t = started();
    let map = st.gw.fresh_map().await?;
    Ok(ok(settings_json(&map), t))
}

/// `{key: value, ...}` with `rebalancing.*` keys; values as JSON strings,
/// numbers or booleans. Every pair is checked before the first is sent.
pub fn parse_settings(body: Value) -> Result<Vec<(String, String)>> {
    let Value::Object(obj) = body else {
        return Err(GatewayError::bad_request(
            "expected a JSON object of setting → value",
        ));
    };
    if obj.is_empty() {
        return Err(GatewayError::bad_request("no setting given"));
    }
    let mut out = Vec::with_capacity(obj.len());
    for (key, v) in obj {
        let value = match v {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(GatewayError::bad_request(format!(
                    "{key}: expected a string, number or boolean, got {other}"
                )))
            }
        };
        match RebalanceSettings::check(&key, &value) {
            None => {
                return Err(GatewayError::bad_request(format!(
                    "unknown setting `{key}` (one of {})",
                    RebalanceSettings::KEYS.join(", ")
                )))
            }
            Some(Err(reason)) => return Err(GatewayError::bad_request(reason)),
            Some(Ok(())) => out.push((key, value)),
        }
    }
    Ok(out)
}

/// Changes some `rebalancing.*` settings; every pair is checked before
/// the first is sent.
#[utoipa::path(put, path = "/api/cluster/settings", tag = "operator", operation_id = "put_settings",
    request_body = doc::SettingsUpdate,
    responses((status = 200, description = "The settings now in effect", body = Envelope<doc::RebalanceSettingsDoc>)))]
pub async fn put_settings(
    State(st): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let t = started();
    for (key, value) in parse_settings(body)? {
        st.gw
            .submit(ClusterCommand::UpdateConfig { key, value })
            .await?;
    }
    Ok(ok(settings_json(&st.gw.map()), t))
}

/// Running transfers from this gateway's map (kept current by its watch;
/// `?fresh=true` reads the meta-service first).
#[utoipa::path(get, path = "/api/cluster/transfers", tag = "operator", operation_id = "list_transfers",
    params(("fresh" = Option<bool>, Query, description = "`true`: read the meta-service first")),
    responses((status = 200, description = "Running transfers with progress, and recent finished ones", body = Envelope<crate::transfers::TransfersReport>)))]
pub async fn transfers(State(st): State<AppState>, params: Params) -> Result<Response> {
    let t = started();
    let map = if params.get("fresh").is_some_and(|f| f == "true") {
        st.gw.fresh_map().await?
    } else {
        st.gw.map()
    };
    Ok(ok(TransfersReport::from_map(&map), t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_bodies() {
        let pairs = parse_settings(json!({
            "rebalancing.auto_enabled": false,
            "rebalancing.throttle_mb_per_sec": 12.5,
            "rebalancing.max_concurrent_migrations": "3",
        }))
        .unwrap();
        assert_eq!(pairs.len(), 3);
        assert!(pairs.contains(&("rebalancing.auto_enabled".into(), "false".into())));
        assert!(pairs.contains(&("rebalancing.throttle_mb_per_sec".into(), "12.5".into())));
        let err = |v: Value| parse_settings(v).unwrap_err().to_string();
        assert!(err(json!({"rebalancing.colour": "blue"})).contains("unknown setting"));
        assert!(err(json!({"rebalancing.trigger_threshold": -1})).contains("not a valid value"));
        assert!(err(json!({"rebalancing.auto_enabled": [true]})).contains("expected"));
        assert!(err(json!({})).contains("no setting"));
    }

    #[test]
    fn settings_default_to_the_spec() {
        let v = settings_json(&ClusterMap::default());
        assert_eq!(v["rebalancing.auto_enabled"], true);
        assert_eq!(v["rebalancing.trigger_threshold"], 0.2);
        assert_eq!(v["rebalancing.max_concurrent_migrations"], 2);
        assert_eq!(
            v.as_object().map(|o| o.len()),
            Some(RebalanceSettings::KEYS.len())
        );
    }
}
