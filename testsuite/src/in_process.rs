//! A whole cluster in this process: one meta-service member, three storage
//! nodes with real shards in temp dirs, and the gateway's HTTP server on
//! 127.0.0.1:0, driven over HTTP. Storage nodes reach each other over an
//! in-memory network that can take nodes down or slow them; the gateway
//! reaches them over the same network or, with [`Options::quic`], over
//! real QUIC + mTLS.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gateway::api::{ApiKeys, HttpOptions};
use gateway::config::{Config, Overrides};
use gateway::server::GatewayHandle;
use gateway::{CallFuture, Gateway, RoutingOptions, ShardClient};
use meta_client::MetaClient;
use meta_service::MetaNode;
use protocol::cluster::NodeInfo;
use protocol::rpc::{StorageRequest, StorageResponse};
use protocol::NodeId;
use serde_json::Value;
use storage_node::node::Lease;
use storage_node::testsuite::{node_options, InMemoryNetwork};
use tokio::sync::watch;

/// Storage nodes in a [`TestCluster`].
pub const NODES: u64 = 3;

/// The gateway's view of the in-memory network.
struct InProcClient(Arc<InMemoryNetwork>);

impl ShardClient for InProcClient {
    fn call(&self, node: &NodeInfo, req: StorageRequest) -> CallFuture {
        let net = self.0.clone();
        let id = node.id;
        Box::pin(async move { net.send(None, id, req).await })
    }
}

pub struct Options {
    /// Gateway → storage nodes over real QUIC + mTLS (replication between
    /// nodes stays in memory).
    pub quic: bool,
    pub keys: ApiKeys,
    pub http: HttpOptions,
    pub routing: RoutingOptions,
    /// How long a storage node's write waits for its replicas.
    pub write_timeout: Duration,
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
            write_timeout: Duration::from_secs(2),
        }
    }
}

pub struct TestCluster {
    pub net: Arc<InMemoryNetwork>,
    pub meta: MetaClient,
    /// The meta member's HTTP address (`host:port`), for raw API calls.
    pub meta_addr: String,
    /// Each storage node's data directory, node 1 first.
    pub node_dirs: Vec<std::path::PathBuf>,
    pub url: String,
    pub http: reqwest::Client,
    gateway: Option<GatewayHandle>,
    meta_node: Option<MetaNode>,
    /// Per node: stops its QUIC server (QUIC clusters only).
    pub quic_stop: HashMap<u64, watch::Sender<bool>>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _dirs: Vec<tempfile::TempDir>,
}

impl TestCluster {
    pub async fn start(opts: Options) -> TestCluster {
        // The gateway's recorder first, so /metrics sees everything.
        let _ = gateway::telemetry::prometheus();
        let mut dirs = Vec::new();
        let meta_dir = tempfile::tempdir().expect("tempdir");
        let (meta_node, addr) = crate::meta::start_meta(meta_dir.path(), |c| {
            // No heartbeats in these tests: never declare a node dead.
            c.node_dead_after = Duration::from_secs(3600);
            c.node_dead_after_min = Duration::from_secs(3600);
            c.replica_replace_after = Duration::from_secs(7200);
        })
        .await;
        dirs.push(meta_dir);
        let meta_addr = addr.clone();
        let mut node_dirs = Vec::new();
        let meta = MetaClient::new([addr]);
        let net = InMemoryNetwork::new();
        let ca = transport::certs::generate_ca("test-ca").expect("ca");
        let mut quic_stop = HashMap::new();
        let mut tasks = Vec::new();
        for id in 1..=NODES {
            let dir = tempfile::tempdir().expect("tempdir");
            let node = net.add_node(
                NodeId(id),
                dir.path(),
                node_options(opts.write_timeout),
                Lease::unlimited(),
            );
            node_dirs.push(dir.path().to_path_buf());
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
                        .run::<StorageRequest, StorageResponse, _>(service, async move {
                            let _ = rx.wait_for(|s| *s).await;
                        })
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
        tasks.push(tokio::spawn(follow_map(meta.clone(), net.clone(), stop_rx)));
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
        let mut config = Config::load(
            None,
            |_| None,
            &Overrides {
                rest_port: Some(0),
                listen_host: Some("127.0.0.1".into()),
                node_id: Some("test-gateway".into()),
                ..Overrides::default()
            },
        )
        .expect("gateway config");
        config.keys = opts.keys;
        config.http = opts.http;
        config.routing = opts.routing;
        let gateway = gateway::server::start_with(&config, Arc::new(meta.clone()), client)
            .await
            .expect("start gateway");
        TestCluster {
            url: format!("http://{}", gateway.addr()),
            net,
            meta,
            meta_addr,
            node_dirs,
            gateway: Some(gateway),
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

    /// A client reaching this cluster's storage nodes in memory, for a
    /// second gateway started by a test (e.g. with other config).
    pub fn shard_client(&self) -> Arc<dyn ShardClient> {
        Arc::new(InProcClient(self.net.clone()))
    }

    /// The gateway's shared state.
    pub fn gw(&self) -> &Arc<Gateway> {
        self.gateway.as_ref().expect("gateway running").gateway()
    }

    pub fn set_down(&self, id: u64, down: bool) {
        self.net.set_down(NodeId(id), down);
    }

    pub fn set_delay(&self, id: u64, delay: Option<Duration>) {
        self.net.set_delay(NodeId(id), delay);
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

    /// Stops the gateway (draining), the map follower, the QUIC servers,
    /// closes the storage nodes, then stops the meta member.
    pub async fn shutdown(mut self) {
        if let Some(g) = self.gateway.take() {
            let _ = g.shutdown().await;
        }
        let _ = self.stop.send(true);
        for s in self.quic_stop.values() {
            let _ = s.send(true);
        }
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        for node in self.net.nodes() {
            node.close().await;
        }
        if let Some(m) = self.meta_node.take() {
            m.shutdown().await;
        }
    }
}

/// Storage nodes follow the map (what their meta watch does in production).
async fn follow_map(meta: MetaClient, net: Arc<InMemoryNetwork>, mut stop: watch::Receiver<bool>) {
    let mut epoch = protocol::Epoch(0);
    loop {
        let res = tokio::select! {
            r = meta.watch(epoch, Duration::from_secs(2)) => r,
            _ = stop.changed() => return,
        };
        match res {
            Ok(Some(view)) => {
                epoch = view.map.epoch;
                for n in net.nodes() {
                    n.apply_map(view.map.clone()).await;
                }
            }
            Ok(None) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
