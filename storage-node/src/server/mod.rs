//! The storage-node process: QUIC server for the data plane, meta-service
//! registration, heartbeats (which renew the write lease) and map watch,
//! gossip membership publishing the version vector, and an HTTP endpoint
//! for `/metrics` and `/health`.

mod anti_entropy;
mod config;
mod http;
mod meta_sync;
mod peers;

use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use meta_service::MetaClient;
use protocol::cluster::NodeInfo;
use protocol::rpc::{StorageRequest, StorageResponse};
use tokio::sync::watch;
use transport::{service_fn, PeerIdentity, Reply, RpcClient, RpcConfig, RpcServer, TlsConfig};

pub use config::StorageNodeArgs;

use crate::node::{Lease, Node};

/// Runs a storage node until `shutdown` resolves.
pub async fn run(
    args: StorageNodeArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tls = TlsConfig::from_dir(&args.certs_dir, &args.cert_name()).with_context(|| {
        format!(
            "load certificate {:?} from {}",
            args.cert_name(),
            args.certs_dir.display()
        )
    })?;
    let rpc_config = RpcConfig::default();
    let server = RpcServer::bind(args.rpc_listen, &tls, rpc_config.clone())
        .context("bind the QUIC server")?;
    let rpc_addr = server.local_addr()?;
    let advertise = args
        .advertise
        .clone()
        .unwrap_or_else(|| rpc_addr.to_string());
    let client = RpcClient::new(&tls, rpc_config).context("QUIC client")?;
    let peers = Arc::new(peers::QuicPeers::new(client, args.request_timeout()));
    let lease = Lease::new(Duration::from_millis(args.lease_ms));
    let node = Node::new(
        args.node_id(),
        args.data_dir.clone(),
        args.node_options(),
        peers.clone(),
        lease,
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let http_addr = http::serve(args.http_listen, node.clone(), stop_rx.clone()).await?;
    let meta = MetaClient::new(args.meta.clone());
    // Bound to 0.0.0.0 (containers): others reach the HTTP port on the
    // advertised host, not on the wildcard.
    let advertise_host = advertise
        .rsplit_once(':')
        .map_or(advertise.as_str(), |(h, _)| h);
    let http_public = public_addr(http_addr, advertise_host);
    let info = NodeInfo {
        api_addr: Some(http_public.clone()),
        ..NodeInfo::new(args.node_id(), advertise.clone())
    };
    tracing::info!(node = %args.node_id(), rpc = %rpc_addr, %advertise, http = %http_addr, "storage node starting");
    meta_sync::register(&meta, &info, stop_rx.clone()).await?;
    let control = ControlPlane::start()?;
    let map_stale = Arc::new(tokio::sync::Notify::new());
    let mut tasks = vec![
        tokio::spawn(meta_sync::map_loop(
            node.clone(),
            meta.clone(),
            peers.clone(),
            map_stale.clone(),
            stop_rx.clone(),
        )),
        // Its own HTTP client: connections stay on the runtime using them.
        control.spawn(meta_sync::heartbeat_loop(
            node.clone(),
            MetaClient::new(args.meta.clone()),
            info.clone(),
            args.heartbeat(),
            map_stale,
            stop_rx.clone(),
        )),
    ];
    if let Some(gossip) = args.membership_config()? {
        // Gossip carries socket addresses: resolve the advertised names.
        let resolve = |addr: &str, bound: SocketAddr| {
            addr.to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .unwrap_or(bound)
        };
        let local = membership::LocalNode::storage(
            resolve(&advertise, rpc_addr),
            Some(resolve(&http_public, http_addr)),
        );
        let m = control
            .spawn(membership::Membership::join(
                gossip,
                local,
                membership::GossipTransport::Udp,
            ))
            .await
            .context("gossip join task")?
            .context("join gossip")?;
        tasks.push(tokio::spawn(anti_entropy::run(
            node.clone(),
            m.clone(),
            peers.clone(),
            stop_rx.clone(),
        )));
        tasks.push(control.spawn(meta_sync::publish_versions(
            node.clone(),
            m,
            stop_rx.clone(),
        )));
    }
    let handler = node.clone();
    let service = service_fn(move |_peer: PeerIdentity, req: StorageRequest| {
        let node = handler.clone();
        async move { Reply::One(node.handle(req).await) }
    });
    let mut stop_for_server = stop_rx.clone();
    let serve = server.run::<StorageRequest, StorageResponse, _>(service, async move {
        let _ = stop_for_server.wait_for(|s| *s).await;
    });
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let (served, _) = tokio::join!(serve, signal);
    for t in tasks {
        t.abort();
        // Wait until it is dropped, with its hold on the node (it may run
        // on the control-plane runtime).
        let _ = t.await;
    }
    drop(control);
    // Replicas close (WAL flushed, background work stopped) as they drop.
    drop(node);
    served.context("QUIC server")?;
    tracing::info!("storage node stopped");
    Ok(())
}

/// A small runtime of its own for what tells the cluster this node is
/// alive: meta-service heartbeats (the write lease, and the meta-service's
/// dead-node timer) and gossip (the peers' failure detector). Bursts of
/// data-plane work on the main runtime (decoding large requests, replication)
/// then delay neither, and a loaded node is not declared dead and failed
/// over.
struct ControlPlane(Option<tokio::runtime::Runtime>);

impl ControlPlane {
    fn start() -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("control-plane")
            .enable_all()
            .build()
            .context("start the control-plane runtime")?;
        Ok(Self(Some(rt)))
    }

    fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.0 {
            Some(rt) => rt.spawn(task),
            None => tokio::spawn(task),
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // Dropping a runtime inside another one's task would block it.
        if let Some(rt) = self.0.take() {
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
