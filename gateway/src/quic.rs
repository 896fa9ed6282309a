//! [`QuicShardClient`]: the production [`ShardClient`], over the
//! `transport` crate's QUIC + mutual-TLS RPC (one msgpack frame each way
//! per request).
//!
//! The gateway presents its own certificate signed by the cluster CA
//! (`certs issue gateway`), and verifies each storage node by the name
//! its certificate is issued to, `storage-<id>` (the storage nodes'
//! convention, see `storage-node/src/server/peers.rs`).

use std::net::SocketAddr;
use std::time::Duration;

use protocol::cluster::NodeInfo;
use protocol::rpc::{StorageRequest, StorageResponse};
use protocol::NodeId;
use transport::RpcClient;

use crate::client::{CallError, CallFuture, ShardClient};

/// The name a storage node's certificate is issued to.
pub fn storage_server_name(node: NodeId) -> String {
    format!("storage-{node}")
}

pub struct QuicShardClient {
    client: RpcClient,
    timeout: Duration,
}

impl QuicShardClient {
    /// `timeout` bounds each call, connecting included.
    pub fn new(client: RpcClient, timeout: Duration) -> Self {
        Self { client, timeout }
    }
}

/// `host:port` or `ip:port` → a socket address (DNS when needed).
async fn resolve(node: NodeId, addr: &str) -> Result<SocketAddr, CallError> {
    if let Ok(a) = addr.parse() {
        return Ok(a);
    }
    let unreachable = |reason: String| CallError::Unreachable { node, reason };
    tokio::net::lookup_host(addr)
        .await
        .map_err(|e| unreachable(format!("cannot resolve {addr}: {e}")))?
        .next()
        .ok_or_else(|| unreachable(format!("{addr} resolves to nothing")))
}

impl ShardClient for QuicShardClient {
    fn call(&self, node: &NodeInfo, req: StorageRequest) -> CallFuture {
        let client = self.client.clone();
        let timeout = self.timeout;
        let addr = node.addr.clone();
        let id = node.id;
        let name = storage_server_name(id);
        Box::pin(async move {
            let sock = resolve(id, &addr).await?;
            client
                .call::<StorageRequest, StorageResponse>(sock, &name, &req, timeout)
                .await
                .map_err(|e| CallError::from_transport(id, e))
        })
    }
}
