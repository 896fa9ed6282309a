//! Test helpers (feature `testsuite`): an in-process gossip network with
//! partition controls, and fast configs.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chitchat::transport::ChannelTransport;
use protocol::NodeId;

use crate::config::MembershipConfig;

/// chitchat's largest UDP payload: the in-memory network refuses bigger
/// messages, like UDP would.
const MTU: usize = 65_507;

/// An in-process network: every node joined with
/// `GossipTransport::InMemory(network.clone())` can reach every other one
/// unless a link is cut.
#[derive(Clone)]
pub struct InMemoryNetwork {
    transport: ChannelTransport,
    next_port: Arc<AtomicU16>,
}

impl Default for InMemoryNetwork {
    fn default() -> Self {
        InMemoryNetwork {
            transport: ChannelTransport::with_mtu(MTU),
            next_port: Arc::new(AtomicU16::new(20_000)),
        }
    }
}

impl InMemoryNetwork {
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn transport(&self) -> &ChannelTransport {
        &self.transport
    }

    /// A fresh address on this network (what port 0 resolves to).
    pub fn next_addr(&self) -> SocketAddr {
        let port = self.next_port.fetch_add(1, Ordering::Relaxed);
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// Drops all traffic between `a` and `b` (both directions).
    pub async fn cut(&self, a: SocketAddr, b: SocketAddr) {
        self.transport.remove_link(a, b).await;
    }

    /// Restores traffic between `a` and `b`.
    pub async fn heal(&self, a: SocketAddr, b: SocketAddr) {
        self.transport.add_link(a, b).await;
    }

    /// Cuts `node` off from every address in `others`.
    pub async fn isolate(&self, node: SocketAddr, others: &[SocketAddr]) {
        for other in others {
            self.cut(node, *other).await;
        }
    }
}

/// A config with the crate defaults and a short dead-node grace, for tests.
pub fn test_config(node_id: NodeId, listen: SocketAddr) -> MembershipConfig {
    let mut config = MembershipConfig::new(node_id, "test-cluster", listen);
    config.dead_node_grace = Duration::from_secs(60);
    config
}

/// Waits (at most `timeout`) for the next change matching `predicate`,
/// skipping others. `None` on timeout or end of stream.
pub async fn next_change_matching(
    stream: &mut crate::ChangeStream,
    timeout: Duration,
    mut predicate: impl FnMut(&crate::ClusterChange) -> bool,
) -> Option<crate::ClusterChange> {
    let wait = async {
        while let Some(change) = stream.recv().await {
            if predicate(&change) {
                return Some(change);
            }
        }
        None
    };
    tokio::time::timeout(timeout, wait).await.ok().flatten()
}
