//! Serving: [`start`] a gateway from its [`Config`] (bind, build the
//! router, serve) and get a [`GatewayHandle`] whose `shutdown` drains
//! in-flight requests (axum's graceful shutdown) and joins the map watch.
//! With `gateway.tls` set the REST port speaks HTTPS only ([`crate::tls`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use lifecycle::Stop;
use tokio::net::TcpListener;

use crate::api::{self, ApiKeys, ApiState, HttpOptions};
use crate::client::ShardClient;
use crate::config::Config;
use crate::gateway::Gateway;
use crate::map::MetaApi;
use crate::quic::QuicShardClient;
use crate::tls::TlsListener;

/// A running gateway; [`GatewayHandle::shutdown`] stops it.
pub struct GatewayHandle {
    addr: SocketAddr,
    gw: Arc<Gateway>,
    stop: Stop,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts a gateway as configured: the meta-service client, the QUIC
/// client to the storage nodes (certificates from `certs_dir`), the HTTP
/// server on `listen`.
pub async fn start(config: &Config) -> anyhow::Result<GatewayHandle> {
    // Short per-request timeouts: a meta member cut off from the others
    // answers nothing; the client must move on to the next one quickly.
    let meta = Arc::new(
        meta_client::MetaClient::new(config.meta_service.clone())
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
    start_with(config, meta, client).await
}

/// [`start`] with the meta-service and the storage nodes reached through
/// the given clients (in-process ones in tests).
pub async fn start_with(
    config: &Config,
    meta: Arc<dyn MetaApi>,
    client: Arc<dyn ShardClient>,
) -> anyhow::Result<GatewayHandle> {
    // A bad certificate fails the start, before anything listens.
    let tls = match &config.tls {
        Some(files) => Some(files.server_config().context("REST TLS (gateway.tls)")?),
        None => None,
    };
    let gw = Gateway::new(meta, client, config.routing.clone());
    let router = app(gw.clone(), config.keys.clone(), &config.http);
    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("bind {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, node_id = %config.node_id, tls = tls.is_some(), "gateway listening");
    let (stop, stopping) = Stop::new();
    let shutdown = lifecycle::stopped(stopping);
    let server = match tls {
        Some(tls) => tokio::spawn(serve(TlsListener::new(listener, tls)?, router, shutdown)),
        None => tokio::spawn(serve(listener, router, shutdown)),
    };
    Ok(GatewayHandle {
        addr,
        gw,
        stop,
        server,
    })
}

impl GatewayHandle {
    /// The bound REST address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gw
    }

    /// Stops accepting, lets in-flight requests finish, stops the map
    /// watch; returns once all of it has ended.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        tracing::info!("gateway stopping: draining in-flight requests");
        self.stop.stop();
        let served = self.server.await;
        self.gw.close().await;
        tracing::info!("gateway stopped");
        match served {
            Ok(r) => r.context("HTTP server"),
            Err(e) => Err(anyhow::anyhow!("HTTP server task: {e}")),
        }
    }
}

/// The router for `gw` with these keys and limits, with Prometheus if this
/// process's recorder is ours.
pub fn app(gw: Arc<Gateway>, keys: ApiKeys, http: &HttpOptions) -> axum::Router {
    let state = Arc::new(ApiState {
        gw,
        keys,
        prometheus: crate::telemetry::prometheus(),
    });
    api::router(state, http)
}

/// Serves `router` on `listener` (plain TCP or [`TlsListener`]) until
/// `shutdown` completes.
pub async fn serve<L>(
    listener: L,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
