//! The `gateway` binary: flags, environment and YAML → [`Config`] →
//! `gateway::server::start`, until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use gateway::config::{Config, Overrides};

#[derive(Parser, Debug)]
#[command(
    name = "gateway",
    about = "Qdrant-compatible gateway of the vector database cluster"
)]
struct Flags {
    #[command(flatten)]
    config: lifecycle::config::ConfigArgs,
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
    /// The gateway's name in logs (also `cluster.node_id`).
    #[arg(long, env = "NODE_ID")]
    node_id: Option<String>,
    /// Folder with `ca.pem` and this gateway's `<cert-name>.pem` / `.key`.
    #[arg(long, env = "CERTS_DIR")]
    certs_dir: Option<PathBuf>,
    /// Certificate name (default `gateway`).
    #[arg(long, env = "CERT_NAME")]
    cert_name: Option<String>,
    #[command(flatten)]
    log: lifecycle::LogArgs,
    /// Check the config file, environment and flags, print the resulting
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
    let config = Config::load(
        flags.config.config.as_deref(),
        |k| std::env::var(k).ok(),
        &overrides,
    )
    .context("configuration")?;
    if flags.check_config {
        println!("{}", check_config_line(&config));
        return Ok(());
    }
    tracing::info!(node_id = %config.node_id, listen = %config.listen, meta = ?config.meta_service, "starting gateway");
    let _ = gateway::telemetry::prometheus();
    let handle = gateway::server::start(&config).await?;
    lifecycle::shutdown_signal().await;
    handle.shutdown().await
}

/// What `--check-config` prints: every resolved setting, keys only as
/// set or not (the output lands in CI logs).
fn check_config_line(c: &Config) -> String {
    let set = |k: &Option<String>| if k.is_some() { "set" } else { "unset" };
    let ms = |d: Duration| d.as_millis();
    format!(
        "gateway config ok: node_id={} listen={} meta={} certs_dir={} cert_name={} \
         tls={} api_key={} read_only_api_key={} collection_keys={} max_body_bytes={} \
         request_timeout_ms={} max_concurrent_requests={} shard_timeout_ms={} \
         hedge_delay_ms={} failure_penalty_ms={} write_attempts={}",
        c.node_id,
        c.listen,
        c.meta_service.join(","),
        c.certs_dir.display(),
        c.cert_name,
        c.tls
            .as_ref()
            .map_or("off".to_string(), |t| t.cert.display().to_string()),
        set(&c.keys.read_write),
        set(&c.keys.read_only),
        c.keys.collection_keys.len(),
        c.http.max_body_bytes,
        ms(c.http.request_timeout),
        c.http.max_concurrent_requests,
        ms(c.routing.shard_timeout),
        c.routing
            .hedge_delay
            .map_or("off".to_string(), |d| ms(d).to_string()),
        ms(c.routing.failure_penalty),
        c.routing.write_attempts,
    )
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use lifecycle::config::{check, reference::Service};

    use super::Flags;

    /// Every flag the reference page names for the gateway exists.
    #[test]
    fn the_reference_pages_flags_exist() {
        check::reference_flags_exist(&Flags::command(), Service::Gateway, true);
    }
}
