//! A replica filled from a paged ("fuzzy") snapshot while the primary
//! keeps taking writes, on in-process nodes with real shards.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::cluster::{
    ClusterMap, CollectionInfo, NodeInfo, RebalanceSettings, Replica, ReplicaState, ShardInfo,
};
use protocol::rpc::{ShardRef, StorageError, StorageRequest, StorageResponse};
use protocol::{
    CollectionConfig, Distance, Epoch, NodeId, Operation, Payload, Point, PointId, SeqNo, ShardId,
    Term, WriteConsistency,
};
use storage_node::node::{Lease, Node, NodeOptions};
use storage_node::testsuite::InMemoryNetwork;
use storage_node::{ShardOptions, SyncMode, WalOptions};

const DIM: usize = 16;
const CHUNK_POINTS: usize = 1_000;
const CHUNK_BYTES: usize = 48 << 10;

fn options() -> NodeOptions {
    NodeOptions {
        shard: ShardOptions {
            wal: WalOptions {
                sync: SyncMode::Never,
                max_file_bytes: 256 << 10,
            },
            max_segment_points: 2_000,
            ..ShardOptions::default()
        },
        write_timeout: Duration::from_secs(2),
        retry_backoff: Duration::from_millis(50),
        snapshot_chunk: CHUNK_POINTS,
        snapshot_chunk_bytes: CHUNK_BYTES,
        ..NodeOptions::default()
    }
}

fn shard_ref() -> ShardRef {
    ShardRef {
        collection: "c".into(),
        shard: ShardId(0),
    }
}

/// Node 1 primary and `Active`; node 2 `Initializing` when `filling`.
fn map(epoch: u64, filling: bool, throttle_mb: f64) -> ClusterMap {
    let mut config = CollectionConfig::new(DIM, Distance::Dot);
    config.hnsw.m = 8;
    config.hnsw.ef_construct = 32;
    let mut replicas = vec![Replica {
        node: NodeId(1),
        state: ReplicaState::Active,
    }];
    if filling {
        replicas.push(Replica {
            node: NodeId(2),
            state: ReplicaState::Initializing,
        });
    }
    let shard = ShardInfo {
        id: ShardId(0),
        replicas,
        primary: Some(NodeId(1)),
        term: Term(1),
        migration: None,
    };
    ClusterMap {
        epoch: Epoch(epoch),
        nodes: (1..=2)
            .map(|n| (NodeId(n), NodeInfo::new(NodeId(n), format!("node-{n}"))))
            .collect(),
        collections: BTreeMap::from([(
            "c".to_string(),
            CollectionInfo {
                name: "c".into(),
                config,
                shards: BTreeMap::from([(ShardId(0), shard)]),
                created_epoch: Epoch(1),
            },
        )]),
        config: BTreeMap::from([(
            RebalanceSettings::KEY_THROTTLE.to_string(),
            throttle_mb.to_string(),
        )]),
        transfers: Default::default(),
    }
}

fn point(i: u64, round: u64) -> Point {
    let mut payload = Payload::new();
    payload.insert("round".into(), serde_json::json!(round));
    Point {
        id: PointId::Num(i),
        vector: (0..DIM)
            .map(|d| ((i * 31 + d as u64 * 7 + round) % 101) as f32 / 50.0 - 1.0)
            .collect(),
        payload: Some(payload),
    }
}

async fn write(node: &Arc<Node>, op: Operation) -> Result<usize, StorageError> {
    let req = StorageRequest::Write {
        shard: shard_ref(),
        epoch: Epoch(2),
        op,
        consistency: WriteConsistency::Majority,
    };
    match node.handle(req).await {
        StorageResponse::Written { acks, .. } => Ok(acks),
        StorageResponse::Error { error } => Err(error),
        other => panic!("unexpected {other:?}"),
    }
}

