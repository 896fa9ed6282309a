//! Operator routes: probes, the spec's `/api/cluster/{health,metrics,topology}`,
//! Qdrant's `/cluster` and `/collections/{c}/cluster`, Prometheus `/metrics`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use protocol::cluster::{ClusterMap, ClusterStats, NodeState, ReplicaState, ShardInfo, ShardLag};
use protocol::ShardId;
use serde::Serialize;
use serde_json::json;

use super::openapi::schemas::{self as doc, Envelope};
use super::{ok, started, AppState};
use crate::error::Result;
use crate::operator::now_ms;
use crate::transfers::{running, TransferView, TransfersReport};

#[utoipa::path(get, path = "/", tag = "service", operation_id = "root",
    responses((status = 200, description = "Name and version, bare (no envelope), as Qdrant's", body = doc::VersionInfo)))]
pub async fn root() -> Response {
    let body = json!({"title": "vector-db gateway (Qdrant-compatible)", "version": env!("CARGO_PKG_VERSION")});
    // `/` answers bare, as Qdrant's does.
    axum::Json(body).into_response()
}

#[utoipa::path(get, path = "/healthz", tag = "service", operation_id = "healthz",
    responses((status = 200, description = "The process answers", content_type = "text/plain", body = String)))]
pub async fn healthz() -> &'static str {
    "healthz check passed"
}

/// Kubernetes' liveness probe: the same as `/healthz`.
#[utoipa::path(get, path = "/livez", tag = "service", operation_id = "livez",
    responses((status = 200, description = "The process answers", content_type = "text/plain", body = String)))]
pub async fn livez() -> &'static str {
    healthz().await
}

/// Ready once the gateway holds a cluster map from the meta-service.
#[utoipa::path(get, path = "/readyz", tag = "service", operation_id = "readyz",
    responses(
        (status = 200, description = "Holds a cluster map", content_type = "text/plain", body = String),
        (status = 503, description = "No cluster map from the meta-service yet", content_type = "text/plain", body = String),
    ))]
pub async fn readyz(State(st): State<AppState>) -> Response {
    if st.gw.maps().meta_last_ok().is_some() {
        "all shards are ready".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "no cluster map from the meta-service yet",
        )
            .into_response()
    }
}

/// Prometheus' text format.
#[utoipa::path(get, path = "/metrics", tag = "service", operation_id = "prometheus_metrics",
    responses(
        (status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String),
        (status = 404, description = "Metrics are not enabled", content_type = "text/plain", body = String),
    ))]
pub async fn prometheus(State(st): State<AppState>) -> Response {
    match &st.prometheus {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled").into_response(),
    }
}

/// A shard's replication health against its collection's factor.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ShardHealth {
    Healthy,
    UnderReplicated,
    /// No active replica on a live node.
    Unavailable,
}

fn shard_health(map: &ClusterMap, s: &ShardInfo, rf: usize) -> (ShardHealth, bool) {
    let live_active = s
        .replicas
        .iter()
        .filter(|r| {
            r.state == ReplicaState::Active
                && map
                    .nodes
                    .get(&r.node)
                    .is_some_and(|n| n.state != NodeState::Dead)
        })
        .count();
    let health = if live_active == 0 {
        ShardHealth::Unavailable
    } else if live_active < rf {
        ShardHealth::UnderReplicated
    } else {
        ShardHealth::Healthy
    };
    (health, s.replicas.len() > rf)
}

/// Reports older than this are not shown as the shard's lag: their
/// primary stopped reporting (dead or hung), and the figure is unknown.
const LAG_REPORT_MAX_AGE_MS: u64 = 5_000;
/// The longest the metrics route waits for the meta leader's figures.
const STATS_TIMEOUT: Duration = Duration::from_secs(2);

