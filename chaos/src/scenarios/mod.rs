//! The nine scenarios of the suite (`all`: the five faults, a hung
//! primary, a saturated machine, a degraded network and a full disk), the seven of the elastic cluster
//! (runnable by name or as `elastic`, not part of `all` yet), and what
//! they share: bringing the cluster back to whole before each one, a fresh
//! collection per scenario, reading the history back and waiting for the
//! replicas to agree.
//!
//! Each scenario module has one `run(ctx, report)`; it records times and
//! broken guarantees in the report and returns an error only when it
//! could not go on (a docker command failed, the cluster never settled).

mod degraded_network;
mod disk_full;
mod elastic;
mod hung_primary;
mod join_drain;
mod kill_gateway;
mod kill_meta;
mod kill_storage;
mod partition;
mod rf_moves;
mod rolling_restart;
mod saturate;
mod soak;
mod transfer_faults;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Result};
use protocol::cluster::ClusterMap;
use protocol::PointId;

use crate::client::{with_retry, CallError, Gateway, RetryPolicy};
use crate::cluster::{self, Cluster};
use crate::converge::{self, ShardState};
use crate::history::{self, History, Verdict};
use crate::report::ScenarioReport;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    KillStorage,
    Partition,
    KillMetaLeader,
    KillGateway,
    RollingRestart,
    JoinNode,
    DrainNode,
    KillTransferSource,
    KillTransferTarget,
    KillMetaLeaderMidTransfer,
    MoveRf1,
    ChangeRf,
    HungPrimary,
    Saturate,
    DegradedNetwork,
    DiskFull,
    Soak,
}

impl Scenario {
    pub const ALL: [Scenario; 9] = [
        Scenario::KillStorage,
        Scenario::Partition,
        Scenario::KillMetaLeader,
        Scenario::KillGateway,
        Scenario::RollingRestart,
        Scenario::HungPrimary,
        Scenario::Saturate,
        Scenario::DegradedNetwork,
        Scenario::DiskFull,
    ];

    /// The elastic-cluster scenarios (`--scenario elastic`).
    pub const ELASTIC: [Scenario; 7] = [
        Scenario::JoinNode,
        Scenario::DrainNode,
        Scenario::KillTransferSource,
        Scenario::KillTransferTarget,
        Scenario::KillMetaLeaderMidTransfer,
        Scenario::MoveRf1,
        Scenario::ChangeRf,
    ];

    /// Whether the scenario stops, kills, hangs or cuts off storage nodes.
    /// In the others the meta-service must never mark one dead: that would
    /// be a false failure detection (issue 14).
    pub fn faults_storage_nodes(self) -> bool {
        !matches!(
            self,
            Scenario::KillMetaLeader
                | Scenario::KillGateway
                | Scenario::KillMetaLeaderMidTransfer
                | Scenario::MoveRf1
                | Scenario::ChangeRf
                | Scenario::Saturate
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Scenario::KillStorage => "kill-storage",
            Scenario::Partition => "partition",
            Scenario::KillMetaLeader => "kill-meta-leader",
            Scenario::KillGateway => "kill-gateway",
            Scenario::RollingRestart => "rolling-restart",
            Scenario::JoinNode => "join-node",
            Scenario::DrainNode => "drain-node",
            Scenario::KillTransferSource => "kill-transfer-source",
            Scenario::KillTransferTarget => "kill-transfer-target",
            Scenario::KillMetaLeaderMidTransfer => "kill-meta-leader-mid-transfer",
            Scenario::MoveRf1 => "move-rf1",
            Scenario::ChangeRf => "change-rf",
            Scenario::HungPrimary => "hung-primary",
            Scenario::Saturate => "saturate",
            Scenario::DegradedNetwork => "degraded-network",
            Scenario::DiskFull => "disk-full",
            Scenario::Soak => "soak",
        }
    }

    /// `all` (the suite's nine), `elastic` (the seven elastic ones) or a
    /// comma-separated list of names.
    pub fn parse_list(s: &str) -> Result<Vec<Scenario>> {
        if s == "all" {
            return Ok(Self::ALL.to_vec());
        }
        if s == "elastic" {
            return Ok(Self::ELASTIC.to_vec());
        }
        s.split(',')
            .map(|one| {
                Self::ALL
                    .iter()
                    .chain(Self::ELASTIC.iter())
                    .chain([Scenario::Soak].iter())
                    .copied()
                    .find(|x| x.name() == one.trim())
                    .ok_or_else(|| anyhow!("unknown scenario {one:?}"))
            })
            .collect()
    }
}

