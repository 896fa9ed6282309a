use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway::api::{ApiKeys, HttpOptions};
use gateway::{CallError, CallFuture, Gateway, RoutingOptions, ShardClient};
use meta_client::MetaClient;
use meta_service::{MetaConfig, MetaNode};
use parking_lot::RwLock;
use protocol::cluster::NodeInfo;
use protocol::rpc::StorageRequest;
use protocol::NodeId;
use serde_json::Value;
use storage_node::node::{Lease, Node, NodeOptions, PeerFuture, Peers};
use storage_node::{ShardOptions, SyncMode, WalOptions};
use tokio::sync::watch;

/// Clusters are heavy (FAISS, fsync): one at a time.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Default)]
pub struct Network {
    nodes: RwLock<HashMap<NodeId, Arc<Node>>>,
    down: RwLock<HashSet<NodeId>>,
    delay: RwLock<HashMap<NodeId, Duration>>,
}

impl Network {
    async fn send(
        &self,
        from: Option<NodeId>,
        to: NodeId,
        req: StorageRequest,
    ) -> Result<protocol::rpc::StorageResponse, CallError> {
        let delay = self.delay.read().get(&to).copied();
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        let down = {
            let d = self.down.read();
            d.contains(&to) || from.is_some_and(|f| d.contains(&f))
        };
        let target = self.nodes.read().get(&to).cloned();
        match target {
            Some(t) if !down => Ok(t.handle(req).await),
            _ => Err(CallError::Unreachable {
                node: to,
                reason: "down".into(),
            }),
        }
    }
}

struct Link {
    from: NodeId,
    net: Arc<Network>,
}

impl Peers for Link {
    fn call(&self, node: NodeId, request: StorageRequest) -> PeerFuture {
        let net = self.net.clone();
        let from = self.from;
        Box::pin(async move { net.send(Some(from), node, request).await })
    }
}

/// The gateway's view of the in-memory network.
pub struct InProcClient(Arc<Network>);

impl ShardClient for InProcClient {
    fn call(&self, node: &NodeInfo, req: StorageRequest) -> CallFuture {
        let net = self.0.clone();
        let id = node.id;
        Box::pin(async move { net.send(None, id, req).await })
    }
}

pub struct TestCluster {
    pub net: Arc<Network>,
    pub meta: MetaClient,
    pub gw: Arc<Gateway>,
    pub url: String,
    pub http: reqwest::Client,
    meta_node: Option<MetaNode>,
    /// Per node: stops its QUIC server (QUIC clusters only).
    pub quic_stop: HashMap<u64, watch::Sender<bool>>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _dirs: Vec<tempfile::TempDir>,
}

pub struct Options {
    /// Gateway → storage nodes over real QUIC + mTLS (replication between
    /// nodes stays in memory).
    pub quic: bool,
    pub keys: ApiKeys,
    pub http: HttpOptions,
    pub routing: RoutingOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            quic: false,
            keys: ApiKeys::default(),
            http: HttpOptions {
                max_body_bytes: 1 << 20,
                ..HttpOptions::default()
            },
            routing: RoutingOptions {
                shard_timeout: Duration::from_secs(5),
                hedge_delay: Some(Duration::from_millis(100)),
                ..RoutingOptions::default()
            },
        }
    }
}

fn node_options() -> NodeOptions {
    NodeOptions {
        shard: ShardOptions {
            wal: WalOptions {
                sync: SyncMode::Always,
                max_file_bytes: 1 << 20,
            },
            ..ShardOptions::default()
        },
        write_timeout: Duration::from_secs(2),
        retry_backoff: Duration::from_millis(50),
        ..NodeOptions::default()
    }
}

