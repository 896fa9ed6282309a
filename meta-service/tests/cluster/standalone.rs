use std::time::{Duration, Instant};

use meta_client::MetaReadConsistency;
use meta_service::CommandError;
use protocol::cluster::{Heartbeat, NodeState, ReplicaReport};
use protocol::{NodeId, SeqNo, ShardId, Term};

use crate::util::{Cluster, SERIAL};
use crate::{collection_config, config_cmd, register_nodes};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_member_serves_refuses_and_restarts() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::start(1, &["--node-dead-after-ms", "3600000"]);
    cluster
        .wait_leader(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("standalone member did not lead\n{}", cluster.log_tails()));
    let client = cluster.client();
    register_nodes(&client, 3).await;
    let epoch = client
        .create_collection("docs", collection_config(2, 3))
        .await
        .expect("create");
    let err = client
        .create_collection("docs", collection_config(2, 3))
        .await
        .expect_err("duplicate");
    assert_eq!(
        err.refusal(),
        Some(&CommandError::CollectionExists {
            name: "docs".into()
        })
    );
    assert!(!err.is_transient());

    // Heartbeats from a node that never registered are refused.
    let stranger = Heartbeat {
        node: NodeId(77),
        epoch: Default::default(),
        replicas: vec![],
        reads_last_minute: 0,
    };
    let err = client.heartbeat(&stranger).await.expect_err("unknown node");
    assert_eq!(
        err.refusal(),
        Some(&CommandError::NodeNotFound { node: NodeId(77) })
    );

    // A long-poll returns as soon as the epoch moves.
    let watcher = client.clone();
    let watch = tokio::spawn(async move { watcher.watch(epoch, Duration::from_secs(10)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.submit(&config_cmd(1)).await.expect("write");
    let seen = watch.await.expect("join").expect("watch").expect("changed");
    assert!(seen.map.epoch > epoch);
    let unchanged = client
        .watch(seen.map.epoch, Duration::from_millis(200))
        .await
        .expect("watch");
    assert!(unchanged.is_none());

    // Prometheus metrics and health.
    let addr = cluster.members[0].addr.clone();
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body");
    for name in [
        "meta_cluster_map_epoch",
        "meta_commands_applied_total",
        "meta_raft_is_leader",
        "meta_write_seconds",
        // Counted from the map (network/map_health.rs) for the alert rules.
        "meta_storage_nodes_by_state",
        "meta_shards_under_replicated",
        "meta_shards_unavailable",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
    let health = cluster.members[0].health().await.expect("health");
    assert_eq!(
        (health.status.as_str(), health.state.as_str()),
        ("ok", "Leader")
    );

    let before = client
        .cluster_map(MetaReadConsistency::Linearizable)
        .await
        .expect("map")
        .map;
    cluster.members[0].kill();
    cluster.members[0].start();
    cluster
        .wait_leader(Duration::from_secs(10))
        .await
        .expect("leads again");
    assert_eq!(
        client
            .cluster_map(MetaReadConsistency::Linearizable)
            .await
            .expect("map")
            .map,
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_promotes_a_replica_when_the_primary_stops_heartbeating() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(
        1,
        &[
            // A fixed 0.8 s grace (the adaptive one has unit tests).
            "--node-dead-after-ms",
            "800",
            "--node-dead-after-min-ms",
            "800",
            "--replica-replace-after-ms",
            "3600000",
        ],
    );
    cluster
        .wait_leader(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("standalone member did not lead\n{}", cluster.log_tails()));
    let client = cluster.client();
    register_nodes(&client, 3).await;
    client
        .create_collection("docs", collection_config(1, 3))
        .await
        .expect("create");
    let shard = client
        .cluster_map(MetaReadConsistency::Local)
        .await
        .expect("map")
        .map
        .collections["docs"]
        .shards[&ShardId(0)]
        .clone();
    let primary = shard.primary.expect("primary");
    let others: Vec<NodeId> = shard.nodes().filter(|n| *n != primary).collect();
    // The second replica in ring order is behind; the third must win.
    let applied = |n: NodeId| if n == others[0] { 5 } else { 9 };

    let started = Instant::now();
    let mut promoted = None;
    while started.elapsed() < Duration::from_secs(10) && promoted.is_none() {
        for n in &others {
            let hb = Heartbeat {
                node: *n,
                epoch: Default::default(),
                replicas: vec![ReplicaReport {
                    collection: "docs".into(),
                    shard: ShardId(0),
                    applied: SeqNo(applied(*n)),
                    term: Term(1),
                    points: 0,
                    bytes: 0,
                    poisoned: false,
                    lag_ms: None,
                }],
                reads_last_minute: 0,
            };
            let ack = client.heartbeat(&hb).await.expect("heartbeat");
            assert_eq!(ack.lease_ms, 400, "half of the 0.8 s grace");
        }
        let map = client
            .cluster_map(MetaReadConsistency::Local)
            .await
            .expect("map")
            .map;
        let s = &map.collections["docs"].shards[&ShardId(0)];
        if s.term > Term(1) {
            assert_eq!(map.nodes[&primary].state, NodeState::Dead);
            promoted = Some((s.primary, s.term, started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (new_primary, term, took) =
        promoted.unwrap_or_else(|| panic!("no promotion\n{}", cluster.log_tails()));
    println!(
        "primary {primary} silent: {new_primary:?} promoted at term {term} after {} ms",
        took.as_millis()
    );
    assert_eq!(new_primary, Some(others[1]));
    assert_eq!(term, Term(2));
}