/// The spec's `ClusterMetrics`, from the map, the meta leader's heartbeat
/// figures and this gateway's counters.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ClusterMetrics {
    pub active_nodes: usize,
    /// Alive in the map but failing this gateway's calls lately.
    pub suspected_nodes: usize,
    pub dead_nodes: usize,
    pub total_shards: usize,
    pub healthy_shards: usize,
    pub under_replicated_shards: usize,
    pub over_replicated_shards: usize,
    /// Per shard (`collection/shard`), as its primary last reported: how
    /// long the oldest operation some replica lacks has waited.
    pub replication_lag_ms: BTreeMap<String, f64>,
    /// Shards whose primary has not reported for a while (dead, hung,
    /// cut off) or whose figures the meta-service could not give.
    pub replication_lag_unknown: Vec<String>,
    /// Replicas still being filled (`Initializing`).
    pub pending_replications: usize,
    /// Shard reads the storage nodes served per second (last minute).
    pub local_queries_per_sec: f64,
    /// Shard requests this gateway sent per second (last minute; reads and
    /// writes, retries and hedges included).
    pub remote_queries_per_sec: f64,
    pub avg_scatter_fanout: f32,
    pub active_migrations: usize,
    /// Finished transfers, as counted in the cluster map.
    pub completed_migrations: u64,
    pub failed_migrations: u64,
    /// The running transfers with their progress.
    pub migrations: Vec<TransferView>,
    /// Why the meta leader's figures (lag, local queries) are missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats_error: Option<String>,
}

pub fn cluster_metrics(st: &AppState, stats: Result<ClusterStats, String>) -> ClusterMetrics {
    let map = st.gw.map();
    let mut m = ClusterMetrics {
        active_nodes: 0,
        suspected_nodes: 0,
        dead_nodes: 0,
        total_shards: 0,
        healthy_shards: 0,
        under_replicated_shards: 0,
        over_replicated_shards: 0,
        replication_lag_ms: BTreeMap::new(),
        replication_lag_unknown: Vec::new(),
        pending_replications: 0,
        local_queries_per_sec: 0.0,
        remote_queries_per_sec: st.gw.counters.shard_requests_per_sec(),
        avg_scatter_fanout: st.gw.counters.avg_fanout(),
        active_migrations: 0,
        completed_migrations: map.transfers.completed,
        failed_migrations: map.transfers.failed,
        migrations: running(&map),
        stats_error: None,
    };
    for n in map.nodes.values() {
        match n.state {
            NodeState::Dead => m.dead_nodes += 1,
            _ if st.gw.health.suspected(n.id) => m.suspected_nodes += 1,
            _ => m.active_nodes += 1,
        }
    }
    let stats = match stats {
        Ok(stats) => stats,
        Err(e) => {
            m.stats_error = Some(e);
            ClusterStats::default()
        }
    };
    let lags: BTreeMap<(&str, ShardId), &ShardLag> = stats
        .shards
        .iter()
        .filter(|l| l.reported_ms_ago <= LAG_REPORT_MAX_AGE_MS)
        .map(|l| ((l.collection.as_str(), l.shard), l))
        .collect();
    let reads: u64 = stats
        .nodes
        .iter()
        .filter(|n| n.reported_ms_ago <= LAG_REPORT_MAX_AGE_MS)
        .map(|n| n.reads_last_minute)
        .sum();
    m.local_queries_per_sec = reads as f64 / lifecycle::rate::WINDOW_SECS as f64;
    for c in map.collections.values() {
        let rf = c.config.replication_factor as usize;
        for s in c.shards.values() {
            m.total_shards += 1;
            let (h, over) = shard_health(&map, s, rf);
            match h {
                ShardHealth::Healthy => m.healthy_shards += 1,
                ShardHealth::UnderReplicated | ShardHealth::Unavailable => {
                    m.under_replicated_shards += 1
                }
            }
            if over {
                m.over_replicated_shards += 1;
            }
            m.pending_replications += s
                .replicas
                .iter()
                .filter(|r| r.state == ReplicaState::Initializing)
                .count();
            if s.migration.is_some() {
                m.active_migrations += 1;
            }
            let key = format!("{}/{}", c.name, s.id);
            match lags.get(&(c.name.as_str(), s.id)) {
                Some(l) if Some(l.primary) == s.primary => {
                    m.replication_lag_ms.insert(key, l.lag_ms as f64);
                }
                _ if s.replicas.len() > 1 => m.replication_lag_unknown.push(key),
                // A single replica has nobody to lag behind it.
                _ => {
                    m.replication_lag_ms.insert(key, 0.0);
                }
            }
        }
    }
    m
}

