//! `soak`: a long run (30 minutes by default, `--soak-minutes`) of mixed
//! writes and searches with a random fault on a random storage node every
//! minute: SIGKILL (restarted 15 s later), SIGSTOP for 8 s, a full
//! network cut for 10 s, or a graceful restart. Runnable by name, not part
//! of `all` (too long for CI).
//!
//! Each minute is a round: the load starts, the fault lands, the node
//! comes back, the load stops, and every replica must agree (count and
//! checksum) before the next round — convergence is checked after every
//! fault, not once at the end. At the end every acknowledged write of
//! every round is read back. The report counts faults by kind, dead
//! marks and primary changes, and gives the longest gap between
//! acknowledged writes over the whole run.

use std::time::{Duration, Instant};

use anyhow::Result;
use rand::seq::IndexedRandom;

use super::elastic::Load;
use super::{drop_collection, preload, report_searches, verify, Ctx};
use crate::cluster::{node_service, LB};
use crate::fault::{self, Partition};
use crate::history::{self, History};
use crate::report::ScenarioReport;
use crate::timeline;

const SHARDS: u32 = 5;
const ROUND: Duration = Duration::from_secs(60);
const PRELOAD: u64 = 5_000;
/// Ids of round `r` start at `(r + 1) * ROUND_IDS`.
const ROUND_IDS: u64 = 1_000_000;

#[derive(Clone, Copy, Debug)]
enum Fault {
    Kill,
    Hang,
    Cut,
    Restart,
}

impl Fault {
    const ALL: [Fault; 4] = [Fault::Kill, Fault::Hang, Fault::Cut, Fault::Restart];
}

/// Injects `fault` on `service` and undoes it; returns when the node is
/// running (and reachable) again.
async fn inject(ctx: &Ctx, fault: Fault, service: &str) -> Result<()> {
    let cluster = &ctx.cluster;
    let c = cluster.container(service)?;
    match fault {
        Fault::Kill => {
            fault::kill(&c).await?;
            tokio::time::sleep(Duration::from_secs(15)).await;
            fault::start(&c).await?;
        }
        Fault::Hang => {
            crate::compose::docker(&["kill", "-s", "STOP", &c.id], Duration::from_secs(30)).await?;
            tokio::time::sleep(Duration::from_secs(8)).await;
            crate::compose::docker(&["kill", "-s", "CONT", &c.id], Duration::from_secs(30)).await?;
        }
        Fault::Cut => {
            let others = cluster.others(service);
            let mut cut = Partition::apply(std::slice::from_ref(&c), &others).await?;
            tokio::time::sleep(Duration::from_secs(10)).await;
            cut.heal().await?;
        }
        Fault::Restart => {
            fault::stop(&c, Duration::from_secs(10)).await?;
            fault::start(&c).await?;
        }
    }
    cluster.refresh().await
}

pub async fn run(ctx: &Ctx, report: &mut ScenarioReport) -> Result<()> {
    let cluster = &ctx.cluster;
    let coll = super::elastic::collection(ctx, "soak", SHARDS, 3).await?;
    let lb = cluster.gateway(LB)?;
    let history = History::new();
    preload(ctx, &lb, &coll, PRELOAD, &history).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (samples, watcher) = cluster.spawn_map_watcher(history.clone(), stop_rx);
    let rounds = (ctx.opts.soak.as_secs() / ROUND.as_secs()).max(1);
    let started = history.now();
    let mut counts = [0u32; 4];
    let mut slowest_convergence = Duration::ZERO;
    for round in 0..rounds {
        let round_started = Instant::now();
        let storage: Vec<String> = (1..=5).map(node_service).collect();
        let victim = storage
            .choose(&mut rand::rng())
            .cloned()
            .unwrap_or_else(|| node_service(1));
        let kind = *Fault::ALL.choose(&mut rand::rng()).unwrap_or(&Fault::Kill);
        counts[kind as usize] += 1;
        let load = Load::start(ctx, &lb, &coll, (round + 1) * ROUND_IDS, &history).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        report.event(&format!("round {round}: {kind:?} {victim}"), history.now());
        let injected = inject(ctx, kind, &victim).await;
        // Keep the load on while the node comes back.
        let back = cluster
            .wait_node_back(&victim, Duration::from_secs(60))
            .await;
        let rest = ROUND.saturating_sub(round_started.elapsed() + Duration::from_secs(10));
        tokio::time::sleep(rest).await;
        load.stop(&history).await;
        if let Err(e) = injected {
            report.violation(format!("round {round}: {kind:?} on {victim} failed: {e:#}"));
        }
        if let Err(e) = back {
            report.violation(format!("round {round}: {victim} not back: {e:#}"));
        }
        let settle = Instant::now();
        match cluster
            .wait_converged(&coll, ctx.opts.converge_timeout)
            .await
        {
            Ok(_) => slowest_convergence = slowest_convergence.max(settle.elapsed()),
            Err(e) => report.violation(format!(
                "round {round}: replicas did not converge after {kind:?} on {victim}: {e:#}"
            )),
        }
        tracing::info!(
            "soak round {}/{rounds}: {kind:?} on {victim}, {} acknowledged so far",
            round + 1,
            history.acked_points()
        );
    }
    let ended = history.now();
    let _ = stop_tx.send(true);
    let _ = watcher.await;
    let changes = timeline::changes(&samples.lock());
    report.note(format!(
        "{rounds} rounds: {} kills, {} hangs, {} cuts, {} restarts; {} primary change(s), \
         dead marks {:?}; slowest convergence after a round {:.1} s",
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        changes.primary_changes,
        changes.dead_marks,
        slowest_convergence.as_secs_f64()
    ));
    report.timings.convergence_s = Some(slowest_convergence.as_secs_f64());
    report.record_ack_gap(history::longest_ack_gap(&history.writes(), started, ended));
    report_searches(report, &history);
    verify(ctx, report, &lb, &coll, &history).await?;
    drop_collection(ctx, &coll).await;
    Ok(())
}
