//! `join-node` and `drain-node`: the cluster changes shape under load.
//!
//! - `join-node`: the cluster is shrunk to storage1-3 (storage4 and 5
//!   drained, stopped, removed through the gateway's routes); a collection
//!   of 6 shards, RF 2, is loaded with `--elastic-points` points; under
//!   writes and searches storage4 is started with no command at all, and
//!   the rebalancer moves shards to it until no transfer runs and every
//!   node's point count is within 20 % of the mean (bounded).
//! - `drain-node`: on the whole cluster, storage4 is drained through
//!   `POST /api/cluster/nodes/4/drain` under load; it ends with no
//!   replica, is stopped and removed (`DELETE /api/cluster/nodes/4`).
//!
//! Both end with the common checks: 0 acknowledged writes lost, 0 failed
//! searches, replicas converged, the longest gap between acknowledged
//! writes reported. The next scenario's preparation starts the stopped
//! nodes again (they register anew).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use protocol::NodeId;
use reqwest::Method;
use serde_json::json;

use super::elastic::{
    collection, finish, op, preload, report_balance, settings, shrink_to, start_nodes, wait_map,
    wait_nodes, within_of_mean, Load,
};
use super::{drop_collection, Ctx};
use crate::cluster::LB;
use crate::history::History;
use crate::report::ScenarioReport;

const SHARDS: u32 = 6;
const RF: u32 = 2;

/// Bound on the rebalancing after a join or a drain: generous for the
/// throttle (100 MB/s) and CI machines.
fn bound(points: u64) -> Duration {
    Duration::from_secs(180 + points / 500)
}

pub async fn join_node(ctx: &Ctx, report: &mut ScenarioReport) -> Result<()> {
    settings(ctx, json!({})).await?;
    shrink_to(ctx, report, &[1, 2, 3]).await?;
    wait_nodes(ctx, &[1, 2, 3], Duration::from_secs(60)).await?;
    let coll = collection(ctx, "join-node", SHARDS, RF).await?;
    let lb = ctx.cluster.gateway(LB)?;
    let history = History::new();
    let points = ctx.opts.elastic_points;
    preload(ctx, &lb, &coll, points, &history).await;
    report.note(format!(
        "{points} points preloaded on 3 nodes (6 shards, RF 2)"
    ));
    let completed_before = ctx.cluster.map().await?.transfers.completed;
    let load = Load::start(ctx, &lb, &coll, points, &history).await;

    report.event("start storage4", history.now());
    start_nodes(ctx, &[4]).await?;
    let joined = wait_nodes(ctx, &[1, 2, 3, 4], Duration::from_secs(90))
        .await
        .context("storage4 registering")?;
    report
        .timings
        .extra
        .insert("storage4 registered".into(), joined.as_secs_f64());
    // No command: the rebalancer alone moves shards to storage4.
    let mut last_counts = String::new();
    let mut balanced_after = None;
    let deadline = std::time::Instant::now() + bound(points);
    while std::time::Instant::now() < deadline {
        let map = ctx.cluster.map().await?;
        let quiet = super::elastic::running(&map, &coll).is_empty();
        let on4 = map.shards_on(NodeId(4)).len();
        if quiet && on4 > 0 {
            let counts = super::elastic::points_per_node(ctx, &coll).await?;
            last_counts = format!("{counts:?}");
            if within_of_mean(&counts, 0.2).is_ok() {
                balanced_after = Some(history.now());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let map = ctx.cluster.map().await?;
    let moved = map.transfers.completed - completed_before;
    report.note(format!(
        "{moved} transfer(s) completed after the join, {} failed in all",
        map.transfers.failed
    ));
    match balanced_after {
        Some(t) => {
            let since = report.events.get("start storage4").copied().unwrap_or(0.0);
            report
                .timings
                .extra
                .insert("join → balanced".into(), t.as_secs_f64() - since);
        }
        None => report.violation(format!(
            "not balanced within {:?} of the join; last per-node points {last_counts}",
            bound(points)
        )),
    }
    // Writes on through the end of the moves, then the checks.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let window = load.stop(&history).await;
    report_balance(ctx, report, &coll, true).await;
    finish(ctx, report, &lb, &coll, &history, window).await?;
    drop_collection(ctx, &coll).await;
    Ok(())
}

pub async fn drain_node(ctx: &Ctx, report: &mut ScenarioReport) -> Result<()> {
    settings(ctx, json!({})).await?;
    let coll = collection(ctx, "drain-node", SHARDS, RF).await?;
    let lb = ctx.cluster.gateway(LB)?;
    let history = History::new();
    let points = ctx.opts.elastic_points;
    preload(ctx, &lb, &coll, points, &history).await;
    let load = Load::start(ctx, &lb, &coll, points, &history).await;
    let held = ctx.cluster.map().await?.shards_on(NodeId(4)).len();
    report.event("drain storage4", history.now());
    let v = op(ctx, Method::POST, "/api/cluster/nodes/4/drain", None).await?;
    report.note(format!(
        "drain answered: {v}; storage4 held {held} replica(s)"
    ));
    let took = wait_map(ctx, bound(points), |m| {
        let left = m.shards_on(NodeId(4)).len();
        let moving = super::elastic::running(m, &coll).len();
        if left > 0 || moving > 0 {
            bail!("storage4 holds {left} replica(s), {moving} transfer(s) running");
        }
        Ok(())
    })
    .await;
    match took {
        Ok(t) => {
            report
                .timings
                .extra
                .insert("drain → empty".into(), t.as_secs_f64());
        }
        Err(e) => report.violation(format!("storage4 never emptied: {e:#}")),
    }
    let window = load.stop(&history).await;
    // Stopped first: a running node registers again after removal.
    let c = ctx.cluster.container("storage4")?;
    crate::fault::stop(&c, Duration::from_secs(10)).await?;
    match op(ctx, Method::DELETE, "/api/cluster/nodes/4", None).await {
        Ok(_) => {
            let gone = !ctx.cluster.map().await?.nodes.contains_key(&NodeId(4));
            if gone {
                report.note("storage4 removed from the map");
            } else {
                report.violation("storage4 still in the map after DELETE");
            }
        }
        Err(e) => report.violation(format!("remove storage4: {e:#}")),
    }
    ctx.cluster.refresh().await?;
    report_balance(ctx, report, &coll, false).await;
    finish(ctx, report, &lb, &coll, &history, window).await?;
    drop_collection(ctx, &coll).await;
    Ok(())
}
