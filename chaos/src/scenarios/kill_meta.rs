//! Scenario 3: SIGKILL the meta-service leader under write load. The two
//! others elect a new leader; no collection, shard or replica assignment
//! is lost; writes keep being acknowledged; a new command (creating a
//! collection) commits; the old leader, restarted, catches up.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use protocol::cluster::ClusterMap;
use tokio::sync::watch;

use super::{
    check_total, converge, create_collection, drop_collection, new_collection, verify, Ctx,
};
use crate::cluster::{LB, META};
use crate::fault;
use crate::history::{self, History};
use crate::report::ScenarioReport;
use crate::workload::{spawn_writes, WriteLoad};

/// Every shard of every collection: its replica nodes.
fn assignments(map: &ClusterMap) -> BTreeSet<(String, u32, Vec<u64>)> {
    map.collections
        .values()
        .flat_map(|c| {
            c.shards.values().map(|s| {
                let mut nodes: Vec<u64> = s.nodes().map(|n| n.0).collect();
                nodes.sort();
                (c.name.clone(), s.id.0, nodes)
            })
        })
        .collect()
}

pub async fn run(ctx: &Ctx, report: &mut ScenarioReport) -> Result<()> {
    let cluster = &ctx.cluster;
    let coll = new_collection(ctx, "kill-meta-leader", 3, 3).await?;
    let history = History::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let load = spawn_writes(
        WriteLoad {
            gateway: cluster.gateway(LB)?,
            collection: coll.clone(),
            first_id: 0,
            count: 500_000,
            batch: 1,
            concurrency: 4,
            consistency: "majority",
            max_time: Duration::from_secs(120),
            retry: ctx.retry(),
            pause: Duration::from_millis(5),
            filter: None,
        },
        history.clone(),
        stop_rx.clone(),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = cluster.map().await?;
    // The leader, confirmed by itself right before the kill (a leader
    // change between the look and the kill would fake a fast election).
    let mut target = None;
    for _ in 0..10 {
        if let Some((svc, id)) = cluster.meta_leader().await {
            if let Ok(h) = cluster.meta_health(&svc).await {
                if h.state == "Leader" && h.id == id {
                    target = Some((svc, id, h.term));
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (old_svc, old_id, old_term) =
        target.ok_or_else(|| anyhow!("no stable meta leader before the kill"))?;
    let old = cluster.container(&old_svc)?;
    fault::kill(&old).await?;
    let kill_at = history.now();
    report.event("kill", kill_at);
    let killed = Instant::now();
    report.note(format!(
        "SIGKILL meta leader {old_svc} (member {old_id}, term {old_term}) after {} acknowledged writes",
        history.acked_points()
    ));

    // Ask the two survivors only (the dead member would cost a connect
    // timeout per round): a new leader is one both name.
    let survivors: Vec<&str> = META.iter().copied().filter(|m| *m != old_svc).collect();
    let mut new_leader = None;
    while killed.elapsed() < Duration::from_secs(30) {
        let views =
            futures::future::join_all(survivors.iter().map(|m| cluster.meta_health(m))).await;
        // A leader elected after the kill: in a newer term than the one
        // the killed member led.
        let leaders: Vec<Option<u64>> = views
            .iter()
            .map(|v| {
                v.as_ref()
                    .ok()
                    .filter(|h| h.term > old_term)
                    .and_then(|h| h.leader)
            })
            .collect();
        if let Some(Some(id)) = leaders.first() {
            if *id != old_id && leaders.iter().all(|l| *l == Some(*id)) {
                let svc = format!("meta{id}");
                new_leader = Some((svc, *id, killed.elapsed()));
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (new_svc, new_id) = match new_leader {
        Some((svc, id, took)) => {
            report.timings.detection_s = Some(took.as_secs_f64());
            report
                .timings
                .extra
                .insert("leader change".into(), took.as_secs_f64());
            report.note(format!("new leader {svc} (member {id})"));
            (svc, id)
        }
        None => {
            report.violation("no new meta leader within 30 s");
            (String::new(), 0)
        }
    };

    // Writes go on under the new leader for a while.
    tokio::time::sleep(Duration::from_secs(6)).await;

    // A command commits under the new leader.
    let probe = format!("{coll}_probe");
    let lb = cluster.gateway(LB)?;
    match create_collection(ctx, &probe, 1, 3).await {
        Ok(()) => drop_collection(ctx, &probe).await,
        Err(e) => report.violation(format!("after the leader change: {e:#}")),
    }

    // No assignment lost.
    let after = cluster.map().await?;
    let (a, b) = (assignments(&before), assignments(&after));
    let lost: Vec<_> = a.difference(&b).collect();
    if !lost.is_empty() {
        report.violation(format!("assignments lost or changed: {lost:?}"));
    }
    if after.epoch < before.epoch {
        report.violation(format!(
            "map epoch went back from {} to {}",
            before.epoch, after.epoch
        ));
    }
    let moved: Vec<String> = before
        .collections
        .values()
        .flat_map(|c| c.shards.values().map(move |s| (c, s)))
        .filter(|(c, s)| after.shard(&c.name, s.id).map(|x| x.primary) != Some(s.primary))
        .map(|(c, s)| format!("{}/{}", c.name, s.id))
        .collect();
    if !moved.is_empty() {
        report.note(format!(
            "primaries changed (no storage fault was injected): {moved:?}"
        ));
    }

    let _ = stop_tx.send(true);
    let _ = load.await;
    let load_end = history.now();
    let writes = history.writes();
    match history::first_ack_after(&writes, kill_at, |_| true) {
        Some(d) => report.timings.failover_s = Some(d.as_secs_f64()),
        None => report.violation("no write acknowledged after the leader was killed"),
    }
    report.record_ack_gap(history::longest_ack_gap(&writes, kill_at, load_end));
    let acked_after = writes
        .iter()
        .filter(|w| w.acked() && w.started >= kill_at)
        .count();
    report.note(format!("{acked_after} writes acknowledged after the kill"));

    // The old leader comes back and catches up with the new one.
    fault::start(&old).await?;
    let restarted = Instant::now();
    report.event("restart", history.now());
    cluster.refresh().await?;
    let mut caught_up = None;
    while restarted.elapsed() < Duration::from_secs(60) {
        let epoch = cluster.map().await.map(|m| m.epoch.0).unwrap_or(u64::MAX);
        if let Ok(h) = cluster.meta_health(&old_svc).await {
            if h.leader.is_some() && h.epoch >= epoch {
                caught_up = Some(restarted.elapsed());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    match caught_up {
        Some(d) => {
            report.timings.convergence_s = Some(d.as_secs_f64());
            report.note(format!(
                "{old_svc} rejoined (leader {new_svc}, member {new_id}) and caught up {:.2} s after restart",
                d.as_secs_f64()
            ));
        }
        None => report.violation(format!(
            "{old_svc} did not catch up within 60 s of its restart"
        )),
    }

    let states = converge(ctx, report, &coll, Instant::now()).await;
    // Storage convergence is checked, but the scenario's convergence time
    // is the meta member's catch-up.
    if let Some(d) = caught_up {
        report.timings.convergence_s = Some(d.as_secs_f64());
    }
    let verdict = verify(ctx, report, &lb, &coll, &history).await?;
    if let Some(states) = states {
        check_total(report, &verdict, &states);
    }
    drop_collection(ctx, &coll).await;
    Ok(())
}