#[utoipa::path(get, path = "/api/cluster/metrics", tag = "cluster", operation_id = "cluster_metrics",
    responses((status = 200, description = "The spec's ClusterMetrics", body = Envelope<ClusterMetrics>)))]
pub async fn metrics(State(st): State<AppState>) -> Response {
    let t = started();
    let stats = match tokio::time::timeout(STATS_TIMEOUT, st.gw.maps().meta().cluster_stats()).await
    {
        Ok(Ok(stats)) => Ok(stats),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "the meta-service gave no figures within {STATS_TIMEOUT:?}"
        )),
    };
    ok(cluster_metrics(&st, stats), t)
}

/// `healthy` / `degraded` (some shard under-replicated or a node dead) /
/// `unhealthy` (a shard with no live replica, or no meta-service contact).
#[utoipa::path(get, path = "/api/cluster/health", tag = "cluster", operation_id = "cluster_health",
    responses(
        (status = 200, description = "`healthy` or `degraded`", body = Envelope<doc::ClusterHealth>),
        (status = 503, description = "`unhealthy`: a shard has no live replica, or no meta-service contact", body = Envelope<doc::ClusterHealth>),
    ))]
pub async fn health(State(st): State<AppState>) -> Response {
    let t = started();
    let map = st.gw.map();
    let mut unavailable = Vec::new();
    let mut under = 0;
    for c in map.collections.values() {
        for s in c.shards.values() {
            match shard_health(&map, s, c.config.replication_factor as usize).0 {
                ShardHealth::Unavailable => unavailable.push(format!("{}/{}", c.name, s.id)),
                ShardHealth::UnderReplicated => under += 1,
                ShardHealth::Healthy => {}
            }
        }
    }
    let meta_ok = st
        .gw
        .maps()
        .meta_last_ok()
        .map(|t| t.elapsed().as_secs_f64());
    let dead = map
        .nodes
        .values()
        .filter(|n| n.state == NodeState::Dead)
        .count();
    let status = if meta_ok.is_none() || !unavailable.is_empty() {
        "unhealthy"
    } else if under > 0 || dead > 0 {
        "degraded"
    } else {
        "healthy"
    };
    let body = json!({
        "status": status,
        "epoch": map.epoch.0,
        "meta_service_last_contact_secs": meta_ok,
        "nodes": {
            "total": map.nodes.len(),
            "alive": map.nodes.values().filter(|n| n.state == NodeState::Alive).count(),
            "draining": map.nodes.values().filter(|n| n.state == NodeState::Draining).count(),
            "dead": dead,
        },
        "shards": {
            "under_replicated": under,
            "unavailable": unavailable,
        },
    });
    let code = if status == "unhealthy" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, ok(body, t)).into_response()
}

#[utoipa::path(get, path = "/api/cluster/topology", tag = "cluster", operation_id = "cluster_topology",
    responses((status = 200, description = "Nodes, collections, shards, replicas, transfers", body = Envelope<doc::Topology>)))]
pub async fn topology(State(st): State<AppState>) -> Response {
    let t = started();
    let map = st.gw.map();
    let nodes: Vec<_> = map
        .nodes
        .values()
        .map(|n| {
            let stats = st.gw.health.stats(n.id);
            json!({
                "id": n.id.0, "addr": n.addr, "api_addr": n.api_addr, "state": n.state,
                "state_since_ms": n.state_since_ms,
                "gateway_view": {
                    "suspected": st.gw.health.suspected(n.id),
                    "in_flight": stats.in_flight(),
                    "requests": stats.requests(),
                    "failures": stats.failures(),
                },
            })
        })
        .collect();
    let collections: Vec<_> = map
        .collections
        .values()
        .map(|c| {
            let shards: Vec<_> = c
                .shards
                .values()
                .map(|s| {
                    json!({
                        "id": s.id.0, "primary": s.primary.map(|p| p.0), "term": s.term.0,
                        "replicas": s.replicas.iter().map(|r| json!({"node": r.node.0, "state": r.state})).collect::<Vec<_>>(),
                        "migration": s.migration.as_ref().map(|m| TransferView::new(&c.name, s.id, m)),
                    })
                })
                .collect();
            json!({"name": c.name, "shard_number": c.config.shard_number,
                   "replication_factor": c.config.replication_factor, "shards": shards})
        })
        .collect();
    ok(
        json!({"epoch": map.epoch.0, "nodes": nodes, "collections": collections, "config": map.config,
               "transfers": TransfersReport::from_map(&map)}),
        t,
    )
}

