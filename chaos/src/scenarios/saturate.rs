//! `saturate`: no fault at all, only load. A bulk ingest (batches of 500,
//! 6 in flight, at most 60 s) into a collection of 3 shards at RF 3 runs
//! beside single-point writes and searches, so that ingest, index builds
//! and searches fight for the machine's cores. A healthy storage node must
//! not be marked dead nor a primary replaced meanwhile (the runner counts
//! both for every scenario and, as this one faults nothing, any dead mark
//! is a violation); then the common checks: 0 lost, 0 failed searches,
//! replicas converged, the longest gap between acknowledged writes.

use std::time::Duration;

use anyhow::Result;
use tokio::sync::watch;

use super::elastic::{finish, Load};
use super::{drop_collection, Ctx};
use crate::cluster::LB;
use crate::history::History;
use crate::report::ScenarioReport;
use crate::workload::{spawn_writes, WriteLoad};

/// Points of the bulk ingest; the single-point writes take ids above.
const BULK: u64 = 150_000;

pub async fn run(ctx: &Ctx, report: &mut ScenarioReport) -> Result<()> {
    let coll = super::elastic::collection(ctx, "saturate", 3, 3).await?;
    let lb = ctx.cluster.gateway(LB)?;
    let history = History::new();
    let load = Load::start(ctx, &lb, &coll, BULK, &history).await;
    let (_keep, stop) = watch::channel(false);
    let bulk = WriteLoad {
        gateway: lb.clone(),
        collection: coll.clone(),
        first_id: 0,
        count: BULK,
        batch: 500,
        concurrency: 6,
        consistency: "majority",
        max_time: Duration::from_secs(60),
        retry: ctx.retry(),
        pause: Duration::ZERO,
        filter: None,
    };
    let bulk_from = history.now();
    let _ = spawn_writes(bulk, history.clone(), stop).await;
    let took = (history.now() - bulk_from).as_secs_f64();
    let acked = history.acked_points();
    report.note(format!(
        "bulk ingest beside writes and searches: {acked} points acknowledged in all, the bulk part over {took:.1} s"
    ));
    // Index builds go on after the ingest: keep the load through them.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let window = load.stop(&history).await;
    finish(ctx, report, &lb, &coll, &history, window).await?;
    drop_collection(ctx, &coll).await;
    Ok(())
}
