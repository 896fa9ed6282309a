//! Scenario 5: restart every storage node, one at a time (SIGTERM, then
//! start), under mixed load through the load balancer. The next node goes
//! only when the map is whole again (node alive, every replica active).
//! No search fails after the client's retry policy; no acknowledged write
//! is lost; at the end every replica converges.

use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::watch;

use super::{
    check_total, converge, drop_collection, new_collection, preload, report_searches, verify, Ctx,
};
use crate::cluster::{LB, STORAGE};
use crate::fault;
use crate::history::{self, History};
use crate::report::ScenarioReport;
use crate::workload::{spawn_searches, spawn_writes, SearchLoad, WriteLoad};

const SHARDS: u32 = 5;
const PRELOAD: u64 = 1_000;

pub async fn run(ctx: &Ctx, report: &mut ScenarioReport) -> Result<()> {
    let cluster = &ctx.cluster;
    let coll = new_collection(ctx, "rolling-restart", SHARDS, 3).await?;
    let lb = cluster.gateway(LB)?;
    let history = History::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    preload(ctx, &lb, &coll, PRELOAD, &history).await;
    let writes = spawn_writes(
        WriteLoad {
            gateway: lb.clone(),
            collection: coll.clone(),
            first_id: PRELOAD,
            count: 900_000,
            batch: 1,
            concurrency: 3,
            consistency: "majority",
            max_time: Duration::from_secs(400),
            retry: ctx.retry(),
            pause: Duration::from_millis(10),
            filter: None,
        },
        history.clone(),
        stop_rx.clone(),
    );
    let searches = spawn_searches(
        SearchLoad {
            gateway: lb.clone(),
            collection: coll.clone(),
            count: 900_000,
            concurrency: 3,
            max_time: Duration::from_secs(400),
            retry: ctx.retry(),
            pause: Duration::from_millis(10),
            id_range: PRELOAD,
        },
        history.clone(),
        stop_rx.clone(),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let load_start = history.now();

    let mut slowest = Duration::ZERO;
    let mut times = Vec::new();
    for svc in STORAGE {
        let c = cluster.container(svc)?;
        let t0 = Instant::now();
        report.event(&format!("stop {svc}"), history.now());
        fault::stop(&c, Duration::from_secs(10)).await?;
        let stopped = t0.elapsed();
        fault::start(&c).await?;
        cluster.refresh().await?;
        let back = cluster.wait_node_back(svc, Duration::from_secs(90)).await;
        match back {
            Ok(d) => {
                slowest = slowest.max(d);
                times.push(format!(
                    "{svc} {:.1} s (stop {:.1} s)",
                    d.as_secs_f64(),
                    stopped.as_secs_f64()
                ));
            }
            Err(e) => {
                report.violation(format!("{e:#}"));
                break;
            }
        }
    }
    report.note(format!(
        "restart → map whole again (node alive, replicas active): {}",
        times.join(", ")
    ));
    report
        .timings
        .extra
        .insert("slowest node back".into(), slowest.as_secs_f64());

    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop_tx.send(true);
    let _ = writes.await;
    let _ = searches.await;
    let load_end = history.now();
    let ended = Instant::now();
    let all_writes = history.writes();
    report.record_ack_gap(history::longest_ack_gap(&all_writes, load_start, load_end));

    let stats = report_searches(report, &history);
    report.searches = stats;
    let states = converge(ctx, report, &coll, ended).await;
    let verdict = verify(ctx, report, &lb, &coll, &history).await?;
    if let Some(states) = states {
        check_total(report, &verdict, &states);
    }
    drop_collection(ctx, &coll).await;
    Ok(())
}