/// Knobs of a run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Points written in `kill-storage` (the 10,000).
    pub writes: u64,
    /// After a cut, the minority may acknowledge writes for at most this
    /// long (its primaries' write leases); later acknowledgements before
    /// the heal break the guarantee.
    pub lease_bound: Duration,
    pub settle_timeout: Duration,
    pub converge_timeout: Duration,
    /// Where service logs go when a scenario fails.
    pub logs_dir: PathBuf,
    /// Points loaded before an elastic scenario changes the cluster.
    pub elastic_points: u64,
    /// How long `soak` runs.
    pub soak: Duration,
}

pub struct Ctx {
    pub cluster: Arc<Cluster>,
    pub opts: Options,
}

impl Ctx {
    pub fn retry(&self) -> RetryPolicy {
        self.cluster.retry
    }
}

/// Runs one scenario from a whole cluster; never panics, always reports.
pub async fn run(ctx: &Ctx, scenario: Scenario) -> ScenarioReport {
    let t0 = Instant::now();
    let mut report = ScenarioReport::new(scenario.name());
    tracing::info!("=== scenario {} ===", scenario.name());
    let prepared = prepare(ctx, &mut report).await;
    // Every scenario's map, sampled for the failure detections it caused.
    let (stop_watch, stop_rx) = tokio::sync::watch::channel(false);
    let (samples, watcher) = ctx
        .cluster
        .spawn_map_watcher(crate::history::History::new(), stop_rx);
    let outcome = match prepared {
        Err(e) => Err(e.context("cluster not whole before the scenario")),
        Ok(()) => match scenario {
            Scenario::KillStorage => kill_storage::run(ctx, &mut report).await,
            Scenario::Partition => partition::run(ctx, &mut report).await,
            Scenario::KillMetaLeader => kill_meta::run(ctx, &mut report).await,
            Scenario::KillGateway => kill_gateway::run(ctx, &mut report).await,
            Scenario::RollingRestart => rolling_restart::run(ctx, &mut report).await,
            Scenario::JoinNode => join_drain::join_node(ctx, &mut report).await,
            Scenario::DrainNode => join_drain::drain_node(ctx, &mut report).await,
            Scenario::KillTransferSource => {
                transfer_faults::run(ctx, &mut report, transfer_faults::Victim::Source).await
            }
            Scenario::KillTransferTarget => {
                transfer_faults::run(ctx, &mut report, transfer_faults::Victim::Target).await
            }
            Scenario::KillMetaLeaderMidTransfer => {
                transfer_faults::run(ctx, &mut report, transfer_faults::Victim::MetaLeader).await
            }
            Scenario::MoveRf1 => rf_moves::move_rf1(ctx, &mut report).await,
            Scenario::ChangeRf => rf_moves::change_rf(ctx, &mut report).await,
            Scenario::HungPrimary => hung_primary::run(ctx, &mut report).await,
            Scenario::Saturate => saturate::run(ctx, &mut report).await,
            Scenario::DegradedNetwork => degraded_network::run(ctx, &mut report).await,
            Scenario::DiskFull => disk_full::run(ctx, &mut report).await,
            Scenario::Soak => soak::run(ctx, &mut report).await,
        },
    };
    if let Err(e) = outcome {
        report.violation(format!("aborted: {e:#}"));
    }
    let _ = stop_watch.send(true);
    let _ = watcher.await;
    report.changes = crate::timeline::changes(&samples.lock());
    if !scenario.faults_storage_nodes() && !report.changes.dead_marks.is_empty() {
        report.violation(format!(
            "storage nodes marked dead with no fault on any (false failure detection): {:?}",
            report.changes.dead_marks
        ));
    }
    if !report.passed {
        ctx.cluster
            .dump_logs(&ctx.opts.logs_dir, scenario.name(), &cluster::services())
            .await;
        report.note(format!(
            "service logs in {}/{}-*.log",
            ctx.opts.logs_dir.display(),
            scenario.name()
        ));
    }
    report.duration_s = t0.elapsed().as_secs_f64();
    tracing::info!(
        "=== {} {} in {:.1} s ===",
        scenario.name(),
        if report.passed { "PASSED" } else { "FAILED" },
        report.duration_s
    );
    report
}

