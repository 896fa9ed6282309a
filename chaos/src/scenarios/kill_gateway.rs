//! Scenario 4: SIGKILL one of the two gateways behind the load balancer
//! under search load. After the client's retry policy, no search fails;
//! the killed gateway, restarted, becomes ready again.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use rand::seq::IndexedRandom;
use tokio::sync::watch;

use super::{drop_collection, new_collection, verify, Ctx};
use crate::cluster::{GATEWAYS, LB};
use crate::fault;
use crate::history::{self, History};
use crate::report::ScenarioReport;
use crate::workload::{spawn_searches, spawn_writes, SearchLoad, WriteLoad};

const PRELOAD: u64 = 2_000;

pub async fn run(ctx: &Ctx, report: &mut ScenarioReport) -> Result<()> {
    let cluster = &ctx.cluster;
    let coll = new_collection(ctx, "kill-gateway", 3, 3).await?;
    let lb = cluster.gateway(LB)?;
    let history = History::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let _ = spawn_writes(
        WriteLoad {
            gateway: lb.clone(),
            collection: coll.clone(),
            first_id: 0,
            count: PRELOAD,
            batch: 20,
            concurrency: 4,
            consistency: "majority",
            max_time: Duration::from_secs(60),
            retry: ctx.retry(),
            pause: Duration::ZERO,
        },
        history.clone(),
        stop_rx.clone(),
    )
    .await;
    report.note(format!("preloaded {} points", history.acked_points()));

    let searches = spawn_searches(
        SearchLoad {
            gateway: lb.clone(),
            collection: coll.clone(),
            count: 200_000,
            concurrency: 4,
            max_time: Duration::from_secs(90),
            retry: ctx.retry(),
            pause: Duration::from_millis(5),
            id_range: PRELOAD,
        },
        history.clone(),
        stop_rx.clone(),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let victim_svc = *GATEWAYS
        .choose(&mut rand::rng())
        .ok_or_else(|| anyhow!("no gateway"))?;
    let victim = cluster.container(victim_svc)?;
    fault::kill(&victim).await?;
    let kill_at = history.now();
    report.note(format!("SIGKILL {victim_svc}"));
    tokio::time::sleep(Duration::from_secs(10)).await;

    fault::start(&victim).await?;
    let restarted = Instant::now();
    cluster.refresh().await?;
    let gw = cluster.gateway(victim_svc)?;
    let mut ready = None;
    while restarted.elapsed() < Duration::from_secs(30) {
        if gw.ready().await {
            ready = Some(restarted.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match ready {
        Some(d) => {
            report.timings.convergence_s = Some(d.as_secs_f64());
            report.note(format!(
                "{victim_svc} ready {:.2} s after restart",
                d.as_secs_f64()
            ));
        }
        None => report.violation(format!("{victim_svc} not ready 30 s after restart")),
    }
    // Searches go on with both gateways back behind the load balancer.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _ = stop_tx.send(true);
    let _ = searches.await;

    let all = history.searches();
    let stats = history::search_stats(&all);
    // The last search that needed a retry or took over a second after
    // the kill: from then on the load balancer routed around the gateway.
    report.timings.detection_s = all
        .iter()
        .filter(|s| {
            s.started >= kill_at
                && s.finished < kill_at + Duration::from_secs(10)
                && (s.attempts > 1 || s.finished - s.started > Duration::from_secs(1))
        })
        .map(|s| (s.finished - kill_at).as_secs_f64())
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    report.note(format!(
        "{} searches, {} needed a retry, slowest {:.2} s",
        stats.attempted, stats.retried, stats.max_latency_s
    ));
    if stats.failed > 0 {
        report.violation(format!(
            "{} searches failed after retries: {:?}",
            stats.failed, stats.sample_errors
        ));
    }
    if stats.ok == 0 {
        report.violation("no search succeeded");
    }
    report.searches = stats;
    verify(ctx, report, &lb, &coll, &history).await?;
    drop_collection(ctx, &coll).await;
    Ok(())
}
