//! Wiring of one meta member: config → stores → network → Raft → HTTP
//! server and controller, and the one shutdown path.
//!
//! [`MetaNode::start`] runs a member inside the caller's runtime (tests,
//! an umbrella binary); [`run`] is the binary's entry point: start, wait for
//! the shutdown future, then stop (mini-redis's `server::run` shape).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::app::App;
use crate::error::ApiError;
use crate::leadership::LeadershipCheck;
use crate::liveness::Liveness;
use crate::network::raft_network_impl::Network;
use crate::{MemberId, MetaConfig, Raft};

/// The process-wide Prometheus recorder. `metrics` allows one global
/// recorder, so members started in one process (tests) share it.
fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "a metrics recorder was already installed; /metrics shows only what it records"
                );
            }
            handle
        })
        .clone()
}

/// A running meta member.
pub struct MetaNode {
    pub app: Arc<App>,
    pub local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl MetaNode {
    /// Opens the stores in `config.data_dir`, starts Raft, serves HTTP on
    /// `listener` and runs the controller. Does not initialise the cluster.
    pub async fn start(
        config: MetaConfig,
        listener: tokio::net::TcpListener,
    ) -> anyhow::Result<MetaNode> {
        let local_addr = listener.local_addr()?;
        let raft_config = Arc::new(config.raft_config().context("raft config")?);
        let (log_store, sm, map) = crate::store::open(&config.data_dir).context("open stores")?;
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_millis(500))
            .build()?;
        let raft = Raft::new(
            config.id,
            raft_config,
            Network::new(http.clone()),
            log_store,
            sm,
        )
        .await
        .context("start raft")?;
        let leadership = LeadershipCheck::new(raft.clone(), config.write_timeout);
        let (stop, stop_rx) = watch::channel(false);
        let app = Arc::new(App {
            id: config.id,
            config,
            leadership,
            raft,
            map,
            liveness: Mutex::new(Liveness::default()),
            http,
            prometheus: prometheus(),
            stopping: stop_rx.clone(),
        });
        let mut tasks = Vec::new();

        let router = crate::network::router(app.clone());
        let mut http_stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = http_stop.changed().await;
            };
            if let Err(e) = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "http server failed");
            }
        }));
        tasks.push(tokio::spawn(crate::controller::run(app.clone(), stop_rx)));
        tracing::info!(id = app.id, %local_addr, advertise = %app.config.advertise_addr, "meta member started");
        Ok(MetaNode {
            app,
            local_addr,
            stop,
            tasks,
        })
    }

    /// Initialises a new cluster with `members` (id → address) as voters.
    /// Succeeds without change if this member was already initialised.
    pub async fn initialize(&self, members: BTreeMap<MemberId, String>) -> Result<(), ApiError> {
        self.app.initialize(members).await
    }

    /// Stops the HTTP server, the controller and Raft, in that order.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        if let Err(e) = self.app.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }
}

/// Runs a member until `shutdown` completes: the binary's main loop.
/// `init`: members to initialise the cluster with, if this member should.
pub async fn run(
    config: MetaConfig,
    listener: tokio::net::TcpListener,
    init: Option<BTreeMap<MemberId, String>>,
    shutdown: impl Future,
) -> anyhow::Result<()> {
    let node = MetaNode::start(config, listener).await?;
    if let Some(members) = init {
        node.initialize(members)
            .await
            .context("initialize cluster")?;
        tracing::info!("cluster initialised (or already was)");
    }
    shutdown.await;
    tracing::info!("shutting down");
    node.shutdown().await;
    Ok(())
}
