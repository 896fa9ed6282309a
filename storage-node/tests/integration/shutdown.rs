//! A storage node's shutdown: in-flight work drained, gossip left (peers
//! drop the node at once), every shard closed; and a SIGTERM in the middle
//! of an index build ends the process within seconds (Kubernetes kills
//! after 30 s), with the data intact and the build resumed after restart.

use std::time::{Duration, Instant};

use protocol::rpc::{StorageRequest, StorageResponse};
use protocol::{CollectionConfig, Distance, NodeId, Operation, Point, PointId, ShardId};
use protocol::{Epoch, WriteConsistency};
use storage_node::server::{start, StorageNodeConfig};
use testsuite::processes::shard_ref;
use testsuite::{ProcessCluster, ProcessOptions};

fn free_udp_addr() -> std::net::SocketAddr {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_leaves_gossip_and_closes_its_shards() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    transport::certs::init_dir(&certs, "test-ca", false).expect("ca");
    transport::certs::issue_to_dir(
        &certs,
        "storage-1",
        &[],
        &["127.0.0.1".parse().expect("ip")],
    )
    .expect("cert");
    let (meta, meta_addr) = testsuite::meta::start_meta(&dir.path().join("meta"), |_| {}).await;

    // A gossip peer watching the node.
    let observer_addr = free_udp_addr();
    let mut observer_config = membership::MembershipConfig::new(NodeId(99), "test", observer_addr);
    observer_config.gossip_interval = Duration::from_millis(100);
    let observer = membership::Membership::join(
        observer_config,
        membership::LocalNode::storage(observer_addr, None),
        membership::GossipTransport::Udp,
    )
    .await
    .expect("observer joins");

    let mut config = StorageNodeConfig::new(
        NodeId(1),
        dir.path().join("node-1"),
        vec![meta_addr.clone()],
        certs.clone(),
    );
    let mut gossip = membership::MembershipConfig::new(NodeId(1), "test", free_udp_addr())
        .with_seeds([observer_addr.to_string()]);
    gossip.gossip_interval = Duration::from_millis(100);
    config.gossip = Some(gossip);
    let node = start(config).await.expect("start storage node");

    let meta_client = meta_client::MetaClient::new([meta_addr]);
    let mut collection = CollectionConfig::new(4, Distance::Dot);
    collection.shard_number = 1;
    collection.replication_factor = 1;
    meta_client
        .create_collection("c", collection)
        .await
        .expect("create collection");
    let deadline = Instant::now() + Duration::from_secs(30);
    let replica = loop {
        if let Some(r) = node.node().replica(&shard_ref("c", ShardId(0))) {
            if r.is_leading() {
                break r;
            }
        }
        assert!(Instant::now() < deadline, "replica never opened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Retried: the write lease starts with the first heartbeat ack.
    loop {
        let written = node
            .node()
            .handle(StorageRequest::Write {
                shard: shard_ref("c", ShardId(0)),
                epoch: Epoch(0),
                op: Operation::Upsert {
                    points: vec![Point {
                        id: PointId::Num(1),
                        vector: vec![1.0, 0.0, 0.0, 0.0],
                        payload: None,
                    }],
                },
                consistency: WriteConsistency::One,
            })
            .await;
        if matches!(written, StorageResponse::Written { .. }) {
            break;
        }
        assert!(Instant::now() < deadline, "write refused: {written:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while observer.live_member(NodeId(1)).is_none() {
        assert!(Instant::now() < deadline, "the observer never saw the node");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let shard = replica.shard();
    drop(replica);
    let started = Instant::now();
    node.shutdown().await.expect("clean shutdown");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert!(shard.is_closed(), "the shard was not closed");
    // Left, not failed: the observer drops it within a few gossip rounds,
    // far sooner than failure detection would.
    let left_by = Instant::now() + Duration::from_millis(1500);
    while observer.live_member(NodeId(1)).is_some() {
        assert!(
            Instant::now() < left_by,
            "the node did not leave gossip on shutdown"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    observer.shutdown().await;
    drop(shard);
    meta.shutdown().await;
}

/// A bulk load leaves one large frozen segment to index (seconds
/// of HNSW build); a SIGTERM during that build must end the process
/// within a few seconds, and after a restart the data is all there and
/// the build starts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_an_index_build_exits_fast_and_keeps_the_data() {
    // Spread-out vectors: repetitive ones index in about a second here.
    const POINTS: u64 = 50_000;
    const DIM: usize = 64;
    const BATCH: u64 = 500;
    let mut options = ProcessOptions::new(env!("CARGO_BIN_EXE_storage-node"), 1);
    options.max_segment_points = POINTS as usize;
    let mut cluster = ProcessCluster::start(options).await;
    let mut config = CollectionConfig::new(DIM, Distance::Euclid);
    config.shard_number = 1;
    config.replication_factor = 1;
    // An expensive graph, so the build outlasts the test's patience.
    config.hnsw.m = 32;
    config.hnsw.ef_construct = 200;
    cluster.create_collection_with("big", config).await;
    for first in (0..POINTS).step_by(BATCH as usize) {
        let points = (first..first + BATCH)
            .map(|i| Point {
                id: PointId::Num(i),
                vector: (0..DIM as u64)
                    .map(|d| {
                        // splitmix64 of (point, dimension): uniform in [0, 1).
                        let mut z = (i * DIM as u64 + d).wrapping_add(0x9e37_79b9_7f4a_7c15);
                        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
                    })
                    .collect(),
                payload: None,
            })
            .collect();
        let r = cluster
            .write(
                "big",
                ShardId(0),
                Operation::Upsert { points },
                WriteConsistency::One,
            )
            .await;
        assert!(matches!(r, Ok(StorageResponse::Written { .. })), "{r:?}");
    }
    let node = NodeId(1);
    let log = cluster.log_path(node);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !read_log().contains("indexing segment") {
        assert!(Instant::now() < deadline, "indexing never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !read_log().contains("segment indexed"),
        "the build finished before the SIGTERM; make it bigger"
    );
    let took = cluster.terminate(node, Duration::from_secs(20));
    match took {
        Some(d) => {
            eprintln!("storage node exited {d:?} after SIGTERM, mid-build");
            assert!(d < Duration::from_secs(5), "exit took {d:?} after SIGTERM");
        }
        None => panic!("still running 20 s after SIGTERM"),
    }
    let before_restart = read_log().len();

    cluster.restart(node).await;
    let ids: Vec<PointId> = (0..POINTS).map(PointId::Num).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = cluster
            .call(
                node,
                StorageRequest::Status {
                    shard: shard_ref("big", ShardId(0)),
                },
            )
            .await;
        if let Ok(StorageResponse::Status { status }) = status {
            if status.points == POINTS {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the node did not come back with its data"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster.refresh_map().await;
    assert_eq!(
        cluster.get(node, "big", ShardId(0), ids).await,
        POINTS as usize
    );
    while !read_log()[before_restart..].contains("indexing segment") {
        assert!(
            Instant::now() < deadline,
            "indexing did not resume after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.stop().await;
}
