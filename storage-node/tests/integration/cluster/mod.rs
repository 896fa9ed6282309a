//! Multi-process tests of the data plane: a meta-service (in this process)
//! and three real `storage-node` processes talking QUIC with mutual TLS on
//! loopback. A test client records every acknowledged write and checks it
//! against what the cluster holds after a primary is SIGKILLed.

mod index_status;
mod metrics;
mod partition;
mod presence;
mod removal;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use protocol::rpc::{StorageError, StorageRequest, StorageResponse};
use protocol::{NodeId, Operation, Point, PointId, ShardId, WriteConsistency};
use testsuite::processes::{rogue_client, shard_ref};
use testsuite::{ProcessCluster as Cluster, ProcessOptions};

pub(crate) const BINARY: &str = env!("CARGO_BIN_EXE_storage-node");

/// `nodes` storage-node processes and a meta member in this process.
async fn start(nodes: u64) -> Cluster {
    Cluster::start(ProcessOptions::new(BINARY, nodes)).await
}

const SHARDS: u32 = 3;
const POINTS: u64 = 10_000;
const BATCH: u64 = 10;

fn batch(first: u64) -> Vec<Point> {
    (first..first + BATCH)
        .map(|i| Point {
            id: PointId::Num(i),
            vector: (0..8).map(|d| ((i * 7 + d) % 13) as f32 - 6.0).collect(),
            payload: None,
        })
        .collect()
}

