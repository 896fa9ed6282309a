//! What the elastic-cluster scenarios share: the operator routes through
//! the load balancer (drain, remove, settings, cluster operations),
//! shrinking the cluster to some storage nodes, waiting (bounded) until no
//! transfer of a collection runs, per-node point counts, the orphan check
//! of a node's data directory, and the load + checks every scenario ends
//! with (0 acknowledged writes lost, replicas converged).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use protocol::cluster::{ClusterMap, Migration, NodeState, ReplicaState, TransferRecord};
use protocol::NodeId;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{check_total, converge, create_collection, report_searches, verify, Ctx};
use crate::client::{with_retry, Gateway};
use crate::cluster::{self, node_id, node_service, GATEWAYS, LB, STORAGE};
use crate::compose::docker;
use crate::fault;
use crate::history::{self, History};
use crate::report::ScenarioReport;
use crate::workload::{spawn_searches, spawn_writes, SearchLoad, WriteLoad};

/// An operator route through the load balancer, under the retry policy.
pub async fn op(ctx: &Ctx, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
    let lb = ctx.cluster.gateway(cluster::LB)?;
    let (r, _) = with_retry(&ctx.retry(), || {
        lb.call(method.clone(), path, body.as_ref())
    })
    .await;
    r.map_err(|e| anyhow!("{method} {path}: {e}"))
}

