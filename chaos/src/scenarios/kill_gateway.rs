//! Scenario 4: SIGKILL one of the two gateways behind the load balancer
//! under search load. After the client's retry policy, no search fails.
//! Detection: kill → the load balancer marks the gateway down; recovery:
//! restart → the load balancer has it back in rotation.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use rand::seq::IndexedRandom;
use tokio::sync::watch;

use super::{drop_collection, new_collection, preload, report_searches, verify, Ctx};
use crate::cluster::{GATEWAYS, LB};
use crate::fault;
use crate::history::History;
use crate::report::ScenarioReport;
use crate::workload::{spawn_searches, SearchLoad};

const PRELOAD: u64 = 2_000;

pub async fn run(ctx: &Ctx, report: &mut ScenarioReport) -> Result<()> {
    let cluster = &ctx.cluster;
    let coll = new_collection(ctx, "kill-gateway", 3, 3).await?;
    let lb = cluster.gateway(LB)?;
    let history = History::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    preload(ctx, &lb, &coll, PRELOAD, &history).await;
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
    report.event("kill", kill_at);
    report.note(format!("SIGKILL {victim_svc}"));
    // Detection: until the load balancer marks the gateway down.
    let killed = Instant::now();
    let mut down = None;
    while killed.elapsed() < Duration::from_secs(10) {
        if let Ok(st) = cluster.lb_server_status(victim_svc).await {
            if st.starts_with("DOWN") {
                down = Some(killed.elapsed());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    match down {
        Some(d) => report.timings.detection_s = Some(d.as_secs_f64()),
        None => report.violation(format!("the load balancer never marked {victim_svc} down")),
    }
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(killed.elapsed())).await;
    fault::start(&victim).await?;
    let restarted = Instant::now();
    report.event("restart", history.now());
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
        Some(d) => report.note(format!(
            "{victim_svc} ready {:.2} s after restart",
            d.as_secs_f64()
        )),
        None => report.violation(format!("{victim_svc} not ready 30 s after restart")),
    }
    // Back in rotation: the load balancer marks it up again.
    let mut up = None;
    while restarted.elapsed() < Duration::from_secs(30) {
        if let Ok(st) = cluster.lb_server_status(victim_svc).await {
            if st == "UP" {
                up = Some(restarted.elapsed());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    match up {
        Some(d) => report.timings.convergence_s = Some(d.as_secs_f64()),
        None => report.violation(format!(
            "the load balancer did not take {victim_svc} back within 30 s of its restart"
        )),
    }
    // Searches go on with both gateways back behind the load balancer.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _ = stop_tx.send(true);
    let _ = searches.await;

    let stats = report_searches(report, &history);
    if stats.ok == 0 {
        report.violation("no search succeeded");
    }
    report.searches = stats;
    verify(ctx, report, &lb, &coll, &history).await?;
    drop_collection(ctx, &coll).await;
    Ok(())
}