impl TestCluster {
    pub async fn start(opts: Options) -> TestCluster {
        // The gateway's recorder first, so /metrics sees everything.
        let _ = gateway::telemetry::prometheus();
        let mut dirs = Vec::new();
        let meta_dir = tempfile::tempdir().expect("tempdir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let mut config = MetaConfig::new(1, addr.clone(), meta_dir.path());
        // No heartbeats in these tests: never declare a node dead.
        config.node_dead_after = Duration::from_secs(3600);
        config.replica_replace_after = Duration::from_secs(7200);
        let meta_node = MetaNode::start(config, listener).await.expect("meta start");
        meta_node.initialize(BTreeMap::new()).await.expect("init");
        dirs.push(meta_dir);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !meta_node.app.is_leader() {
            assert!(Instant::now() < deadline, "meta member did not lead");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let meta = MetaClient::new([addr]);
        let net = Arc::new(Network::default());
        let ca = transport::certs::generate_ca("test-ca").expect("ca");
        let mut quic_stop = HashMap::new();
        let mut tasks = Vec::new();
        for id in 1..=3u64 {
            let dir = tempfile::tempdir().expect("tempdir");
            let node = Node::new(
                NodeId(id),
                dir.path().to_path_buf(),
                node_options(),
                Arc::new(Link {
                    from: NodeId(id),
                    net: net.clone(),
                }),
                Lease::unlimited(),
            );
            net.nodes.write().insert(NodeId(id), node.clone());
            dirs.push(dir);
            let addr = if opts.quic {
                let name = gateway::quic::storage_server_name(NodeId(id));
                let cert =
                    transport::certs::issue(&ca, &name, &[], &["127.0.0.1".parse().expect("ip")])
                        .expect("issue");
                let tls = transport::TlsConfig::from_pem(
                    ca.cert_pem.as_bytes(),
                    cert.cert_pem.as_bytes(),
                    cert.key_pem.as_bytes(),
                )
                .expect("tls");
                let server = transport::RpcServer::bind(
                    "127.0.0.1:0".parse().expect("addr"),
                    &tls,
                    transport::RpcConfig::default(),
                )
                .expect("bind quic");
                let addr = server.local_addr().expect("addr").to_string();
                let (tx, mut rx) = watch::channel(false);
                quic_stop.insert(id, tx);
                let service = transport::service_fn(
                    move |_peer: transport::PeerIdentity, req: StorageRequest| {
                        let node = node.clone();
                        async move { transport::Reply::One(node.handle(req).await) }
                    },
                );
                tasks.push(tokio::spawn(async move {
                    let _ = server
                        .run::<StorageRequest, protocol::rpc::StorageResponse, _>(
                            service,
                            async move {
                                let _ = rx.wait_for(|s| *s).await;
                            },
                        )
                        .await;
                }));
                addr
            } else {
                format!("node-{id}")
            };
            meta.register_node(&NodeInfo::new(NodeId(id), addr))
                .await
                .expect("register");
        }
        let (stop, stop_rx) = watch::channel(false);
        // Storage nodes follow the map (what their meta watch does in production).
        {
            let meta = meta.clone();
            let net = net.clone();
            let mut stop_rx = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                let mut epoch = protocol::Epoch(0);
                loop {
                    let res = tokio::select! {
                        r = meta.watch(epoch, Duration::from_secs(2)) => r,
                        _ = stop_rx.changed() => return,
                    };
                    match res {
                        Ok(Some(view)) => {
                            epoch = view.map.epoch;
                            let nodes: Vec<_> = net.nodes.read().values().cloned().collect();
                            for n in nodes {
                                n.apply_map(view.map.clone()).await;
                            }
                        }
                        Ok(None) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }));
        }
        let client: Arc<dyn ShardClient> = if opts.quic {
            let cert = transport::certs::issue(&ca, "gateway", &[], &[]).expect("issue");
            let tls = transport::TlsConfig::from_pem(
                ca.cert_pem.as_bytes(),
                cert.cert_pem.as_bytes(),
                cert.key_pem.as_bytes(),
            )
            .expect("tls");
            let rpc =
                transport::RpcClient::new(&tls, transport::RpcConfig::default()).expect("client");
            Arc::new(gateway::QuicShardClient::new(rpc, Duration::from_secs(5)))
        } else {
            Arc::new(InProcClient(net.clone()))
        };
        let gw = Gateway::new(Arc::new(meta.clone()), client, opts.routing);
        let router = gateway::server::app(gw.clone(), opts.keys, &opts.http);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let mut http_stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            let _ = gateway::server::serve(listener, router, async move {
                let _ = http_stop.changed().await;
            })
            .await;
        }));
        TestCluster {
            net,
            meta,
            gw,
            url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            meta_node: Some(meta_node),
            quic_stop,
            stop,
            tasks,
            _dirs: dirs,
        }
    }

    pub fn set_down(&self, id: u64, down: bool) {
        if down {
            self.net.down.write().insert(NodeId(id));
        } else {
            self.net.down.write().remove(&NodeId(id));
        }
    }

    pub fn set_delay(&self, id: u64, delay: Option<Duration>) {
        match delay {
            Some(d) => self.net.delay.write().insert(NodeId(id), d),
            None => self.net.delay.write().remove(&NodeId(id)),
        };
    }

    /// Sends a request; returns (status, JSON body).
    pub async fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut r = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            r = r.json(&b);
        }
        if let Some(k) = key {
            r = r.header("api-key", k);
        }
        let resp = r.send().await.expect("http");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.req(reqwest::Method::GET, path, None, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.req(reqwest::Method::POST, path, Some(body), None)
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.req(reqwest::Method::PUT, path, Some(body), None).await
    }

    /// `result` of a 200 answer, panicking with the body otherwise.
    pub async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.req(method.clone(), path, body, None).await;
        assert_eq!(s, 200, "{method} {path}: {v}");
        assert_eq!(v["status"], "ok", "{v}");
        v["result"].clone()
    }

    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for s in self.quic_stop.values() {
            let _ = s.send(true);
        }
        self.gw.shutdown();
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        if let Some(m) = self.meta_node.take() {
            m.shutdown().await;
        }
    }
}

