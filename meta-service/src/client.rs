//! [`MetaClient`]: the typed HTTP client of the meta-service, for gateways,
//! storage nodes, tools and tests.
//!
//! It knows every meta member's address and sticks to the last one that
//! answered. A request that could not reach a member (connection refused)
//! or found no leader there moves on to the next member; when a whole round
//! fails that way (an election under way) it waits and retries, bounded by
//! `retry_for` (3 s by default, longer than an election). Followers forward
//! writes to the leader themselves, so the client never needs to know who
//! leads. A write that *timed out* is not retried: it may still commit.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use protocol::cluster::{
    ClusterCommand, ClusterMapView, CommandError, Heartbeat, HeartbeatAck, NodeInfo,
};
use protocol::{CollectionConfig, Epoch};
use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

use crate::error::ErrorBody;
use crate::network::api::{Health, ReadConsistency};
use crate::network::management::{
    AddLearnerRequest, ChangeMembershipRequest, InitRequest, MembershipAck,
};
use crate::server::EpochAck;
use crate::MemberId;

#[derive(Debug, Error)]
pub enum ClientError {
    /// The state machine refused the command; retrying will not help.
    #[error("refused: {0}")]
    Refused(CommandError),
    /// A member answered with an error (`body.code`: `no_leader`,
    /// `timeout`, `bad_request`, ...).
    #[error("meta-service answered {status}: {}", body.message)]
    Api { status: u16, body: ErrorBody },
    /// No member could be reached.
    #[error("no meta member reachable (last: {member}: {reason})")]
    Unreachable { member: String, reason: String },
    #[error("no meta member configured")]
    NoMembers,
}