/// The spec's rebalancing settings, plus `overrides`.
pub async fn settings(ctx: &Ctx, overrides: Value) -> Result<()> {
    let mut body = json!({
        "rebalancing.auto_enabled": true,
        "rebalancing.trigger_threshold": 0.2,
        "rebalancing.max_concurrent_migrations": 2,
        "rebalancing.throttle_mb_per_sec": 100,
    });
    if let (Some(b), Some(o)) = (body.as_object_mut(), overrides.as_object()) {
        for (k, v) in o {
            b.insert(k.clone(), v.clone());
        }
    }
    // A loaded meta-service (debug build, shared cores, a member just
    // killed or restarted) may not answer within one retry budget; the
    // setting is idempotent, so a few more rounds are safe.
    let mut last = None;
    for round in 0..SETTINGS_ROUNDS {
        if round > 0 {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        match op(
            ctx,
            Method::PUT,
            "/api/cluster/settings",
            Some(body.clone()),
        )
        .await
        {
            Ok(_) => return Ok(()),
            Err(e) => {
                tracing::warn!(round, error = %format!("{e:#}"), "settings not accepted yet");
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("settings never sent")))
}

/// Rounds of the retry policy a settings change gets.
const SETTINGS_ROUNDS: usize = 4;

/// Running transfers of `coll`: (shard, migration).
pub fn running(map: &ClusterMap, coll: &str) -> Vec<(u32, Migration)> {
    map.collections
        .get(coll)
        .map(|c| {
            c.shards
                .values()
                .filter_map(|s| s.migration.clone().map(|m| (s.id.0, m)))
                .collect()
        })
        .unwrap_or_default()
}

/// Polls the map (every 300 ms, at most `timeout`) until `cond` holds;
/// returns how long it took. The error carries the last reason.
pub async fn wait_map(
    ctx: &Ctx,
    timeout: Duration,
    mut cond: impl FnMut(&ClusterMap) -> Result<()>,
) -> Result<Duration> {
    let t0 = Instant::now();
    let mut why = String::from("not checked yet");
    while t0.elapsed() < timeout {
        match ctx.cluster.map().await {
            Ok(map) => match cond(&map) {
                Ok(()) => return Ok(t0.elapsed()),
                Err(e) => why = format!("{e:#}"),
            },
            Err(e) => why = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    bail!("not within {timeout:?}: {why}")
}

/// No transfer of `coll` runs, every shard has exactly `rf` replicas, all
/// active, with a primary.
pub fn settled_at_rf(map: &ClusterMap, coll: &str, rf: usize) -> Result<()> {
    let c = map
        .collections
        .get(coll)
        .ok_or_else(|| anyhow!("{coll} not in the map"))?;
    for s in c.shards.values() {
        if let Some(m) = &s.migration {
            bail!(
                "{coll}/{} transferring {}→{} ({:?}, {}/{} points)",
                s.id,
                m.from,
                m.to,
                m.phase,
                m.points_copied,
                m.points_total
            );
        }
        if s.replicas.len() != rf {
            bail!(
                "{coll}/{} has {} replicas, wants {rf}",
                s.id,
                s.replicas.len()
            );
        }
        if s.primary.is_none() || s.replicas.iter().any(|r| r.state != ReplicaState::Active) {
            bail!("{coll}/{} not all active: {:?}", s.id, s.replicas);
        }
    }
    Ok(())
}

/// The finished record of a transfer (matched by shard, target and start).
pub fn record_of<'a>(
    map: &'a ClusterMap,
    coll: &str,
    shard: u32,
    m: &Migration,
) -> Option<&'a TransferRecord> {
    map.transfers.recent.iter().rev().find(|r| {
        r.collection == coll
            && r.shard.0 == shard
            && r.to == m.to
            && r.started_at_ms == m.started_at_ms
    })
}

/// Waits (bounded) for a transfer of `coll` that has copied something,
/// so a fault lands in the middle of it.
pub async fn wait_mid_transfer(
    ctx: &Ctx,
    coll: &str,
    timeout: Duration,
) -> Result<(u32, Migration)> {
    let mut found = None;
    wait_map(ctx, timeout, |map| {
        found = running(map, coll)
            .into_iter()
            .find(|(_, m)| m.points_copied > 0 || m.bytes_copied > 0);
        match found {
            Some(_) => Ok(()),
            None => bail!("no transfer of {coll} under way: {:?}", running(map, coll)),
        }
    })
    .await?;
    found.ok_or_else(|| anyhow!("no transfer found"))
}

/// Drains every storage node outside `keep` through the gateway route,
/// stops its container once it holds no replica and removes it from the
/// map (stopped first: a running node registers again). The cluster then
/// has exactly `keep`.
pub async fn shrink_to(ctx: &Ctx, report: &mut ScenarioReport, keep: &[u64]) -> Result<()> {
    let map = ctx.cluster.map().await?;
    for node in map.nodes.keys().map(|n| n.0).filter(|n| !keep.contains(n)) {
        op(
            ctx,
            Method::POST,
            &format!("/api/cluster/nodes/{node}/drain"),
            None,
        )
        .await?;
        let took = wait_map(ctx, Duration::from_secs(300), |m| {
            let held = m.shards_on(NodeId(node)).len();
            if held > 0 {
                bail!("node {node} still holds {held} replica(s)");
            }
            Ok(())
        })
        .await
        .with_context(|| format!("drain node {node}"))?;
        let svc = node_service(node);
        if let Ok(c) = ctx.cluster.container(&svc) {
            fault::stop(&c, Duration::from_secs(10)).await?;
        }
        op(
            ctx,
            Method::DELETE,
            &format!("/api/cluster/nodes/{node}"),
            None,
        )
        .await?;
        report.note(format!(
            "{svc} drained in {:.1} s, stopped, removed",
            took.as_secs_f64()
        ));
    }
    ctx.cluster.refresh().await?;
    Ok(())
}

/// Starts the storage containers of `nodes` that are stopped.
pub async fn start_nodes(ctx: &Ctx, nodes: &[u64]) -> Result<()> {
    ctx.cluster.refresh().await?;
    for n in nodes {
        let c = ctx.cluster.container(&node_service(*n))?;
        if !c.running {
            fault::start(&c).await?;
        }
    }
    ctx.cluster.refresh().await
}

/// Exactly `nodes` are registered, all alive; the gateways are ready.
pub async fn wait_nodes(ctx: &Ctx, nodes: &[u64], timeout: Duration) -> Result<Duration> {
    let took = wait_map(ctx, timeout, |map| {
        for n in nodes {
            match map.nodes.get(&NodeId(*n)) {
                Some(i) if i.state == NodeState::Alive => {}
                other => bail!("node {n}: {:?}", other.map(|i| i.state)),
            }
        }
        if map.nodes.len() != nodes.len() {
            bail!(
                "nodes {:?}, want {nodes:?}",
                map.nodes.keys().collect::<Vec<_>>()
            );
        }
        Ok(())
    })
    .await?;
    for g in GATEWAYS.iter().chain([&LB]) {
        if !ctx.cluster.gateway(g)?.ready().await {
            bail!("{g} is not ready");
        }
    }
    Ok(took)
}

/// Creates `chaos_<label>_<ms>` and waits until its replicas are active
/// (on however many nodes the cluster has now).
pub async fn collection(ctx: &Ctx, label: &str, shards: u32, rf: u32) -> Result<String> {
    let name = format!("chaos_{}_{}", label.replace('-', "_"), super::unix_ms());
    create_collection(ctx, &name, shards, rf).await?;
    wait_map(ctx, Duration::from_secs(60), |m| {
        settled_at_rf(m, &name, rf as usize)
    })
    .await
    .with_context(|| format!("collection {name} whole"))?;
    Ok(name)
}

/// Points per storage node of `coll`: the replicas the map assigns, as the
/// nodes report them.
pub async fn points_per_node(ctx: &Ctx, coll: &str) -> Result<BTreeMap<u64, u64>> {
    let map = ctx.cluster.map().await?;
    let incarnation = map
        .collections
        .get(coll)
        .map(|c| c.created_epoch.0)
        .ok_or_else(|| anyhow!("{coll} not in the map"))?;
    let mut out = BTreeMap::new();
    for node in map.nodes.keys() {
        let assigned: Vec<u32> = map
            .shards_on(*node)
            .into_iter()
            .filter(|(c, _)| c == coll)
            .map(|(_, s)| s.0)
            .collect();
        let reports = ctx
            .cluster
            .node_replicas(&node_service(node.0))
            .await
            .with_context(|| format!("replicas of node {node}"))?;
        let points = reports
            .replicas
            .iter()
            .filter(|r| r.collection == coll && r.incarnation == incarnation)
            .filter(|r| assigned.contains(&r.shard))
            .map(|r| r.points)
            .sum();
        out.insert(node.0, points);
    }
    Ok(out)
}

/// Every count within `tolerance` (0.2 = 20 %) of the mean.
pub fn within_of_mean(counts: &BTreeMap<u64, u64>, tolerance: f64) -> Result<(), String> {
    if counts.is_empty() {
        return Err("no node".into());
    }
    let mean = counts.values().sum::<u64>() as f64 / counts.len() as f64;
    let off: Vec<String> = counts
        .iter()
        .filter(|(_, c)| (**c as f64 - mean).abs() > tolerance * mean)
        .map(|(n, c)| format!("node {n}: {c}"))
        .collect();
    if off.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "mean {mean:.0}; off by more than {:.0} %: {}",
            tolerance * 100.0,
            off.join(", ")
        ))
    }
}

