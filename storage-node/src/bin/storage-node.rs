//! `storage-node`: see `storage_node::server`. Stops cleanly on SIGINT or
//! SIGTERM (requests drained, gossip left, replicas flushed and closed).
//! Configuration: `--config <file>` (the cluster's file, `cluster:` and
//! `storage_node:`), then the environment, then flags.
//! `--check-config` prints the resolved configuration and exits (what
//! `deploy/kubernetes/check.sh` runs for each pod).

use anyhow::Context;
use clap::Parser;
use storage_node::server::{start, StorageNodeArgs, StorageNodeConfig};

/// The node's flags plus the logging flags every binary shares.
#[derive(Parser)]
#[command(
    name = "storage-node",
    about = "Storage node: FAISS-backed shard replicas, replicated over QUIC"
)]
struct Cli {
    #[command(flatten)]
    config: lifecycle::config::ConfigArgs,
    #[command(flatten)]
    node: StorageNodeArgs,
    #[command(flatten)]
    log: lifecycle::LogArgs,
    /// Check the config file, environment and flags, print the resulting configuration
    /// and exit (binds nothing, writes nothing): what a deployment's
    /// checks run against each pod's command line.
    #[arg(long)]
    check_config: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.log.init("info");
    let file = cli.config.load()?;
    let config = cli.node.into_config(&file)?;
    if cli.check_config {
        if let Some(gossip) = &config.gossip {
            gossip.validate().context("gossip")?;
        }
        println!("{}", check_config_line(&config));
        return Ok(());
    }
    let node = start(config).await?;
    lifecycle::shutdown_signal().await;
    node.shutdown().await
}

/// What `--check-config` prints: every resolved setting.
fn check_config_line(c: &StorageNodeConfig) -> String {
    let shard = &c.node.shard;
    let gossip = c.gossip.as_ref().map_or("off".to_string(), |g| {
        format!(
            "{} gossip_advertise={} gossip_seeds={} cluster_id={} gossip_interval_ms={} phi_threshold={}",
            g.gossip_listen,
            g.gossip_advertise,
            g.seeds.join(","),
            g.cluster_id,
            g.gossip_interval.as_millis(),
            g.phi_threshold,
        )
    });
    format!(
        "storage-node config ok: id={} cert_name={} rpc_listen={} advertise={} http_listen={} \
         data_dir={} certs_dir={} meta={} heartbeat_ms={} lease_ms={} fsync={:?} \
         max_segment_points={} max_index_builds={} write_timeout_ms={} gossip={}",
        c.id,
        c.cert_name,
        c.rpc_listen,
        c.advertise.as_deref().unwrap_or("-"),
        c.http_listen,
        c.data_dir.display(),
        c.certs_dir.display(),
        c.meta.join(","),
        c.heartbeat.as_millis(),
        c.lease.as_millis(),
        shard.wal.sync,
        shard.max_segment_points,
        shard.build_budget.limit(),
        c.node.write_timeout.as_millis(),
        gossip,
    )
}