/// Deterministic pseudo-random vectors (no RNG crate state to thread around).
pub fn vector(i: u64, dim: usize) -> Vec<f32> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(12345);
    (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x % 20_000) as f32 / 10_000.0) - 1.0
        })
        .collect()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// Exact top-k ids by cosine among `points` passing `keep`.
pub fn brute_force(
    points: &[(u64, Vec<f32>)],
    q: &[f32],
    k: usize,
    keep: impl Fn(u64) -> bool,
) -> Vec<u64> {
    let mut scored: Vec<(f32, u64)> = points
        .iter()
        .filter(|(id, _)| keep(*id))
        .map(|(id, v)| (cosine(v, q), *id))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|(_, id)| id).collect()
}

pub fn ids_of(hits: &Value) -> Vec<u64> {
    hits.as_array()
        .map(|a| a.iter().filter_map(|h| h["id"].as_u64()).collect())
        .unwrap_or_default()
}

pub const DIM: usize = 8;

/// Creates `name` (3 shards, RF 2, cosine) and upserts `n` points with
/// payloads `{"group": i % 3, "n": i}`; returns the points.
pub async fn seed(c: &TestCluster, name: &str, n: u64) -> Vec<(u64, Vec<f32>)> {
    let created = c
        .ok(
            reqwest::Method::PUT,
            &format!("/collections/{name}"),
            Some(serde_json::json!({
                "vectors": {"size": DIM, "distance": "Cosine"},
                "shard_number": 3, "replication_factor": 2,
            })),
        )
        .await;
    assert_eq!(created, Value::Bool(true));
    let points: Vec<(u64, Vec<f32>)> = (0..n).map(|i| (i, vector(i, DIM))).collect();
    for chunk in points.chunks(100) {
        let body: Vec<Value> = chunk
            .iter()
            .map(|(i, v)| serde_json::json!({"id": i, "vector": v, "payload": {"group": i % 3, "n": i}}))
            .collect();
        c.ok(
            reqwest::Method::PUT,
            &format!("/collections/{name}/points?wait=true"),
            Some(serde_json::json!({"points": body})),
        )
        .await;
    }
    points
}
