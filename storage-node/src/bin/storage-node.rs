//! `storage-node`: see `storage_node::server`. Stops cleanly on SIGINT or
//! SIGTERM (requests drained, gossip left, replicas flushed and closed).

use clap::Parser;
use storage_node::server::{start, StorageNodeArgs};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let node = start(StorageNodeArgs::parse().into_config()).await?;
    lifecycle::shutdown_signal().await;
    node.shutdown().await
}
