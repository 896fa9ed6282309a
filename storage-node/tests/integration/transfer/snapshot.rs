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
    let filling: &[u64] = if filling { &[2] } else { &[] };
    map_filling(epoch, filling, throttle_mb)
}

/// Node 1 primary and `Active`; the nodes `filling` `Initializing`.
fn map_filling(epoch: u64, filling: &[u64], throttle_mb: f64) -> ClusterMap {
    let mut config = CollectionConfig::new(DIM, Distance::Dot);
    config.hnsw.m = 8;
    config.hnsw.ef_construct = 32;
    let mut replicas = vec![Replica {
        node: NodeId(1),
        state: ReplicaState::Active,
    }];
    for n in filling {
        replicas.push(Replica {
            node: NodeId(*n),
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
        nodes: (1..=3)
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
        ..ClusterMap::default()
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
        Nodes::with(2)
    }

    fn with(count: u64) -> Nodes {
        let net = InMemoryNetwork::new();
        let mut dirs = Vec::new();
        for id in 1..=count {
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

/// Loads `points` points on node 1 (alone) and waits until checkpoints
/// truncated the WAL's start: a new replica can only be filled by a
/// snapshot.
async fn load_and_truncate(n1: &Arc<Node>, points: u64) {
    n1.apply_map(map(1, false, 0.0)).await;
    for first in (0..points).step_by(500) {
        let batch = (first..first + 500).map(|i| point(i, 0)).collect();
        write(n1, Operation::Upsert { points: batch })
            .await
            .expect("load");
    }
    let shard = n1.replica(&shard_ref()).expect("replica").shard();
    let deadline = Instant::now() + Duration::from_secs(60);
    while shard.has_operations_after(SeqNo(0)) {
        assert!(Instant::now() < deadline, "the WAL was never truncated");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The chaos runs' "target has more points than the source at the same
/// seq": a replication stream replaced while it sends a snapshot (the
/// shard's peer set changed: another replica added, a transfer aborted
/// and planned again) went on sending its pages, and the target added
/// them to its successor's snapshot, read at the same seq when no write
/// came between the two starts. The installed mix held pages read at
/// different moments (or none for an id range), with a `consistent_from`
/// that did not cover them. Now the old stream stops before its next
/// chunk, and a chunk of any other snapshot than the one being received
/// is refused (`snapshot_id`). Writes (overwrites, deletes, re-upserts of
/// deleted ids, new ids) run from the second snapshot's start on, across
/// several pages; the target must match the primary, and at every seq
/// from its `consistent_from` on (the ring of the last operations) hold
/// what the primary held at that seq.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_replaced_mid_snapshot_does_not_mix_its_pages_into_the_next() {
    const POINTS: u64 = 24_000;
    let nodes = Nodes::with(3);
    let (n1, n2, n3) = (nodes.node(1), nodes.node(2), nodes.node(3));
    load_and_truncate(&n1, POINTS).await;

    // ~24k points at 1 MB/s: a snapshot of about 2.5 s.
    let one = map_filling(2, &[2], 1.0);
    n1.apply_map(one.clone()).await;
    n2.apply_map(one).await;
    let to_2 = |first_only: bool| {
        nodes
            .net
            .snapshot_chunks()
            .iter()
            .filter(|c| c.to == NodeId(2) && (!first_only || c.first))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while to_2(false) < 4 {
        assert!(
            Instant::now() < deadline,
            "the first snapshot never got going"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Node 3 joins: the peer set changes and every stream restarts. No
    // write in between: the new snapshot to node 2 is read at the same seq.
    let two = map_filling(3, &[2, 3], 1.0);
    n1.apply_map(two.clone()).await;
    n2.apply_map(two.clone()).await;
    n3.apply_map(two).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while to_2(true) < 2 {
        assert!(Instant::now() < deadline, "no second snapshot to node 2");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (n1, stop) = (n1.clone(), stop.clone());
        tokio::spawn(async move {
            let mut round = 1;
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(60) {
                // Spread over the id range: some pages are read before
                // these writes, some after.
                let base = (round * 997) % POINTS;
                let points = (base..base + 20).map(|i| point(i, round)).collect();
                write(&n1, Operation::Upsert { points })
                    .await
                    .expect("overwrite");
                let gone = (round * 7_919) % POINTS;
                write(
                    &n1,
                    Operation::Delete {
                        ids: vec![PointId::Num(gone), PointId::Num(POINTS + round)],
                    },
                )
                .await
                .expect("delete");
                let back = vec![point(gone, round + 1), point(POINTS + round, round)];
                write(&n1, Operation::Upsert { points: back })
                    .await
                    .expect("re-upsert");
                round += 1;
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            round
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while nodes
        .net
        .snapshot_chunks()
        .iter()
        .filter(|c| c.to == NodeId(2) && c.last)
        .count()
        == 0
    {
        assert!(Instant::now() < deadline, "no snapshot to node 2 finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let rounds = writer.await.expect("writer");
    assert!(
        rounds > 10,
        "writes went on during the snapshot ({rounds} rounds)"
    );

    let primary = n1.replica(&shard_ref()).expect("primary").shard();
    let deadline = Instant::now() + Duration::from_secs(30);
    for n in [&n2, &n3] {
        loop {
            let target = n.replica(&shard_ref()).expect("target").shard();
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
    }
    let r2 = n2.replica(&shard_ref()).expect("target");
    // Every point once: the segments' live points are the point count
    // (pages of two snapshots in one install held ids twice).
    let live: usize = r2.shard().segment_info().iter().map(|s| s.1).sum();
    assert_eq!(
        live as u64,
        r2.shard().digest().points,
        "node 2's segments hold points twice"
    );
    let (from, to) = (r2.consistent_from(), r2.shard().applied_seq());
    let mut compared = 0;
    for s in from.0..=to.0 {
        if let Some(theirs) = r2.shard().digest_at(SeqNo(s)) {
            assert_eq!(
                Some(theirs),
                primary.digest_at(SeqNo(s)),
                "node 2 at seq {s} (consistent from {from})"
            );
            compared += 1;
        }
    }
    assert!(compared > 0, "no seq from {from} to {to} to compare");
    eprintln!(
        "REPLACED STREAM: {} snapshots begun to node 2, {} chunks; {rounds} write rounds; compared {compared} seqs from {from}",
        to_2(true),
        to_2(false)
    );
}

/// `map` with node 2 an `Active` replica of the shard beside node 1.
fn with_active_2(mut m: ClusterMap) -> ClusterMap {
    for c in m.collections.values_mut() {
        for s in c.shards.values_mut() {
            s.replicas.insert(
                1,
                Replica {
                    node: NodeId(2),
                    state: ReplicaState::Active,
                },
            );
        }
    }
    m
}

/// The chaos runs' multi-second write stalls around transfers: a write
/// applied on the primary waits for its replicas' acknowledgements, and
/// when the shard's peer set changed meanwhile (a transfer's target
/// added, switched in, or a source removed: every stream restarts) it
/// waited on marks no stream updated any more, until the write timeout.
/// Under the same term the marks now carry over to the new streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waiting_for_acks_survives_a_peer_set_change() {
    let nodes = Nodes::with(3);
    let (n1, n2, n3) = (nodes.node(1), nodes.node(2), nodes.node(3));
    let rf2 = with_active_2(map_filling(1, &[], 0.0));
    n1.apply_map(rf2.clone()).await;
    n2.apply_map(rf2).await;
    write(
        &n1,
        Operation::Upsert {
            points: vec![point(0, 0)],
        },
    )
    .await
    .expect("first write");
    // Node 2 answers slowly: the next write waits for its acknowledgement
    // (majority of two) while node 3 joins as a transfer target.
    nodes
        .net
        .set_delay(NodeId(2), Some(Duration::from_millis(300)));
    let started = Instant::now();
    let pending = {
        let n1 = n1.clone();
        tokio::spawn(async move {
            write(
                &n1,
                Operation::Upsert {
                    points: vec![point(1, 0)],
                },
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let joined = with_active_2(map_filling(2, &[3], 0.0));
    for n in [&n1, &n2, &n3] {
        n.apply_map(joined.clone()).await;
    }
    let acks = pending
        .await
        .expect("join")
        .expect("the write is acknowledged");
    let took = started.elapsed();
    nodes.net.set_delay(NodeId(2), None);
    eprintln!("WRITE ACROSS A PEER SET CHANGE: {acks} acks in {took:?}");
    assert_eq!(acks, 2);
    // Options: 2 s write timeout; the old marks made it wait all of it.
    assert!(
        took < Duration::from_millis(1_500),
        "the write waited {took:?}"
    );
}
