//! The storage-node process: QUIC server for the data plane, meta-service
//! registration, heartbeats (which renew the write lease) and map watch,
//! gossip membership publishing the version vector, and an HTTP endpoint
//! for `/metrics`, `/health`, `/replicas` and `/transfers`. The node
//! reports and switches the shard transfers it executes through the
//! meta client (`coordinator.rs`).
//!
//! [`start`] takes a typed [`StorageNodeConfig`] and returns a
//! [`StorageNodeHandle`]; the binary parses [`StorageNodeArgs`] into that
//! config, and the in-process harness and `vectordb standalone` build it
//! directly.

mod anti_entropy;
mod config;
mod coordinator;
mod disk;
mod http;
mod identity;
mod meta_sync;
mod peers;
mod presence;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lifecycle::{Stop, Tasks};
use meta_client::MetaClient;
use protocol::cluster::NodeInfo;
use protocol::rpc::{StorageRequest, StorageResponse};
use transport::{service_fn, PeerIdentity, Reply, RpcClient, RpcConfig, RpcServer, TlsConfig};

pub use config::{StorageConfigError, StorageNodeArgs, StorageNodeConfig};

use crate::node::{Lease, Node};

/// How long shutdown waits for background tasks that should end at once
/// (they watch the stop flag) before aborting them.
const TASK_GRACE: Duration = Duration::from_secs(5);

/// A running storage node; [`StorageNodeHandle::shutdown`] stops it.
pub struct StorageNodeHandle {
    node: Arc<Node>,
    rpc_addr: SocketAddr,
    http_addr: SocketAddr,
    stop: Stop,
    server: tokio::task::JoinHandle<Result<(), transport::TransportError>>,
    tasks: Tasks,
    gossip: Option<membership::Membership>,
    /// Heartbeats and gossip run here; dropped last.
    control: ControlPlane,
}

/// Starts a storage node: binds its QUIC and HTTP servers, registers with
/// the meta-service, follows the map, heartbeats, gossips.
pub async fn start(config: StorageNodeConfig) -> anyhow::Result<StorageNodeHandle> {
    let tls = TlsConfig::from_dir(&config.certs_dir, &config.cert_name).with_context(|| {
        format!(
            "load certificate {:?} from {}",
            config.cert_name,
            config.certs_dir.display()
        )
    })?;
    let rpc_config = RpcConfig::default();
    let server = RpcServer::bind(config.rpc_listen, &tls, rpc_config.clone())
        .context("bind the QUIC server")?;
    let rpc_addr = server.local_addr()?;
    let advertise = config
        .advertise
        .clone()
        .unwrap_or_else(|| rpc_addr.to_string());
    let client = RpcClient::new(&tls, rpc_config).context("QUIC client")?;
    let peers = Arc::new(peers::QuicPeers::new(client, config.request_timeout));
    let node = Node::new(
        config.id,
        config.data_dir.clone(),
        config.node.clone(),
        peers.clone(),
        Lease::new(config.lease),
    );

    let (stop, stop_rx) = Stop::new();
    let mut tasks = Tasks::new();
    let (http_addr, http_server) =
        http::bind(config.http_listen, node.clone(), stop_rx.clone()).await?;
    tasks.spawn("http", http_server);
    let meta = MetaClient::new(config.meta.clone());
    node.set_coordinator(Arc::new(coordinator::MetaCoordinator::new(meta.clone())));
    // Bound to 0.0.0.0 (containers): others reach the HTTP port on the
    // advertised host, not on the wildcard.
    let advertise_host = advertise
        .rsplit_once(':')
        .map_or(advertise.as_str(), |(h, _)| h);
    let http_public = public_addr(http_addr, advertise_host);
    let info = NodeInfo {
        api_addr: Some(http_public.clone()),
        incarnation: identity::incarnation(&config.data_dir)?,
        ..NodeInfo::new(config.id, advertise.clone())
    };
    tracing::info!(node = %config.id, rpc = %rpc_addr, %advertise, http = %http_addr, "storage node starting");
    if let Err(e) = meta_sync::register(&meta, &info, stop_rx.clone()).await {
        stop.stop();
        tasks.join(TASK_GRACE).await;
        return Err(e);
    }
    let control = ControlPlane::start()?;
    let map_stale = Arc::new(tokio::sync::Notify::new());
    tasks.spawn(
        "map watch",
        meta_sync::map_loop(
            node.clone(),
            meta.clone(),
            peers.clone(),
            map_stale.clone(),
            stop_rx.clone(),
        ),
    );
    // Its own HTTP client: connections stay on the runtime using them.
    tasks.spawn_on(
        "heartbeat",
        control.handle(),
        meta_sync::heartbeat_loop(
            node.clone(),
            MetaClient::new(config.meta.clone()),
            info.clone(),
            config.heartbeat,
            map_stale,
            stop_rx.clone(),
        ),
    );
    // Its own client too: the held request occupies one connection, whose
    // close is the signal.
    tasks.spawn_on(
        "presence",
        control.handle(),
        presence::presence_loop(
            config.id,
            MetaClient::new(config.meta.clone()),
            stop_rx.clone(),
        ),
    );
    let mut gossip = None;
    if let Some(gossip_config) = config.gossip.clone() {
        // Gossip carries socket addresses: resolve the advertised names
        // (without blocking the runtime).
        let resolve = |addr: String, bound: SocketAddr| async move {
            tokio::net::lookup_host(addr)
                .await
                .ok()
                .and_then(|mut a| a.next())
                .unwrap_or(bound)
        };
        let local = membership::LocalNode::storage(
            resolve(advertise.clone(), rpc_addr).await,
            Some(resolve(http_public.clone(), http_addr).await),
        );
        let m = control
            .handle()
            .spawn(membership::Membership::join(
                gossip_config,
                local,
                membership::GossipTransport::Udp,
            ))
            .await
            .context("gossip join task")?
            .context("join gossip")?;
        tasks.spawn(
            "anti-entropy",
            anti_entropy::run(node.clone(), m.clone(), peers.clone(), stop_rx.clone()),
        );
        tasks.spawn_on(
            "publish versions",
            control.handle(),
            meta_sync::publish_versions(node.clone(), m.clone(), stop_rx.clone()),
        );
        gossip = Some(m);
    }
    let handler = node.clone();
    let service = service_fn(move |_peer: PeerIdentity, req: StorageRequest| {
        let node = handler.clone();
        async move { Reply::One(node.handle(req).await) }
    });
    let server = tokio::spawn(
        server.run::<StorageRequest, StorageResponse, _>(service, lifecycle::stopped(stop_rx)),
    );
    Ok(StorageNodeHandle {
        node,
        rpc_addr,
        http_addr,
        stop,
        server,
        tasks,
        gossip,
        control,
    })
}

