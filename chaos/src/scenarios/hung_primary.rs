//! Scenario `hung-primary`: SIGSTOP a storage node that leads at least one
//! shard while 6 writers upsert points at `majority` (RF 3, 5 shards on 5
//! nodes), keep it frozen for longer than the dead-node grace, then
//! SIGCONT it. A frozen process is the worst case for a lease: it cannot
//! notice its lease running out, and resumes in the middle of whatever it
//! was doing (issue 14).
//!
//! Checked: every acknowledged write is present afterwards and the
//! replicas converge; the frozen node's shards get new primaries and take
//! writes again while it is frozen; the frozen node acknowledged no write
//! of those shards after it was frozen (its `storage_last_write_ack_unix_ms`
//! per shard, read once it runs again, is older than the SIGSTOP: anything
//! later would be an acknowledgement after its replacement); the longest
//! gap between acknowledged writes.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use tokio::sync::watch;

use super::{new_collection, pick_leader, settle_and_verify, shard_of, wait_for, Ctx};
use crate::cluster::{node_service, LB};
use crate::compose::docker;
use crate::history::{self, History};
use crate::report::ScenarioReport;
use crate::timeline;
use crate::workload::{spawn_writes, WriteLoad};

const SHARDS: u32 = 5;
/// How long the primary stays frozen: past the longest dead-node grace
/// (5 s), let alone the short one a regular node has (0.6 s).
const FROZEN_FOR: Duration = Duration::from_secs(8);

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn signal(container: &str, sig: &str) -> Result<()> {
    docker(&["kill", "-s", sig, container], Duration::from_secs(30))
        .await
        .with_context(|| format!("SIG{sig} {container}"))
        .map(|_| ())
}

/// `storage_last_write_ack_unix_ms` per (collection, shard) from a
/// Prometheus text page.
fn last_acks(metrics: &str, collection: &str) -> BTreeMap<u32, u64> {
    let mut out = BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("storage_last_write_ack_unix_ms{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels.split(',').find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                (k.trim() == name).then(|| v.trim().trim_matches('"').to_string())
            })
        };
        if label("collection").as_deref() != Some(collection) {
            continue;
        }
        let (Some(shard), Ok(ms)) = (
            label("shard").and_then(|s| s.parse::<u32>().ok()),
            value.trim().parse::<f64>(),
        ) else {
            continue;
        };
        out.insert(shard, ms as u64);
    }
    out
}

pub async fn run(ctx: &Ctx, report: &mut ScenarioReport) -> Result<()> {
    let cluster = &ctx.cluster;
    let coll = new_collection(ctx, "hung-primary", SHARDS, 3).await?;
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
    let freeze_after = (total * 3 / 10) as usize;
    if !wait_for(Duration::from_secs(120), || {
        history.acked_points() >= freeze_after
    })
    .await
    {
        report.violation(format!(
            "only {} of the first {freeze_after} writes acknowledged in 120 s before any fault",
            history.acked_points()
        ));
    }
    let victim_c = cluster.container(&victim_svc)?;
    let stopped_unix_ms = unix_ms();
    signal(&victim_c.id, "STOP").await?;
    let stop_at = history.now();
    report.event("sigstop", stop_at);
    report.note(format!(
        "SIGSTOP {victim_svc} after {} acknowledged writes, for {} s",
        history.acked_points(),
        FROZEN_FOR.as_secs()
    ));
    tokio::time::sleep(FROZEN_FOR).await;
    signal(&victim_c.id, "CONT").await?;
    let cont_at = history.now();
    report.event("sigcont", cont_at);
    let writes = writes.await;
    drop(writes);
    let load_end = history.now();
    report.event("writes end", load_end);
    let settle_from = std::time::Instant::now();

    // What the resumed node says it acknowledged last, per shard, against
    // when the meta-service declared it dead (its replacements come after
    // that): a write acknowledged later would be split-brain. The time the
    // SIGSTOP was sent says less: docker delivers it tens of milliseconds
    // later, and the node may rightly acknowledge until then.
    let samples_now = samples.lock().clone();
    let dead_at_ms = timeline::dead_mark_unix_ms(&samples_now, victim, stop_at);
    match cluster.node_metrics(&victim_svc).await {
        Ok(text) => {
            let acks = last_acks(&text, &coll);
            for s in &victim_shards {
                let Some(ms) = acks.get(s).copied() else {
                    report.note(format!(
                        "{victim_svc} reports no acknowledgement of shard {s}"
                    ));
                    continue;
                };
                let after_stop = ms as i64 - stopped_unix_ms as i64;
                match dead_at_ms {
                    Some(dead) if ms >= dead => report.violation(format!(
                        "{victim_svc} acknowledged a write of shard {s} {} ms after it was declared dead",
                        ms - dead
                    )),
                    Some(dead) => report.note(format!(
                        "{victim_svc}'s last acknowledgement of shard {s}: {} ms before it was declared dead ({after_stop:+} ms from sending SIGSTOP)",
                        dead - ms
                    )),
                    None => report.note(format!(
                        "{victim_svc}'s last acknowledgement of shard {s}: {after_stop:+} ms from sending SIGSTOP; never declared dead"
                    )),
                }
            }
        }
        Err(e) => report.violation(format!("cannot read {victim_svc}'s metrics: {e}")),
    }

    let writes_now = history.writes();
    report.timings.detection_s =
        timeline::marked_dead(&samples_now, victim, stop_at).map(|d| d.as_secs_f64());
    let keys: Vec<(String, u32)> = victim_shards.iter().map(|s| (coll.clone(), *s)).collect();
    match timeline::primaries_moved(&samples_now, &keys, victim, stop_at) {
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
        match history::first_ack_after(&writes_now, stop_at, |w| {
            w.ids.iter().any(|id| shard_of(&coll, *id, SHARDS) == *s)
        }) {
            Some(d) if stop_at + d < cont_at => failover = failover.max(d),
            Some(d) => {
                failover = failover.max(d);
                report.violation(format!(
                    "shard {s} took no write while its primary was frozen"
                ))
            }
            None => report.violation(format!("shard {s} took no write after the SIGSTOP")),
        }
    }
    report.timings.failover_s = Some(failover.as_secs_f64());
    report.record_ack_gap(history::longest_ack_gap(&writes_now, stop_at, load_end));

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_acks_are_read_per_shard_of_the_collection() {
        let page = "# TYPE storage_last_write_ack_unix_ms gauge\n\
            storage_last_write_ack_unix_ms{collection=\"chaos_a\",shard=\"0\"} 1764650000123\n\
            storage_last_write_ack_unix_ms{collection=\"chaos_a\",shard=\"3\"} 1764650000456\n\
            storage_last_write_ack_unix_ms{collection=\"other\",shard=\"1\"} 1\n\
            storage_replica_points{collection=\"chaos_a\",shard=\"0\"} 7\n";
        let acks = last_acks(page, "chaos_a");
        assert_eq!(
            acks,
            BTreeMap::from([(0, 1_764_650_000_123), (3, 1_764_650_000_456)])
        );
    }
}
