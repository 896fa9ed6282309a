//! The API gateways, storage nodes and operators use.
//!
//! | route                         | what                                              |
//! |-------------------------------|---------------------------------------------------|
//! | `GET  /v1/cluster/map`        | the map; `?consistency=linearizable` (default) goes through the leader, `local` answers from this member's copy |
//! | `GET  /v1/cluster/watch`      | long-poll: `?after=<epoch>&timeout_ms=<ms>` answers as soon as the epoch passes `after`, or with the current map at the timeout |
//! | `POST /v1/commands`           | a [`ClusterCommand`]; answers `{"epoch": n}` or a typed refusal |
//! | `POST /v1/nodes/register`     | a [`NodeInfo`] (`AddNode`)                         |
//! | `POST /v1/nodes/heartbeat`    | a [`Heartbeat`]; answers [`HeartbeatAck`]          |
//! | `GET  /v1/nodes/{id}/presence`| held open by the leader for 30 s, then `{}`; its close tells that the node's process died (`network::presence`); followers answer `no_leader` |
//! | `GET  /v1/cluster/stats`      | replication lag per shard and reads per node from the latest heartbeats ([`ClusterStats`]; the leader's soft state) |
//! | `POST /v1/rebalance`          | plans shard transfers now (even with automatic rebalancing off) and starts them; answers [`RebalanceAck`] |
//! | `GET  /health`, `GET /metrics`| liveness and role; Prometheus text                 |
//!
//! Writes and heartbeats sent to a follower are forwarded to the leader.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::Json;
use meta_client::{EpochAck, MetaHealth, MetaReadConsistency, RebalanceAck};
use openraft::ServerState;
use protocol::cluster::{
    ClusterCommand, ClusterMapView, ClusterStats, CommandError, Heartbeat, HeartbeatAck, NodeInfo,
};
use serde::Deserialize;

use crate::app::{App, FORWARDED_HEADER};
use crate::error::ApiError;
use crate::liveness::now_ms;

/// Longest a watch may wait.
const MAX_WATCH: Duration = Duration::from_secs(60);

#[derive(Debug, Default, Deserialize)]
pub struct MapQuery {
    #[serde(default)]
    pub consistency: MetaReadConsistency,
}

#[derive(Debug, Deserialize)]
pub struct WatchQuery {
    #[serde(default)]
    pub after: u64,
    pub timeout_ms: Option<u64>,
}

fn forwarded(headers: &HeaderMap) -> bool {
    headers.contains_key(FORWARDED_HEADER)
}

fn view(app: &App, linearizable: bool) -> ClusterMapView {
    ClusterMapView {
        map: (*app.current_map()).clone(),
        served_by: app.id,
        leader: app.raft.metrics().borrow().current_leader,
        linearizable,
    }
}

pub async fn cluster_map(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<MapQuery>,
) -> Result<Json<ClusterMapView>, ApiError> {
    if q.consistency == MetaReadConsistency::Local {
        return Ok(Json(view(&app, false)));
    }
    if app.is_leader() {
        // A member that cannot confirm it still leads may be able to in a
        // moment, here or at the next leader: "no leader" (503), which
        // clients retry; the chaos suite's meta-leader kill met a 500 here.
        app.confirm_leadership().await?;
        Ok(Json(view(&app, true)))
    } else {
        match (forwarded(&headers), app.leader()) {
            (false, Some((id, addr))) => Ok(Json(
                app.forward_get(id, &addr, "/v1/cluster/map?consistency=linearizable")
                    .await?,
            )),
            _ => Err(ApiError::NoLeader),
        }
    }
}

pub async fn watch(
    State(app): State<Arc<App>>,
    Query(q): Query<WatchQuery>,
) -> Json<ClusterMapView> {
    let wait = q
        .timeout_ms
        .map_or(Duration::from_secs(30), Duration::from_millis)
        .min(MAX_WATCH);
    let mut rx = app.map.clone();
    // Either the epoch passes `after` or the wait ends; both answer the
    // current map, and the caller compares epochs.
    tokio::select! {
        _ = tokio::time::timeout(wait, rx.wait_for(|m| m.epoch.0 > q.after)) => {}
        () = app.stopped() => {}
    }
    Json(view(&app, false))
}

pub async fn submit(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Json(cmd): Json<ClusterCommand>,
) -> Result<Json<EpochAck>, ApiError> {
    let epoch = app.write(cmd, forwarded(&headers)).await?;
    Ok(Json(EpochAck { epoch }))
}

pub async fn register(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Json(mut node): Json<NodeInfo>,
) -> Result<Json<EpochAck>, ApiError> {
    tracing::info!(node = %node.id, addr = %node.addr, "register storage node");
    // Registering makes the node alive as of now: the controller counts
    // its silence from here until its first heartbeat arrives.
    node.state_since_ms = now_ms();
    let epoch = app
        .write(ClusterCommand::AddNode { node }, forwarded(&headers))
        .await?;
    Ok(Json(EpochAck { epoch }))
}

