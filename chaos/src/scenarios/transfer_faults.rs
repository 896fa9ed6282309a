//! SIGKILL in the middle of a shard transfer: `kill-transfer-source`,
//! `kill-transfer-target`, `kill-meta-leader-mid-transfer`.
//!
//! A collection of 4 shards at RF 2 is loaded, transfers are throttled
//! (`rebalancing.throttle_mb_per_sec` 0.5) and its replication factor is
//! raised to 3 through `PATCH /collections/{name}`: the controller starts
//! `Replicate` transfers from each shard's primary (the source, which
//! streams) to a third node. Once one has copied something, the victim is
//! killed (the source, the target, or the meta-service leader), and
//! started again 10 s later. Then, bounded: the killed transfer has ended
//! (completed, or `Failed` with a reason), no transfer stays stuck, and
//! every shard reaches RF 3 (a failed transfer is planned again); no node
//! keeps a replica directory the map does not assign it; 0 acknowledged
//! writes lost; replicas converge.

use std::time::Duration;

use anyhow::{anyhow, Result};
use protocol::cluster::TransferOutcome;
use reqwest::Method;
use serde_json::json;

use super::elastic::{
    check_no_orphans, collection, finish, op, preload, record_of, settings, settled_at_rf,
    wait_map, wait_mid_transfer, Load,
};
use super::{drop_collection, Ctx};
use crate::cluster::{node_service, LB};
use crate::fault;
use crate::history::History;
use crate::report::ScenarioReport;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Victim {
    Source,
    Target,
    MetaLeader,
}

const SHARDS: u32 = 4;
/// Time the victim stays down.
const DOWN_FOR: Duration = Duration::from_secs(10);

pub async fn run(ctx: &Ctx, report: &mut ScenarioReport, victim: Victim) -> Result<()> {
    // Slow transfers, so a fault lands in the middle of one.
    settings(ctx, json!({"rebalancing.throttle_mb_per_sec": 0.5})).await?;
    let coll = collection(ctx, &format!("kill-{victim:?}").to_lowercase(), SHARDS, 2).await?;
    let lb = ctx.cluster.gateway(LB)?;
    let history = History::new();
    let points = ctx.opts.elastic_points;
    preload(ctx, &lb, &coll, points, &history).await;
    let load = Load::start(ctx, &lb, &coll, points, &history).await;

    op(
        ctx,
        Method::PATCH,
        &format!("/collections/{coll}"),
        Some(json!({"params": {"replication_factor": 3}})),
    )
    .await?;
    let (shard, mig) = wait_mid_transfer(ctx, &coll, Duration::from_secs(120)).await?;
    report.note(format!(
        "transfer {coll}/{shard} {}→{} at {:?}, {}/{} points when the fault hit",
        mig.from, mig.to, mig.phase, mig.points_copied, mig.points_total
    ));
    let service = match victim {
        Victim::Source => node_service(mig.from.0),
        Victim::Target => node_service(mig.to.0),
        Victim::MetaLeader => ctx
            .cluster
            .meta_leader()
            .await
            .map(|(svc, _)| svc)
            .ok_or_else(|| anyhow!("no meta leader"))?,
    };
    let c = ctx.cluster.container(&service)?;
    report.event(&format!("SIGKILL {service}"), history.now());
    fault::kill(&c).await?;
    tokio::time::sleep(DOWN_FOR).await;
    fault::start(&c).await?;
    ctx.cluster.refresh().await?;
    report.event(&format!("start {service}"), history.now());
    // Back to full speed: what is left to show is that nothing is stuck.
    settings(ctx, json!({})).await?;

    // The killed transfer ends one way or the other...
    let mut outcome = None;
    let ended = wait_map(ctx, Duration::from_secs(180), |m| {
        outcome = record_of(m, &coll, shard, &mig).map(|r| r.outcome.clone());
        match &outcome {
            Some(_) => Ok(()),
            None => anyhow::bail!("transfer {coll}/{shard} to {} not finished", mig.to),
        }
    })
    .await;
    match (ended, outcome) {
        (Ok(t), Some(o)) => {
            report.note(format!(
                "the killed transfer ended {} s after the restart: {}",
                t.as_secs(),
                match &o {
                    TransferOutcome::Completed => "completed".to_string(),
                    TransferOutcome::Failed { reason } => format!("failed ({reason})"),
                }
            ));
        }
        (Err(e), _) => report.violation(format!("the killed transfer is stuck: {e:#}")),
        (Ok(_), None) => report.violation("the killed transfer has no record"),
    }
    // ... and every shard reaches the new factor (a failed transfer is
    // planned again), with no transfer left running.
    match wait_map(ctx, Duration::from_secs(300), |m| {
        settled_at_rf(m, &coll, 3)
    })
    .await
    {
        Ok(t) => {
            report
                .timings
                .extra
                .insert("restart → RF 3 everywhere".into(), t.as_secs_f64());
        }
        Err(e) => report.violation(format!("not at RF 3: {e:#}")),
    }
    let map = ctx.cluster.map().await?;
    report.note(format!(
        "transfers in all: {} completed, {} failed",
        map.transfers.completed, map.transfers.failed
    ));
    let window = load.stop(&history).await;
    check_no_orphans(ctx, report, &coll).await;
    finish(ctx, report, &lb, &coll, &history, window).await?;
    drop_collection(ctx, &coll).await;
    Ok(())
}
