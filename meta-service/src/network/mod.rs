//! HTTP/JSON surface of a meta member (axum), one file per audience:
//!
//! - [`raft`]: inbound Raft RPCs from other members (`/raft/*`).
//! - [`management`]: operators: initialise, add a learner, change
//!   membership, Raft metrics (`/admin/*`).
//! - [`api`]: gateways and storage nodes: the cluster map, watch,
//!   register/heartbeat, commands; plus `/health` and `/metrics`.
//! - `raft_network_impl`: the outbound side of Raft RPCs (reqwest).
//! - [`presence`]: the request each storage node keeps open at the
//!   leader, so that a dead process is seen when its connection closes.
//! - [`map_health`]: node and shard health counted from the map, for
//!   `/metrics` and the alert rules.

pub mod api;
pub mod management;
pub mod map_health;
pub mod presence;
pub mod raft;
pub(crate) mod raft_network_impl;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::app::App;

/// Largest request body accepted (snapshot chunks included).
const MAX_BODY: usize = 16 << 20;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/raft/append", post(raft::append))
        .route("/raft/vote", post(raft::vote))
        .route("/raft/snapshot", post(raft::snapshot))
        .route("/admin/init", post(management::init))
        .route("/admin/add-learner", post(management::add_learner))
        .route(
            "/admin/change-membership",
            post(management::change_membership),
        )
        .route("/admin/raft", get(management::raft_metrics))
        .route("/v1/cluster/map", get(api::cluster_map))
        .route("/v1/cluster/watch", get(api::watch))
        .route("/v1/commands", post(api::submit))
        .route("/v1/nodes/register", post(api::register))
        .route("/v1/nodes/heartbeat", post(api::heartbeat))
        .route("/v1/nodes/{id}/presence", get(presence::presence))
        .route("/v1/cluster/stats", get(api::stats))
        .route("/v1/rebalance", post(api::rebalance))
        .route("/health", get(api::health))
        .route("/metrics", get(api::metrics))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}
