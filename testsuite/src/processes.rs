//! A meta-service member in this process and real `storage-node` child
//! processes on loopback, with a dev CA; the test talks to the nodes as a
//! QUIC client, or through a gateway in this process
//! ([`ProcessCluster::start_gateway`]). Nodes can be SIGKILLed, SIGTERMed,
//! restarted, have their data wiped, or run each in a cgroup (for
//! partitions with iptables).

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use meta_client::{MetaClient, MetaReadConsistency};
use meta_service::MetaNode;
use protocol::cluster::{ClusterMap, NodeState};
use protocol::rpc::{ShardRef, StorageRequest, StorageResponse};
use protocol::{CollectionConfig, Distance, NodeId, Operation, PointId, ShardId, WriteConsistency};
use transport::{certs, RpcClient, RpcConfig, TlsConfig};

/// What a [`ProcessCluster`] runs.
#[derive(Clone, Debug)]
pub struct ProcessOptions {
    /// The `storage-node` binary (`env!("CARGO_BIN_EXE_storage-node")` in
    /// storage-node's own tests).
    pub binary: PathBuf,
    pub nodes: u64,
    /// Per node: a cgroup (v2) directory the node joins before its first
    /// instruction, so every socket it opens belongs to it.
    pub cgroups: BTreeMap<NodeId, PathBuf>,
    /// Points per growing segment (small: indexing happens often).
    pub max_segment_points: usize,
    /// Extra environment of every node (e.g. `LOG_FORMAT`).
    pub env: Vec<(String, String)>,
    /// The meta-service's dead-node grace, fixed (not adaptive).
    pub node_dead_after: Duration,
}

impl ProcessOptions {
    pub fn new(binary: impl Into<PathBuf>, nodes: u64) -> Self {
        ProcessOptions {
            binary: binary.into(),
            nodes,
            cgroups: BTreeMap::new(),
            max_segment_points: 2000,
            env: Vec::new(),
            node_dead_after: Duration::from_millis(1500),
        }
    }
}

pub struct ProcessCluster {
    options: ProcessOptions,
    dir: tempfile::TempDir,
    meta: Option<MetaNode>,
    meta_addr: String,
    pub meta_client: MetaClient,
    procs: BTreeMap<NodeId, Child>,
    ports: BTreeMap<NodeId, u16>,
    /// Gossip (chitchat) UDP port of each node; every node seeds from all.
    gossip_ports: BTreeMap<NodeId, u16>,
    client: RpcClient,
    /// The UDP port the test client sends from (partition rules let it through).
    pub client_port: u16,
    map: ClusterMap,
}

