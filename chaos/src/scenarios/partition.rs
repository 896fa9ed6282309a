//! Scenario 2: partition {meta1, storage1, storage2, gateway1} from
//! {meta2, meta3, storage3, storage4, storage5, gateway2} while writes go
//! through both gateways.
//!
//! - Through gateway1 (minority): once the minority primaries' write
//!   leases have run out, nothing is acknowledged until the heal.
//! - Through gateway2 (majority): every shard with a majority of its
//!   replicas on the majority side takes writes again (after failover for
//!   those whose primary was cut off); the majority-side load writes only
//!   to those shards. A shard with two of its three replicas on the
//!   minority side cannot reach `majority` anywhere; it is listed, not
//!   counted against the cluster, but writes the minority acknowledged to
//!   it before its leases ran out must survive like any other.
//! - After the heal every replica converges and every acknowledged write,
//!   from either side, is present.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use protocol::cluster::ClusterMap;
use tokio::sync::watch;

use super::{check_total, converge, drop_collection, new_collection, shard_of, verify, Ctx};
use crate::client::RetryPolicy;
use crate::cluster::node_id;
use crate::fault::Partition;
use crate::history::{self, History};
use crate::report::ScenarioReport;
use crate::timeline;
use crate::workload::{spawn_writes, WriteLoad};

const SHARDS: u32 = 5;
const MINORITY: [&str; 4] = ["meta1", "storage1", "storage2", "gateway1"];
const MAJORITY: [&str; 6] = [
    "meta2", "meta3", "storage3", "storage4", "storage5", "gateway2",
];
const MINORITY_FIRST_ID: u64 = 1_000_000;
const MAJORITY_FIRST_ID: u64 = 2_000_000;

/// How the cut splits each shard's replicas.
#[derive(Debug, Default, PartialEq, Eq)]
struct Placement {
    /// A majority of the replicas on the majority side: can take
    /// `majority` writes there (after failover if the primary is cut off).
    writable: Vec<u32>,
    /// The others: no `majority` on the majority side.
    stuck: Vec<u32>,
    /// Primary on the minority side.
    cut_primary: Vec<u32>,
    /// Primary and a replica majority on the minority side: the minority
    /// can acknowledge writes to these until its leases run out, and the
    /// majority side holds only a minority of their replicas.
    minority_can_ack: Vec<u32>,
}

fn placement(map: &ClusterMap, coll: &str, minority: &BTreeSet<u64>) -> Placement {
    let mut p = Placement::default();
    let Some(info) = map.collections.get(coll) else {
        return p;
    };
    for s in info.shards.values() {
        let on_minority = s.nodes().filter(|n| minority.contains(&n.0)).count();
        let primary_cut = s.primary.is_some_and(|n| minority.contains(&n.0));
        if (s.replicas.len() - on_minority) * 2 > s.replicas.len() {
            p.writable.push(s.id.0);
        } else {
            p.stuck.push(s.id.0);
        }
        if primary_cut {
            p.cut_primary.push(s.id.0);
            if on_minority * 2 > s.replicas.len() {
                p.minority_can_ack.push(s.id.0);
            }
        }
    }
    p
}

/// A collection with at least one shard the minority can acknowledge
/// writes to (primary and a replica majority on its side): the case where
/// acknowledged writes are most at risk. Placement follows the hash ring
/// and the collection name, so a few names are tried (bounded).
async fn create_placed(
    ctx: &Ctx,
    report: &mut ScenarioReport,
    minority: &BTreeSet<u64>,
) -> Result<(String, Placement)> {
    const TRIES: usize = 8;
    for attempt in 1..=TRIES {
        let coll = new_collection(ctx, "partition", SHARDS, 3).await?;
        let map = ctx.cluster.map().await?;
        let p = placement(&map, &coll, minority);
        if !p.minority_can_ack.is_empty() {
            return Ok((coll, p));
        }
        if attempt == TRIES {
            report.note(format!(
                "no shard the minority can acknowledge in {TRIES} placements; going on with the last"
            ));
            return Ok((coll, p));
        }
        drop_collection(ctx, &coll).await;
    }
    Err(anyhow!("unreachable: no placement tried"))
}

