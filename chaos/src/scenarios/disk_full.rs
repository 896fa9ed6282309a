//! Scenario: one storage node's disk fills up under writes at `majority`,
//! RF 3, 5 shards on 5 nodes.
//!
//! `storage5`'s data directory is a small filesystem of its own
//! (`scripts/chaos.sh` loop-mounts a 256 MB ext4 image there through
//! `docker/chaos-disk.compose.yml`). The runner fills it to the last block
//! for 20 s, then frees the space. While it is full, the node's WAL writes
//! fail: its replicas must refuse writes (a poisoned WAL, reported in its
//! heartbeats and metrics), shards it led must fail over, and writes must
//! go on through the other replicas. Once space returns the node reopens
//! its replicas and catches up: every acknowledged write is present and
//! every replica converges.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use tokio::sync::watch;

use super::{new_collection, settle_and_verify, steady_writes, Ctx};
use crate::compose::docker;
use crate::history::{self, History};
use crate::report::ScenarioReport;
use crate::timeline;

const SHARDS: u32 = 5;
const VICTIM: &str = "storage5";
const FULL_FOR: Duration = Duration::from_secs(20);
/// The filler file, on the victim's small filesystem.
const FILLER: &str = "/data/chaos-filler";
/// A data filesystem larger than this is not the small one.
const SMALL_DISK_MAX_BYTES: u64 = 1 << 30;

/// `storage_poisoned_replicas` from a Prometheus page.
fn poisoned_replicas(metrics: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix("storage_poisoned_replicas ")
            .and_then(|v| v.trim().parse().ok())
    })
}

async fn exec_root(container: &str, script: &str) -> Result<String> {
    docker(
        &["exec", "-u", "0", container, "sh", "-c", script],
        Duration::from_secs(60),
    )
    .await
}

pub async fn run(ctx: &Ctx, report: &mut ScenarioReport) -> Result<()> {
    let cluster = &ctx.cluster;
    let victim = cluster.container(VICTIM)?;
    let size: u64 = exec_root(&victim.id, "df -B1 --output=size /data | tail -1")
        .await?
        .trim()
        .parse()
        .unwrap_or(u64::MAX);
    if size > SMALL_DISK_MAX_BYTES {
        bail!(
            "{VICTIM}'s /data is {size} bytes, not the small filesystem scripts/chaos.sh mounts \
             (docker/chaos-disk.compose.yml): cannot fill it"
        );
    }
    let coll = new_collection(ctx, "disk-full", SHARDS, 3).await?;
    let history = History::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (samples, watcher) = cluster.spawn_map_watcher(history.clone(), stop_rx.clone());
    let (stop_writes, writes) = steady_writes(ctx, &coll, &history)?;
    tokio::time::sleep(Duration::from_secs(5)).await;

    // `dd` stops at the first ENOSPC: the filesystem is then full, even
    // the blocks ext4 keeps for root.
    let full_at = history.now();
    let _ = exec_root(
        &victim.id,
        &format!("dd if=/dev/zero of={FILLER} bs=1M 2>/dev/null; sync; df -B1 --output=avail /data | tail -1"),
    )
    .await;
    report.event("disk full", full_at);
    // Poisoned replicas as the node reports them, polled while full.
    let mut most_poisoned = 0.0f64;
    let full_until = Instant::now() + FULL_FOR;
    while Instant::now() < full_until {
        if let Some(n) = cluster
            .node_metrics(VICTIM)
            .await
            .ok()
            .as_deref()
            .and_then(poisoned_replicas)
        {
            most_poisoned = most_poisoned.max(n);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    exec_root(&victim.id, &format!("rm -f {FILLER}; sync")).await?;
    let freed_at = history.now();
    report.event("space back", freed_at);
    if most_poisoned < 1.0 {
        report.violation(format!(
            "{VICTIM} never reported a poisoned replica while its disk was full"
        ));
    } else {
        report.note(format!(
            "{VICTIM} reported up to {most_poisoned} poisoned replica(s) while full"
        ));
    }
    // Recovery: the node reopens its replicas once a probe write succeeds.
    let recovered = {
        let t0 = Instant::now();
        let mut back = None;
        while t0.elapsed() < Duration::from_secs(30) {
            let n = cluster
                .node_metrics(VICTIM)
                .await
                .ok()
                .as_deref()
                .and_then(poisoned_replicas);
            if n == Some(0.0) {
                back = Some(t0.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        back
    };
    match recovered {
        Some(d) => {
            report
                .timings
                .extra
                .insert("replicas reopened".into(), d.as_secs_f64());
        }
        None => report.violation(format!(
            "{VICTIM} still reports poisoned replicas 30 s after its disk has space again"
        )),
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _ = stop_writes.send(true);
    let _ = writes.await;
    let load_end = history.now();
    report.event("writes end", load_end);
    let settle_from = Instant::now();

    let writes_now = history.writes();
    report.record_ack_gap(history::longest_ack_gap(&writes_now, full_at, load_end));
    let changes = timeline::changes(&samples.lock());
    report.note(format!(
        "while full and after: {} primary change(s), dead marks {:?}",
        changes.primary_changes, changes.dead_marks
    ));

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
    fn the_poisoned_replica_count_is_read_from_the_page() {
        let page = "# TYPE storage_poisoned_replicas gauge\nstorage_poisoned_replicas 2\n\
                    storage_poisoned_replicas_total 9\n";
        assert_eq!(poisoned_replicas(page), Some(2.0));
        assert_eq!(poisoned_replicas("other 1\n"), None);
    }
}
