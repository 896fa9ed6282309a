//! The `gateway` binary: flags, environment and YAML → [`Config`] →
//! `gateway::server::start`, until Ctrl-C or SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use gateway::config::{Config, Overrides};

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
    /// Certificate name (default `gateway`; also presented to the
    /// meta-service, where the name gives the gateway role).
    #[arg(long, env = "CERT_NAME")]
    cert_name: Option<String>,
    /// Talk plain HTTP to a meta-service run with `--insecure-plain-http`
    /// (local development only).
    #[arg(long, env = "META_INSECURE_PLAIN_HTTP")]
    meta_insecure_plain_http: bool,
    #[command(flatten)]
    log: lifecycle::LogArgs,
    /// Check the flags, environment and config file, print the resulting
    /// configuration and exit (binds nothing): what a deployment's checks
    /// run against each pod's command line.
    #[arg(long)]
    check_config: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    flags.log.init("info");
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
    let mut config = Config::load(
        flags.config.as_deref(),
        |k| std::env::var(k).ok(),
        &overrides,
    )
    .context("configuration")?;
    config.meta_plain_http = flags.meta_insecure_plain_http;
    if flags.check_config {
        println!(
            "gateway config ok: node_id={} listen={} meta={} certs_dir={} cert_name={}",
            config.node_id,
            config.listen,
            config.meta_service.join(","),
            config.certs_dir.display(),
            config.cert_name,
        );
        return Ok(());
    }
    tracing::info!(node_id = %config.node_id, listen = %config.listen, meta = ?config.meta_service, "starting gateway");
    let _ = gateway::telemetry::prometheus();
    let handle = gateway::server::start(&config).await?;
    lifecycle::shutdown_signal().await;
    handle.shutdown().await
}