impl StorageNodeHandle {
    pub fn rpc_addr(&self) -> SocketAddr {
        self.rpc_addr
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Stops the node and returns once everything is closed: the servers
    /// stop accepting and drain in-flight requests, the background tasks
    /// end and are joined, the node leaves gossip (peers drop it at once
    /// instead of waiting for failure detection), and every replica closes
    /// (replication stopped, indexing interrupted, WAL synced, optimizer
    /// threads joined).
    pub async fn shutdown(self) -> anyhow::Result<()> {
        tracing::info!(node = %self.node.id(), "storage node stopping");
        // Index builds stop first: they hold the CPU the drain needs.
        self.node.stop_background();
        self.stop.stop();
        let served = self.server.await;
        self.tasks.join(TASK_GRACE).await;
        if let Some(m) = &self.gossip {
            m.shutdown().await;
        }
        drop(self.control);
        self.node.close().await;
        tracing::info!(node = %self.node.id(), "storage node stopped");
        match served {
            Ok(r) => r.context("QUIC server"),
            Err(e) => Err(anyhow::anyhow!("QUIC server task: {e}")),
        }
    }
}

/// A small runtime of its own for what tells the cluster this node is
/// alive: meta-service heartbeats (the write lease, and the meta-service's
/// dead-node timer) and gossip (the peers' failure detector). Bursts of
/// data-plane work on the main runtime (decoding large requests, replication)
/// then delay neither, and a loaded node is not declared dead and failed
/// over.
struct ControlPlane {
    /// Taken on drop, to shut the runtime down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl ControlPlane {
    fn start() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("control-plane")
            .enable_all()
            .build()
            .context("start the control-plane runtime")?;
        let handle = runtime.handle().clone();
        Ok(Self {
            runtime: Some(runtime),
            handle,
        })
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // Dropping a runtime inside another one's task would block it.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// `bound`, with a wildcard IP replaced by the advertised host.
fn public_addr(bound: SocketAddr, advertise_host: &str) -> String {
    if bound.ip().is_unspecified() && !advertise_host.is_empty() {
        format!("{advertise_host}:{}", bound.port())
    } else {
        bound.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::public_addr;

    #[test]
    fn a_wildcard_bind_is_published_under_the_advertised_host() {
        let any = "0.0.0.0:7960".parse().expect("addr");
        assert_eq!(public_addr(any, "storage1"), "storage1:7960");
        let lo = "127.0.0.1:7960".parse().expect("addr");
        assert_eq!(public_addr(lo, "storage1"), "127.0.0.1:7960");
    }
}
