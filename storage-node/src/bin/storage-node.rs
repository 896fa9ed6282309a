//! `storage-node`: see `storage_node::server`.

use clap::Parser;
use storage_node::server::{run, StorageNodeArgs};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = StorageNodeArgs::parse();
    run(args, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
