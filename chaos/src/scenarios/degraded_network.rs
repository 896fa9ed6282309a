//! Scenario: a degraded network around one storage node (one that leads
//! shards), under writes at `majority`, RF 3, 5 shards on 5 nodes.
//!
//! 1. *Slow and lossy* for 30 s: what the node sends is rate-limited to
//!    2 Mbit/s (a queue of up to 300 ms when full) and 5 % of its packets
//!    are dropped each way. A slow node is not a dead one: it may be
//!    declared dead at most once, and no shard's primary may change more
//!    than once (no flapping).
//! 2. *Deaf* for 15 s: the node still sends but receives nothing from the
//!    cluster (its heartbeats' TCP handshakes never complete; its gossip
//!    still goes out). The shards it leads get new primaries, each once.
//!
//! After each phase the link is healed. At the end every acknowledged
//! write is present and every replica converges. The phases report the
//! longest gap between acknowledged writes, the victim's dead marks and
//! the primary changes.

use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::watch;

use super::{new_collection, pick_leader, settle_and_verify, steady_writes, Ctx};
use crate::fault::{DegradedLink, Partition};
use crate::history::{self, History};
use crate::report::ScenarioReport;
use crate::timeline::{self, MapSample};

const SHARDS: u32 = 5;
const SLOW_FOR: Duration = Duration::from_secs(30);
const DEAF_FOR: Duration = Duration::from_secs(15);
/// Between phases: time for the healed node to catch up.
const RECOVER_FOR: Duration = Duration::from_secs(10);

/// What one phase did to the cluster, from the map samples in its window.
fn judge(
    report: &mut ScenarioReport,
    phase: &str,
    samples: &[MapSample],
    window: (Duration, Duration),
    victim: u64,
) -> timeline::ClusterChanges {
    let within: Vec<MapSample> = samples
        .iter()
        .filter(|s| s.at >= window.0 && s.at <= window.1)
        .cloned()
        .collect();
    let changes = timeline::changes(&within);
    let marks = changes.dead_marks.get(&victim).copied().unwrap_or(0);
    report.note(format!(
        "{phase}: victim marked dead {marks} time(s), {} primary change(s), at most {} of one shard",
        changes.primary_changes, changes.most_changes_of_one_shard
    ));
    if marks > 1 {
        report.violation(format!(
            "{phase}: the victim was marked dead {marks} times (flapping)"
        ));
    }
    if changes.most_changes_of_one_shard > 1 {
        report.violation(format!(
            "{phase}: a shard's primary changed {} times (flapping)",
            changes.most_changes_of_one_shard
        ));
    }
    changes
}

pub async fn run(ctx: &Ctx, report: &mut ScenarioReport) -> Result<()> {
    let cluster = &ctx.cluster;
    let coll = new_collection(ctx, "degraded-network", SHARDS, 3).await?;
    let (victim, victim_shards) = pick_leader(&cluster.map().await?, &coll)?;
    let victim_svc = crate::cluster::node_service(victim);
    report.note(format!(
        "victim {victim_svc}, primary of shards {victim_shards:?} of {SHARDS}"
    ));

    let history = History::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (samples, watcher) = cluster.spawn_map_watcher(history.clone(), stop_rx.clone());
    let (stop_writes, writes) = steady_writes(ctx, &coll, &history)?;
    tokio::time::sleep(Duration::from_secs(5)).await;

    // Phase 1: slow and lossy.
    let victim_c = cluster.container(&victim_svc)?;
    let slow_at = history.now();
    let mut link = DegradedLink::apply(&victim_c, 2_000, 300, 5).await?;
    report.event("degraded", slow_at);
    tokio::time::sleep(SLOW_FOR).await;
    link.clear().await?;
    let slow_end = history.now();
    report.event("link restored", slow_end);
    tokio::time::sleep(RECOVER_FOR).await;

    // Phase 2: deaf.
    let others = cluster.others(&victim_svc);
    let deaf_at = history.now();
    let mut cut = Partition::deafen(&victim_c, &others).await?;
    report.event("deafened", deaf_at);
    tokio::time::sleep(DEAF_FOR).await;
    cut.heal().await?;
    let deaf_end = history.now();
    report.event("hearing restored", deaf_end);
    tokio::time::sleep(RECOVER_FOR).await;

    let _ = stop_writes.send(true);
    let _ = writes.await;
    let load_end = history.now();
    report.event("writes end", load_end);
    let settle_from = Instant::now();

    let samples_now = samples.lock().clone();
    let writes_now = history.writes();
    judge(
        report,
        "slow and lossy",
        &samples_now,
        (slow_at, deaf_at),
        victim,
    );
    judge(report, "deaf", &samples_now, (deaf_at, load_end), victim);
    let keys: Vec<(String, u32)> = victim_shards.iter().map(|s| (coll.clone(), *s)).collect();
    match timeline::primaries_moved(&samples_now, &keys, victim, deaf_at) {
        Some(d) if deaf_at + d <= deaf_end => {
            report
                .timings
                .extra
                .insert("deaf: new primaries".into(), d.as_secs_f64());
        }
        _ => report.violation(format!(
            "shards {victim_shards:?} of the deaf node got no new primary while it was deaf"
        )),
    }
    report.timings.detection_s = timeline::marked_dead(&samples_now, victim, deaf_at)
        .filter(|d| deaf_at + *d <= deaf_end)
        .map(|d| d.as_secs_f64());
    report.timings.extra.insert(
        "slow: longest ack gap".into(),
        history::longest_ack_gap(&writes_now, slow_at, deaf_at)
            .length
            .as_secs_f64(),
    );
    report.timings.extra.insert(
        "deaf: longest ack gap".into(),
        history::longest_ack_gap(&writes_now, deaf_at, load_end)
            .length
            .as_secs_f64(),
    );
    report.record_ack_gap(history::longest_ack_gap(&writes_now, slow_at, load_end));

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
