//! Whole shard transfers with a real meta-service (in this process) and
//! real `storage-node` processes over QUIC: a move started with
//! `RebalanceShards` while a client writes at `majority` and records
//! every acknowledged write; the target killed mid-snapshot.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use meta_client::MetaReadConsistency;
use protocol::cluster::{
    ClusterCommand, ClusterMap, RebalancePlan, RebalanceSettings, ReplicaState, ShardMove,
    TransferKind, TransferOutcome,
};
use protocol::rpc::StorageResponse;
use protocol::{
    CollectionConfig, Distance, NodeId, Operation, Point, PointId, ShardId, WriteConsistency,
};
use storage_node::node::now_ms;
use testsuite::{ProcessCluster as Cluster, ProcessOptions};

const BINARY: &str = env!("CARGO_BIN_EXE_storage-node");
const SHARD: ShardId = ShardId(0);

fn vector(i: u64, dim: usize) -> Vec<f32> {
    (0..dim as u64)
        .map(|d| ((i * 31 + d * 7) % 113) as f32 / 56.0 - 1.0)
        .collect()
}

fn points(ids: std::ops::Range<u64>, dim: usize) -> Vec<Point> {
    ids.map(|i| Point {
        id: PointId::Num(i),
        vector: vector(i, dim),
        payload: None,
    })
    .collect()
}

/// A client that writes batches of new points at `majority`, retrying a
/// batch (refreshing its map) for up to 10 s, and records what was
/// acknowledged.
struct Writer {
    collection: String,
    dim: usize,
    next: u64,
    acked: Vec<u64>,
    /// Batches never acknowledged within their retry budget.
    failed: u64,
    /// Answers that made the client retry (NotPrimary during a switch…).
    retries: u64,
    last_ack: Option<Instant>,
    max_gap: Duration,
}

impl Writer {
    fn new(collection: &str, dim: usize, first: u64) -> Writer {
        Writer {
            collection: collection.into(),
            dim,
            next: first,
            acked: Vec::new(),
            failed: 0,
            retries: 0,
            last_ack: None,
            max_gap: Duration::ZERO,
        }
    }

