//! `vectordb standalone`: the embedded default — one meta-service member,
//! one storage node and the gateway in one process, talking to each other
//! over loopback exactly as separate processes would (HTTP to the
//! meta-service, QUIC with mTLS to the storage node). Data, certificates
//! and the Raft log live under one folder. Ctrl-C or SIGTERM stops it.
//!
//! `vectordb cluster ...`: the operator's CLI of a running cluster, through
//! a gateway's HTTP routes (see [`cluster`]).

mod cluster;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "vectordb",
    about = "Distributed vector database — umbrella binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: lifecycle::LogArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Everything in one process: 1 meta-service member, 1 storage node, the gateway.
    Standalone(StandaloneArgs),
    /// Operate a running cluster through a gateway: status, nodes,
    /// transfers (with progress), drain, remove, move, rebalance, settings.
    Cluster(cluster::ClusterArgs),
}

#[derive(clap::Args, Debug, Clone)]
struct StandaloneArgs {
    #[arg(long, env = "DATA_DIR", default_value = "data/standalone")]
    data_dir: PathBuf,
    /// REST (Qdrant-compatible) port.
    #[arg(long, default_value_t = 15001)]
    rest_port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    listen_host: String,
    /// Internal ports (meta-service HTTP, storage QUIC, storage HTTP) on loopback.
    #[arg(long, default_value_t = 7947)]
    meta_port: u16,
    #[arg(long, default_value_t = 7950)]
    storage_rpc_port: u16,
    #[arg(long, default_value_t = 7960)]
    storage_http_port: u16,
    #[arg(long, env = "GATEWAY_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    #[arg(long, env = "GATEWAY_READ_ONLY_API_KEY", hide_env_values = true)]
    read_only_api_key: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.log.init("info");
    match cli.command {
        Command::Standalone(args) => standalone(args, lifecycle::shutdown_signal()).await,
        // One line with the cause chain, exit status 1 (no backtrace even
        // with RUST_BACKTRACE set: the reason is the message).
        Command::Cluster(args) => {
            if let Err(e) = cluster::run(args).await {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

/// Makes the dev CA and the two certificates this process needs, once.
fn ensure_certs(dir: &Path) -> anyhow::Result<()> {
    if !dir.join("ca.pem").exists() {
        transport::certs::init_dir(dir, "vectordb standalone CA", false)
            .context("create the CA")?;
    }
    for name in ["storage-1", "gateway"] {
        if !dir.join(format!("{name}.pem")).exists() {
            transport::certs::issue_to_dir(
                dir,
                name,
                &["localhost".to_string()],
                &["127.0.0.1".parse()?],
            )
            .with_context(|| format!("issue {name}"))?;
        }
    }
    Ok(())
}

async fn standalone(
    args: StandaloneArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("create {}", args.data_dir.display()))?;
    let certs = args.data_dir.join("certs");
    ensure_certs(&certs)?;
    // The gateway's recorder first: it has the latency buckets, and the
    // storage node's metrics land in the same registry.
    let _ = gateway::telemetry::prometheus();

    let meta_addr = format!("127.0.0.1:{}", args.meta_port);
    let listener = tokio::net::TcpListener::bind(&meta_addr)
        .await
        .with_context(|| format!("bind {meta_addr}"))?;
    let meta = meta_service::MetaNode::start(
        meta_service::MetaConfig::new(1, meta_addr.clone(), args.data_dir.join("meta")),
        listener,
    )
    .await?;
    meta.initialize(BTreeMap::from([(1, meta_addr.clone())]))
        .await
        .map_err(|e| anyhow::anyhow!("initialise the meta-service: {e}"))?;

    let mut storage = storage_node::server::StorageNodeConfig::new(
        protocol::NodeId(1),
        args.data_dir.join("storage-1"),
        vec![meta_addr.clone()],
        certs.clone(),
    );
    storage.rpc_listen = SocketAddr::from(([127, 0, 0, 1], args.storage_rpc_port));
    storage.http_listen = SocketAddr::from(([127, 0, 0, 1], args.storage_http_port));
    let storage = storage_node::server::start(storage).await?;

    let overrides = gateway::config::Overrides {
        rest_port: Some(args.rest_port),
        listen_host: Some(args.listen_host.clone()),
        meta_service: vec![meta_addr],
        api_key: args.api_key.clone(),
        read_only_api_key: args.read_only_api_key.clone(),
        node_id: Some("standalone".into()),
        certs_dir: Some(certs),
        cert_name: Some("gateway".into()),
    };
    let config = gateway::config::Config::load(None, |_| None, &overrides)
        .context("gateway configuration")?;
    let gateway = gateway::server::start(&config).await?;
    tracing::info!(rest = %gateway.addr(), data = %args.data_dir.display(), "standalone vectordb ready");
    shutdown.await;
    // Front to back: no new requests, then the data plane, then the map.
    let gateway_stopped = gateway.shutdown().await;
    let storage_stopped = storage.shutdown().await;
    meta.shutdown().await;
    gateway_stopped?;
    storage_stopped
}
