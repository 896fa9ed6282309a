//! `chaos run`: starts the compose cluster, runs the scenarios, prints the
//! summary table, writes the JSON report; exits non-zero when a scenario
//! lost an acknowledged write or broke its guarantee.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use chaos::client::RetryPolicy;
use chaos::cluster::Cluster;
use chaos::compose::Compose;
use chaos::report::{render_table, SuiteReport};
use chaos::scenarios::{self, Ctx, Options, Scenario};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Chaos suite against the docker-compose cluster")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the cluster, run scenarios, report.
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// `all` (kill-storage, partition, kill-meta-leader, kill-gateway,
    /// rolling-restart, hung-primary, saturate, degraded-network,
    /// disk-full), `elastic` (join-node, drain-node,
    /// kill-transfer-source, kill-transfer-target,
    /// kill-meta-leader-mid-transfer, move-rf1, change-rf), or a
    /// comma-separated list of names.
    #[arg(long, default_value = "all")]
    scenario: String,
    /// docker-compose project name.
    #[arg(long, default_value = "vdbchaos")]
    project: String,
    #[arg(long, default_value = "chaos-report.json")]
    report: PathBuf,
    /// Compose files, in order.
    #[arg(long = "compose-file", default_values = ["docker-compose.yml", "docker/chaos.compose.yml"])]
    compose_files: Vec<PathBuf>,
    /// Directory the compose files are relative to.
    #[arg(long, default_value = ".")]
    workdir: PathBuf,
    /// Use a cluster that is already up (do not run `up -d`).
    #[arg(long)]
    no_up: bool,
    /// Leave the cluster running at the end (default: `down -v`).
    #[arg(long)]
    keep_cluster: bool,
    /// Points written in kill-storage.
    #[arg(long, default_value_t = 10_000)]
    writes: u64,
    /// Milliseconds after a cut within which the minority may still
    /// acknowledge (its write leases); later acknowledgements fail the run.
    #[arg(long, default_value_t = 5_000)]
    lease_bound_ms: u64,
    /// Where service logs go when a scenario fails.
    #[arg(long, default_value = "chaos-logs")]
    logs_dir: PathBuf,
    /// Points loaded before an elastic scenario changes the cluster.
    #[arg(long, default_value_t = 20_000)]
    elastic_points: u64,
    /// Minutes `soak` runs (one random fault per minute).
    #[arg(long, default_value_t = 30)]
    soak_minutes: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args).await,
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("chaos: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Runs the suite; `Ok(passed)`.
async fn run(args: RunArgs) -> Result<bool> {
    let t0 = Instant::now();
    let scenarios = Scenario::parse_list(&args.scenario)?;
    let compose = Compose {
        project: args.project.clone(),
        files: args.compose_files.clone(),
        workdir: args.workdir.clone(),
    };
    let retry = RetryPolicy::default();
    let cluster = Cluster::new(compose.clone(), retry)?;
    let mut suite = SuiteReport {
        started_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
        commit: git_commit(),
        project: args.project.clone(),
        retry_policy: retry.describe(),
        ..SuiteReport::default()
    };
    suite
        .settings
        .insert("writes".into(), args.writes.to_string());
    suite
        .settings
        .insert("lease_bound_ms".into(), args.lease_bound_ms.to_string());
    suite
        .settings
        .insert("elastic_points".into(), args.elastic_points.to_string());

    let outcome = async {
        if !args.no_up {
            tracing::info!("docker-compose up -d (project {})", args.project);
            compose.up().await.context("start the compose cluster")?;
        }
        cluster.refresh().await?;
        // A kept cluster may have nodes an elastic scenario stopped.
        let started = cluster.start_stopped().await?;
        if !started.is_empty() {
            tracing::info!("started {started:?}, left stopped by an earlier run");
        }
        let settled = cluster
            .wait_settled(Duration::from_secs(180), false)
            .await
            .context("the cluster never became whole after start")?;
        suite.cluster_start_s = Some(t0.elapsed().as_secs_f64());
        tracing::info!(
            "cluster whole {:.1} s after start ({:.1} s waiting)",
            t0.elapsed().as_secs_f64(),
            settled.as_secs_f64()
        );
        let ctx = Ctx {
            cluster: cluster.clone(),
            opts: Options {
                writes: args.writes,
                lease_bound: Duration::from_millis(args.lease_bound_ms),
                settle_timeout: Duration::from_secs(120),
                converge_timeout: Duration::from_secs(60),
                logs_dir: args.logs_dir.clone(),
                elastic_points: args.elastic_points,
                soak: Duration::from_secs(args.soak_minutes * 60),
            },
        };
        for s in &scenarios {
            let r = scenarios::run(&ctx, *s).await;
            suite.scenarios.push(r);
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = &outcome {
        tracing::error!("{e:#}");
        cluster
            .dump_logs(&args.logs_dir, "start", &chaos::cluster::services())
            .await;
    }
    if !args.keep_cluster {
        tracing::info!("docker-compose down -v");
        if let Err(e) = compose.down().await {
            tracing::warn!("tear down: {e:#}");
        }
    }
    suite.total_s = t0.elapsed().as_secs_f64();
    suite.passed = outcome.is_ok()
        && suite.scenarios.len() == scenarios.len()
        && suite.scenarios.iter().all(|s| s.passed);

    let table = render_table(&suite.scenarios);
    println!("\n{table}");
    println!("client retry policy: {}", suite.retry_policy);
    for s in &suite.scenarios {
        for n in &s.notes {
            println!("- {}: {n}", s.name);
        }
        for l in &s.lost_detail {
            println!("- {}: LOST {l}", s.name);
        }
    }
    println!(
        "\nchaos suite {} in {:.0} s (cluster whole after {})",
        if suite.passed { "PASSED" } else { "FAILED" },
        suite.total_s,
        suite
            .cluster_start_s
            .map_or("–".to_string(), |s| format!("{s:.0} s"))
    );
    let json = serde_json::to_string_pretty(&suite).context("serialise the report")?;
    std::fs::write(&args.report, json)
        .with_context(|| format!("write {}", args.report.display()))?;
    outcome?;
    Ok(suite.passed)
}
