//! `/metrics` (Prometheus), `/health`, `/replicas` and `/transfers` of a
//! storage node.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::node::Node;

#[derive(Clone)]
struct AppState {
    node: Arc<Node>,
    metrics: Option<PrometheusHandle>,
}

/// Binds `addr`; returns the bound address and the server, which runs
/// until `stop` flips and then lets in-flight requests finish.
pub async fn bind(
    addr: SocketAddr,
    node: Arc<Node>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, impl std::future::Future<Output = ()> + Send)> {
    // A second recorder in the same process (tests) is not an error.
    let metrics = PrometheusBuilder::new().install_recorder().ok();
    let app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(render_metrics))
        .route("/replicas", get(replicas))
        .route("/transfers", get(transfers))
        .with_state(AppState { node, metrics });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind HTTP {addr}"))?;
    let bound = listener.local_addr()?;
    let server = async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(lifecycle::stopped(stop))
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "HTTP server failed");
        }
    };
    Ok((bound, server))
}

async fn health(State(s): State<AppState>) -> Json<Value> {
    let replicas: Vec<Value> = s
        .node
        .replicas()
        .iter()
        .map(|r| {
            let shard = r.shard();
            json!({
                "collection": r.shard_ref.collection,
                "shard": r.shard_ref.shard,
                "applied": shard.applied_seq(),
                "term": shard.last_term(),
                "primary": r.is_leading(),
                "poisoned": shard.is_poisoned(),
            })
        })
        .collect();
    let poisoned = s.node.poisoned();
    Json(json!({
        // Degraded: some shard refuses writes after a failed write or
        // fsync (it is reopened once a probe write succeeds).
        // Removed: an operator took it out of the cluster; it holds nothing.
        "status": if s.node.is_removed() {
            "removed"
        } else if poisoned.is_empty() {
            "ok"
        } else {
            "degraded"
        },
        "node": s.node.id(),
        "epoch": s.node.map().epoch,
        "lease_valid": s.node.lease().is_valid(),
        "replicas": replicas,
    }))
}

/// Every replica this node holds with its content digest, so an operator
/// (or the chaos runner) can tell whether the replicas of a shard agree
/// without reading their points. Hashing walks every point, so it runs on
/// a blocking thread.
async fn replicas(State(s): State<AppState>) -> Result<Json<Value>, (StatusCode, String)> {
    let node = s.node.clone();
    let replicas = tokio::task::spawn_blocking(move || {
        node.replicas()
            .iter()
            .map(|r| {
                let shard = r.shard();
                let (points, checksum) = shard.content_checksum();
                json!({
                    "collection": r.shard_ref.collection,
                    "shard": r.shard_ref.shard,
                    "incarnation": r.incarnation,
                    "applied": shard.applied_seq(),
                    "term": shard.last_term(),
                    "primary": r.is_leading(),
                    "points": points,
                    "checksum": checksum,
                })
            })
            .collect::<Vec<Value>>()
    })
    .await
    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(json!({
        "node": s.node.id(),
        "epoch": s.node.map().epoch,
        "replicas": replicas,
    })))
}

/// The shard transfers this node executes (as the shard's primary), with
/// their phase and progress.
async fn transfers(State(s): State<AppState>) -> Json<Value> {
    Json(json!({
        "node": s.node.id(),
        "epoch": s.node.map().epoch,
        "transfers": s.node.transfers(),
    }))
}

async fn render_metrics(State(s): State<AppState>) -> String {
    super::disk::export(s.node.data_dir());
    for t in s.node.transfers() {
        crate::node::export_transfer_metrics(&t);
    }
    for r in s.node.replicas() {
        let shard = r.shard();
        let labels = [
            ("collection", r.shard_ref.collection.clone()),
            ("shard", r.shard_ref.shard.to_string()),
        ];
        metrics::gauge!("storage_replica_applied_seq", &labels).set(shard.applied_seq().0 as f64);
        metrics::gauge!("storage_replica_primary", &labels).set(if r.is_leading() {
            1.0
        } else {
            0.0
        });
        metrics::gauge!("storage_replica_poisoned", &labels).set(if shard.is_poisoned() {
            1.0
        } else {
            0.0
        });
        metrics::gauge!("storage_replica_points", &labels)
            .set(shard.count(&Default::default()).unwrap_or(0) as f64);
        let state = s
            .node
            .map()
            .shard(&r.shard_ref.collection, r.shard_ref.shard)
            .and_then(|i| i.replica(s.node.id()).map(|x| x.state));
        let active = matches!(state, Some(protocol::cluster::ReplicaState::Active));
        metrics::gauge!("storage_replica_active", &labels).set(if active { 1.0 } else { 0.0 });
    }
    s.metrics
        .as_ref()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}
