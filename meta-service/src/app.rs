//! The shared state of one meta member ([`App`]), handed to every HTTP
//! handler and to the controller, with what they do through it: commit a
//! command (forwarding to the leader), forward a request, initialise the
//! cluster.
//!
//! It has its own module (openraft raft-kv's `app.rs`) so that the modules
//! using it — `network/*`, `controller`, `server` — depend on it and not on
//! each other: `server` wires them together, and none of them imports
//! `server`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use meta_client::{EpochAck, ErrorBody};
use metrics_exporter_prometheus::PrometheusHandle;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ServerState};
use parking_lot::Mutex;
use protocol::cluster::{ClusterCommand, ClusterMap};
use protocol::Epoch;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::watch;

use crate::error::ApiError;
use crate::leadership::{LeadershipCheck, NotConfirmed};
use crate::liveness::Liveness;
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
    /// Read-index rounds shared by linearizable reads and lease grants.
    pub leadership: LeadershipCheck,
    /// Pooled client for forwarding to the leader.
    pub http: reqwest::Client,
    pub prometheus: PrometheusHandle,
    /// Flips when the member shuts down: held requests (map watches,
    /// presence) answer then, or the HTTP server's graceful shutdown would
    /// wait them out.
    pub stopping: watch::Receiver<bool>,
}

impl App {
    /// Resolves once the member is shutting down.
    pub async fn stopped(&self) {
        let mut stopping = self.stopping.clone();
        let _ = stopping.wait_for(|s| *s).await;
    }

    /// Confirms with a quorum that this member still leads, before a
    /// linearizable read or a lease grant. Not confirmed (just elected, a
    /// member just died, deposed) is "no leader": a 503 clients retry, not
    /// a server fault.
    pub async fn confirm_leadership(&self) -> Result<(), ApiError> {
        match self.leadership.confirm().await {
            Ok(()) => Ok(()),
            Err(NotConfirmed::Timeout { ms }) => Err(ApiError::Timeout { ms }),
            Err(e @ NotConfirmed::NotLeader(_)) => {
                tracing::debug!(error = %e, "leadership not confirmed");
                Err(ApiError::NoLeader)
            }
        }
    }

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

    /// Initialises a new cluster with `members` (id → address) as voters;
    /// empty: this member alone. Succeeds without change if this member was
    /// already initialised.
    pub async fn initialize(&self, members: BTreeMap<MemberId, String>) -> Result<(), ApiError> {
        let initialized = self
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
            BTreeMap::from([(self.id, self.config.advertise_addr.clone())])
        } else {
            members
        };
        let nodes: BTreeMap<MemberId, BasicNode> = members
            .into_iter()
            .map(|(id, addr)| (id, BasicNode { addr }))
            .collect();
        match self.raft.initialize(nodes).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(ApiError::Raft {
                reason: e.to_string(),
            }),
        }
    }
}
