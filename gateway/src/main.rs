//! The `gateway` binary: config → meta client → shard client → HTTP.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use gateway::config::{Config, Overrides};
use gateway::{Gateway, QuicShardClient};
use meta_client::MetaClient;

#[derive(Parser, Debug)]
#[command(
    name = "gateway",
    about = "Qdrant-compatible gateway of the vector database cluster"
)]
struct Flags {
    /// YAML config file (the spec's `cluster:` layout plus `gateway:`).
    #[arg(long, env = "GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    /// REST port (default 15001).
    #[arg(long)]
    rest_port: Option<u16>,
    #[arg(long)]
    listen_host: Option<String>,
    /// Meta-service members, `host:port` (repeat or comma-separate).
    #[arg(long, env = "META_ADDRS", value_delimiter = ',')]
    meta: Vec<String>,
    /// Read-write API key.
    #[arg(long, env = "GATEWAY_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Read-only API key.
    #[arg(long, env = "GATEWAY_READ_ONLY_API_KEY", hide_env_values = true)]
    read_only_api_key: Option<String>,
    #[arg(long)]
    node_id: Option<String>,
    /// Folder with `ca.pem` and this gateway's `<cert-name>.pem` / `.key`.
    #[arg(long, env = "CERTS_DIR")]
    certs_dir: Option<PathBuf>,
    /// Certificate name (default `gateway`).
    #[arg(long, env = "CERT_NAME")]
    cert_name: Option<String>,
    /// Logs as JSON lines.
    #[arg(long)]
    log_json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    gateway::telemetry::init_logging(flags.log_json);
    let overrides = Overrides {
        rest_port: flags.rest_port,
        listen_host: flags.listen_host.clone(),
        meta_service: flags.meta.clone(),
        api_key: flags.api_key.clone(),
        read_only_api_key: flags.read_only_api_key.clone(),
        node_id: flags.node_id.clone(),
        certs_dir: flags.certs_dir.clone(),
        cert_name: flags.cert_name.clone(),
    };
    let config = Config::load(
        flags.config.as_deref(),
        |k| std::env::var(k).ok(),
        &overrides,
    )
    .context("configuration")?;
    tracing::info!(node_id = %config.node_id, listen = %config.listen, meta = ?config.meta_service, "starting gateway");
    let _ = gateway::telemetry::prometheus();
    // Short per-request timeouts: a meta member cut off from the others
    // answers nothing; the client must move on to the next one quickly.
    let meta = Arc::new(
        MetaClient::new(config.meta_service.clone())
            .with_timeout(std::time::Duration::from_secs(3)),
    );
    let tls = transport::TlsConfig::from_dir(&config.certs_dir, &config.cert_name).with_context(
        || {
            format!(
                "load certificate {:?} from {} (make one with `certs issue --dir {} --name {}`)",
                config.cert_name,
                config.certs_dir.display(),
                config.certs_dir.display(),
                config.cert_name
            )
        },
    )?;
    let rpc =
        transport::RpcClient::new(&tls, transport::RpcConfig::default()).context("QUIC client")?;
    let client = Arc::new(QuicShardClient::new(rpc, config.routing.shard_timeout));
    let gw = Gateway::new(meta, client, config.routing.clone());
    let router = gateway::server::app(gw.clone(), config.keys.clone(), &config.http);
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("bind {}", config.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    gateway::server::serve(listener, router, async {
        shutdown_signal().await;
        tracing::info!("shutting down: draining in-flight requests");
    })
    .await?;
    gw.shutdown();
    Ok(())
}

/// Ctrl-C or SIGTERM (what process managers and the local-cluster script send).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
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
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
