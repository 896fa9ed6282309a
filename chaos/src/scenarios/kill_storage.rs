//! Scenario 1: SIGKILL a random storage node (one that leads at least one
//! shard) during 10,000 point writes (upserts of 10 points) at `majority`,
//! RF 3, 5 shards on 5 nodes. Every acknowledged write must be present
//! afterwards; the shards it led must get a new primary and take writes
//! again; the node is restarted once the writes end (or 30 s after the
//! kill, whichever is first: the controller replaces a replica dead for
//! 60 s, and the point is to watch this node catch up), and then every
//! replica converges. Convergence counts from the later of the restart
//! and the last write.

use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::watch;

use super::{new_collection, pick_leader, settle_and_verify, shard_of, wait_for, Ctx};
use crate::cluster::{node_service, LB};
use crate::fault;
use crate::history::{self, History};
use crate::report::ScenarioReport;
use crate::timeline;
use crate::workload::{spawn_writes, WriteLoad};

const SHARDS: u32 = 5;
/// Restart the victim at the latest this long after the kill.
const RESTART_AFTER: Duration = Duration::from_secs(30);

pub async fn run(ctx: &Ctx, report: &mut ScenarioReport) -> Result<()> {
    let cluster = &ctx.cluster;
    let coll = new_collection(ctx, "kill-storage", SHARDS, 3).await?;
    let (victim, victim_shards) = pick_leader(&cluster.map().await?, &coll)?;
    let victim_svc = node_service(victim);
    report.note(format!(
        "victim {victim_svc}, primary of shards {victim_shards:?} of {SHARDS}"
    ));

    let history = History::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (samples, watcher) = cluster.spawn_map_watcher(history.clone(), stop_rx.clone());
    let total = ctx.opts.writes;
    let writes = spawn_writes(
        WriteLoad {
            gateway: cluster.gateway(LB)?,
            collection: coll.clone(),
            first_id: 0,
            count: total,
            batch: 10,
            concurrency: 6,
            consistency: "majority",
            max_time: Duration::from_secs(240),
            retry: ctx.retry(),
            pause: Duration::ZERO,
            filter: None,
        },
        history.clone(),
        stop_rx.clone(),
    );
    let kill_after = (total * 3 / 10) as usize;
    if !wait_for(Duration::from_secs(120), || {
        history.acked_points() >= kill_after
    })
    .await
    {
        report.violation(format!(
            "only {} of the first {kill_after} writes acknowledged in 120 s before any fault",
            history.acked_points()
        ));
    }
    let victim_c = cluster.container(&victim_svc)?;
    fault::kill(&victim_c).await?;
    let kill_at = history.now();
    report.event("kill", kill_at);
    report.note(format!(
        "SIGKILL {victim_svc} after {} acknowledged writes",
        history.acked_points()
    ));
    let mut writes = writes;
    // A JoinHandle must not be polled again once it has finished, so the
    // early finish is remembered rather than awaited twice.
    let finished_early = tokio::time::timeout(RESTART_AFTER, &mut writes)
        .await
        .is_ok();
    let restart_under_load = !finished_early;
    fault::start(&victim_c).await?;
    let restarted = Instant::now();
    report.event("restart", history.now());
    cluster.refresh().await?;
    if !finished_early {
        let _ = writes.await;
    }
    let load_end = history.now();
    report.event("writes end", load_end);
    let settle_from = Instant::now();
    if restart_under_load {
        report.note(format!(
            "{victim_svc} restarted {} s after the kill, under load; the writes ended {:.1} s later",
            RESTART_AFTER.as_secs(),
            restarted.elapsed().as_secs_f64()
        ));
    } else {
        report.note(format!("{victim_svc} restarted after the last write"));
    }

    let samples_now = samples.lock().clone();
    let writes_now = history.writes();
    report.timings.detection_s =
        timeline::marked_dead(&samples_now, victim, kill_at).map(|d| d.as_secs_f64());
    if report.timings.detection_s.is_none() {
        report.violation(format!("{victim_svc} was never marked dead"));
    }
    let keys: Vec<(String, u32)> = victim_shards.iter().map(|s| (coll.clone(), *s)).collect();
    match timeline::primaries_moved(&samples_now, &keys, victim, kill_at) {
        Some(d) => {
            report
                .timings
                .extra
                .insert("new primaries".into(), d.as_secs_f64());
        }
        None => report.violation(format!("shards {victim_shards:?} never got a new primary")),
    }
    let mut failover = Duration::ZERO;
    for s in &victim_shards {
        match history::first_ack_after(&writes_now, kill_at, |w| {
            w.ids.iter().any(|id| shard_of(&coll, *id, SHARDS) == *s)
        }) {
            Some(d) => failover = failover.max(d),
            None => report.violation(format!("shard {s} took no write after the kill")),
        }
    }
    report.timings.failover_s = Some(failover.as_secs_f64());
    report.record_ack_gap(history::longest_ack_gap(&writes_now, kill_at, load_end));

    settle_and_verify(
        ctx,
        report,
        &coll,
        &history,
        settle_from,
        (stop_tx, watcher),
    )
    .await
}
