//! The runner's view of the running compose cluster: container addresses,
//! the meta-service's map and leader, the storage nodes' replicas, and the
//! waits every scenario needs (settled, converged).
//!
//! Everything is reached by container IP on the compose network (the host
//! can route to it): meta members on :7947, storage nodes' HTTP on :7960,
//! gateways and the load balancer on :15001.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use parking_lot::{Mutex, RwLock};
use protocol::cluster::{ClusterMap, ClusterMapView, NodeState, ReplicaState};
use serde::Deserialize;
use tokio::sync::watch;

use crate::client::{Gateway, RetryPolicy};
use crate::compose::{Compose, Container};
use crate::converge::{self, NodeReplicas, ShardAssignment, ShardState};
use crate::fault;
use crate::history::History;
use crate::timeline::MapSample;

pub const META: [&str; 3] = ["meta1", "meta2", "meta3"];
pub const STORAGE: [&str; 5] = ["storage1", "storage2", "storage3", "storage4", "storage5"];
pub const GATEWAYS: [&str; 2] = ["gateway1", "gateway2"];
pub const LB: &str = "lb";
const META_PORT: u16 = 7947;
const NODE_HTTP_PORT: u16 = 7960;
const REST_PORT: u16 = 15001;
const LB_STATS_PORT: u16 = 8404;

/// The services a healthy cluster runs (the one-shot `certs` is not one).
pub fn services() -> Vec<&'static str> {
    META.iter()
        .chain(STORAGE.iter())
        .chain(GATEWAYS.iter())
        .copied()
        .chain([LB])
        .collect()
}

/// `storage3` → node 3 (the compose file gives `storageN` `NODE_ID=N`).
pub fn node_id(service: &str) -> Option<u64> {
    service.strip_prefix("storage")?.parse().ok()
}

pub fn node_service(id: u64) -> String {
    format!("storage{id}")
}

/// A meta member's `GET /health`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct MetaHealth {
    pub id: u64,
    pub state: String,
    pub leader: Option<u64>,
    pub term: u64,
    pub epoch: u64,
}

pub struct Cluster {
    pub compose: Compose,
    pub retry: RetryPolicy,
    containers: RwLock<BTreeMap<String, Container>>,
    /// Short timeouts: probes of meta members and nodes must not hang on a
    /// dead or cut-off container.
    probe: reqwest::Client,
}

impl Cluster {
    pub fn new(compose: Compose, retry: RetryPolicy) -> Result<Arc<Cluster>> {
        let probe = reqwest::Client::builder()
            .timeout(Duration::from_millis(1500))
            .connect_timeout(Duration::from_millis(800))
            .build()
            .context("build probe client")?;
        Ok(Arc::new(Cluster {
            compose,
            retry,
            containers: RwLock::new(BTreeMap::new()),
            probe,
        }))
    }

    /// Re-reads every container's state, PID and address.
    pub async fn refresh(&self) -> Result<()> {
        let containers = self.compose.containers().await?;
        *self.containers.write() = containers;
        Ok(())
    }

    pub fn container(&self, service: &str) -> Result<Container> {
        self.containers
            .read()
            .get(service)
            .cloned()
            .ok_or_else(|| anyhow!("no container for service {service}"))
    }

    pub fn ip(&self, service: &str) -> Result<Ipv4Addr> {
        self.container(service)?
            .ip
            .ok_or_else(|| anyhow!("{service} has no address (stopped?)"))
    }

    /// A REST client for a gateway or the load balancer, with the retry
    /// policy's per-attempt timeout.
    pub fn gateway(&self, service: &str) -> Result<Gateway> {
        self.gateway_with_timeout(service, self.retry.timeout)
    }

