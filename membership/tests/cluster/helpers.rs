use std::net::SocketAddr;
use std::time::Duration;

use membership::testsuite::test_config;
use membership::{GossipTransport, LocalNode, Member, Membership};
use protocol::NodeId;

/// Generous bounds: the machine is shared with other builds.
pub const CONVERGE: Duration = Duration::from_secs(10);
pub const DETECT: Duration = Duration::from_secs(5);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "membership=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A storage node whose RPC/HTTP addresses are derived from its index.
pub fn storage_node(i: u16) -> LocalNode {
    LocalNode::storage(
        SocketAddr::from(([127, 0, 0, 1], 7000 + i)),
        Some(SocketAddr::from(([127, 0, 0, 1], 8000 + i))),
    )
}

pub async fn join(
    node_id: u64,
    generation: u64,
    listen: SocketAddr,
    seeds: &[SocketAddr],
    local: LocalNode,
    transport: &GossipTransport,
) -> Membership {
    let mut config =
        test_config(NodeId(node_id), listen).with_seeds(seeds.iter().map(|s| s.to_string()));
    config.generation = Some(generation);
    Membership::join(config, local, transport.clone())
        .await
        .expect("join")
}

pub fn ids(members: &[Member]) -> Vec<u64> {
    members.iter().map(|m| m.node_id.0).collect()
}

/// Waits until `node` sees exactly `expected` live (sorted ids).
pub async fn wait_live(node: &Membership, expected: &[u64]) {
    let seen = node
        .wait_for(CONVERGE, |members| ids(members) == expected)
        .await;
    assert!(
        seen.is_some(),
        "{} did not see {expected:?} within {CONVERGE:?}; sees {:?}",
        node.self_node_id(),
        ids(&node.live_members())
    );
}