pub async fn run(ctx: &Ctx, report: &mut ScenarioReport) -> Result<()> {
    let cluster = &ctx.cluster;
    let minority_nodes: BTreeSet<u64> = MINORITY.iter().filter_map(|s| node_id(s)).collect();
    let (coll, placed) = create_placed(ctx, report, &minority_nodes).await?;
    let writable = placed.writable.clone();
    report.note(format!(
        "shards with a replica majority on the majority side: {:?}; without: {:?}; \
         primary cut off: {:?}; minority can acknowledge (primary + replica majority cut off): {:?}",
        placed.writable, placed.stuck, placed.cut_primary, placed.minority_can_ack
    ));
    // The minority's load goes where it can be acknowledged (or at least
    // reaches its own primaries): writes elsewhere only wait out timeouts.
    let minority_targets = if !placed.minority_can_ack.is_empty() {
        placed.minority_can_ack.clone()
    } else if !placed.cut_primary.is_empty() {
        placed.cut_primary.clone()
    } else {
        (0..SHARDS).collect()
    };

    let history = History::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (samples, watcher) = cluster.spawn_map_watcher(history.clone(), stop_rx.clone());
    // One short attempt per write through the minority: the measurement is
    // when that side stops acknowledging, and a refusal is expected.
    let minority_retry = RetryPolicy {
        attempts: 1,
        timeout: Duration::from_secs(4),
        ..ctx.retry()
    };
    let gw1 = cluster.gateway_with_timeout("gateway1", minority_retry.timeout)?;
    let gw2 = cluster.gateway("gateway2")?;
    let minority_load = spawn_writes(
        WriteLoad {
            gateway: gw1.clone(),
            collection: coll.clone(),
            first_id: MINORITY_FIRST_ID,
            count: 900_000,
            batch: 1,
            concurrency: 4,
            consistency: "majority",
            max_time: Duration::from_secs(150),
            retry: minority_retry,
            pause: Duration::from_millis(20),
            filter: Some({
                let (coll, targets) = (coll.clone(), minority_targets.clone());
                Arc::new(move |id| targets.contains(&shard_of(&coll, id, SHARDS)))
            }),
        },
        history.clone(),
        stop_rx.clone(),
    );
    let majority_load = spawn_writes(
        WriteLoad {
            gateway: gw2.clone(),
            collection: coll.clone(),
            first_id: MAJORITY_FIRST_ID,
            count: 900_000,
            batch: 1,
            concurrency: 4,
            consistency: "majority",
            max_time: Duration::from_secs(150),
            retry: ctx.retry(),
            pause: Duration::from_millis(5),
            // Only shards that can reach `majority` on this side: writes to
            // the others would just wait out timeouts and starve the load.
            filter: Some({
                let (coll, writable) = (coll.clone(), writable.clone());
                Arc::new(move |id| writable.contains(&shard_of(&coll, id, SHARDS)))
            }),
        },
        history.clone(),
        stop_rx.clone(),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = (
        history.acked_points_via("gateway1", Duration::ZERO),
        history.acked_points_via("gateway2", Duration::ZERO),
    );
    report.note(format!(
        "before the cut: {} writes acknowledged through gateway1, {} through gateway2",
        before.0, before.1
    ));

    cluster.refresh().await?;
    let side =
        |names: &[&str]| -> Result<Vec<_>> { names.iter().map(|s| cluster.container(s)).collect() };
    let mut cut = Partition::apply(&side(&MINORITY)?, &side(&MAJORITY)?).await?;
    let cut_at = history.now();
    report.event("cut", cut_at);
    report.note("partition applied");
    let outcome = hold(ctx, &history, &coll, &writable, cut_at).await;
    let heal_result = cut.heal().await;
    let heal_at = history.now();
    report.event("heal", heal_at);
    let healed = Instant::now();
    heal_result?;
    report.note(format!(
        "healed after {:.1} s",
        (heal_at - cut_at).as_secs_f64()
    ));
    outcome?;
    // Writes go on for a while on a healed cluster, then stop.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let _ = stop_tx.send(true);
    let _ = minority_load.await;
    let _ = majority_load.await;

    let writes = history.writes();
    let samples_now = samples.lock().clone();
    // Minority: when it stopped acknowledging, and nothing acknowledged
    // late (started after the lease bound, acknowledged before the heal).
    let via1 = |w: &history::WriteRecord| w.via == "gateway1";
    if let Some(d) = history::last_ack_after(&writes, cut_at, |w| via1(w) && w.finished < heal_at) {
        report
            .timings
            .extra
            .insert("minority last ack".into(), d.as_secs_f64());
    } else {
        report.timings.extra.insert("minority last ack".into(), 0.0);
    }
    let late: Vec<&history::WriteRecord> = writes
        .iter()
        .filter(|w| {
            via1(w)
                && w.acked()
                && w.started > cut_at + ctx.opts.lease_bound
                && w.finished < heal_at
        })
        .collect();
    if !late.is_empty() {
        report.violation(format!(
            "the minority side acknowledged {} writes started more than {:.1} s after the cut, e.g. id {} at {:.2} s",
            late.len(),
            ctx.opts.lease_bound.as_secs_f64(),
            late[0].ids[0],
            (late[0].finished - cut_at).as_secs_f64()
        ));
    }
    let minority_tries = writes
        .iter()
        .filter(|w| via1(w) && w.started > cut_at + ctx.opts.lease_bound && w.finished < heal_at)
        .count();
    report.note(format!(
        "through gateway1 after the lease bound and before the heal: {minority_tries} writes tried, {} acknowledged",
        late.len()
    ));

    // Majority: first acknowledgement per writable shard after the cut.
    let mut failover = Duration::ZERO;
    for s in &writable {
        match history::first_ack_after(&writes, cut_at, |w| {
            w.via == "gateway2" && w.finished < heal_at && w.ids.iter().any(|id| shard_of(&coll, *id, SHARDS) == *s)
        }) {
            Some(d) => failover = failover.max(d),
            None => report.violation(format!(
                "shard {s} (replica majority on the majority side) took no write through gateway2 during the partition"
            )),
        }
    }
    report.timings.failover_s = Some(failover.as_secs_f64());
    let majority_acks = writes
        .iter()
        .filter(|w| w.via == "gateway2" && w.acked() && w.started >= cut_at && w.finished < heal_at)
        .count();
    report.note(format!(
        "through gateway2 during the partition: {majority_acks} writes acknowledged"
    ));
    let dead: Vec<Option<Duration>> = ["storage1", "storage2"]
        .iter()
        .filter_map(|s| node_id(s))
        .map(|n| timeline::marked_dead(&samples_now, n, cut_at))
        .collect();
    report.timings.detection_s = dead
        .iter()
        .copied()
        .collect::<Option<Vec<Duration>>>()
        .and_then(|v| v.into_iter().max())
        .map(|d| d.as_secs_f64());
    let _ = stop_tx.send(true);
    let _ = watcher.await;

    let states = converge(ctx, report, &coll, healed).await;
    let verdict = verify(ctx, report, &gw2, &coll, &history).await?;
    if let Some(states) = states {
        check_total(report, &verdict, &states);
    }
    drop_collection(ctx, &coll).await;
    Ok(())
}

/// Keeps the partition until every writable shard took a write through
/// gateway2, the minority had time to stop, and at least 12 s passed
/// (bounded by 60 s).
async fn hold(
    ctx: &Ctx,
    history: &History,
    coll: &str,
    writable: &[u32],
    cut_at: Duration,
) -> Result<()> {
    let t0 = Instant::now();
    let min_hold = Duration::from_secs(12).max(ctx.opts.lease_bound + Duration::from_secs(5));
    loop {
        let writes = history.writes();
        let all_took = writable.iter().all(|s| {
            history::first_ack_after(&writes, cut_at, |w| {
                w.via == "gateway2" && w.ids.iter().any(|id| shard_of(coll, *id, SHARDS) == *s)
            })
            .is_some()
        });
        if (all_took && t0.elapsed() >= min_hold) || t0.elapsed() > Duration::from_secs(60) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::cluster::{CollectionInfo, ShardInfo};
    use protocol::{CollectionConfig, Distance, NodeId, ShardId};

    fn shard(id: u32, nodes: &[u64]) -> (ShardId, ShardInfo) {
        let shard = ShardInfo::new(ShardId(id), nodes.iter().map(|n| NodeId(*n)));
        (ShardId(id), shard)
    }

    #[test]
    fn placement_splits_shards_by_the_cut() {
        let mut map = ClusterMap::default();
        map.collections.insert(
            "c".into(),
            CollectionInfo {
                name: "c".into(),
                config: CollectionConfig::new(8, Distance::Dot),
                shards: [
                    shard(0, &[1, 2, 3]), // primary + majority cut off
                    shard(1, &[3, 1, 2]), // majority cut off, primary not
                    shard(2, &[1, 3, 4]), // primary cut off, majority not
                    shard(3, &[3, 4, 5]), // untouched
                ]
                .into_iter()
                .collect(),
                created_epoch: Default::default(),
            },
        );
        let minority = BTreeSet::from([1, 2]);
        let p = placement(&map, "c", &minority);
        assert_eq!(p.writable, vec![2, 3]);
        assert_eq!(p.stuck, vec![0, 1]);
        assert_eq!(p.cut_primary, vec![0, 2]);
        assert_eq!(p.minority_can_ack, vec![0]);
        assert_eq!(placement(&map, "missing", &minority), Placement::default());
    }
}