    async fn write_batch(&mut self, cluster: &mut Cluster, n: u64) {
        let ids = self.next..self.next + n;
        self.next += n;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let op = Operation::Upsert {
                points: points(ids.clone(), self.dim),
            };
            match cluster
                .write(&self.collection, SHARD, op, WriteConsistency::Majority)
                .await
            {
                Ok(StorageResponse::Written { .. }) => {
                    let now = Instant::now();
                    if let Some(last) = self.last_ack {
                        self.max_gap = self.max_gap.max(now - last);
                    }
                    self.last_ack = Some(now);
                    self.acked.extend(ids);
                    return;
                }
                other => {
                    if let Ok(StorageResponse::Error { error }) = &other {
                        assert!(error.is_transient(), "permanent error {error:?}");
                    }
                    self.retries += 1;
                    if Instant::now() > deadline {
                        eprintln!("write of {ids:?} failed: {other:?}");
                        self.failed += 1;
                        return;
                    }
                    cluster.refresh_map().await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}

async fn map_of(cluster: &Cluster) -> ClusterMap {
    cluster
        .meta_client
        .cluster_map(MetaReadConsistency::Linearizable)
        .await
        .expect("map")
        .map
}

async fn submit(cluster: &Cluster, cmd: ClusterCommand) {
    cluster.meta_client.submit(&cmd).await.expect("command");
}

async fn start(collection: &str, rf: u32, dim: usize, throttle_mb: f64) -> Cluster {
    start_with(3, collection, rf, dim, throttle_mb).await
}

async fn start_with(
    nodes: u64,
    collection: &str,
    rf: u32,
    dim: usize,
    throttle_mb: f64,
) -> Cluster {
    let mut options = ProcessOptions::new(BINARY, nodes);
    options.max_segment_points = 5_000;
    let mut cluster = Cluster::start(options).await;
    // Only the moves this test starts.
    submit(
        &cluster,
        ClusterCommand::UpdateConfig {
            key: RebalanceSettings::KEY_ENABLED.into(),
            value: "false".into(),
        },
    )
    .await;
    submit(
        &cluster,
        ClusterCommand::UpdateConfig {
            key: RebalanceSettings::KEY_THROTTLE.into(),
            value: throttle_mb.to_string(),
        },
    )
    .await;
    let mut config = CollectionConfig::new(dim, Distance::Dot);
    config.shard_number = 1;
    config.replication_factor = rf;
    config.hnsw.m = 8;
    config.hnsw.ef_construct = 32;
    cluster.create_collection_with(collection, config).await;
    cluster
}

/// Where a node keeps its replica of `collection`'s shard 0.
fn replica_dir(cluster: &Cluster, map: &ClusterMap, node: NodeId, collection: &str) -> PathBuf {
    let incarnation = map.collections[collection].created_epoch;
    cluster
        .log_path(node)
        .parent()
        .expect("cluster dir")
        .join(format!("node-{node}"))
        .join("collections")
        .join(collection)
        .join(format!("{}-{}", incarnation.0, SHARD))
}

/// Moves the primary's replica of the shard to the node without one.
async fn start_move(cluster: &mut Cluster, collection: &str) -> (NodeId, NodeId) {
    let map = map_of(cluster).await;
    let info = map.shard(collection, SHARD).expect("shard");
    let from = info.primary.expect("primary");
    let to = (1..=3)
        .map(NodeId)
        .find(|n| !info.holds(*n))
        .expect("a node without the shard");
    let plan = RebalancePlan {
        moves: vec![ShardMove {
            collection: collection.into(),
            shard: SHARD,
            from,
            to,
            kind: TransferKind::Move,
        }],
        created_at_ms: now_ms(),
    };
    submit(cluster, ClusterCommand::RebalanceShards { plan }).await;
    (from, to)
}

/// Starts a move of `from`'s replica to a node without one.
async fn start_move_of(
    cluster: &mut Cluster,
    collection: &str,
    from: NodeId,
    nodes: u64,
) -> NodeId {
    let map = map_of(cluster).await;
    let info = map.shard(collection, SHARD).expect("shard");
    let to = (1..=nodes)
        .map(NodeId)
        .find(|n| !info.holds(*n))
        .expect("a node without the shard");
    let plan = RebalancePlan {
        moves: vec![ShardMove {
            collection: collection.into(),
            shard: SHARD,
            from,
            to,
            kind: TransferKind::Move,
        }],
        created_at_ms: now_ms(),
    };
    submit(cluster, ClusterCommand::RebalanceShards { plan }).await;
    to
}

/// Loads `n` points, moves the primary's replica while writing, checks
/// every acknowledged write is on the new primary and the source's data
/// is gone.
async fn move_under_writes(collection: &str, rf: u32) {
    let mut cluster = start(collection, rf, 16, 0.0).await;
    let mut writer = Writer::new(collection, 16, 0);
    for _ in 0..40 {
        writer.write_batch(&mut cluster, 500).await;
    }
    let (from, to) = start_move(&mut cluster, collection).await;
    let started = Instant::now();
    let mut completed_at = None;
    let mut phases = Vec::new();
    // Write until the switch, then a little more under the new map.
    for i in 0.. {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the transfer did not complete: {:?}",
            map_of(&cluster).await.transfers
        );
        writer.write_batch(&mut cluster, 10).await;
        if i % 10 == 0 {
            let map = map_of(&cluster).await;
            if let Some(m) = map
                .shard(collection, SHARD)
                .and_then(|s| s.migration.clone())
            {
                if phases.last() != Some(&m.phase) {
                    phases.push(m.phase);
                }
            }
            if completed_at.is_none() && map.transfers.completed + map.transfers.failed > 0 {
                completed_at = Some(writer.acked.len());
            }
        }
        if completed_at.is_some_and(|at| writer.acked.len() >= at + 200) {
            break;
        }
    }
    let map = map_of(&cluster).await;
    eprintln!(
        "MOVE rf {rf}: {from} -> {to} in {:.2} s, phases {phases:?}; {} acknowledged, {} failed, {} retries, longest gap {:?}; transfers {:?}",
        started.elapsed().as_secs_f64(),
        writer.acked.len(),
        writer.failed,
        writer.retries,
        writer.max_gap,
        map.transfers.recent,
    );
    assert_eq!(map.transfers.completed, 1, "{:?}", map.transfers);
    assert_eq!(map.transfers.failed, 0, "{:?}", map.transfers);
    assert_eq!(map.transfers.recent[0].outcome, TransferOutcome::Completed);
    assert_eq!(writer.failed, 0, "every write was acknowledged");
    let info = map.shard(collection, SHARD).expect("shard");
    assert!(!info.holds(from), "the source left the replica set");
    assert_eq!(info.primary, Some(to), "the primary moved with the replica");
    assert_eq!(
        info.replica(to).map(|r| r.state),
        Some(ReplicaState::Active)
    );
    // Every acknowledged write is on the target.
    let ids: Vec<PointId> = writer.acked.iter().map(|i| PointId::Num(*i)).collect();
    let found = cluster.get(to, collection, SHARD, ids).await;
    assert_eq!(
        found,
        writer.acked.len(),
        "acknowledged writes missing on the target"
    );
    cluster
        .wait_converged(collection, 1, Duration::from_secs(30))
        .await;
    // The source's data goes.
    let dir = replica_dir(&cluster, &map, from, collection);
    let deadline = Instant::now() + Duration::from_secs(30);
    while dir.exists() {
        assert!(
            Instant::now() < deadline,
            "{} was not removed",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(replica_dir(&cluster, &map, to, collection).exists());
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_under_majority_writes_keeps_every_acknowledged_write() {
    move_under_writes("rf2", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rf1_shard_moves_under_writes_without_a_failed_write() {
    move_under_writes("rf1", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_killed_mid_snapshot_fails_the_transfer_and_loses_nothing() {
    let collection = "victim";
    // ~30k × 56 bytes at 0.3 MB/s: several seconds of snapshot.
    let mut cluster = start(collection, 1, 8, 0.3).await;
    let mut writer = Writer::new(collection, 8, 0);
    for _ in 0..60 {
        writer.write_batch(&mut cluster, 500).await;
    }
    let (from, to) = start_move(&mut cluster, collection).await;
    // Kill the target once it has received part of the snapshot.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "no snapshot progress reported");
        writer.write_batch(&mut cluster, 10).await;
        let map = map_of(&cluster).await;
        let m = map
            .shard(collection, SHARD)
            .and_then(|s| s.migration.clone())
            .expect("transfer running");
        if m.points_copied > 0 && m.points_copied < m.points_total {
            eprintln!(
                "KILL target {to} at {}/{} points",
                m.points_copied, m.points_total
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let transfers_page = cluster.http_get(from, "/transfers").await;
    assert!(
        transfers_page.contains("\"phase\":\"snapshot\""),
        "{transfers_page}"
    );
    cluster.kill(to);
    let deadline = Instant::now() + Duration::from_secs(60);
    let reason = loop {
        assert!(Instant::now() < deadline, "the transfer never ended");
        writer.write_batch(&mut cluster, 10).await;
        let map = map_of(&cluster).await;
        if let Some(r) = map.transfers.recent.first() {
            break r.outcome.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("TRANSFER ended: {reason:?}");
    assert!(matches!(reason, TransferOutcome::Failed { ref reason } if !reason.is_empty()));
    let map = map_of(&cluster).await;
    assert_eq!(map.transfers.failed, 1);
    let info = map.shard(collection, SHARD).expect("shard");
    assert!(info.migration.is_none() && !info.holds(to) && info.primary == Some(from));
    for _ in 0..20 {
        writer.write_batch(&mut cluster, 10).await;
    }
    assert_eq!(writer.failed, 0, "the source kept taking writes");
    let ids: Vec<PointId> = writer.acked.iter().map(|i| PointId::Num(*i)).collect();
    let found = cluster.get(from, collection, SHARD, ids).await;
    assert_eq!(found, writer.acked.len());
    // The target comes back: it removes the half-copied replica the map
    // no longer gives it.
    let orphan = replica_dir(&cluster, &map, to, collection);
    assert!(orphan.exists(), "the target had started its copy");
    cluster.restart(to).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while orphan.exists() {
        assert!(
            Instant::now() < deadline,
            "{} was not removed",
            orphan.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.stop().await;
}

/// Transfer rate of a 100,000-point 128-d shard (RF 1), unthrottled and
/// at 5 MB/s, and how long the switch held writes. Slow (it loads 51 MB
/// of vectors), so it runs on request:
/// `cargo test -p storage-node --test integration transfer_rate -- --ignored --nocapture`
/// (`TRANSFER_BENCH_BINARY=target/release/storage-node` to measure a
/// release build).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn transfer_rate_of_a_100k_128d_shard() {
    const DIM: usize = 128;
    let points: u64 = std::env::var("TRANSFER_BENCH_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let binary = std::env::var("TRANSFER_BENCH_BINARY").unwrap_or_else(|_| BINARY.to_string());
    let mut options = ProcessOptions::new(binary, 3);
    options.max_segment_points = 20_000;
    let mut cluster = Cluster::start(options).await;
    submit(
        &cluster,
        ClusterCommand::UpdateConfig {
            key: RebalanceSettings::KEY_ENABLED.into(),
            value: "false".into(),
        },
    )
    .await;
    let collection = "bench";
    let mut config = CollectionConfig::new(DIM, Distance::Dot);
    config.shard_number = 1;
    config.replication_factor = 1;
    cluster.create_collection_with(collection, config).await;
    let mut writer = Writer::new(collection, DIM, 0);
    let loading = Instant::now();
    while writer.next < points {
        writer.write_batch(&mut cluster, 500).await;
    }
    assert_eq!(writer.failed, 0);
    eprintln!(
        "LOADED {points} {DIM}-d points in {:.1} s",
        loading.elapsed().as_secs_f64()
    );
    let mut rates = Vec::new();
    for throttle in [0.0, 5.0] {
        submit(
            &cluster,
            ClusterCommand::UpdateConfig {
                key: RebalanceSettings::KEY_THROTTLE.into(),
                value: format!("{throttle}"),
            },
        )
        .await;
        let done_before = map_of(&cluster).await.transfers.completed;
        let (from, to) = start_move(&mut cluster, collection).await;
        let deadline = Instant::now() + Duration::from_secs(300);
        let record = loop {
            assert!(Instant::now() < deadline, "transfer did not finish");
            // A trickle of writes keeps the delta phase honest.
            writer.write_batch(&mut cluster, 1).await;
            let map = map_of(&cluster).await;
            if map.transfers.completed + map.transfers.failed > done_before + map.transfers.failed {
                break map.transfers.recent.last().cloned().expect("record");
            }
            assert_eq!(map.transfers.failed, 0, "{:?}", map.transfers);
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let secs = (record.finished_at_ms - record.started_at_ms) as f64 / 1000.0;
        let metrics = cluster.http_get(from, "/metrics").await;
        let hold_ms = metrics
            .lines()
            .find(|l| {
                l.starts_with("storage_transfer_last_switch_hold_ms{") && l.contains(collection)
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN);
        let mb_s = record.bytes_copied as f64 / 1e6 / secs;
        eprintln!(
            "RATE throttle {throttle} MB/s: {from} -> {to}: {} points, {:.1} MB in {secs:.2} s = {:.0} points/s, {mb_s:.1} MB/s; switch held writes {hold_ms:.1} ms",
            record.points_copied,
            record.bytes_copied as f64 / 1e6,
            record.points_copied as f64 / secs,
        );
        assert_eq!(record.outcome, TransferOutcome::Completed);
        rates.push(mb_s);
        if std::env::var("TRANSFER_BENCH_LOGS").is_ok() {
            for node in [from, to] {
                let log = std::fs::read_to_string(cluster.log_path(node)).unwrap_or_default();
                for line in log.lines().filter(|l| {
                    l.contains("snapshot") || l.contains("transfer") || l.contains("switch")
                }) {
                    eprintln!("node {node}: {line}");
                }
            }
        }
    }
    // The throttle holds the snapshot to its rate (a little over for
    // the delta and the switch, which are not throttled).
    assert!(
        rates[1] <= 5.0 * 1.1,
        "throttled to 5 MB/s, measured {:.1}",
        rates[1]
    );
    let ids: Vec<PointId> = writer.acked.iter().map(|i| PointId::Num(*i)).collect();
    let primary = cluster.primary_of(collection, SHARD).await;
    assert_eq!(
        cluster.get(primary, collection, SHARD, ids).await,
        writer.acked.len()
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_primary_takes_a_transfer_over_after_a_failover() {
    let collection = "failover";
    // RF 3 on 4 nodes; a replica that is not the primary moves while the
    // primary is killed mid-snapshot.
    let mut cluster = start_with(4, collection, 3, 8, 0.3).await;
    let mut writer = Writer::new(collection, 8, 0);
    for _ in 0..60 {
        writer.write_batch(&mut cluster, 500).await;
    }
    let map = map_of(&cluster).await;
    let info = map.shard(collection, SHARD).expect("shard").clone();
    let primary = info.primary.expect("primary");
    let from = info.nodes().find(|n| *n != primary).expect("a secondary");
    let to = start_move_of(&mut cluster, collection, from, 4).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "no snapshot progress reported");
        writer.write_batch(&mut cluster, 10).await;
        let map = map_of(&cluster).await;
        let m = map
            .shard(collection, SHARD)
            .and_then(|s| s.migration.clone())
            .expect("transfer running");
        if m.points_copied > 0 && m.points_copied < m.points_total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("KILL primary {primary} while {from} -> {to} copies");
    cluster.kill(primary);
    let deadline = Instant::now() + Duration::from_secs(120);
    let outcome = loop {
        assert!(Instant::now() < deadline, "the transfer never ended");
        writer.write_batch(&mut cluster, 10).await;
        let map = map_of(&cluster).await;
        if let Some(r) = map.transfers.recent.first() {
            break r.outcome.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let map = map_of(&cluster).await;
    let info = map.shard(collection, SHARD).expect("shard");
    eprintln!(
        "TRANSFER after failover: {outcome:?}; primary now {:?}; {} acknowledged, {} failed batches",
        info.primary,
        writer.acked.len(),
        writer.failed
    );
    assert_eq!(
        outcome,
        TransferOutcome::Completed,
        "the new primary finished it"
    );
    assert!(info.holds(to) && !info.holds(from));
    for _ in 0..20 {
        writer.write_batch(&mut cluster, 10).await;
    }
    let new_primary = cluster.primary_of(collection, SHARD).await;
    let ids: Vec<PointId> = writer.acked.iter().map(|i| PointId::Num(*i)).collect();
    assert_eq!(
        cluster.get(to, collection, SHARD, ids.clone()).await,
        writer.acked.len(),
        "acknowledged writes missing on the target"
    );
    assert_eq!(
        cluster.get(new_primary, collection, SHARD, ids).await,
        writer.acked.len()
    );
    cluster.stop().await;
}

/// A move of an idle shard (no write during the transfer) whose target
/// must first index the snapshot it received: the switch is tried again
/// every second until the target's index catches up, and must not wait
/// for a write that never comes (it used to, until the controller's 60 s
/// stall timeout failed the transfer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_shard_moves_once_its_target_has_indexed_it() {
    let collection = "idle_move";
    let mut cluster = start(collection, 1, 16, 0.0).await;
    let mut writer = Writer::new(collection, 16, 0);
    // 12,000 points: sealed segments of 5,000 that the source indexes.
    for _ in 0..24 {
        writer.write_batch(&mut cluster, 500).await;
    }
    assert_eq!(writer.failed, 0);
    let (_, to) = start_move(&mut cluster, collection).await;
    let started = Instant::now();
    let mut phases = Vec::new();
    loop {
        let map = map_of(&cluster).await;
        let info = map.shard(collection, SHARD).expect("shard");
        match &info.migration {
            Some(m) => {
                if phases.last() != Some(&m.phase) {
                    phases.push(m.phase);
                }
            }
            None => {
                assert_eq!(map.transfers.failed, 0, "{:?}", map.transfers);
                assert_eq!(info.primary, Some(to), "switched to the target");
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(45),
            "the transfer of an idle shard did not complete; phases {phases:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "idle shard moved in {:.1} s through phases {phases:?}",
        started.elapsed().as_secs_f64()
    );
}
