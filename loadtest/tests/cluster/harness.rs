//! A whole cluster in one process, as in the gateway's own tests
//! (`gateway/tests/cluster/harness.rs`): one meta-service member, three
//! storage nodes with real shards in temp dirs on an in-memory network,
//! and the gateway's real router served over HTTP on 127.0.0.1:0.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway::api::{ApiKeys, HttpOptions};
use gateway::{CallError, CallFuture, Gateway, RoutingOptions, ShardClient};
use meta_client::MetaClient;
use meta_service::{MetaConfig, MetaNode};
use parking_lot::RwLock;
use protocol::cluster::NodeInfo;
use protocol::rpc::{StorageRequest, StorageResponse};
use protocol::NodeId;
use storage_node::node::{Lease, Node, NodeOptions, PeerFuture, Peers};
use storage_node::{ShardOptions, SyncMode, WalOptions};
use tokio::sync::watch;

#[derive(Default)]
struct Network {
    nodes: RwLock<HashMap<NodeId, Arc<Node>>>,
}

impl Network {
    async fn send(&self, to: NodeId, req: StorageRequest) -> Result<StorageResponse, CallError> {
        let target = self.nodes.read().get(&to).cloned();
        match target {
            Some(t) => Ok(t.handle(req).await),
            None => Err(CallError::Unreachable {
                node: to,
                reason: "not in this network".into(),
            }),
        }
    }
}

struct Link(Arc<Network>);

impl Peers for Link {
    fn call(&self, node: NodeId, request: StorageRequest) -> PeerFuture {
        let net = self.0.clone();
        Box::pin(async move { net.send(node, request).await })
    }
}

struct InProcClient(Arc<Network>);

impl ShardClient for InProcClient {
    fn call(&self, node: &NodeInfo, req: StorageRequest) -> CallFuture {
        let net = self.0.clone();
        let id = node.id;
        Box::pin(async move { net.send(id, req).await })
    }
}

pub struct TestCluster {
    pub url: String,
    gw: Arc<Gateway>,
    meta_node: Option<MetaNode>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _dirs: Vec<tempfile::TempDir>,
}

impl TestCluster {
    pub async fn start() -> TestCluster {
        let mut dirs = Vec::new();
        let meta_dir = tempfile::tempdir().expect("tempdir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let mut config = MetaConfig::new(1, addr.clone(), meta_dir.path());
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
        for id in 1..=3u64 {
            let dir = tempfile::tempdir().expect("tempdir");
            let options = NodeOptions {
                shard: ShardOptions {
                    wal: WalOptions {
                        sync: SyncMode::Always,
                        max_file_bytes: 1 << 20,
                    },
                    ..ShardOptions::default()
                },
                write_timeout: Duration::from_secs(5),
                retry_backoff: Duration::from_millis(50),
                ..NodeOptions::default()
            };
            let node = Node::new(
                NodeId(id),
                dir.path().to_path_buf(),
                options,
                Arc::new(Link(net.clone())),
                Lease::unlimited(),
            );
            net.nodes.write().insert(NodeId(id), node);
            dirs.push(dir);
            meta.register_node(&NodeInfo::new(NodeId(id), format!("node-{id}")))
                .await
                .expect("register");
        }
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        // Storage nodes follow the cluster map, as their meta watch does.
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
        let routing = RoutingOptions {
            shard_timeout: Duration::from_secs(10),
            ..RoutingOptions::default()
        };
        let gw = Gateway::new(Arc::new(meta.clone()), Arc::new(InProcClient(net)), routing);
        let router = gateway::server::app(gw.clone(), ApiKeys::default(), &HttpOptions::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let mut http_stop = stop_rx;
        tasks.push(tokio::spawn(async move {
            let _ = gateway::server::serve(listener, router, async move {
                let _ = http_stop.changed().await;
            })
            .await;
        }));
        TestCluster {
            url,
            gw,
            meta_node: Some(meta_node),
            stop,
            tasks,
            _dirs: dirs,
        }
    }

    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.gw.shutdown();
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        if let Some(m) = self.meta_node.take() {
            m.shutdown().await;
        }
    }
}