pub fn shard_ref(collection: &str, shard: ShardId) -> ShardRef {
    ShardRef {
        collection: collection.into(),
        shard,
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A client whose certificate comes from another CA.
pub fn rogue_client() -> RpcClient {
    let dir = tempfile::tempdir().expect("tempdir");
    certs::init_dir(dir.path(), "rogue-ca", false).expect("rogue ca");
    certs::issue_to_dir(dir.path(), "client", &[], &[]).expect("rogue cert");
    let tls = TlsConfig::from_dir(dir.path(), "client").expect("rogue tls");
    RpcClient::new(&tls, RpcConfig::default()).expect("rogue client")
}

impl ProcessCluster {
    /// Starts the meta member and every node; returns once all are alive
    /// in the map.
    pub async fn start(options: ProcessOptions) -> ProcessCluster {
        let nodes = options.nodes;
        let dir = tempfile::tempdir().expect("tempdir");
        let certs_dir = dir.path().join("certs");
        certs::init_dir(&certs_dir, "test-ca", false).expect("ca");
        for id in 1..=nodes {
            certs::issue_to_dir(
                &certs_dir,
                &format!("storage-{id}"),
                &[],
                &["127.0.0.1".parse().expect("ip")],
            )
            .expect("node cert");
        }
        certs::issue_to_dir(&certs_dir, "client", &[], &[]).expect("client cert");
        let dead_after = options.node_dead_after;
        let (meta, meta_addr) = crate::meta::start_meta(&dir.path().join("meta"), |config| {
            // Fast failure detection for the test, and a fixed one (the
            // adaptive grace is the chaos suite's): by default dead after
            // 1.5 s of silence.
            config.node_dead_after = dead_after;
            config.node_dead_after_min = dead_after;
            config.node_dead_backstop = config.node_dead_backstop.max(dead_after * 2);
            config.replica_replace_after = Duration::from_secs(600);
            config.controller_interval = Duration::from_millis(100);
        })
        .await;
        let tls = TlsConfig::from_dir(&certs_dir, "client").expect("client tls");
        let client_port = free_udp_port();
        let rpc_config = RpcConfig {
            client_bind: SocketAddr::from(([127, 0, 0, 1], client_port)),
            ..RpcConfig::default()
        };
        let client = RpcClient::new(&tls, rpc_config).expect("client");
        let mut cluster = ProcessCluster {
            options,
            meta_client: MetaClient::new([meta_addr.clone()]).with_timeout(Duration::from_secs(2)),
            dir,
            meta: Some(meta),
            meta_addr,
            procs: BTreeMap::new(),
            ports: BTreeMap::new(),
            gossip_ports: BTreeMap::new(),
            client,
            client_port,
            map: ClusterMap::default(),
        };
        for id in 1..=nodes {
            cluster.ports.insert(NodeId(id), free_udp_port());
            cluster.gossip_ports.insert(NodeId(id), free_udp_port());
        }
        for id in 1..=nodes {
            cluster.spawn(NodeId(id));
        }
        cluster
            .wait_map(Duration::from_secs(60), |m| {
                (1..=nodes).all(|i| {
                    m.nodes
                        .get(&NodeId(i))
                        .is_some_and(|n| n.state == NodeState::Alive)
                })
            })
            .await;
        cluster
    }

    fn spawn(&mut self, id: NodeId) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("node-{id}.log")))
            .expect("log file");
        // In a cgroup, a shell enters it and then becomes the node (exec),
        // so every socket the node opens belongs to the cgroup.
        let mut cmd = match self.options.cgroups.get(&id) {
            Some(cg) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg("echo $$ > \"$1\" && shift && exec \"$@\"")
                    .arg("sh")
                    .arg(cg.join("cgroup.procs"))
                    .arg(&self.options.binary);
                c
            }
            None => Command::new(&self.options.binary),
        };
        let child = cmd
            .args(["--id", &id.to_string()])
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("node-{id}")))
            .args(["--rpc-listen", &format!("127.0.0.1:{}", self.ports[&id])])
            .args(["--http-listen", "127.0.0.1:0"])
            .args(["--meta", &self.meta_addr])
            .arg("--certs-dir")
            .arg(self.dir.path().join("certs"))
            .args(["--heartbeat-ms", "200"])
            .args([
                "--max-segment-points",
                &self.options.max_segment_points.to_string(),
            ])
            .args([
                "--gossip-listen",
                &format!("127.0.0.1:{}", self.gossip_ports[&id]),
            ])
            .args(["--seeds", &self.gossip_seeds()])
            .env("RUST_LOG", "info")
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn storage-node");
        self.procs.insert(id, child);
    }

    fn gossip_seeds(&self) -> String {
        self.gossip_ports
            .values()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Deletes a (stopped) node's data directory: a lost disk.
    pub fn wipe_data(&self, id: NodeId) {
        let dir = self.dir.path().join(format!("node-{id}"));
        std::fs::remove_dir_all(&dir).expect("remove node data");
    }

    pub fn rpc_addr(&self, id: NodeId) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports[&id]))
    }

    pub fn log_path(&self, id: NodeId) -> PathBuf {
        self.dir.path().join(format!("node-{id}.log"))
    }

    pub async fn refresh_map(&mut self) {
        if let Ok(view) = self
            .meta_client
            .cluster_map(MetaReadConsistency::Local)
            .await
        {
            self.map = view.map;
        }
    }

    /// Waits until the map (refreshed every 100 ms) satisfies `ok`; panics
    /// with the map after `timeout`.
    pub async fn wait_map(&mut self, timeout: Duration, ok: impl Fn(&ClusterMap) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            self.refresh_map().await;
            if ok(&self.map) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "cluster map never reached the expected state: {:#?}",
                self.map
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates an 8-d collection and waits until every replica is open.
    pub async fn create_collection(&mut self, name: &str, shards: u32, rf: u32) {
        let mut config = CollectionConfig::new(8, Distance::Dot);
        config.shard_number = shards;
        config.replication_factor = rf;
        config.hnsw.m = 8;
        config.hnsw.ef_construct = 32;
        self.create_collection_with(name, config).await
    }

    /// Creates a collection as configured and waits until every replica is open.
    pub async fn create_collection_with(&mut self, name: &str, config: CollectionConfig) {
        let shards = config.shard_number;
        self.meta_client
            .create_collection(name, config)
            .await
            .expect("create collection");
        self.refresh_map().await;
        // Wait until every replica is open on its node.
        let deadline = Instant::now() + Duration::from_secs(60);
        for s in 0..shards {
            let nodes: Vec<NodeId> = self
                .map
                .shard(name, ShardId(s))
                .map(|i| i.nodes().collect())
                .unwrap_or_default();
            for n in nodes {
                while !matches!(
                    self.call(
                        n,
                        StorageRequest::Status {
                            shard: shard_ref(name, ShardId(s))
                        }
                    )
                    .await,
                    Ok(StorageResponse::Status { .. })
                ) {
                    assert!(
                        Instant::now() < deadline,
                        "replica {name}/{s} never opened on node {n}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// The map as last refreshed.
    pub fn map(&self) -> &ClusterMap {
        &self.map
    }

    pub fn map_now_primary(&self, collection: &str, shard: ShardId) -> Option<NodeId> {
        self.map.shard(collection, shard).and_then(|i| i.primary)
    }

    pub async fn primary_of(&mut self, collection: &str, shard: ShardId) -> NodeId {
        self.refresh_map().await;
        self.map_now_primary(collection, shard)
            .expect("shard has a primary")
    }

    pub async fn call(
        &self,
        node: NodeId,
        req: StorageRequest,
    ) -> Result<StorageResponse, transport::TransportError> {
        self.call_within(node, req, Duration::from_secs(10)).await
    }

    async fn call_within(
        &self,
        node: NodeId,
        req: StorageRequest,
        timeout: Duration,
    ) -> Result<StorageResponse, transport::TransportError> {
        self.client
            .call(
                self.rpc_addr(node),
                &format!("storage-{node}"),
                &req,
                timeout,
            )
            .await
    }

    /// Sends a write to the shard's primary per the cached map.
    pub async fn write_cached(
        &self,
        collection: &str,
        shard: ShardId,
        op: Operation,
        consistency: WriteConsistency,
    ) -> Result<StorageResponse, String> {
        let primary = self
            .map_now_primary(collection, shard)
            .ok_or("no primary")?;
        let req = StorageRequest::Write {
            shard: shard_ref(collection, shard),
            epoch: self.map.epoch,
            op,
            consistency,
        };
        // A dead primary never answers: give up quickly and let the caller
        // refresh the map (upserts are idempotent, so retrying is safe).
        self.call_within(primary, req, Duration::from_millis(1500))
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn write(
        &mut self,
        collection: &str,
        shard: ShardId,
        op: Operation,
        consistency: WriteConsistency,
    ) -> Result<StorageResponse, String> {
        if self.map_now_primary(collection, shard).is_none() {
            self.refresh_map().await;
        }
        self.write_cached(collection, shard, op, consistency).await
    }

    /// How many of `ids` the node returns.
    pub async fn get(
        &self,
        node: NodeId,
        collection: &str,
        shard: ShardId,
        ids: Vec<PointId>,
    ) -> usize {
        let mut found = 0;
        for chunk in ids.chunks(1000) {
            let req = StorageRequest::Get {
                shard: shard_ref(collection, shard),
                epoch: self.map.epoch,
                ids: chunk.to_vec(),
                with_payload: false,
                with_vector: false,
            };
            match self.call(node, req).await {
                Ok(StorageResponse::Records { records, .. }) => found += records.len(),
                other => panic!("get from node {node} failed: {other:?}"),
            }
        }
        found
    }

    /// GET on a node's HTTP endpoint (address from its registration).
    pub async fn http_get(&mut self, id: NodeId, path: &str) -> String {
        self.refresh_map().await;
        let addr = self
            .map
            .nodes
            .get(&id)
            .and_then(|n| n.api_addr.clone())
            .expect("node registered its HTTP address");
        reqwest::get(format!("http://{addr}{path}"))
            .await
            .expect("HTTP GET")
            .text()
            .await
            .expect("body")
    }

    /// Starts a gateway in this process that reaches the nodes over
    /// QUIC with mutual TLS, as the `gateway` binary does; its REST
    /// address is `handle.addr()`. Stop it with `handle.shutdown()`.
    pub async fn start_gateway(&self) -> gateway::server::GatewayHandle {
        let tls =
            TlsConfig::from_dir(&self.dir.path().join("certs"), "client").expect("gateway tls");
        let rpc = RpcClient::new(&tls, RpcConfig::default()).expect("gateway QUIC client");
        let client =
            std::sync::Arc::new(gateway::QuicShardClient::new(rpc, Duration::from_secs(10)));
        let config = gateway::Config::load(
            None,
            |_| None,
            &gateway::config::Overrides {
                rest_port: Some(0),
                listen_host: Some("127.0.0.1".into()),
                node_id: Some("test-gateway".into()),
                ..gateway::config::Overrides::default()
            },
        )
        .expect("gateway config");
        gateway::server::start_with(
            &config,
            std::sync::Arc::new(self.meta_client.clone()),
            client,
        )
        .await
        .expect("start gateway")
    }

    pub fn kill(&mut self, id: NodeId) {
        if let Some(mut child) = self.procs.remove(&id) {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits (at most `timeout`) for the process to
    /// exit; returns how long it took, or `None` if it was still running
    /// (it is then SIGKILLed).
    pub fn terminate(&mut self, id: NodeId, timeout: Duration) -> Option<Duration> {
        let mut child = self.procs.remove(&id)?;
        let sent = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        while sent.elapsed() < timeout {
            if let Ok(Some(_)) = child.try_wait() {
                return Some(sent.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Waits (at most `timeout`) for the node's process to exit on its own;
    /// its exit status, or `None` if it is still running.
    pub fn exited(&mut self, id: NodeId, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.procs.get_mut(&id)?;
            if let Ok(Some(status)) = child.try_wait() {
                self.procs.remove(&id);
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGSTOP: the process hangs (a stalled disk, a long GC pause) with
    /// its sockets open; [`ProcessCluster::resume`] continues it.
    pub fn pause(&self, id: NodeId) {
        self.signal(id, "-STOP");
    }

    pub fn resume(&self, id: NodeId) {
        self.signal(id, "-CONT");
    }

    fn signal(&self, id: NodeId, signal: &str) {
        let child = self.procs.get(&id).expect("a running node");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} node {id}");
    }

    pub async fn restart(&mut self, id: NodeId) {
        self.spawn(id);
    }

    /// Waits until every replica of every shard reports the same point
    /// count and content checksum; returns them per shard.
    pub async fn wait_converged(
        &mut self,
        collection: &str,
        shards: u32,
        timeout: Duration,
    ) -> BTreeMap<ShardId, (u64, u64)> {
        let deadline = Instant::now() + timeout;
        loop {
            self.refresh_map().await;
            let mut out = BTreeMap::new();
            let mut all = true;
            for s in 0..shards {
                let nodes: Vec<NodeId> = self
                    .map
                    .shard(collection, ShardId(s))
                    .map(|i| i.nodes().collect())
                    .unwrap_or_default();
                let mut seen = Vec::new();
                for n in &nodes {
                    match self
                        .call(
                            *n,
                            StorageRequest::Status {
                                shard: shard_ref(collection, ShardId(s)),
                            },
                        )
                        .await
                    {
                        Ok(StorageResponse::Status { status }) => {
                            seen.push((status.points, status.checksum))
                        }
                        _ => all = false,
                    }
                }
                if seen.len() != nodes.len() || seen.windows(2).any(|w| w[0] != w[1]) {
                    all = false;
                }
                if let Some(first) = seen.first() {
                    out.insert(ShardId(s), *first);
                }
            }
            if all {
                return out;
            }
            if Instant::now() > deadline {
                for id in self.ports.keys() {
                    eprintln!("--- node {id} log tail ---\n{}", tail(&self.log_path(*id)));
                }
                panic!("replicas did not converge in {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn stop_meta(&mut self) {
        if let Some(meta) = self.meta.take() {
            meta.shutdown().await;
        }
    }

    pub async fn stop(mut self) {
        let ids: Vec<NodeId> = self.procs.keys().copied().collect();
        for id in ids {
            self.kill(id);
        }
        self.stop_meta().await;
    }
}

fn tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut self.procs) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