/// Heartbeats reach only the leader, so a follower asks it.
pub async fn stats(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<ClusterStats>, ApiError> {
    if !app.is_leader() {
        return match (forwarded(&headers), app.leader()) {
            (false, Some((id, addr))) => {
                Ok(Json(app.forward_get(id, &addr, "/v1/cluster/stats").await?))
            }
            _ => Err(ApiError::NoLeader),
        };
    }
    let map = app.current_map();
    let live = app.liveness.lock();
    Ok(Json(crate::stats::cluster_stats(&live, &map, now_ms())))
}

/// The leader plans with what it heard from the storage nodes (their
/// load), so a follower forwards. The plan is guarded by the epoch it was
/// made on.
pub async fn rebalance(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<RebalanceAck>, ApiError> {
    if !app.is_leader() {
        return match (forwarded(&headers), app.leader()) {
            (false, Some((id, addr))) => Ok(Json(
                app.forward_post(id, &addr, "/v1/rebalance", &()).await?,
            )),
            _ => Err(ApiError::NoLeader),
        };
    }
    let map = app.current_map();
    let live = app.liveness.lock().clone();
    let Some(plan) = crate::controller::rebalance::plan(&map, &live, now_ms(), true) else {
        return Ok(Json(RebalanceAck {
            epoch: map.epoch,
            plan: Default::default(),
        }));
    };
    tracing::info!(?plan, "rebalance requested");
    let cmd = ClusterCommand::IfEpoch {
        epoch: map.epoch,
        command: Box::new(ClusterCommand::RebalanceShards { plan: plan.clone() }),
    };
    let epoch = app.write(cmd, forwarded(&headers)).await?;
    Ok(Json(RebalanceAck { epoch, plan }))
}

/// Heartbeats are leader-only soft state (see `controller`), so a follower
/// forwards them. The lease is half the node's current dead-node grace
/// (`Liveness::grant_lease`): the other half absorbs clock-rate drift and
/// the heartbeat's own latency.
pub async fn heartbeat(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Json(hb): Json<Heartbeat>,
) -> Result<Json<HeartbeatAck>, ApiError> {
    if app.is_leader() {
        // An unknown node (never registered, or removed) must register
        // before its heartbeats mean anything; telling it so lets it do so.
        if !app.current_map().nodes.contains_key(&hb.node) {
            return Err(ApiError::Refused(CommandError::NodeNotFound {
                node: hb.node,
            }));
        }
        // The arrival is what says the node is alive: recorded before the
        // quorum round below, whose latency (tens to hundreds of ms on a
        // loaded machine) would otherwise show up as jitter in the node's
        // heartbeat gaps and lengthen its grace. Soft state: if this member
        // turns out not to lead, nobody acts on it.
        let bounds = app.config.dead_after();
        {
            let mut live = app.liveness.lock();
            let gap = live.record(&hb, now_ms(), bounds);
            let node = hb.node.0.to_string();
            if let Some(gap) = gap {
                metrics::histogram!("meta_heartbeat_gap_seconds", "node" => node.clone())
                    .record(gap as f64 / 1000.0);
            }
            metrics::gauge!("meta_node_grace_seconds", "node" => node)
                .set(live.dead_after(hb.node, bounds) as f64 / 1000.0);
        }
        // A lease, though, only with leadership confirmed by a quorum: a
        // deposed leader in a minority partition must not hand out leases.
        app.confirm_leadership().await?;
        let lease_ms = app.liveness.lock().grant_lease(hb.node, bounds, now_ms());
        metrics::counter!("meta_heartbeats_total").increment(1);
        return Ok(Json(HeartbeatAck {
            epoch: app.current_map().epoch,
            leader: Some(app.id),
            lease_ms,
        }));
    }
    match (forwarded(&headers), app.leader()) {
        (false, Some((id, addr))) => Ok(Json(
            app.forward_post(id, &addr, "/v1/nodes/heartbeat", &hb)
                .await?,
        )),
        _ => Err(ApiError::NoLeader),
    }
}

pub async fn health(State(app): State<Arc<App>>) -> Json<MetaHealth> {
    let m = app.raft.metrics().borrow().clone();
    Json(MetaHealth {
        status: "ok".to_string(),
        id: app.id,
        state: format!("{:?}", m.state),
        leader: m.current_leader,
        term: m.current_term,
        last_applied: m.last_applied.map(|l| l.index),
        epoch: app.current_map().epoch.0,
    })
}

pub async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    let m = app.raft.metrics().borrow().clone();
    let id = app.id.to_string();
    metrics::gauge!("meta_raft_term", "member" => id.clone()).set(m.current_term as f64);
    metrics::gauge!("meta_raft_is_leader", "member" => id.clone()).set(
        if m.state == ServerState::Leader {
            1.0
        } else {
            0.0
        },
    );
    metrics::gauge!("meta_raft_last_log_index", "member" => id.clone())
        .set(m.last_log_index.unwrap_or(0) as f64);
    metrics::gauge!("meta_raft_last_applied_index", "member" => id.clone())
        .set(m.last_applied.map_or(0, |l| l.index) as f64);
    let map = app.current_map();
    metrics::gauge!("meta_storage_nodes", "member" => id.clone()).set(map.nodes.len() as f64);
    let running = map
        .collections
        .values()
        .flat_map(|c| c.shards.values())
        .filter(|s| s.migration.is_some())
        .count();
    metrics::gauge!("meta_transfers_running", "member" => id.clone()).set(running as f64);
    metrics::gauge!("meta_transfers_completed", "member" => id.clone())
        .set(map.transfers.completed as f64);
    metrics::gauge!("meta_transfers_failed", "member" => id.clone())
        .set(map.transfers.failed as f64);
    let health = super::map_health::map_health(&map);
    for (state, n) in [
        ("alive", health.nodes_alive),
        ("dead", health.nodes_dead),
        ("draining", health.nodes_draining),
    ] {
        metrics::gauge!("meta_storage_nodes_by_state", "member" => id.clone(), "state" => state)
            .set(n as f64);
    }
    metrics::gauge!("meta_shards_under_replicated", "member" => id.clone())
        .set(health.shards_under_replicated as f64);
    metrics::gauge!("meta_shards_unavailable", "member" => id)
        .set(health.shards_unavailable as f64);
    app.prometheus.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.prometheus.render(),
    )
}