fn shard_of(first: u64) -> ShardId {
    ShardId(((first / BATCH) % SHARDS as u64) as u32)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_primary_kill_and_replicas_converge() {
    let mut cluster = start(3).await;
    cluster.create_collection("c", SHARDS, 3).await;
    let victim = cluster.primary_of("c", ShardId(0)).await;
    let victim_shards: HashSet<ShardId> = (0..SHARDS)
        .map(ShardId)
        .filter(|s| cluster.map_now_primary("c", *s) == Some(victim))
        .collect();

    let mut acked: Vec<u64> = Vec::new();
    let mut attempts = 0u64;
    let mut kill_at: Option<Instant> = None;
    let mut first_ok_after_kill: BTreeMap<ShardId, Duration> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut first = 0;
    while first < POINTS {
        assert!(Instant::now() < deadline, "writes did not finish in time");
        if first == 3_000 && kill_at.is_none() {
            cluster.kill(victim);
            kill_at = Some(Instant::now());
        }
        let shard = shard_of(first);
        attempts += 1;
        match cluster
            .write(
                "c",
                shard,
                Operation::Upsert {
                    points: batch(first),
                },
                WriteConsistency::Majority,
            )
            .await
        {
            Ok(StorageResponse::Written { acks, .. }) => {
                assert!(acks >= 2);
                acked.extend(first..first + BATCH);
                if let Some(k) = kill_at {
                    if victim_shards.contains(&shard) {
                        first_ok_after_kill
                            .entry(shard)
                            .or_insert_with(|| k.elapsed());
                    }
                }
                first += BATCH;
            }
            Ok(other) => {
                if let StorageResponse::Error { error } = &other {
                    assert!(error.is_transient(), "permanent error {error:?}");
                }
                cluster.refresh_map().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(_) => {
                cluster.refresh_map().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    for (shard, t) in &first_ok_after_kill {
        eprintln!("FAILOVER shard {shard}: first acknowledged write {:.2} s after SIGKILL of node {victim}", t.as_secs_f64());
    }
    assert_eq!(
        first_ok_after_kill.len(),
        victim_shards.len(),
        "every failed-over shard took writes again"
    );
    for shard in &victim_shards {
        let p = cluster.primary_of("c", *shard).await;
        assert_ne!(p, victim, "shard {shard} has a new primary");
    }
    eprintln!(
        "WRITES attempted {attempts}, acknowledged {} points",
        acked.len()
    );

    // Every acknowledged point is readable from the current primaries.
    let mut missing = 0;
    for s in 0..SHARDS {
        let ids: Vec<PointId> = acked
            .iter()
            .filter(|i| shard_of(**i / BATCH * BATCH) == ShardId(s))
            .map(|i| PointId::Num(*i))
            .collect();
        let primary = cluster.primary_of("c", ShardId(s)).await;
        let got = cluster.get(primary, "c", ShardId(s), ids.clone()).await;
        missing += ids.len() - got;
    }
    assert_eq!(missing, 0, "acknowledged writes lost");

    // The killed node comes back and every replica of every shard converges.
    let restarted = Instant::now();
    cluster.restart(victim).await;
    let statuses = cluster
        .wait_converged("c", SHARDS, Duration::from_secs(90))
        .await;
    eprintln!(
        "CONVERGED {:.2} s after restart: {statuses:?}",
        restarted.elapsed().as_secs_f64()
    );
    assert_eq!(
        statuses.values().map(|(points, _)| points).sum::<u64>(),
        POINTS
    );

    // Replica state, lag and replication traffic are visible to Prometheus.
    let primary = cluster.primary_of("c", ShardId(0)).await;
    let metrics = cluster.http_get(primary, "/metrics").await;
    for name in [
        "storage_replica_applied_seq",
        "storage_replica_active",
        "storage_replication_lag_ops",
        "storage_replication_lag_seconds",
        "storage_replicated_ops_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    let health = cluster.http_get(primary, "/health").await;
    assert!(health.contains("\"lease_valid\":true"), "{health}");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_the_meta_service_stops_taking_writes_within_its_lease() {
    let mut cluster = start(3).await;
    cluster.create_collection("c", 1, 3).await;
    let ok = cluster
        .write(
            "c",
            ShardId(0),
            Operation::Upsert { points: batch(0) },
            WriteConsistency::Majority,
        )
        .await;
    assert!(matches!(ok, Ok(StorageResponse::Written { .. })), "{ok:?}");
    // Every node loses the meta-service: leases run out, writes are refused.
    let stopping = Instant::now();
    cluster.stop_meta().await;
    let cut = Instant::now();
    eprintln!(
        "LEASE meta-service shutdown (draining its long-polls) took {:.2} s",
        (cut - stopping).as_secs_f64()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused_after = loop {
        assert!(
            Instant::now() < deadline,
            "writes still accepted without a lease"
        );
        let r = cluster
            .write_cached(
                "c",
                ShardId(0),
                Operation::Upsert { points: batch(100) },
                WriteConsistency::One,
            )
            .await;
        if let Ok(StorageResponse::Error {
            error: StorageError::LeaseExpired,
        }) = r
        {
            break cut.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "LEASE writes refused {:.2} s after the meta-service shutdown returned",
        refused_after.as_secs_f64()
    );
    assert!(refused_after < Duration::from_secs(3));
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_a_certificate_from_another_ca_is_refused() {
    let mut cluster = start(1).await;
    cluster.create_collection("c", 1, 1).await;
    let rogue = rogue_client();
    let addr = cluster.rpc_addr(NodeId(1));
    let r = rogue
        .call::<StorageRequest, StorageResponse>(
            addr,
            "storage-1",
            &StorageRequest::Status {
                shard: shard_ref("c", ShardId(0)),
            },
            Duration::from_secs(3),
        )
        .await;
    assert!(r.is_err(), "a foreign certificate was accepted: {r:?}");
    cluster.stop().await;
}

/// The primary is cut off from the meta-service and its peers: within its
/// lease it refuses writes; the majority side promotes a new primary and
/// keeps acknowledging; after the heal every replica converges and no
/// acknowledged write is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_primary_refuses_writes_and_the_majority_continues() {
    if !partition::available() {
        return;
    }
    // Each node in its own cgroup from its first instruction; the cgroups
    // outlive the cluster (a cgroup is removed once its process is gone).
    let cgroups: Vec<partition::NodeCgroup> = (1..=3)
        .map(|id| partition::NodeCgroup::create(&format!("node{id}")))
        .collect();
    let mut options = ProcessOptions::new(BINARY, 3);
    options.cgroups = (1..=3)
        .map(|id| (NodeId(id), cgroups[id as usize - 1].path.clone()))
        .collect();
    let mut cluster = Cluster::start(options).await;
    cluster.create_collection("c", 1, 3).await;
    let mut acked: Vec<u64> = Vec::new();
    let mut next = 0u64;
    for _ in 0..20 {
        let r = cluster
            .write(
                "c",
                ShardId(0),
                Operation::Upsert {
                    points: batch(next),
                },
                WriteConsistency::Majority,
            )
            .await;
        assert!(matches!(r, Ok(StorageResponse::Written { .. })), "{r:?}");
        acked.extend(next..next + BATCH);
        next += BATCH;
    }
    let old = cluster.primary_of("c", ShardId(0)).await;
    let cut = partition::Partition::isolate(&cgroups[old.0 as usize - 1], cluster.client_port);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);

    // The cut-off primary: refuses once its lease runs out.
    let refused_after = loop {
        assert!(
            Instant::now() < deadline,
            "cut-off primary kept accepting writes"
        );
        let req = StorageRequest::Write {
            shard: shard_ref("c", ShardId(0)),
            epoch: protocol::Epoch(0),
            op: Operation::Upsert {
                points: batch(900_000),
            },
            consistency: WriteConsistency::One,
        };
        if let Ok(StorageResponse::Error {
            error: StorageError::LeaseExpired,
        }) = cluster.call(old, req).await
        {
            break started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "PARTITION cut-off primary {old} refuses writes {:.2} s after the cut",
        refused_after.as_secs_f64()
    );

    // The majority side: a new primary takes writes.
    let mut majority_ok_after = None;
    while majority_ok_after.is_none() || acked.len() < 400 {
        assert!(
            Instant::now() < deadline,
            "the majority side never took writes"
        );
        cluster.refresh_map().await;
        if cluster.map_now_primary("c", ShardId(0)) == Some(old) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        match cluster
            .write_cached(
                "c",
                ShardId(0),
                Operation::Upsert {
                    points: batch(next),
                },
                WriteConsistency::Majority,
            )
            .await
        {
            Ok(StorageResponse::Written { acks, .. }) => {
                assert!(acks >= 2);
                majority_ok_after.get_or_insert(started.elapsed());
                acked.extend(next..next + BATCH);
                next += BATCH;
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let new = cluster.primary_of("c", ShardId(0)).await;
    eprintln!(
        "PARTITION majority side: node {new} primary, first acknowledged write {:.2} s after the cut",
        majority_ok_after.map_or(0.0, |d| d.as_secs_f64())
    );

    // Heal: the old primary rejoins as a replica and converges.
    cut.heal();
    let healed = Instant::now();
    let statuses = cluster
        .wait_converged("c", 1, Duration::from_secs(60))
        .await;
    eprintln!(
        "PARTITION converged {:.2} s after the heal: {statuses:?}",
        healed.elapsed().as_secs_f64()
    );
    for node in [NodeId(1), NodeId(2), NodeId(3)] {
        let ids: Vec<PointId> = acked.iter().map(|i| PointId::Num(*i)).collect();
        assert_eq!(
            cluster.get(node, "c", ShardId(0), ids).await,
            acked.len(),
            "node {node} misses acknowledged writes"
        );
    }
    // The write the cut-off primary took at `one` was never acknowledged
    // at majority and is gone everywhere.
    assert_eq!(statuses[&ShardId(0)].0, acked.len() as u64);
    drop(cut);
    cluster.stop().await;
}

/// A replica that loses its data while its primary is idle learns from the
/// gossiped version vector that it is behind and asks the primary to catch
/// it up: it converges without any new write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_lost_its_data_catches_up_from_gossip_without_new_writes() {
    let mut cluster = start(3).await;
    cluster.create_collection("wiped", 1, 3).await;
    for first in (0..500).step_by(BATCH as usize) {
        let written = cluster
            .write(
                "wiped",
                ShardId(0),
                Operation::Upsert {
                    points: batch(first),
                },
                WriteConsistency::All,
            )
            .await;
        assert!(
            matches!(written, Ok(StorageResponse::Written { .. })),
            "{written:?}"
        );
    }
    let primary = cluster.primary_of("wiped", ShardId(0)).await;
    let victim = (1..=3)
        .map(NodeId)
        .find(|n| *n != primary)
        .expect("a follower");
    cluster.kill(victim);
    cluster.wipe_data(victim);
    let restarted = Instant::now();
    cluster.restart(victim).await;
    let statuses = cluster
        .wait_converged("wiped", 1, Duration::from_secs(60))
        .await;
    eprintln!(
        "CAUGHT UP from gossip {:.2} s after restart with an empty disk: {statuses:?}",
        restarted.elapsed().as_secs_f64()
    );
    assert_eq!(statuses[&ShardId(0)].0, 500);
    let log = std::fs::read_to_string(cluster.log_path(victim)).expect("node log");
    assert!(
        log.contains("asking the primary to catch it up"),
        "the replica did not ask (it converged some other way?)"
    );
    let metrics = cluster.http_get(primary, "/metrics").await;
    assert!(metrics.contains("storage_catch_up_requests_total"));
    cluster.stop().await;
}
