//! `move-rf1` and `change-rf`: transfers an operator asks for, under load.
//!
//! - `move-rf1`: a collection of 3 shards at RF 1; under writes at
//!   `majority`, shard 0 is moved with Qdrant's `move_shard` to a node
//!   that does not hold it; the transfer completes (bounded) and not one
//!   write fails (the target counts in no quorum until its switch).
//!   Automatic rebalancing is off meanwhile, so only this move runs.
//! - `change-rf`: a collection of 4 shards at RF 1; under load its
//!   replication factor goes to 3 (`PATCH /collections/{name}`; the
//!   controller adds replicas by transfers) and then down to 2 (it drops
//!   the surplus); each step is bounded.
//!
//! Both end with the common checks (0 lost, converged, 0 failed searches).

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use protocol::cluster::TransferOutcome;
use protocol::ShardId;
use reqwest::Method;
use serde_json::json;

use super::elastic::{finish, op, preload, settings, settled_at_rf, wait_map, Load};
use super::{drop_collection, Ctx};
use crate::cluster::LB;
use crate::history::History;
use crate::report::ScenarioReport;

pub async fn move_rf1(ctx: &Ctx, report: &mut ScenarioReport) -> Result<()> {
    settings(ctx, json!({"rebalancing.auto_enabled": false})).await?;
    let coll = super::elastic::collection(ctx, "move-rf1", 3, 1).await?;
    let lb = ctx.cluster.gateway(LB)?;
    let history = History::new();
    let points = ctx.opts.elastic_points;
    preload(ctx, &lb, &coll, points, &history).await;
    let map = ctx.cluster.map().await?;
    let shard = map
        .shard(&coll, ShardId(0))
        .ok_or_else(|| anyhow!("{coll}/0 not in the map"))?;
    let from = shard
        .primary
        .ok_or_else(|| anyhow!("{coll}/0 has no primary"))?;
    let to = map
        .nodes
        .keys()
        .copied()
        .find(|n| !shard.holds(*n))
        .ok_or_else(|| anyhow!("no node without {coll}/0"))?;
    let load = Load::start(ctx, &lb, &coll, points, &history).await;
    let writes_before = history.writes().len();
    report.event("move_shard", history.now());
    op(
        ctx,
        Method::POST,
        &format!("/collections/{coll}/cluster"),
        Some(json!({"move_shard": {"shard_id": 0, "from_peer_id": from.0, "to_peer_id": to.0}})),
    )
    .await?;
    let mut outcome = None;
    let took = wait_map(ctx, Duration::from_secs(180), |m| {
        outcome = m
            .transfers
            .recent
            .iter()
            .rev()
            .find(|r| r.collection == coll && r.shard == ShardId(0) && r.to == to)
            .map(|r| (r.outcome.clone(), r.points_copied, r.bytes_copied));
        if outcome.is_none() {
            bail!("the move of {coll}/0 {from}→{to} has not ended");
        }
        Ok(())
    })
    .await;
    match (took, outcome) {
        (Ok(t), Some((TransferOutcome::Completed, points, bytes))) => {
            report
                .timings
                .extra
                .insert("move of shard 0".into(), t.as_secs_f64());
            report.note(format!(
                "{coll}/0 moved {from}→{to}: {points} points, {bytes} bytes in {:.1} s",
                t.as_secs_f64()
            ));
        }
        (Ok(_), Some((TransferOutcome::Failed { reason }, ..))) => {
            report.violation(format!("the move failed: {reason}"))
        }
        (Err(e), _) => report.violation(format!("the move did not end: {e:#}")),
        (Ok(_), None) => report.violation("the move has no record"),
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let window = load.stop(&history).await;
    let failed: Vec<_> = history.writes()[writes_before..]
        .iter()
        .filter(|w| !w.acked())
        .map(|w| format!("{:?}: {}", w.ids, w.error.clone().unwrap_or_default()))
        .collect();
    if !failed.is_empty() {
        report.violation(format!(
            "{} write(s) failed during the move, e.g. {:?}",
            failed.len(),
            &failed[..failed.len().min(3)]
        ));
    }
    finish(ctx, report, &lb, &coll, &history, window).await?;
    drop_collection(ctx, &coll).await;
    settings(ctx, json!({})).await?;
    Ok(())
}

pub async fn change_rf(ctx: &Ctx, report: &mut ScenarioReport) -> Result<()> {
    settings(ctx, json!({})).await?;
    let coll = super::elastic::collection(ctx, "change-rf", 4, 1).await?;
    let lb = ctx.cluster.gateway(LB)?;
    let history = History::new();
    let points = ctx.opts.elastic_points;
    preload(ctx, &lb, &coll, points, &history).await;
    let load = Load::start(ctx, &lb, &coll, points, &history).await;
    let bound = Duration::from_secs(240 + points / 250);
    for rf in [3u32, 2] {
        report.event(&format!("replication_factor {rf}"), history.now());
        op(
            ctx,
            Method::PATCH,
            &format!("/collections/{coll}"),
            Some(json!({"params": {"replication_factor": rf}})),
        )
        .await?;
        match wait_map(ctx, bound, |m| settled_at_rf(m, &coll, rf as usize)).await {
            Ok(t) => {
                report
                    .timings
                    .extra
                    .insert(format!("RF → {rf}"), t.as_secs_f64());
            }
            Err(e) => {
                report.violation(format!("RF {rf} not reached: {e:#}"));
                break;
            }
        }
    }
    let window = load.stop(&history).await;
    finish(ctx, report, &lb, &coll, &history, window).await?;
    drop_collection(ctx, &coll).await;
    Ok(())
}