/// Starts whatever an earlier scenario left stopped and waits until the
/// cluster is whole again.
async fn prepare(ctx: &Ctx, report: &mut ScenarioReport) -> Result<()> {
    let started = ctx.cluster.start_stopped().await?;
    if !started.is_empty() {
        report.note(format!("restarted {started:?} left stopped before"));
    }
    // Collections an aborted scenario left behind would hold the cluster to
    // their own state (and load); they are the runner's, so they go.
    if let Ok(map) = ctx.cluster.map().await {
        for name in map.collections.keys().filter(|n| n.starts_with("chaos_")) {
            report.note(format!("dropped {name}, left by an earlier run"));
            drop_collection(ctx, name).await;
        }
    }
    let took = ctx
        .cluster
        .wait_settled(ctx.opts.settle_timeout, true)
        .await?;
    tracing::info!("cluster whole after {:.1} s", took.as_secs_f64());
    Ok(())
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

/// A new collection `chaos_<label>_<ms>` (Dot, 8 dimensions), created
/// through the load balancer; returns once the map shows every replica
/// active.
async fn new_collection(ctx: &Ctx, label: &str, shards: u32, rf: u32) -> Result<String> {
    let name = format!("chaos_{}_{}", label.replace('-', "_"), unix_ms());
    create_collection(ctx, &name, shards, rf).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let map = ctx.cluster.map().await?;
        if map
            .collections
            .get(&name)
            .is_some_and(|c| c.shards.len() == shards as usize)
            && cluster::check_map_whole(&map).is_ok()
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("collection {name} not whole in the map after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tracing::info!("collection {name}: {shards} shards, RF {rf}");
    Ok(name)
}

/// `PUT /collections/{name}` through the load balancer, under the retry
/// policy.
/// Writes ids `0..count` through `gateway` at `majority` (batches of 20,
/// 4 in flight, at most 60 s) into `history`, and waits for them.
/// Notes the searches of `history`; any that failed after the client's
/// retries is a violation (the kill-gateway and rolling-restart promise).
pub(crate) fn report_searches(
    report: &mut ScenarioReport,
    history: &History,
) -> history::SearchStats {
    let stats = history::search_stats(&history.searches());
    report.note(format!(
        "{} searches, {} needed a retry, slowest {:.2} s",
        stats.attempted, stats.retried, stats.max_latency_s
    ));
    if stats.failed > 0 {
        report.violation(format!(
            "{} searches failed after retries: {:?}",
            stats.failed, stats.sample_errors
        ));
    }
    stats
}

pub(crate) async fn preload(
    ctx: &Ctx,
    gateway: &Gateway,
    collection: &str,
    count: u64,
    history: &Arc<History>,
) {
    let (_never, stop) = tokio::sync::watch::channel(false);
    let load = crate::workload::WriteLoad {
        gateway: gateway.clone(),
        collection: collection.to_string(),
        first_id: 0,
        count,
        batch: 20,
        concurrency: 4,
        consistency: "majority",
        max_time: Duration::from_secs(60),
        retry: ctx.retry(),
        pause: Duration::ZERO,
        filter: None,
    };
    let _ = crate::workload::spawn_writes(load, history.clone(), stop).await;
}

pub(crate) async fn create_collection(ctx: &Ctx, name: &str, shards: u32, rf: u32) -> Result<()> {
    let lb = ctx.cluster.gateway(cluster::LB)?;
    let (r, attempts) = with_retry(&ctx.retry(), || lb.create_collection(name, shards, rf)).await;
    match r {
        Ok(()) => Ok(()),
        // An earlier attempt answered an error that left the outcome open
        // (e.g. a 503 after the command was proposed) and did create it:
        // the name is the runner's alone, so "exists" means that attempt won.
        Err(CallError::Status { status: 409, .. }) if attempts > 1 => {
            tracing::info!("collection {name} created by an attempt that answered an error");
            Ok(())
        }
        Err(e) => bail!("create collection {name}: {e}"),
    }
}

/// Best effort: the next scenarios run lighter without it.
async fn drop_collection(ctx: &Ctx, name: &str) {
    if let Ok(lb) = ctx.cluster.gateway(cluster::LB) {
        let (r, _) = with_retry(&ctx.retry(), || lb.delete_collection(name)).await;
        if let Err(e) = r {
            tracing::warn!("delete collection {name}: {e}");
        }
    }
}

/// The shard of a point (the gateway's routing function).
/// A random storage node leading at least one shard of `collection`, with
/// the shards it leads.
fn pick_leader(map: &ClusterMap, collection: &str) -> Result<(u64, Vec<u32>)> {
    use rand::seq::IndexedRandom;
    let mut led: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for s in map
        .collections
        .get(collection)
        .ok_or_else(|| anyhow!("{collection} missing from the map"))?
        .shards
        .values()
    {
        if let Some(p) = s.primary {
            led.entry(p.0).or_default().push(s.id.0);
        }
    }
    let leaders: Vec<u64> = led.keys().copied().collect();
    let victim = *leaders
        .choose(&mut rand::rng())
        .ok_or_else(|| anyhow!("no shard of {collection} has a primary"))?;
    let shards = led.remove(&victim).unwrap_or_default();
    Ok((victim, shards))
}

fn shard_of(collection: &str, id: u64, shards: u32) -> u32 {
    protocol::routing::shard_for_point(collection, &PointId::Num(id), shards).0
}

/// Reads every written id back through `via` (majority reads, in batches)
/// and checks the history; the counts go into the report.
async fn verify(
    ctx: &Ctx,
    report: &mut ScenarioReport,
    via: &Gateway,
    collection: &str,
    history: &History,
) -> Result<Verdict> {
    let writes = history.writes();
    let ids: Vec<u64> = history::outcomes(&writes).into_keys().collect();
    let mut found = HashMap::new();
    let policy = RetryPolicy {
        attempts: 5,
        backoff: Duration::from_millis(500),
        ..ctx.retry()
    };
    for chunk in ids.chunks(256) {
        let (r, _) = with_retry(&policy, || via.retrieve(collection, chunk, "majority")).await;
        let records = r.map_err(|e| anyhow!("read back {} ids: {e}", chunk.len()))?;
        found.extend(records);
    }
    let verdict = history::check(&writes, &found);
    let requests = writes.len() as u64;
    let failed = writes.iter().filter(|w| !w.acked()).count() as u64;
    report.apply_verdict(&verdict, requests, failed);
    tracing::info!(
        "history: {} ids, {} acknowledged, {} lost, {} unknown ({} present)",
        verdict.attempted,
        verdict.acknowledged,
        verdict.lost_count(),
        verdict.unknown,
        verdict.unknown_present
    );
    if !verdict.lost.is_empty() || !verdict.unknown_wrong.is_empty() {
        let shards = ctx
            .cluster
            .map()
            .await
            .ok()
            .and_then(|m| m.collections.get(collection).map(|c| c.config.shard_number))
            .unwrap_or(1);
        for id in verdict.lost.iter().take(10) {
            if let Some(w) = writes.iter().find(|w| w.acked() && w.ids.contains(id)) {
                report.lost_detail.push(format!(
                    "id {id} (shard {}) via {}: sent at {:.3} s, acknowledged at {:.3} s after {} attempt(s), {}",
                    shard_of(collection, *id, shards),
                    w.via,
                    w.started.as_secs_f64(),
                    w.finished.as_secs_f64(),
                    w.attempts,
                    if found.contains_key(id) { "present with other content" } else { "absent" }
                ));
            }
        }
        let path = ctx
            .opts
            .logs_dir
            .join(format!("{}-history.json", report.name));
        let dump = serde_json::json!({
            "collection": collection,
            "events": report.events,
            "writes": writes,
            "searches": history.searches(),
        });
        let written = std::fs::create_dir_all(&ctx.opts.logs_dir)
            .and_then(|_| std::fs::write(&path, dump.to_string()));
        match written {
            Ok(()) => report.note(format!("client history in {}", path.display())),
            Err(e) => tracing::warn!("write {}: {e}", path.display()),
        }
    }
    Ok(verdict)
}

/// Waits for every replica of `collection` to agree; the time counts from
/// `since` (the restart or heal). A timeout is a broken guarantee.
async fn converge(
    ctx: &Ctx,
    report: &mut ScenarioReport,
    collection: &str,
    since: Instant,
) -> Option<Vec<ShardState>> {
    match ctx
        .cluster
        .wait_converged(collection, ctx.opts.converge_timeout)
        .await
    {
        Ok((_, states)) => {
            let t = since.elapsed().as_secs_f64();
            report.timings.convergence_s = Some(t);
            tracing::info!("replicas of {collection} converged {t:.2} s after the restart/heal");
            Some(states)
        }
        Err(e) => {
            report.violation(format!("no convergence: {e:#}"));
            None
        }
    }
}

/// The end of a write scenario: waits for the replicas to agree (timed from
/// `settle_from`), stops the scenario's map watcher, reads every
/// acknowledged write back, checks that the replicas hold exactly what was
/// read, and drops the collection.
async fn settle_and_verify(
    ctx: &Ctx,
    report: &mut ScenarioReport,
    collection: &str,
    history: &History,
    settle_from: Instant,
    watcher: (
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ),
) -> Result<()> {
    let states = converge(ctx, report, collection, settle_from).await;
    let _ = watcher.0.send(true);
    let _ = watcher.1.await;
    let gateway = ctx.cluster.gateway(cluster::LB)?;
    let verdict = verify(ctx, report, &gateway, collection, history).await?;
    if let Some(states) = states {
        check_total(report, &verdict, &states);
    }
    drop_collection(ctx, collection).await;
    Ok(())
}

/// Single writers at `majority` (4, batches of 10) into `collection` until
/// the returned sender stops them (at most 3 minutes).
fn steady_writes(
    ctx: &Ctx,
    collection: &str,
    history: &Arc<History>,
) -> Result<(
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
)> {
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let writes = crate::workload::spawn_writes(
        crate::workload::WriteLoad {
            gateway: ctx.cluster.gateway(cluster::LB)?,
            collection: collection.to_string(),
            first_id: 0,
            count: 2_000_000,
            batch: 10,
            concurrency: 4,
            consistency: "majority",
            max_time: Duration::from_secs(180),
            retry: ctx.retry(),
            pause: Duration::ZERO,
            filter: None,
        },
        history.clone(),
        stop_rx,
    );
    Ok((stop, writes))
}

/// The converged replicas must hold exactly the points found by id: a
/// point nobody wrote (or a duplicate) would show up here.
fn check_total(report: &mut ScenarioReport, verdict: &Verdict, states: &[ShardState]) {
    match converge::total_points(states) {
        Some(total) if total == verdict.expected_present() => {}
        Some(total) => report.violation(format!(
            "replicas hold {total} points, the read-back found {}",
            verdict.expected_present()
        )),
        None => {}
    }
}

/// Polls `cond` every 100 ms until it holds or `timeout` passes.
async fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cond()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_lists_parse() {
        assert_eq!(Scenario::parse_list("all").map(|v| v.len()).ok(), Some(9));
        assert_eq!(
            Scenario::parse_list("soak").ok(),
            Some(vec![Scenario::Soak]),
            "runnable by name, not part of all"
        );
        assert_eq!(
            Scenario::parse_list("partition,kill-gateway").ok(),
            Some(vec![Scenario::Partition, Scenario::KillGateway])
        );
        assert!(Scenario::parse_list("nope").is_err());
        assert_eq!(
            Scenario::parse_list("elastic").map(|v| v.len()).ok(),
            Some(7)
        );
        assert_eq!(
            Scenario::parse_list("join-node,kill-meta-leader-mid-transfer").ok(),
            Some(vec![
                Scenario::JoinNode,
                Scenario::KillMetaLeaderMidTransfer
            ])
        );
        let names: std::collections::BTreeSet<_> = Scenario::ALL
            .iter()
            .chain(Scenario::ELASTIC.iter())
            .map(|s| s.name())
            .collect();
        assert_eq!(names.len(), 16, "names are distinct");
    }
}