struct Nodes {
    net: Arc<InMemoryNetwork>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Nodes {
    fn new() -> Nodes {
        let net = InMemoryNetwork::new();
        let mut dirs = Vec::new();
        for id in 1..=2 {
            let dir = tempfile::tempdir().expect("tempdir");
            net.add_node(NodeId(id), dir.path(), options(), Lease::unlimited());
            dirs.push(dir);
        }
        Nodes { net, _dirs: dirs }
    }

    fn node(&self, id: u64) -> Arc<Node> {
        self.net.node(NodeId(id)).expect("node")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_being_filled_is_not_in_the_write_quorum() {
    let nodes = Nodes::new();
    let m = map(2, true, 0.0);
    nodes.node(1).apply_map(m.clone()).await;
    nodes.node(2).apply_map(m).await;
    // The target cannot acknowledge anything: with it in the denominator
    // (the old rule: majority of 2 = 2) this write would wait and fail.
    nodes.net.set_down(NodeId(2), true);
    let acks = write(
        &nodes.node(1),
        Operation::Upsert {
            points: vec![point(1, 0)],
        },
    )
    .await
    .expect("a majority write to an RF 1 shard being copied is acknowledged");
    assert_eq!(acks, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_snapshot_under_writes_leaves_an_identical_replica() {
    const POINTS: u64 = 24_000;
    let nodes = Nodes::new();
    let (n1, n2) = (nodes.node(1), nodes.node(2));
    n1.apply_map(map(1, false, 0.0)).await;
    for first in (0..POINTS).step_by(500) {
        let points = (first..first + 500).map(|i| point(i, 0)).collect();
        write(&n1, Operation::Upsert { points })
            .await
            .expect("load");
    }
    // Wait until checkpoints truncated the WAL's start: the new replica
    // can only be filled by a snapshot.
    let shard = n1.replica(&shard_ref()).expect("replica").shard();
    let deadline = Instant::now() + Duration::from_secs(60);
    while shard.has_operations_after(SeqNo(0)) {
        assert!(Instant::now() < deadline, "the WAL was never truncated");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // ~24k × (64 + 24 + payload) bytes at 1 MB/s: about 2.5 s of snapshot.
    let filling = map(2, true, 1.0);
    n1.apply_map(filling.clone()).await;
    n2.apply_map(filling).await;

    // A writer that overwrites, deletes and adds while the snapshot goes.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let writer = {
        let (n1, stop, acked) = (n1.clone(), stop.clone(), acked.clone());
        tokio::spawn(async move {
            let mut round = 1;
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(60) {
                let base = (round * 997) % POINTS;
                let points = (base..base + 50).map(|i| point(i, round)).collect();
                write(&n1, Operation::Upsert { points })
                    .await
                    .expect("overwrite");
                write(
                    &n1,
                    Operation::Delete {
                        ids: vec![PointId::Num((round * 13) % POINTS)],
                    },
                )
                .await
                .expect("delete");
                write(
                    &n1,
                    Operation::Upsert {
                        points: vec![point(POINTS + round, round)],
                    },
                )
                .await
                .expect("add");
                acked.fetch_add(3, Ordering::SeqCst);
                round += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    // The snapshot ends, then a little more writing goes by the WAL.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !nodes.net.snapshot_chunks().iter().any(|c| c.last) {
        assert!(Instant::now() < deadline, "the snapshot never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer");

    let primary = n1.replica(&shard_ref()).expect("primary").shard();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let target = n2.replica(&shard_ref()).expect("target").shard();
        if target.digest() == primary.digest() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "target {:?} never matched the primary {:?}",
            target.digest(),
            primary.digest()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let target = n2.replica(&shard_ref()).expect("target").shard();
    // Incremental checksums equal the ones walked from scratch.
    assert_eq!(target.recompute_checksum(), primary.content_checksum());
    assert_eq!(primary.recompute_checksum(), primary.content_checksum());

    let chunks = nodes.net.snapshot_chunks();
    let firsts = chunks.iter().filter(|c| c.first).count();
    let first_at = chunks.first().expect("chunks").at;
    let last_at = chunks.last().expect("chunks").at;
    eprintln!(
        "SNAPSHOT {} chunks, max {} points / {} bytes, {:.2} s, {} writes acknowledged meanwhile (total {})",
        chunks.len(),
        chunks.iter().map(|c| c.points).max().unwrap_or(0),
        chunks.iter().map(|c| c.bytes).max().unwrap_or(0),
        (last_at - first_at).as_secs_f64(),
        acked.load(Ordering::SeqCst),
        target.content_checksum().0,
    );
    // One snapshot: the WAL after S0 was kept for it (no livelock into
    // repeated snapshots under writes).
    assert_eq!(firsts, 1, "the target needed more than one snapshot");
    // Bounded memory: no chunk above the limits (the byte bound counts
    // about what a point weighs; msgpack framing adds a little).
    for c in &chunks {
        assert!(c.points <= CHUNK_POINTS, "chunk of {} points", c.points);
        assert!(c.bytes <= 2 * CHUNK_BYTES, "chunk of {} bytes", c.bytes);
    }
    assert!(chunks.len() >= (POINTS as usize) / CHUNK_POINTS);
    assert!(
        (last_at - first_at) > Duration::from_millis(1_000),
        "the throttle spread the snapshot out"
    );
    assert!(
        acked.load(Ordering::SeqCst) > 30,
        "writes went on meanwhile"
    );
}
