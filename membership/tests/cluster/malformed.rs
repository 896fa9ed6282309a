//! Nodes publishing malformed gossip (written with raw chitchat, since the
//! handle cannot publish them) are ignored or trimmed, never a panic.

use std::net::SocketAddr;
use std::time::Duration;

use chitchat::transport::UdpTransport;
use chitchat::{
    spawn_chitchat, ChitchatConfig, ChitchatId, FailureDetectorConfig, ProtocolVersion,
};
use membership::GossipTransport;
use protocol::{NodeId, SeqNo, ShardId};

use crate::helpers::*;

fn free_udp_port() -> SocketAddr {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap()
}

async fn raw_node(
    node_id: &str,
    seed: SocketAddr,
    kvs: &[(&str, &str)],
) -> chitchat::ChitchatHandle {
    let addr = free_udp_port();
    let config = ChitchatConfig {
        chitchat_id: ChitchatId::new(node_id, 1, addr),
        cluster_id: "test-cluster".to_string(),
        gossip_interval: Duration::from_millis(100),
        listen_addr: addr,
        seed_nodes: vec![seed.to_string()],
        failure_detector_config: FailureDetectorConfig {
            initial_interval: Duration::from_millis(100),
            ..FailureDetectorConfig::default()
        },
        marked_for_deletion_grace_period: Duration::from_secs(3600),
        catchup_callback: None,
        extra_liveness_predicate: None,
        protocol_version: ProtocolVersion::V0,
    };
    let kvs = kvs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    spawn_chitchat(config, kvs, &UdpTransport).await.unwrap()
}

#[tokio::test]
async fn malformed_gossip_is_ignored_not_fatal() {
    init_tracing();
    let a = join(
        1,
        1,
        "127.0.0.1:0".parse().unwrap(),
        &[],
        storage_node(1),
        &GossipTransport::Udp,
    )
    .await;
    let storage = [("role", "storage"), ("rpc_addr", "127.0.0.1:7998")];
    let wizard = raw_node("11", a.gossip_addr(), &[("role", "wizard")]).await;
    let gateway = raw_node(
        "12",
        a.gossip_addr(),
        &[("role", "gateway"), ("rpc_addr", "127.0.0.1:7997")],
    )
    .await;
    let no_rpc = raw_node(
        "13",
        a.gossip_addr(),
        &[("role", "storage"), ("rpc_addr", "nowhere")],
    )
    .await;
    let not_a_node_id = raw_node("storage-9", a.gossip_addr(), &storage).await;
    let sloppy = raw_node(
        "14",
        a.gossip_addr(),
        &[
            ("role", "storage"),
            ("rpc_addr", "127.0.0.1:7999"),
            ("http_addr", "::::"),
            ("capacity", "{not json"),
            ("replica:docs/1", "twelve"),
            ("replica:docs/2", "5"),
            ("replica:docs", "5"),
        ],
    )
    .await;
    // `sloppy` is live with what could be parsed…
    wait_live(&a, &[1, 14]).await;
    let m = a.live_member(NodeId(14)).unwrap();
    assert_eq!(m.rpc_addr, "127.0.0.1:7999".parse().unwrap());
    assert_eq!(m.http_addr, None);
    assert_eq!(m.replicas.len(), 1);
    assert_eq!(m.replica_seq("docs", ShardId(2)), Some(SeqNo(5)));
    // …while the unusable nodes never show up, although gossiping.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ids(&a.live_members()), [1, 14]);
    assert_eq!(
        a.shard_versions("docs", ShardId(2)).get(NodeId(14)),
        Some(SeqNo(5))
    );
    for node in [wizard, gateway, no_rpc, not_a_node_id, sloppy] {
        let _ = node.shutdown().await;
    }
    a.shutdown().await;
}
