//! `storage-node`: see `storage_node::server`. Stops cleanly on SIGINT or
//! SIGTERM (requests drained, gossip left, replicas flushed and closed).
//! `--check-config` prints the resolved configuration and exits (what
//! `deploy/kubernetes/check.sh` runs for each pod).

use anyhow::Context;
use clap::Parser;
use storage_node::server::{start, StorageNodeArgs};

/// The node's flags plus the logging flags every binary shares.
#[derive(Parser)]
#[command(
    name = "storage-node",
    about = "Storage node: FAISS-backed shard replicas, replicated over QUIC"
)]
struct Cli {
    #[command(flatten)]
    node: StorageNodeArgs,
    #[command(flatten)]
    log: lifecycle::LogArgs,
    /// Check the flags and environment, print the resulting configuration
    /// and exit (binds nothing, writes nothing): what a deployment's
    /// checks run against each pod's command line.
    #[arg(long)]
    check_config: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.log.init("info");
    let config = cli.node.into_config();
    if cli.check_config {
        if let Some(gossip) = &config.gossip {
            gossip.validate().context("gossip")?;
        }
        println!(
            "storage-node config ok: id={} cert_name={} rpc_listen={} advertise={} http_listen={} \
             data_dir={} certs_dir={} meta={} gossip={}",
            config.id,
            config.cert_name,
            config.rpc_listen,
            config.advertise.as_deref().unwrap_or("-"),
            config.http_listen,
            config.data_dir.display(),
            config.certs_dir.display(),
            config.meta.join(","),
            config
                .gossip
                .as_ref()
                .map_or("off".to_string(), |g| format!("{}", g.gossip_advertise)),
        );
        return Ok(());
    }
    let node = start(config).await?;
    lifecycle::shutdown_signal().await;
    node.shutdown().await
}