impl ClientError {
    /// Whether the same request may succeed later (the gateway's retry
    /// logic reads this).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Refused(_) | ClientError::NoMembers => false,
            ClientError::Api { status, .. } => *status == 503,
            ClientError::Unreachable { .. } => true,
        }
    }

    /// The typed refusal, if this is one.
    pub fn refusal(&self) -> Option<&CommandError> {
        match self {
            ClientError::Refused(e) => Some(e),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct MetaClient {
    http: reqwest::Client,
    members: Arc<Vec<String>>,
    /// Index of the member that answered last.
    preferred: Arc<AtomicUsize>,
    timeout: Duration,
    /// How long to keep going round the members while none has a leader.
    retry_for: Duration,
}

/// Outcome of one attempt against one member.
enum Attempt<T> {
    Done(Result<T, ClientError>),
    /// Try the next member (with the error to report if none works).
    Next(ClientError),
}

impl MetaClient {
    /// A client of the members at `addrs` (`host:port`), with a 10 s
    /// per-request timeout.
    pub fn new<I, S>(addrs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_millis(500))
                .build()
                .unwrap_or_default(),
            members: Arc::new(addrs.into_iter().map(Into::into).collect()),
            preferred: Arc::new(AtomicUsize::new(0)),
            timeout: Duration::from_secs(10),
            retry_for: Duration::from_secs(3),
        }
    }

    /// Sets how long requests keep retrying while no member knows a leader
    /// or none is reachable (default 3 s; zero: one round only).
    pub fn with_retry_for(mut self, retry_for: Duration) -> Self {
        self.retry_for = retry_for;
        self
    }

    /// Sets the per-request timeout (watches add their own wait to it).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// The cluster map: `Linearizable` through the leader, `Local` from
    /// whichever member answers (check `view.map.epoch`).
    pub async fn cluster_map(
        &self,
        consistency: ReadConsistency,
    ) -> Result<ClusterMapView, ClientError> {
        let path = format!("/v1/cluster/map?consistency={}", consistency.as_str());
        self.call(reqwest::Method::GET, &path, None::<&()>, self.timeout)
            .await
    }

    /// Long-poll: the map once its epoch is past `after`, or `None` if it
    /// did not change within `wait` (at most 60 s).
    pub async fn watch(
        &self,
        after: Epoch,
        wait: Duration,
    ) -> Result<Option<ClusterMapView>, ClientError> {
        let path = format!(
            "/v1/cluster/watch?after={}&timeout_ms={}",
            after.0,
            wait.as_millis()
        );
        let view: ClusterMapView = self
            .call(
                reqwest::Method::GET,
                &path,
                None::<&()>,
                self.timeout + wait,
            )
            .await?;
        Ok((view.map.epoch > after).then_some(view))
    }

    /// Submits a command; the epoch it produced, or the typed refusal.
    pub async fn submit(&self, cmd: &ClusterCommand) -> Result<Epoch, ClientError> {
        let ack: EpochAck = self
            .call(
                reqwest::Method::POST,
                "/v1/commands",
                Some(cmd),
                self.timeout,
            )
            .await?;
        Ok(ack.epoch)
    }

    pub async fn create_collection(
        &self,
        name: &str,
        config: CollectionConfig,
    ) -> Result<Epoch, ClientError> {
        self.submit(&ClusterCommand::CreateCollection {
            name: name.to_string(),
            config,
        })
        .await
    }

    pub async fn delete_collection(&self, name: &str) -> Result<Epoch, ClientError> {
        self.submit(&ClusterCommand::DeleteCollection {
            name: name.to_string(),
        })
        .await
    }

    /// Registers (or re-registers) a storage node.
    pub async fn register_node(&self, node: &NodeInfo) -> Result<Epoch, ClientError> {
        let ack: EpochAck = self
            .call(
                reqwest::Method::POST,
                "/v1/nodes/register",
                Some(node),
                self.timeout,
            )
            .await?;
        Ok(ack.epoch)
    }

    /// Reports liveness and applied sequence numbers; the answer carries the
    /// current epoch (refresh the map when it is newer than yours).
    pub async fn heartbeat(&self, hb: &Heartbeat) -> Result<HeartbeatAck, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/v1/nodes/heartbeat",
            Some(hb),
            self.timeout,
        )
        .await
    }

    /// Health of one member (by index into [`MetaClient::members`]).
    pub async fn health_of(&self, member: usize) -> Result<Health, ClientError> {
        let addr = self.members.get(member).ok_or(ClientError::NoMembers)?;
        match self
            .attempt(
                addr,
                reqwest::Method::GET,
                "/health",
                None::<&()>,
                self.timeout,
            )
            .await
        {
            Attempt::Done(r) => r,
            Attempt::Next(e) => Err(e),
        }
    }

    /// Initialises a new cluster (on the first reachable member).
    pub async fn initialize(&self, members: BTreeMap<MemberId, String>) -> Result<(), ClientError> {
        let _: serde_json::Value = self
            .call(
                reqwest::Method::POST,
                "/admin/init",
                Some(&InitRequest { members }),
                self.timeout,
            )
            .await?;
        Ok(())
    }

    pub async fn add_learner(&self, id: MemberId, addr: &str) -> Result<u64, ClientError> {
        let req = AddLearnerRequest {
            id,
            addr: addr.to_string(),
        };
        let ack: MembershipAck = self
            .call(
                reqwest::Method::POST,
                "/admin/add-learner",
                Some(&req),
                self.timeout,
            )
            .await?;
        Ok(ack.log_index)
    }

    pub async fn change_membership(
        &self,
        members: BTreeSet<MemberId>,
        retain: bool,
    ) -> Result<u64, ClientError> {
        let req = ChangeMembershipRequest { members, retain };
        let ack: MembershipAck = self
            .call(
                reqwest::Method::POST,
                "/admin/change-membership",
                Some(&req),
                self.timeout,
            )
            .await?;
        Ok(ack.log_index)
    }

    /// Tries members from the preferred one on. When a whole round finds no
    /// leader or no reachable member (an election under way), it waits and
    /// goes round again, for at most `retry_for` in total.
    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let n = self.members.len();
        if n == 0 {
            return Err(ClientError::NoMembers);
        }
        let deadline = tokio::time::Instant::now() + self.retry_for;
        let mut pause = Duration::from_millis(50);
        loop {
            let start = self.preferred.load(Ordering::Relaxed) % n;
            let mut last = ClientError::NoMembers;
            for i in 0..n {
                let idx = (start + i) % n;
                let member = &self.members[idx];
                match self
                    .attempt(member, method.clone(), path, body, timeout)
                    .await
                {
                    // No answer (a timeout: the member may be cut off). The
                    // request may have been applied, so it is not resent,
                    // but the next call starts at another member; otherwise
                    // every call would wait on the silent one.
                    Attempt::Done(r @ Err(ClientError::Unreachable { .. })) => {
                        self.preferred.store((idx + 1) % n, Ordering::Relaxed);
                        return r;
                    }
                    Attempt::Done(r) => {
                        self.preferred.store(idx, Ordering::Relaxed);
                        return r;
                    }
                    Attempt::Next(e) => last = e,
                }
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Err(last);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(400));
        }
    }

    async fn attempt<B: Serialize, T: DeserializeOwned>(
        &self,
        addr: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
        timeout: Duration,
    ) -> Attempt<T> {
        let mut req = self
            .http
            .request(method, format!("http://{addr}{path}"))
            .timeout(timeout);
        if let Some(b) = body {
            req = req.json(b);
        }
        let unreachable = |reason: String| ClientError::Unreachable {
            member: addr.to_string(),
            reason,
        };
        let resp = match req.send().await {
            Ok(r) => r,
            // Never reached the member: safe to try another.
            Err(e) if e.is_connect() => return Attempt::Next(unreachable(e.to_string())),
            Err(e) => return Attempt::Done(Err(unreachable(e.to_string()))),
        };
        let status = resp.status();
        if status.is_success() {
            return Attempt::Done(resp.json().await.map_err(|e| unreachable(e.to_string())));
        }
        let body: ErrorBody = match resp.json().await {
            Ok(b) => b,
            Err(e) => {
                return Attempt::Done(Err(ClientError::Api {
                    status: status.as_u16(),
                    body: ErrorBody {
                        code: "unknown".to_string(),
                        message: e.to_string(),
                        refusal: None,
                    },
                }))
            }
        };
        if let Some(refusal) = body.refusal {
            return Attempt::Done(Err(ClientError::Refused(refusal)));
        }
        let err = ClientError::Api {
            status: status.as_u16(),
            body,
        };
        // No leader there: nothing was committed, another member may know one.
        match &err {
            ClientError::Api { body, .. } if body.code == "no_leader" => Attempt::Next(err),
            _ => Attempt::Done(Err(err)),
        }
    }
}
