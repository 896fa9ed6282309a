//! [`MetaClient`]: the typed HTTP client of the meta-service, for gateways,
//! storage nodes, tools and tests.
//!
//! It knows every meta member's address and sticks to the last one that
//! answered. A request that failed in a way that is transient and left
//! nothing applied ([`MetaClientError::is_transient`] and
//! [`MetaClientError::nothing_applied`]: the member could not be reached,
//! or knew no leader) moves on to the next member; when a whole round fails
//! that way (an election under way) it waits and retries, bounded by
//! `retry_for` (3 s by default, longer than an election). Followers forward
//! writes to the leader themselves, so the client never needs to know who
//! leads. A request that *timed out* is not resent: it may still commit.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use protocol::cluster::{
    ClusterCommand, ClusterMapView, ClusterStats, Heartbeat, HeartbeatAck, NodeInfo,
};
use protocol::{CollectionConfig, Epoch, NodeId};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::{
    AddLearnerRequest, ChangeMembershipRequest, EpochAck, ErrorBody, ErrorCode, InitRequest,
    MemberId, MembershipAck, MetaHealth, MetaReadConsistency, RebalanceAck,
};
use crate::error::MetaClientError;

/// How long a meta leader holds a presence request (its `network::presence::HOLD`).
pub const PRESENCE_HOLD: Duration = Duration::from_secs(30);

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
        consistency: MetaReadConsistency,
    ) -> Result<ClusterMapView, MetaClientError> {
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
    ) -> Result<Option<ClusterMapView>, MetaClientError> {
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
    pub async fn submit(&self, cmd: &ClusterCommand) -> Result<Epoch, MetaClientError> {
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

    /// Plans and starts a rebalance now, whether or not automatic
    /// rebalancing is on (same planner, same concurrency cap).
    pub async fn rebalance(&self) -> Result<RebalanceAck, MetaClientError> {
        self.call(
            reqwest::Method::POST,
            "/v1/rebalance",
            None::<&()>,
            self.timeout,
        )
        .await
    }

    /// Replication lag per shard and read load per node, as the meta
    /// leader last heard them (see `protocol::cluster::ClusterStats`).
    pub async fn cluster_stats(&self) -> Result<ClusterStats, MetaClientError> {
        self.call(
            reqwest::Method::GET,
            "/v1/cluster/stats",
            None::<&()>,
            self.timeout,
        )
        .await
    }

    pub async fn create_collection(
        &self,
        name: &str,
        config: CollectionConfig,
    ) -> Result<Epoch, MetaClientError> {
        self.submit(&ClusterCommand::CreateCollection {
            name: name.to_string(),
            config,
        })
        .await
    }

    pub async fn delete_collection(&self, name: &str) -> Result<Epoch, MetaClientError> {
        self.submit(&ClusterCommand::DeleteCollection {
            name: name.to_string(),
        })
        .await
    }

    /// Registers (or re-registers) a storage node.
    pub async fn register_node(&self, node: &NodeInfo) -> Result<Epoch, MetaClientError> {
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
    pub async fn heartbeat(&self, hb: &Heartbeat) -> Result<HeartbeatAck, MetaClientError> {
        self.call(
            reqwest::Method::POST,
            "/v1/nodes/heartbeat",
            Some(hb),
            self.timeout,
        )
        .await
    }

    /// Holds a presence request open at one member (by index into
    /// [`MetaClient::members`]) until that member ends it: `Ok` after its
    /// hold (about 30 s) or when it stops leading; a follower refuses at
    /// once with `no_leader`. While it is open, the leader learns of this
    /// process's death the moment the kernel closes the connection.
    pub async fn presence(&self, member: usize, node: NodeId) -> Result<(), MetaClientError> {
        let addr = self.members.get(member).ok_or(MetaClientError::NoMembers)?;
        let _: serde_json::Value = self
            .attempt(
                addr,
                reqwest::Method::GET,
                &format!("/v1/nodes/{}/presence", node.0),
                None::<&()>,
                PRESENCE_HOLD + self.timeout,
            )
            .await?;
        Ok(())
    }

    /// Health of one member (by index into [`MetaClient::members`]).
    pub async fn health_of(&self, member: usize) -> Result<MetaHealth, MetaClientError> {
        let addr = self.members.get(member).ok_or(MetaClientError::NoMembers)?;
        self.attempt(
            addr,
            reqwest::Method::GET,
            "/health",
            None::<&()>,
            self.timeout,
        )
        .await
    }

    /// Initialises a new cluster (on the first reachable member).
    pub async fn initialize(
        &self,
        members: BTreeMap<MemberId, String>,
    ) -> Result<(), MetaClientError> {
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

    pub async fn add_learner(&self, id: MemberId, addr: &str) -> Result<u64, MetaClientError> {
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
    ) -> Result<u64, MetaClientError> {
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

    /// Tries members from the preferred one on. An error that is transient
    /// and left nothing applied moves on to the next member; when a whole
    /// round ends that way (an election under way) it waits and goes round
    /// again, for at most `retry_for` in total. Any other error is final.
    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<T, MetaClientError> {
        let n = self.members.len();
        if n == 0 {
            return Err(MetaClientError::NoMembers);
        }
        let deadline = tokio::time::Instant::now() + self.retry_for;
        let mut pause = Duration::from_millis(50);
        loop {
            let start = self.preferred.load(Ordering::Relaxed) % n;
            let mut last = MetaClientError::NoMembers;
            for i in 0..n {
                let idx = (start + i) % n;
                let member = &self.members[idx];
                match self
                    .attempt(member, method.clone(), path, body, timeout)
                    .await
                {
                    Ok(v) => {
                        self.preferred.store(idx, Ordering::Relaxed);
                        return Ok(v);
                    }
                    Err(e) if e.is_transient() && e.nothing_applied() => last = e,
                    // No answer (a timeout: the member may be cut off). The
                    // request may have been applied, so it is not resent,
                    // but the next call starts at another member; otherwise
                    // every call would wait on the silent one.
                    Err(e @ MetaClientError::NoAnswer { .. }) => {
                        self.preferred.store((idx + 1) % n, Ordering::Relaxed);
                        return Err(e);
                    }
                    Err(e) => {
                        self.preferred.store(idx, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Err(last);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(400));
        }
    }

    /// One request to one member, its answer decoded.
    async fn attempt<B: Serialize, T: DeserializeOwned>(
        &self,
        addr: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<T, MetaClientError> {
        let mut req = self
            .http
            .request(method, format!("http://{addr}{path}"))
            .timeout(timeout);
        if let Some(b) = body {
            req = req.json(b);
        }
        let no_answer = |reason: String| MetaClientError::NoAnswer {
            member: addr.to_string(),
            reason,
        };
        let resp = match req.send().await {
            Ok(r) => r,
            // Never reached the member: nothing was sent.
            Err(e) if e.is_connect() => {
                return Err(MetaClientError::Unreachable {
                    member: addr.to_string(),
                    reason: e.to_string(),
                })
            }
            Err(e) => return Err(no_answer(e.to_string())),
        };
        let status = resp.status();
        if status.is_success() {
            return resp.json().await.map_err(|e| no_answer(e.to_string()));
        }
        let body = match resp.json::<ErrorBody>().await {
            Ok(b) => b,
            Err(e) => ErrorBody {
                code: ErrorCode::Unknown,
                message: format!("unreadable error body: {e}"),
                refusal: None,
            },
        };
        match body.refusal {
            Some(refusal) => Err(MetaClientError::Refused(refusal)),
            None => Err(MetaClientError::Api {
                status: status.as_u16(),
                body,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The retry loop against raw HTTP members that give canned answers.

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A member answering every request with `status` and `body`; counts
    /// the requests it got.
    async fn member(status: u16, body: &'static str) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    read_request(&mut sock).await;
                    counter.fetch_add(1, Ordering::SeqCst);
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(answer.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        (addr, hits)
    }

    /// Reads the head and the `content-length` body of one request.
    async fn read_request(sock: &mut tokio::net::TcpStream) {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let Ok(n) = sock.read(&mut buf).await else {
                return;
            };
            if n == 0 {
                return;
            }
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if got.len() >= end + 4 + len {
                    return;
                }
            }
        }
    }

    /// An address where nothing listens.
    async fn closed_port() -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr").to_string()
    }

    const NO_LEADER: &str = r#"{"code":"no_leader","message":"no leader is known"}"#;
    const TIMEOUT: &str = r#"{"code":"timeout","message":"timed out"}"#;
    const EXISTS: &str = r#"{"code":"refused","message":"exists","refusal":{"error":"collection_exists","name":"c"}}"#;
    const ACK: &str = r#"{"epoch":7}"#;

    fn cmd() -> ClusterCommand {
        ClusterCommand::DeleteCollection { name: "c".into() }
    }

    #[tokio::test]
    async fn no_leader_moves_on_to_the_next_member_and_sticks_to_it() {
        let (a, a_hits) = member(503, NO_LEADER).await;
        let (b, b_hits) = member(200, ACK).await;
        let client = MetaClient::new([a, b]).with_retry_for(Duration::ZERO);
        assert_eq!(client.submit(&cmd()).await.expect("submit"), Epoch(7));
        assert_eq!(client.submit(&cmd()).await.expect("submit"), Epoch(7));
        assert_eq!(a_hits.load(Ordering::SeqCst), 1, "tried once, then skipped");
        assert_eq!(b_hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_unreachable_member_is_skipped() {
        let (b, b_hits) = member(200, ACK).await;
        let client = MetaClient::new([closed_port().await, b]).with_retry_for(Duration::ZERO);
        assert_eq!(client.submit(&cmd()).await.expect("submit"), Epoch(7));
        assert_eq!(b_hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_timed_out_write_is_not_resent() {
        let (a, _) = member(503, TIMEOUT).await;
        let (b, b_hits) = member(200, ACK).await;
        let client = MetaClient::new([a, b]);
        let err = client.submit(&cmd()).await.expect_err("timeout");
        assert!(
            matches!(&err, MetaClientError::Api { body, .. } if body.code == ErrorCode::Timeout),
            "{err:?}"
        );
        assert!(err.is_transient() && !err.nothing_applied());
        assert_eq!(b_hits.load(Ordering::SeqCst), 0, "may have committed");
    }

    #[tokio::test]
    async fn a_refusal_is_final_and_typed() {
        let (a, _) = member(409, EXISTS).await;
        let (b, b_hits) = member(200, ACK).await;
        let client = MetaClient::new([a, b]);
        let err = client.submit(&cmd()).await.expect_err("refused");
        assert!(
            matches!(
                err.refusal(),
                Some(protocol::cluster::CommandError::CollectionExists { .. })
            ),
            "{err:?}"
        );
        assert!(!err.is_transient());
        assert_eq!(b_hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn leaderless_rounds_retry_until_retry_for_runs_out() {
        let (a, a_hits) = member(503, NO_LEADER).await;
        let (b, b_hits) = member(503, NO_LEADER).await;
        let client = MetaClient::new([a, b]).with_retry_for(Duration::from_millis(300));
        let started = tokio::time::Instant::now();
        let err = client.submit(&cmd()).await.expect_err("no leader");
        assert!(
            matches!(&err, MetaClientError::Api { body, .. } if body.code == ErrorCode::NoLeader),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(
            a_hits.load(Ordering::SeqCst) >= 2,
            "went round more than once"
        );
        assert!(b_hits.load(Ordering::SeqCst) >= 2);
    }

    #[tokio::test]
    async fn an_unreadable_error_body_is_unknown_and_final() {
        let (a, _) = member(502, "<html>bad gateway</html>").await;
        let (b, b_hits) = member(200, ACK).await;
        let client = MetaClient::new([a, b]);
        let err = client.submit(&cmd()).await.expect_err("502");
        assert!(
            matches!(&err, MetaClientError::Api { status: 502, body } if body.code == ErrorCode::Unknown),
            "{err:?}"
        );
        assert!(!err.is_transient());
        assert_eq!(b_hits.load(Ordering::SeqCst), 0);
    }
}