/// Replica directories of `coll` in `service`'s data directory that the
/// map does not assign to it (`collections/<coll>/<incarnation>-<shard>`).
pub async fn orphans(ctx: &Ctx, service: &str, coll: &str) -> Result<Vec<String>> {
    let c = ctx.cluster.container(service)?;
    if !c.running {
        return Ok(Vec::new());
    }
    let dir = format!("/data/storage/collections/{coll}");
    let listing = docker(
        &[
            "exec",
            &c.id,
            "sh",
            "-c",
            &format!("ls -1 {dir} 2>/dev/null || true"),
        ],
        Duration::from_secs(20),
    )
    .await?;
    let map = ctx.cluster.map().await?;
    let node = NodeId(node_id(service).unwrap_or_default());
    let incarnation = map.collections.get(coll).map(|c| c.created_epoch.0);
    let assigned: Vec<String> = map
        .shards_on(node)
        .into_iter()
        .filter(|(c, _)| c == coll)
        .filter_map(|(_, s)| incarnation.map(|i| format!("{i}-{s}")))
        .collect();
    Ok(listing
        .lines()
        .map(str::trim)
        .filter(|d| !d.is_empty() && !d.starts_with('.') && !assigned.iter().any(|a| a == d))
        .map(|d| format!("{service}:{dir}/{d}"))
        .collect())
}