    pub fn gateway_with_timeout(&self, service: &str, timeout: Duration) -> Result<Gateway> {
        let ip = self.ip(service)?;
        Gateway::new(service, &format!("http://{ip}:{REST_PORT}"), timeout)
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(&self, url: &str) -> Result<T> {
        let resp = self
            .probe
            .get(url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        if !status.is_success() {
            bail!("GET {url}: HTTP {status}");
        }
        resp.json::<T>()
            .await
            .with_context(|| format!("decode {url}"))
    }

    /// The load balancer's view of a gateway (`UP`, `DOWN`, `UP 1/2`, …),
    /// from HAProxy's `/stats;csv`.
    pub async fn lb_server_status(&self, gateway: &str) -> Result<String> {
        let ip = self.ip(LB)?;
        let url = format!("http://{ip}:{LB_STATS_PORT}/stats;csv");
        let text = self
            .probe
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?
            .text()
            .await
            .with_context(|| format!("read {url}"))?;
        lb_status(&text, gateway).ok_or_else(|| anyhow!("{gateway} not in the LB stats"))
    }

    pub async fn meta_health(&self, service: &str) -> Result<MetaHealth> {
        let ip = self.ip(service)?;
        self.get_json(&format!("http://{ip}:{META_PORT}/health"))
            .await
    }

    /// Every meta member's health (`None` for members that did not answer).
    pub async fn meta_healths(&self) -> Vec<(String, Option<MetaHealth>)> {
        let asks = META
            .iter()
            .map(|m| async move { (m.to_string(), self.meta_health(m).await.ok()) });
        futures::future::join_all(asks).await
    }

    /// The leader as the members that answer see it: the member that says
    /// it is leader in the highest term, confirmed by a majority of all
    /// members (so a deposed leader that has not noticed yet is not taken).
    pub async fn meta_leader(&self) -> Option<(String, u64)> {
        let healths = self.meta_healths().await;
        let leader = healths
            .iter()
            .filter_map(|(svc, h)| h.as_ref().map(|h| (svc, h)))
            .filter(|(_, h)| h.state == "Leader")
            .max_by_key(|(_, h)| h.term)
            .map(|(svc, h)| (svc.clone(), h.id))?;
        let agree = healths
            .iter()
            .filter(|(_, h)| h.as_ref().is_some_and(|h| h.leader == Some(leader.1)))
            .count();
        (agree * 2 > META.len()).then_some(leader)
    }

    /// The cluster map: asks every member (linearizable reads, forwarded to
    /// the leader) at once and keeps the newest answer; a member cut off
    /// from the majority cannot answer such a read, so it cannot hand out
    /// a stale map.
    ///
    /// Read during faults (right after a meta leader dies, members may not
    /// confirm their leadership yet), so a round where no member answers
    /// is tried again for up to 10 s.
    pub async fn map(&self) -> Result<ClusterMap> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.map_once().await {
                Ok(map) => return Ok(map),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %format!("{e:#}"), "no meta member answered the map; asking again");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
    }

    async fn map_once(&self) -> Result<ClusterMap> {
        let asks = META.iter().map(|m| async move {
            let ip = self.ip(m)?;
            self.get_json::<ClusterMapView>(&format!(
                "http://{ip}:{META_PORT}/v1/cluster/map?consistency=linearizable"
            ))
            .await
        });
        let answers = futures::future::join_all(asks).await;
        let mut errors = Vec::new();
        let mut best: Option<ClusterMap> = None;
        for a in answers {
            match a {
                Ok(view) => {
                    if best.as_ref().is_none_or(|b| view.map.epoch > b.epoch) {
                        best = Some(view.map);
                    }
                }
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        best.ok_or_else(|| anyhow!("no meta member answered the map: {}", errors.join("; ")))
    }

    /// The running containers of every service but `service` and the load
    /// balancer: what a cut around `service` separates it from.
    pub fn others(&self, service: &str) -> Vec<Container> {
        services()
            .into_iter()
            .filter(|s| *s != service && *s != LB)
            .filter_map(|s| self.container(s).ok())
            .filter(|c| c.running)
            .collect()
    }

    /// A storage node's Prometheus page.
    pub async fn node_metrics(&self, service: &str) -> Result<String> {
        let url = format!("http://{}:{NODE_HTTP_PORT}/metrics", self.ip(service)?);
        let resp = self
            .probe
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        if !resp.status().is_success() {
            bail!("GET {url}: HTTP {}", resp.status());
        }
        resp.text().await.with_context(|| format!("read {url}"))
    }

    pub async fn node_replicas(&self, service: &str) -> Result<NodeReplicas> {
        let ip = self.ip(service)?;
        self.get_json(&format!("http://{ip}:{NODE_HTTP_PORT}/replicas"))
            .await
    }

    /// Waits until a restarted storage node is back in service: it holds a
    /// valid write lease (so it registered again and its heartbeats are
    /// acknowledged: the map already reflects its return), and then the
    /// map is whole (its replicas caught up and active again).
    pub async fn wait_node_back(&self, service: &str, timeout: Duration) -> Result<Duration> {
        let t0 = Instant::now();
        let mut why = String::from("not checked yet");
        while t0.elapsed() < timeout {
            let _ = self.refresh().await;
            let lease = match self.ip(service) {
                Ok(ip) => self
                    .get_json::<serde_json::Value>(&format!("http://{ip}:{NODE_HTTP_PORT}/health"))
                    .await
                    .map(|h| h["lease_valid"].as_bool() == Some(true)),
                Err(e) => Err(e),
            };
            match lease {
                Ok(true) => match self.map().await.and_then(|m| check_map_whole(&m)) {
                    Ok(()) => return Ok(t0.elapsed()),
                    Err(e) => why = format!("{e:#}"),
                },
                Ok(false) => why = format!("{service} has no valid lease yet"),
                Err(e) => why = format!("{e:#}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("{service} not back in service after {timeout:?}: {why}")
    }

    /// Starts every service container that is not running.
    pub async fn start_stopped(&self) -> Result<Vec<String>> {
        self.refresh().await?;
        let mut started = Vec::new();
        for svc in services() {
            let c = self.container(svc)?;
            if !c.running {
                fault::start(&c).await?;
                started.push(svc.to_string());
            }
        }
        if !started.is_empty() {
            self.refresh().await?;
        }
        Ok(started)
    }

    /// Waits until the cluster is whole: a meta leader, every storage node
    /// alive in the map, every gateway and the load balancer ready, and
    /// (with `replicas`) every replica active with a primary. Returns how
    /// long it took.
    pub async fn wait_settled(&self, timeout: Duration, replicas: bool) -> Result<Duration> {
        let t0 = Instant::now();
        let mut why = String::from("not checked yet");
        while t0.elapsed() < timeout {
            match self.settled_now(replicas).await {
                Ok(()) => return Ok(t0.elapsed()),
                Err(e) => why = format!("{e:#}"),
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        bail!("cluster not settled after {timeout:?}: {why}")
    }

    async fn settled_now(&self, replicas: bool) -> Result<()> {
        self.refresh().await?;
        if self.meta_leader().await.is_none() {
            bail!("no meta-service leader");
        }
        let map = self.map().await?;
        check_nodes_alive(&map)?;
        if replicas {
            check_replicas_active(&map)?;
        }
        for g in GATEWAYS.iter().chain([&LB]) {
            if !self.gateway(g)?.ready().await {
                bail!("{g} is not ready");
            }
        }
        Ok(())
    }

    /// Where the map puts the shards of `collection`.
    pub fn assignment(map: &ClusterMap, collection: &str) -> Vec<ShardAssignment> {
        map.collections
            .get(collection)
            .map(|c| {
                c.shards
                    .values()
                    .map(|s| ShardAssignment {
                        collection: collection.to_string(),
                        shard: s.id.0,
                        incarnation: c.created_epoch.0,
                        nodes: s.nodes().map(|n| n.0).collect(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One look at whether the replicas of `collection` agree.
    pub async fn convergence_now(&self, collection: &str) -> Result<Vec<ShardState>> {
        let map = self.map().await?;
        let assignment = Self::assignment(&map, collection);
        let asks = STORAGE.iter().map(|s| async move {
            (
                node_id(s).unwrap_or_default(),
                self.node_replicas(s).await.ok(),
            )
        });
        let reports: BTreeMap<u64, Vec<converge::ReplicaReport>> = futures::future::join_all(asks)
            .await
            .into_iter()
            .filter_map(|(id, r)| r.map(|r| (id, r.replicas)))
            .collect();
        Ok(converge::compare(&assignment, &reports))
    }

    /// Polls until every replica of `collection` reports the same count and
    /// checksum; returns the time it took and the final states. On timeout
    /// the error carries the last states seen.
    pub async fn wait_converged(
        &self,
        collection: &str,
        timeout: Duration,
    ) -> Result<(Duration, Vec<ShardState>)> {
        let t0 = Instant::now();
        let mut last = String::from("no answer yet");
        while t0.elapsed() < timeout {
            let _ = self.refresh().await;
            match self.convergence_now(collection).await {
                Ok(states) if converge::converged(&states) => return Ok((t0.elapsed(), states)),
                Ok(states) => {
                    last = serde_json::to_string(&states).unwrap_or_default();
                }
                Err(e) => last = format!("{e:#}"),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        bail!("replicas of {collection} did not converge in {timeout:?}; last: {last}")
    }

    /// Samples the map every ~150 ms until `stop` flips (the samples are on
    /// `history`'s clock).
    pub fn spawn_map_watcher(
        self: &Arc<Self>,
        history: Arc<History>,
        mut stop: watch::Receiver<bool>,
    ) -> (Arc<Mutex<Vec<MapSample>>>, tokio::task::JoinHandle<()>) {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let out = samples.clone();
        let cluster = self.clone();
        let handle = tokio::spawn(async move {
            // Bounded by `stop` and by an hour, whichever comes first.
            let deadline = Instant::now() + Duration::from_secs(3600);
            while !*stop.borrow() && Instant::now() < deadline {
                if let Ok(map) = cluster.map().await {
                    samples
                        .lock()
                        .push(MapSample::from_map(history.now(), &map));
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(150)) => {}
                    _ = stop.changed() => {}
                }
            }
        });
        (out, handle)
    }

    /// Writes the last log lines of `services` to `dir/<label>-<svc>.log`.
    pub async fn dump_logs(&self, dir: &Path, label: &str, services: &[&str]) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            tracing::warn!("cannot create {}: {e}", dir.display());
            return;
        }
        for svc in services {
            match self.compose.logs(svc, 5000).await {
                Ok(text) => {
                    let path = dir.join(format!("{label}-{svc}.log"));
                    if let Err(e) = std::fs::write(&path, text) {
                        tracing::warn!("cannot write {}: {e}", path.display());
                    }
                }
                Err(e) => tracing::warn!("logs of {svc}: {e:#}"),
            }
        }
    }
}

/// The `status` of server `server` of backend `gateways` in HAProxy's CSV.
pub fn lb_status(csv: &str, server: &str) -> Option<String> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
    let (px, sv, st) = (
        header.iter().position(|h| *h == "pxname")?,
        header.iter().position(|h| *h == "svname")?,
        header.iter().position(|h| *h == "status")?,
    );
    lines
        .map(|l| l.split(',').collect::<Vec<&str>>())
        .find(|row| row.get(px) == Some(&"gateways") && row.get(sv) == Some(&server))
        .and_then(|row| row.get(st).map(|s| s.to_string()))
}

/// The map is whole: all five storage nodes alive, every shard with a
/// primary and only active replicas.
pub fn check_map_whole(map: &ClusterMap) -> Result<()> {
    check_nodes_alive(map)?;
    check_replicas_active(map)
}

/// All five storage nodes registered and alive.
pub fn check_nodes_alive(map: &ClusterMap) -> Result<()> {
    for svc in STORAGE {
        let id = node_id(svc).unwrap_or_default();
        match map.nodes.get(&protocol::NodeId(id)) {
            Some(n) if n.state == NodeState::Alive => {}
            Some(n) => bail!("{svc} is {:?} in the map", n.state),
            None => bail!("{svc} is not registered"),
        }
    }
    Ok(())
}

/// Every shard has a primary and only active replicas.
pub fn check_replicas_active(map: &ClusterMap) -> Result<()> {
    for c in map.collections.values() {
        for s in c.shards.values() {
            if s.primary.is_none() {
                bail!("{}/{} has no primary", c.name, s.id);
            }
            if let Some(r) = s.replicas.iter().find(|r| r.state != ReplicaState::Active) {
                bail!(
                    "{}/{}: replica on node {} is {:?}",
                    c.name,
                    s.id,
                    r.node,
                    r.state
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lb_stats_csv_gives_a_servers_status() {
        let csv = "# pxname,svname,qcur,status\nrest,FRONTEND,0,OPEN\ngateways,gateway1,0,DOWN\ngateways,gateway2,,UP 1/2\n";
        assert_eq!(lb_status(csv, "gateway1").as_deref(), Some("DOWN"));
        assert_eq!(lb_status(csv, "gateway2").as_deref(), Some("UP 1/2"));
        assert_eq!(lb_status(csv, "gateway3"), None);
        assert_eq!(lb_status("", "gateway1"), None);
        assert_eq!(node_id("storage4"), Some(4));
        assert_eq!(node_id("meta1"), None);
    }
}
