//! [`Peers`] over QUIC: resolves node ids to addresses from the cluster map
//! and calls them with the transport's RPC client. A node's certificate is
//! issued to `storage-<id>`, which is also the name it is verified by.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use parking_lot::RwLock;
use protocol::cluster::ClusterMap;
use protocol::rpc::{StorageRequest, StorageResponse};
use protocol::NodeId;
use transport::RpcClient;

use crate::node::{CallError, PeerFuture, Peers};

pub struct QuicPeers {
    client: RpcClient,
    timeout: Duration,
    addrs: RwLock<HashMap<NodeId, SocketAddr>>,
}

impl QuicPeers {
    pub fn new(client: RpcClient, timeout: Duration) -> Self {
        Self {
            client,
            timeout,
            addrs: RwLock::new(HashMap::new()),
        }
    }

    /// Learns the nodes' addresses from a new map (resolving host names).
    pub async fn update(&self, map: &ClusterMap) {
        let mut addrs = HashMap::new();
        for (id, info) in &map.nodes {
            match tokio::net::lookup_host(info.addr.as_str()).await {
                Ok(mut found) => {
                    if let Some(a) = found.next() {
                        addrs.insert(*id, a);
                    }
                }
                Err(e) => {
                    tracing::warn!(node = %id, addr = %info.addr, error = %e, "cannot resolve node address")
                }
            }
        }
        *self.addrs.write() = addrs;
    }
}

pub fn server_name(node: NodeId) -> String {
    format!("storage-{node}")
}

impl Peers for QuicPeers {
    fn call(&self, node: NodeId, request: StorageRequest) -> PeerFuture {
        let addr = self.addrs.read().get(&node).copied();
        let client = self.client.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            let addr = addr.ok_or_else(|| CallError::Unreachable {
                node,
                reason: "no address known (not in the cluster map, or unresolved)".into(),
            })?;
            client
                .call::<StorageRequest, StorageResponse>(
                    addr,
                    &server_name(node),
                    &request,
                    timeout,
                )
                .await
                .map_err(|e| CallError::from_transport(node, e))
        })
    }
}
