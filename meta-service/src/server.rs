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
use meta_client::{EpochAck, ErrorBody};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ServerState};
use parking_lot::Mutex;
use protocol::cluster::{ClusterCommand, ClusterMap};
use protocol::Epoch;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::watch;

use crate::controller::Liveness;
use crate::error::ApiError;
use crate::network::raft_network_impl::Network;
use crate::{MemberId, MetaConfig, Raft};

/// Header set on requests a follower forwards to the leader, so that the
/// leader never forwards them again (no forwarding loops).
pub const FORWARDED_HEADER: &str = "x-meta-forwarded";

/// Shared state of one member, handed to every HTTP handler.
pub struct App {
    pub id: MemberId,
    pub config: MetaConfig,
    pub raft: Raft,
    /// The latest applied cluster map (see `store::state_machine`).
    pub map: watch::Receiver<Arc<ClusterMap>>,
    /// Leader-only soft state: heartbeats from storage nodes.
    pub liveness: Mutex<Liveness>,
    /// Pooled client for forwarding to the leader.
    pub http: reqwest::Client,
    pub prometheus: PrometheusHandle,
}

impl App {
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// The leader this member knows of, with its address.
    pub fn leader(&self) -> Option<(MemberId, String)> {
        let m = self.raft.metrics().borrow().clone();
        let id = m.current_leader?;
        let node = m.membership_config.membership().get_node(&id)?;
        Some((id, node.addr.clone()))
    }

    pub fn current_map(&self) -> Arc<ClusterMap> {
        self.map.borrow().clone()
    }

    /// Commits `cmd` through Raft, on this member if it leads, otherwise by
    /// forwarding to the leader (unless the request was already forwarded).
    /// Bounded by `write_timeout`: without a quorum this fails, never hangs.
    pub async fn write(&self, cmd: ClusterCommand, forwarded: bool) -> Result<Epoch, ApiError> {
        let timeout = self.config.write_timeout;
        let started = std::time::Instant::now();
        let res = tokio::time::timeout(timeout, self.raft.client_write(cmd.clone())).await;
        if matches!(res, Ok(Ok(_))) {
            metrics::histogram!("meta_write_seconds").record(started.elapsed().as_secs_f64());
        }
        match res {
            Err(_) => Err(ApiError::Timeout {
                ms: timeout.as_millis() as u64,
            }),
            Ok(Ok(resp)) => resp.data.map_err(ApiError::Refused),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                if forwarded {
                    return Err(ApiError::NoLeader);
                }
                match (f.leader_id, f.leader_node) {
                    (Some(id), Some(node)) => {
                        let ack: EpochAck = self
                            .forward_post(id, &node.addr, "/v1/commands", &cmd)
                            .await?;
                        Ok(ack.epoch)
                    }
                    _ => Err(ApiError::NoLeader),
                }
            }
            Ok(Err(e)) => Err(ApiError::Raft {
                reason: e.to_string(),
            }),
        }
    }

    /// POSTs `body` to the leader at `addr` and decodes its answer.
    pub async fn forward_post<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        leader: MemberId,
        addr: &str,
        path: &str,
        body: &Req,
    ) -> Result<Resp, ApiError> {
        let req = self.http.post(format!("http://{addr}{path}")).json(body);
        self.forward(leader, req).await
    }

    /// GETs `path_and_query` from the leader at `addr`.
    pub async fn forward_get<Resp: DeserializeOwned>(
        &self,
        leader: MemberId,
        addr: &str,
        path_and_query: &str,
    ) -> Result<Resp, ApiError> {
        let req = self.http.get(format!("http://{addr}{path_and_query}"));
        self.forward(leader, req).await
    }

    async fn forward<Resp: DeserializeOwned>(
        &self,
        leader: MemberId,
        req: reqwest::RequestBuilder,
    ) -> Result<Resp, ApiError> {
        metrics::counter!("meta_forwarded_requests_total").increment(1);
        let fail = |reason: String| ApiError::Forward { leader, reason };
        let resp = req
            .header(FORWARDED_HEADER, self.id.to_string())
            .timeout(self.config.write_timeout + Duration::from_secs(1))
            .send()
            .await
            .map_err(|e| {
                // Could not even connect: the leader we know of is gone and
                // nothing was sent, so this is "no leader" (safe to retry
                // anywhere); any later failure may have reached it.
                if e.is_connect() {
                    ApiError::NoLeader
                } else {
                    fail(e.to_string())
                }
            })?;
        if resp.status().is_success() {
            resp.json().await.map_err(|e| fail(e.to_string()))
        } else {
            let body: ErrorBody = resp.json().await.map_err(|e| fail(e.to_string()))?;
            Err(ApiError::from_body(body))
        }
    }
}

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
        let app = Arc::new(App {
            id: config.id,
            config,
            raft,
            map,
            liveness: Mutex::new(Liveness::default()),
            http,
            prometheus: prometheus(),
        });
        let (stop, stop_rx) = watch::channel(false);
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
        initialize(&self.app, members).await
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

pub(crate) async fn initialize(
    app: &App,
    members: BTreeMap<MemberId, String>,
) -> Result<(), ApiError> {
    let initialized = app
        .raft
        .is_initialized()
        .await
        .map_err(|e| ApiError::Raft {
            reason: e.to_string(),
        })?;
    if initialized {
        return Ok(());
    }
    let members = if members.is_empty() {
        BTreeMap::from([(app.id, app.config.advertise_addr.clone())])
    } else {
        members
    };
    let nodes: BTreeMap<MemberId, BasicNode> = members
        .into_iter()
        .map(|(id, addr)| (id, BasicNode { addr }))
        .collect();
    match app.raft.initialize(nodes).await {
        Ok(()) => Ok(()),
        Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
        Err(e) => Err(ApiError::Raft {
            reason: e.to_string(),
        }),
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
