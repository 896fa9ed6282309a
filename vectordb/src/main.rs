//! `vectordb standalone`: the embedded default — one meta-service member,
//! one storage node and the gateway in one process, talking to each other
//! over loopback exactly as separate processes would (HTTP to the
//! meta-service, QUIC with mTLS to the storage node). Data, certificates
//! and the Raft log live under one folder. Ctrl-C or SIGTERM stops it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::sync::watch;

#[derive(Parser, Debug)]
#[command(
    name = "vectordb",
    about = "Distributed vector database — umbrella binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Everything in one process: 1 meta-service member, 1 storage node, the gateway.
    Standalone(StandaloneArgs),
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Standalone(args) => standalone(args, shutdown_signal()).await,
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

    let (stop_tx, stop_rx) = watch::channel(false);
    let storage_args = storage_node::server::StorageNodeArgs::try_parse_from([
        "storage-node".to_string(),
        "--id=1".into(),
        format!("--data-dir={}", args.data_dir.join("storage-1").display()),
        format!("--rpc-listen=127.0.0.1:{}", args.storage_rpc_port),
        format!("--http-listen=127.0.0.1:{}", args.storage_http_port),
        format!("--meta={meta_addr}"),
        format!("--certs-dir={}", certs.display()),
    ])?;
    let mut storage_stop = stop_rx.clone();
    let storage = tokio::spawn(storage_node::server::run(storage_args, async move {
        let _ = storage_stop.wait_for(|s| *s).await;
    }));

    let overrides = gateway::config::Overrides {
        rest_port: Some(args.rest_port),
        listen_host: Some(args.listen_host.clone()),
        meta_service: vec![meta_addr.clone()],
        api_key: args.api_key.clone(),
        read_only_api_key: args.read_only_api_key.clone(),
        node_id: Some("standalone".into()),
        certs_dir: Some(certs.clone()),
        cert_name: Some("gateway".into()),
    };
    let config = gateway::config::Config::load(None, |_| None, &overrides)
        .context("gateway configuration")?;
    let tls = transport::TlsConfig::from_dir(&certs, "gateway")?;
    let rpc = transport::RpcClient::new(&tls, transport::RpcConfig::default())?;
    let client = Arc::new(gateway::QuicShardClient::new(
        rpc,
        config.routing.shard_timeout,
    ));
    let gw = gateway::Gateway::new(
        Arc::new(meta_client::MetaClient::new([meta_addr])),
        client,
        config.routing.clone(),
    );
    let router = gateway::server::app(gw.clone(), config.keys.clone(), &config.http);
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("bind {}", config.listen))?;
    let rest: SocketAddr = listener.local_addr()?;
    tracing::info!(%rest, data = %args.data_dir.display(), "standalone vectordb ready");
    gateway::server::serve(listener, router, shutdown).await?;
    gw.shutdown();
    let _ = stop_tx.send(true);
    match storage.await {
        Ok(r) => r?,
        Err(e) => anyhow::bail!("storage node task: {e}"),
    }
    meta.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