/// Qdrant's `GET /cluster`, with storage nodes as peers. The consensus
/// is the meta-service's: "working" with the time this gateway last heard
/// from it, "stopped_with_err" before it ever has.
#[utoipa::path(get, path = "/cluster", tag = "cluster", operation_id = "cluster_status",
    responses((status = 200, description = "Qdrant's cluster status", body = Envelope<doc::QdrantClusterInfo>)))]
pub async fn qdrant_cluster(State(st): State<AppState>) -> Response {
    let t = started();
    let map = st.gw.map();
    let consensus = match st.gw.maps().meta_last_ok() {
        Some(at) => {
            let ms = now_ms().saturating_sub(at.elapsed().as_millis() as u64);
            json!({"consensus_thread_status": "working", "last_update": rfc3339(ms)})
        }
        None => json!({"consensus_thread_status": "stopped_with_err",
                       "err": "no answer from the meta-service yet"}),
    };
    let peers: BTreeMap<String, _> = map
        .nodes
        .values()
        .map(|n| (n.id.0.to_string(), json!({"uri": n.addr, "state": n.state})))
        .collect();
    ok(
        json!({
            "status": "enabled",
            "peer_id": 0,
            "peers": peers,
            "raft_info": {"term": 0, "commit": map.epoch.0, "pending_operations": 0, "leader": null, "role": null, "is_voter": false},
            "consensus_thread_status": consensus,
            "message_send_failures": {},
        }),
        t,
    )
}

/// Qdrant's `GET /collections/{c}/cluster`: every replica is remote to a gateway.
#[utoipa::path(get, path = "/collections/{name}/cluster", tag = "cluster", operation_id = "collection_cluster_info",
    params(doc::CollectionPath),
    responses((status = 200, description = "Where each replica is, and the running transfers", body = Envelope<doc::CollectionClusterInfo>)))]
pub async fn collection_cluster(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response> {
    let t = started();
    let (map, coll) = st.gw.collection(&name).await?;
    let mut remote = Vec::new();
    for s in coll.shards.values() {
        for r in &s.replicas {
            let dead = map
                .nodes
                .get(&r.node)
                .is_none_or(|n| n.state == NodeState::Dead);
            // Qdrant calls a transfer's target `Partial`.
            let target = s.migration.as_ref().is_some_and(|m| m.to == r.node);
            let state = match (r.state, dead) {
                (_, true) => "Dead",
                (ReplicaState::Active, _) => "Active",
                (ReplicaState::Initializing, _) if target => "Partial",
                (ReplicaState::Initializing, _) => "Initializing",
            };
            remote.push(
                json!({"shard_id": s.id.0, "peer_id": r.node.0, "state": state,
                               "is_primary": s.primary == Some(r.node), "term": s.term.0}),
            );
        }
    }
    // Qdrant's `ShardTransferInfo` (`sync`: the source keeps its replica),
    // plus our progress fields.
    let transfers: Vec<_> = coll
        .shards
        .values()
        .filter_map(|s| {
            s.migration.as_ref().map(|m| {
                let v = TransferView::new(&name, s.id, m);
                let mut j = json!({"shard_id": s.id.0, "from": m.from.0, "to": m.to.0,
                    "sync": m.kind == protocol::cluster::TransferKind::Replicate,
                    "method": "snapshot", "comment": v.summary()});
                if let (Some(o), Ok(serde_json::Value::Object(extra))) =
                    (j.as_object_mut(), serde_json::to_value(&v))
                {
                    for (k, x) in extra {
                        o.entry(k).or_insert(x);
                    }
                }
                j
            })
        })
        .collect();
    Ok(ok(
        json!({"peer_id": 0, "shard_count": coll.shards.len(), "local_shards": [], "remote_shards": remote, "shard_transfers": transfers}),
        t,
    ))
}

/// `ms` since the Unix epoch as RFC 3339 UTC (`2026-12-02T06:51:00.123Z`),
/// the form Qdrant's clients parse as a datetime.
fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_796_191_860_123), "2026-12-02T06:11:00.123Z");
        assert_eq!(rfc3339(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
    }
}