/// Waits (bounded) until no running storage node keeps a directory of
/// `coll` it is not assigned; what is left is a violation.
pub async fn check_no_orphans(ctx: &Ctx, report: &mut ScenarioReport, coll: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut left = Vec::new();
    while Instant::now() < deadline {
        left.clear();
        let _ = ctx.cluster.refresh().await;
        for svc in STORAGE {
            match orphans(ctx, svc, coll).await {
                Ok(o) => left.extend(o),
                Err(e) => tracing::warn!("orphan check of {svc}: {e:#}"),
            }
        }
        if left.is_empty() {
            report.note("no orphan replica directory on any node");
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    report.violation(format!("orphan replica directories: {left:?}"));
}

/// Preloads ids `0..count` fast (batches of 100, 4 in flight).
pub async fn preload(ctx: &Ctx, gw: &Gateway, coll: &str, count: u64, history: &Arc<History>) {
    let (_keep, stop) = watch::channel(false);
    let load = WriteLoad {
        gateway: gw.clone(),
        collection: coll.to_string(),
        first_id: 0,
        count,
        batch: 100,
        concurrency: 4,
        consistency: "majority",
        max_time: Duration::from_secs(600),
        retry: ctx.retry(),
        pause: Duration::ZERO,
        filter: None,
    };
    let _ = spawn_writes(load, history.clone(), stop).await;
}

/// Writes of single points (3 in flight, `majority`) and searches (2 in
/// flight) through the load balancer until stopped (at most 20 min).
pub struct Load {
    stop: watch::Sender<bool>,
    writes: JoinHandle<()>,
    searches: JoinHandle<()>,
    pub started: Duration,
}

impl Load {
    pub async fn start(
        ctx: &Ctx,
        gw: &Gateway,
        coll: &str,
        first_id: u64,
        history: &Arc<History>,
    ) -> Load {
        let (stop, rx) = watch::channel(false);
        let writes = spawn_writes(
            WriteLoad {
                gateway: gw.clone(),
                collection: coll.to_string(),
                first_id,
                count: 10_000_000,
                batch: 1,
                concurrency: 3,
                consistency: "majority",
                max_time: Duration::from_secs(1200),
                retry: ctx.retry(),
                pause: Duration::from_millis(5),
                filter: None,
            },
            history.clone(),
            rx.clone(),
        );
        let searches = spawn_searches(
            SearchLoad {
                gateway: gw.clone(),
                collection: coll.to_string(),
                count: 10_000_000,
                concurrency: 2,
                max_time: Duration::from_secs(1200),
                retry: ctx.retry(),
                pause: Duration::from_millis(20),
                id_range: first_id.max(1),
            },
            history.clone(),
            rx,
        );
        // Let the load reach its pace before the scenario acts.
        tokio::time::sleep(Duration::from_secs(2)).await;
        Load {
            stop,
            writes,
            searches,
            started: history.now(),
        }
    }

    /// Stops the load; returns the end of the measured window.
    pub async fn stop(self, history: &History) -> (Duration, Duration) {
        let _ = self.stop.send(true);
        let _ = self.writes.await;
        let _ = self.searches.await;
        (self.started, history.now())
    }
}

/// The checks every elastic scenario ends with: the longest gap between
/// acknowledged writes in the window, failed searches, convergence, every
/// acknowledged write read back, no phantom point.
pub async fn finish(
    ctx: &Ctx,
    report: &mut ScenarioReport,
    gw: &Gateway,
    coll: &str,
    history: &Arc<History>,
    window: (Duration, Duration),
) -> Result<()> {
    let writes = history.writes();
    report.record_ack_gap(history::longest_ack_gap(&writes, window.0, window.1));
    let shards = ctx
        .cluster
        .map()
        .await
        .ok()
        .and_then(|m| m.collections.get(coll).map(|c| c.config.shard_number))
        .unwrap_or(1);
    if let Some(detail) = gap_detail(&writes, window, |id| super::shard_of(coll, id, shards)) {
        report.note(detail);
    }
    let stats = report_searches(report, history);
    report.searches = stats;
    let states = converge(ctx, report, coll, Instant::now()).await;
    let verdict = verify(ctx, report, gw, coll, history).await?;
    if let Some(states) = states {
        check_total(report, &verdict, &states);
    }
    Ok(())
}

/// Where the longest stretch without an acknowledgement was, the
/// acknowledged writes that were in flight at its end (slowest first, with
/// their shard: which shard stalled the writers), and the writes that
/// failed within it.
pub fn gap_detail(
    writes: &[history::WriteRecord],
    window: (Duration, Duration),
    shard_of: impl Fn(u64) -> u32,
) -> Option<String> {
    let mut acks: Vec<Duration> = writes
        .iter()
        .filter(|w| w.acked() && w.finished >= window.0 && w.finished <= window.1)
        .map(|w| w.finished)
        .collect();
    acks.push(window.0);
    acks.sort();
    let (start, end) = acks
        .windows(2)
        .map(|p| (p[0], p[1]))
        .max_by_key(|(a, b)| *b - *a)?;
    let mut enders: Vec<&history::WriteRecord> = writes
        .iter()
        .filter(|w| w.acked() && w.finished >= end && w.started < end)
        .collect();
    enders.sort_by_key(|w| std::cmp::Reverse(w.finished - w.started));
    let who: Vec<String> = enders
        .iter()
        .take(3)
        .map(|w| {
            format!(
                "{} (shard {}) took {:.2} s",
                ids_brief(&w.ids),
                w.ids.first().map_or(0, |id| shard_of(*id)),
                (w.finished - w.started).as_secs_f64()
            )
        })
        .collect();
    let failed: Vec<u32> = writes
        .iter()
        .filter(|w| !w.acked() && w.finished > start && w.started < end)
        .filter_map(|w| w.ids.first().map(|id| shard_of(*id)))
        .collect();
    Some(format!(
        "longest write gap {:.2} s from {:.2} s to {:.2} s; acknowledged writes in flight at its end: {}; writes that failed in it: {} (shards {:?})",
        (end - start).as_secs_f64(),
        start.as_secs_f64(),
        end.as_secs_f64(),
        if who.is_empty() { "none".to_string() } else { who.join("; ") },
        failed.len(),
        failed
    ))
}

/// A write's ids, listed when few, as a range when a batch.
fn ids_brief(ids: &[u64]) -> String {
    match ids {
        [first, .., last] if ids.len() > 4 => format!("{} ids {first}..={last}", ids.len()),
        _ => format!("ids {ids:?}"),
    }
}

/// Notes the per-node counts and whether they are within 20 % of the mean.
pub async fn report_balance(ctx: &Ctx, report: &mut ScenarioReport, coll: &str, required: bool) {
    match points_per_node(ctx, coll).await {
        Ok(counts) => {
            report.note(format!("points per node: {counts:?}"));
            if let Err(e) = within_of_mean(&counts, 0.2) {
                if required {
                    report.violation(format!("not balanced: {e}"));
                } else {
                    report.note(format!("not balanced: {e}"));
                }
            }
        }
        Err(e) => report.violation(format!("per-node counts: {e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Outcome, WriteRecord};

    fn w(id: u64, started_ms: u64, finished_ms: u64, acked: bool) -> WriteRecord {
        WriteRecord {
            ids: vec![id],
            via: "lb".into(),
            outcome: if acked {
                Outcome::Acknowledged
            } else {
                Outcome::Unknown
            },
            attempts: 1,
            error: None,
            started: Duration::from_millis(started_ms),
            finished: Duration::from_millis(finished_ms),
        }
    }

    #[test]
    fn the_gap_names_the_writes_that_ended_it() {
        let writes = vec![
            w(1, 0, 100, true),
            w(2, 150, 4_000, true),
            w(3, 200, 3_000, false),
            w(4, 4_000, 4_100, true),
        ];
        let d = gap_detail(&writes, (Duration::ZERO, Duration::from_secs(5)), |id| {
            (id % 2) as u32
        })
        .unwrap();
        assert!(
            d.starts_with("longest write gap 3.90 s from 0.10 s to 4.00 s"),
            "{d}"
        );
        assert!(d.contains("ids [2] (shard 0) took 3.85 s"), "{d}");
        assert!(d.contains("failed in it: 1 (shards [1])"), "{d}");
    }

    #[test]
    fn balance_within_a_fifth_of_the_mean() {
        let counts: BTreeMap<u64, u64> = [(1, 100), (2, 110), (3, 90), (4, 100)].into();
        assert!(within_of_mean(&counts, 0.2).is_ok());
        let counts: BTreeMap<u64, u64> = [(1, 150), (2, 150), (3, 150), (4, 0)].into();
        let e = within_of_mean(&counts, 0.2).unwrap_err();
        assert!(e.contains("node 4: 0"), "{e}");
        assert!(within_of_mean(&BTreeMap::new(), 0.2).is_err());
    }
}
