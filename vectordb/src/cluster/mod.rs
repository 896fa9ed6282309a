//! `vectordb cluster`: operating an elastic cluster through a gateway's
//! HTTP routes (never the meta-service directly): status, nodes,
//! transfers with live progress bars, drain, remove, move, replicate,
//! abort, drop, rebalance, settings and the replication factor.
//!
//! `--wait` (and `transfers --watch`) follows the transfers it started
//! until they end; a transfer that ended `Failed` makes the command exit
//! non-zero with its reason.

mod http;
mod watch;

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use gateway::transfers::{failure_reason, kind_name, phase_name};
use protocol::cluster::TransferRecord;
use reqwest::Method;
use serde_json::{json, Value};

use http::Api;
use watch::{label, Key, Watcher, POLL};

#[derive(Args, Debug)]
pub struct ClusterArgs {
    /// The gateway's REST address.
    #[arg(long, env = "VECTORDB_URL", default_value = "http://127.0.0.1:15001")]
    url: String,
    /// The gateway's API key (read-write for commands that change the cluster).
    #[arg(long, env = "VECTORDB_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Args, Debug, Clone, Copy)]
struct Wait {
    /// Follow the transfers with progress bars until they end.
    #[arg(long)]
    wait: bool,
    /// Give up waiting after this many seconds (exit non-zero).
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Health, nodes, shards and transfers in one screen.
    Status,
    /// Storage nodes: state, replicas, primaries, transfers in and out.
    Nodes,
    /// Running transfers with progress, and the last finished ones.
    Transfers {
        /// Show live progress bars until no transfer is running.
        #[arg(long)]
        watch: bool,
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
    /// Move every replica off a node (it keeps serving meanwhile).
    Drain {
        node: u64,
        #[command(flatten)]
        wait: Wait,
    },
    /// Forget a node that holds no replica (drain it first).
    Remove { node: u64 },
    /// Move a shard's replica from one node to another.
    Move {
        collection: String,
        shard: u32,
        from: u64,
        to: u64,
        #[command(flatten)]
        wait: Wait,
    },
    /// Copy a shard's replica to another node (the source keeps its own).
    Replicate {
        collection: String,
        shard: u32,
        from: u64,
        to: u64,
        #[command(flatten)]
        wait: Wait,
    },
    /// Abort the running transfer of a shard from one node to another.
    Abort {
        collection: String,
        shard: u32,
        from: u64,
        to: u64,
    },
    /// Drop one replica of a shard (never the last).
    Drop {
        collection: String,
        shard: u32,
        node: u64,
    },
    /// Plan and start a rebalance now.
    Rebalance {
        #[command(flatten)]
        wait: Wait,
    },
    /// The rebalancing settings in force.
    Settings,
    /// Change a rebalancing setting (`auto_enabled`, `trigger_threshold`,
    /// `max_concurrent_migrations`, `throttle_mb_per_sec`, `stall_after_ms`,
    /// `min_imbalance_bytes`;
    /// the `rebalancing.` prefix is optional).
    Set { key: String, value: String },
    /// Change a collection's replication factor (replicas are added or
    /// dropped by transfers).
    ReplicationFactor { collection: String, factor: u32 },
}

pub async fn run(args: ClusterArgs) -> Result<()> {
    let api = Api::new(&args.url, args.api_key.clone())?;
    match args.command {
        ClusterCommand::Status => status(&api).await,
        ClusterCommand::Nodes => nodes(&api).await,
        ClusterCommand::Transfers { watch, timeout } => {
            if watch {
                watch_all(&api, Duration::from_secs(timeout)).await
            } else {
                transfers(&api).await
            }
        }
        ClusterCommand::Drain { node, wait } => drain(&api, node, wait).await,
        ClusterCommand::Remove { node } => {
            api.call(Method::DELETE, &format!("/api/cluster/nodes/{node}"), None)
                .await?;
            println!("node {node} removed");
            Ok(())
        }
        ClusterCommand::Move {
            collection,
            shard,
            from,
            to,
            wait,
        } => transfer(&api, "move_shard", &collection, shard, from, to, wait).await,
        ClusterCommand::Replicate {
            collection,
            shard,
            from,
            to,
            wait,
        } => transfer(&api, "replicate_shard", &collection, shard, from, to, wait).await,
        ClusterCommand::Abort {
            collection,
            shard,
            from,
            to,
        } => {
            let op = json!({"abort_transfer": {"shard_id": shard, "from_peer_id": from, "to_peer_id": to}});
            cluster_op(&api, &collection, op).await?;
            println!("transfer {} aborted", label(&collection, shard, from, to));
            Ok(())
        }
        ClusterCommand::Drop {
            collection,
            shard,
            node,
        } => {
            let op = json!({"drop_replica": {"shard_id": shard, "peer_id": node}});
            cluster_op(&api, &collection, op).await?;
            println!("replica of {collection}/{shard} on node {node} dropped");
            Ok(())
        }
        ClusterCommand::Rebalance { wait } => rebalance(&api, wait).await,
        ClusterCommand::Settings => {
            print_settings(&api.get("/api/cluster/settings").await?);
            Ok(())
        }
        ClusterCommand::Set { key, value } => {
            let key = if key.starts_with("rebalancing.") {
                key
            } else {
                format!("rebalancing.{key}")
            };
            let v = api
                .call(
                    Method::PUT,
                    "/api/cluster/settings",
                    Some(json!({ key.clone(): value })),
                )
                .await?;
            print_settings(&v);
            Ok(())
        }
        ClusterCommand::ReplicationFactor { collection, factor } => {
            api.call(
                Method::PATCH,
                &format!("/collections/{collection}"),
                Some(json!({"params": {"replication_factor": factor}})),
            )
            .await?;
            println!("replication factor of {collection} set to {factor}; the controller adds or drops replicas by transfers (`vectordb cluster transfers --watch`)");
            Ok(())
        }
    }
}

async fn cluster_op(api: &Api, collection: &str, op: Value) -> Result<Value> {
    api.call(
        Method::POST,
        &format!("/collections/{collection}/cluster"),
        Some(op),
    )
    .await
}

fn print_settings(v: &Value) {
    if let Some(o) = v.as_object() {
        for (k, x) in o {
            println!("{k} = {x}");
        }
    }
}

async fn status(api: &Api) -> Result<()> {
    let health = api.get("/api/cluster/health").await?;
    let metrics = api.get("/api/cluster/metrics").await?;
    println!(
        "cluster: {} (map epoch {})",
        health["status"].as_str().unwrap_or("?"),
        health["epoch"]
    );
    let n = &health["nodes"];
    println!(
        "nodes: {} ({} alive, {} draining, {} dead)",
        n["total"], n["alive"], n["draining"], n["dead"]
    );
    println!(
        "shards: {} ({} healthy, {} under-replicated, {} over-replicated)",
        metrics["total_shards"],
        metrics["healthy_shards"],
        metrics["under_replicated_shards"],
        metrics["over_replicated_shards"]
    );
    println!(
        "transfers: {} running, {} completed, {} failed",
        metrics["active_migrations"], metrics["completed_migrations"], metrics["failed_migrations"]
    );
    transfers(api).await
}

async fn nodes(api: &Api) -> Result<()> {
    let v = api.get("/api/cluster/nodes").await?;
    println!(
        "{:>4}  {:<9} {:>8} {:>9} {:>4} {:>4}  addr",
        "id", "state", "replicas", "primaries", "in", "out"
    );
    // JSON values ignore width: numbers are read out first.
    let num = |n: &Value, k: &str| n[k].as_u64().unwrap_or_default();
    for n in v["nodes"].as_array().into_iter().flatten() {
        println!(
            "{:>4}  {:<9} {:>8} {:>9} {:>4} {:>4}  {}",
            num(n, "id"),
            n["state"].as_str().unwrap_or("?"),
            num(n, "replicas"),
            num(n, "primaries"),
            num(n, "transfers_in"),
            num(n, "transfers_out"),
            n["addr"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

fn record_line(r: &TransferRecord) -> String {
    let outcome = match failure_reason(r) {
        None => "completed".to_string(),
        Some(reason) => format!("FAILED: {reason}"),
    };
    format!(
        "  {} {}: {outcome} ({} points, {} bytes, {:.1} s)",
        label(&r.collection, r.shard.0, r.from.0, r.to.0),
        kind_name(r.kind),
        r.points_copied,
        r.bytes_copied,
        r.finished_at_ms.saturating_sub(r.started_at_ms) as f64 / 1000.0
    )
}

async fn transfers(api: &Api) -> Result<()> {
    let r = api.transfers().await?;
    println!(
        "running transfers: {} (completed {}, failed {})",
        r.running.len(),
        r.completed,
        r.failed
    );
    for v in &r.running {
        println!(
            "  {} {} {}: {}/{} points, {}/{} bytes, {:.0} points/s, eta {}",
            label(&v.collection, v.shard.0, v.from.0, v.to.0),
            kind_name(v.kind),
            phase_name(v.phase),
            v.points_copied,
            v.points_total,
            v.bytes_copied,
            v.bytes_total,
            v.points_per_sec,
            v.eta_secs.map_or("?".to_string(), |s| format!("{s:.0} s"))
        );
    }
    if !r.recent.is_empty() {
        println!("recently finished:");
        for rec in r.recent.iter().rev().take(10) {
            println!("{}", record_line(rec));
        }
    }
    Ok(())
}

/// The failures among `finished` that concern `keys` (or every failure).
fn failures<'a>(finished: &'a [TransferRecord], keys: Option<&[Key]>) -> Vec<&'a TransferRecord> {
    finished
        .iter()
        .filter(|r| failure_reason(r).is_some())
        .filter(|r| keys.is_none_or(|k| k.contains(&watch::record_key(r))))
        .collect()
}

fn failed_error(failed: &[TransferRecord]) -> anyhow::Error {
    let lines: Vec<String> = failed.iter().map(record_line).collect();
    anyhow!("{} transfer(s) failed:\n{}", failed.len(), lines.join("\n"))
}

/// `transfers --watch`: bars until nothing runs; fails if a transfer that
/// ran meanwhile failed.
async fn watch_all(api: &Api, timeout: Duration) -> Result<()> {
    let mut w = Watcher::start(api.clone()).await?;
    let deadline = Instant::now() + timeout;
    let mut failed = Vec::new();
    loop {
        let p = w.poll().await?;
        failed.extend(failures(&p.finished, None).into_iter().cloned());
        if p.report.running.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            w.clear();
            bail!(
                "{} transfer(s) still running after {timeout:?}",
                p.report.running.len()
            );
        }
        tokio::time::sleep(POLL).await;
    }
    w.clear();
    if failed.is_empty() {
        println!("no transfer running");
        Ok(())
    } else {
        Err(failed_error(&failed))
    }
}

/// Follows the transfers matching `wanted` (collection, shard, to) until
/// each has a finished record; errors with the reasons of failed ones.
async fn follow(w: &mut Watcher, wanted: &[(String, u32, u64)], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut done: Vec<TransferRecord> = Vec::new();
    let matches = |r: &TransferRecord, (c, s, t): &(String, u32, u64)| {
        r.collection == *c && r.shard.0 == *s && r.to.0 == *t
    };
    loop {
        let p = w.poll().await?;
        for r in p.finished {
            if wanted.iter().any(|x| matches(&r, x)) {
                done.push(r);
            }
        }
        if wanted.iter().all(|x| done.iter().any(|r| matches(r, x))) {
            break;
        }
        if Instant::now() >= deadline {
            w.clear();
            bail!("transfers still running after {timeout:?}");
        }
        tokio::time::sleep(POLL).await;
    }
    w.clear();
    let failed: Vec<TransferRecord> = failures(&done, None).into_iter().cloned().collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed_error(&failed))
    }
}

async fn transfer(
    api: &Api,
    op: &str,
    collection: &str,
    shard: u32,
    from: u64,
    to: u64,
    wait: Wait,
) -> Result<()> {
    // Started before the command so that a transfer that ends before the
    // first poll is still seen ending.
    let mut w = if wait.wait {
        Some(Watcher::start(api.clone()).await?)
    } else {
        None
    };
    let body = json!({ op: {"shard_id": shard, "from_peer_id": from, "to_peer_id": to} });
    cluster_op(api, collection, body).await?;
    println!(
        "transfer {} started ({})",
        label(collection, shard, from, to),
        op.trim_end_matches("_shard")
    );
    if let Some(w) = w.as_mut() {
        follow(
            w,
            &[(collection.to_string(), shard, to)],
            Duration::from_secs(wait.timeout),
        )
        .await?;
    }
    Ok(())
}

async fn rebalance(api: &Api, wait: Wait) -> Result<()> {
    let mut w = if wait.wait {
        Some(Watcher::start(api.clone()).await?)
    } else {
        None
    };
    let v = api
        .call(Method::POST, "/api/cluster/rebalance", None)
        .await?;
    let moves = v["moves"].as_array().cloned().unwrap_or_default();
    if moves.is_empty() {
        println!("nothing to move (balanced, or every transfer slot is taken)");
        return Ok(());
    }
    let mut wanted = Vec::new();
    for m in &moves {
        let c = m["collection"].as_str().unwrap_or_default().to_string();
        let s = m["shard"].as_u64().unwrap_or_default() as u32;
        let (f, t) = (
            m["from"].as_u64().unwrap_or_default(),
            m["to"].as_u64().unwrap_or_default(),
        );
        println!(
            "started: {} {}",
            label(&c, s, f, t),
            m["kind"].as_str().unwrap_or("move")
        );
        wanted.push((c, s, t));
    }
    if let Some(w) = w.as_mut() {
        follow(w, &wanted, Duration::from_secs(wait.timeout)).await?;
    }
    Ok(())
}

/// Replicas still on `node` (and whether it is still known).
async fn held(api: &Api, node: u64) -> Result<Option<u64>> {
    let v = api.get("/api/cluster/nodes").await?;
    Ok(v["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["id"] == node))
        .map(|n| n["replicas"].as_u64().unwrap_or_default()))
}

async fn drain(api: &Api, node: u64, wait: Wait) -> Result<()> {
    let mut w = if wait.wait {
        Some(Watcher::start(api.clone()).await?)
    } else {
        None
    };
    let v = api
        .call(
            Method::POST,
            &format!("/api/cluster/nodes/{node}/drain"),
            None,
        )
        .await?;
    println!(
        "node {node} draining: {} replica(s) to move",
        v["replicas"].as_u64().unwrap_or_default()
    );
    let Some(w) = w.as_mut() else {
        return Ok(());
    };
    let deadline = Instant::now() + Duration::from_secs(wait.timeout);
    let mut failed = 0usize;
    loop {
        let p = w.poll().await?;
        // A failed transfer is planned again by the controller: reported,
        // not fatal; the drain is done when the node is empty.
        failed += failures(&p.finished, None).len();
        let left = held(api, node)
            .await?
            .with_context(|| format!("node {node} is no longer registered"))?;
        if left == 0
            && !p
                .report
                .running
                .iter()
                .any(|t| t.from.0 == node || t.to.0 == node)
        {
            break;
        }
        if Instant::now() >= deadline {
            w.clear();
            bail!(
                "node {node} still holds {left} replica(s) after {}s",
                wait.timeout
            );
        }
        tokio::time::sleep(POLL).await;
    }
    w.clear();
    println!(
        "node {node} holds no replica{}; remove it with `vectordb cluster remove {node}`",
        if failed > 0 {
            format!(" ({failed} transfer(s) failed on the way and were planned again)")
        } else {
            String::new()
        }
    );
    Ok(())
}
