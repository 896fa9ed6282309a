//! The operator surface against a real meta-service: Qdrant's cluster
//! operations, the drain / remove / settings / transfers routes, and each
//! refusal. Every command's effect is checked in the meta-service's map.
//!
//! A transfer started here is throttled to ~1 KB/s (`rebalancing.
//! throttle_mb_per_sec`) so it is still running while the test looks at
//! it, whether or not the storage nodes carry transfers out.

use gateway::api::ApiKeys;
use meta_client::MetaReadConsistency;
use protocol::cluster::{
    ClusterMap, NodeInfo, NodeState, ReplicaState, TransferKind, TransferOutcome,
};
use protocol::{NodeId, ShardId};
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::*;

async fn map(c: &TestCluster) -> ClusterMap {
    c.meta
        .cluster_map(MetaReadConsistency::Linearizable)
        .await
        .expect("map")
        .map
}

/// The controller plans nothing (rebalancing off, no transfer slot: it
/// would otherwise drain and fill under-replicated shards by itself) and
/// transfers are slowed down; an operator's own moves are not capped.
async fn quiet(c: &TestCluster) {
    let (s, v) = c
        .put(
            "/api/cluster/settings",
            json!({"rebalancing.auto_enabled": false, "rebalancing.throttle_mb_per_sec": 0.001,
                   "rebalancing.max_concurrent_migrations": 0}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["rebalancing.auto_enabled"], false);
    assert_eq!(v["result"]["rebalancing.throttle_mb_per_sec"], 0.001);
    let m = map(c).await;
    assert_eq!(m.config["rebalancing.auto_enabled"], "false");
}

async fn cluster_op(c: &TestCluster, coll: &str, op: Value) -> (u16, Value) {
    c.post(&format!("/collections/{coll}/cluster"), op).await
}

fn err(v: &Value) -> String {
    v["status"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn move_shard_starts_a_transfer_listed_with_progress_then_abort_records_it() {
    let _serial = SERIAL.lock().await;
    let c = TestCluster::start(Options::default()).await;
    quiet(&c).await;
    seed(&c, "t", 300).await;
    let before = map(&c).await;
    let s0 = before.shard("t", ShardId(0)).expect("shard 0").clone();
    let from = s0
        .nodes()
        .find(|n| Some(*n) != s0.primary)
        .expect("a follower");
    let to = before
        .nodes
        .keys()
        .copied()
        .find(|n| !s0.holds(*n))
        .expect("a node without shard 0");

    let (s, v) = cluster_op(
        &c,
        "t",
        json!({"move_shard": {"shard_id": 0, "from_peer_id": from.0, "to_peer_id": to.0}}),
    )
    .await;
    assert_eq!(
        (s, &v["result"], &v["status"]),
        (200, &json!(true), &json!("ok")),
        "{v}"
    );

    let m = map(&c).await;
    let shard = m.shard("t", ShardId(0)).expect("shard 0");
    let mig = shard.migration.as_ref().expect("a running transfer");
    assert_eq!((mig.from, mig.to, mig.kind), (from, to, TransferKind::Move));
    assert_eq!(
        shard.replica(to).map(|r| r.state),
        Some(ReplicaState::Initializing)
    );
    assert!(mig.started_at_ms > 0, "the gateway stamps the plan");

    // Qdrant's view, with our progress fields.
    let v = c.ok(Method::GET, "/collections/t/cluster", None).await;
    let tr = &v["shard_transfers"][0];
    assert_eq!(
        (
            &tr["shard_id"],
            &tr["from"],
            &tr["to"],
            &tr["sync"],
            &tr["method"]
        ),
        (
            &json!(0),
            &json!(from.0),
            &json!(to.0),
            &json!(false),
            &json!("snapshot")
        ),
        "{v}"
    );
    assert!(
        tr["phase"].is_string() && tr["points_copied"].is_u64(),
        "{tr}"
    );
    let target = v["remote_shards"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|r| r["shard_id"] == 0 && r["peer_id"] == to.0)
        })
        .cloned();
    assert_eq!(
        target.map(|r| r["state"].clone()),
        Some(json!("Partial")),
        "{v}"
    );

    // Ours: transfers, metrics and topology report the same transfer.
    let v = c.ok(Method::GET, "/api/cluster/transfers", None).await;
    assert_eq!(v["running"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(
        (
            &v["running"][0]["collection"],
            &v["running"][0]["shard"],
            &v["running"][0]["to"]
        ),
        (&json!("t"), &json!(0), &json!(to.0))
    );
    let metrics = c.ok(Method::GET, "/api/cluster/metrics", None).await;
    assert_eq!(metrics["active_migrations"], 1, "{metrics}");
    assert_eq!(metrics["migrations"][0]["to"], to.0);
    assert_eq!(metrics["completed_migrations"], 0);
    let topo = c.ok(Method::GET, "/api/cluster/topology", None).await;
    assert_eq!(topo["transfers"]["running"][0]["shard"], 0, "{topo}");
    let shard_topo = topo["collections"][0]["shards"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == 0))
        .cloned()
        .expect("shard 0 in the topology");
    assert_eq!(shard_topo["migration"]["to"], to.0);
    assert_eq!(shard_topo["migration"]["phase"], "snapshot");

    // Refusals, each a clear 4xx, none changing the map.
    let epoch = map(&c).await.epoch;
    let other = s0.nodes().find(|n| *n != from).expect("the other replica");
    let (s, v) = cluster_op(
        &c,
        "t",
        json!({"replicate_shard": {"shard_id": 0, "from_peer_id": other.0, "to_peer_id": to.0}}),
    )
    .await;
    assert_eq!(s, 409, "already transferring: {v}");
    assert!(err(&v).contains("already migrating"), "{v}");
    let (s, v) = cluster_op(
        &c,
        "t",
        json!({"move_shard": {"shard_id": 99, "from_peer_id": 1, "to_peer_id": 2}}),
    )
    .await;
    assert_eq!(s, 404, "unknown shard: {v}");
    let (s, v) = cluster_op(
        &c,
        "t",
        json!({"move_shard": {"shard_id": 1, "from_peer_id": 1, "to_peer_id": 9}}),
    )
    .await;
    assert!(s == 404 || s == 400, "unknown peer: {s} {v}");
    let s1 = m.shard("t", ShardId(1)).expect("shard 1");
    let outsider = m
        .nodes
        .keys()
        .copied()
        .find(|n| !s1.holds(*n))
        .expect("outsider");
    let holder = s1.nodes().next().expect("holder");
    let (s, v) = cluster_op(
        &c,
        "t",
        json!({"move_shard": {"shard_id": 1, "from_peer_id": outsider.0, "to_peer_id": holder.0}}),
    )
    .await;
    assert_eq!(s, 400, "source holds no replica: {v}");
    let (s, _) = cluster_op(
        &c,
        "nope",
        json!({"move_shard": {"shard_id": 0, "from_peer_id": 1, "to_peer_id": 2}}),
    )
    .await;
    assert_eq!(s, 404, "unknown collection");
    let (s, v) = cluster_op(
        &c,
        "t",
        json!({"move_shard": {"shard_id": 0, "from_peer_id": 1}}),
    )
    .await;
    assert_eq!(s, 400, "missing field: {v}");
    let (s, v) = cluster_op(
        &c,
        "t",
        json!({"abort_transfer": {"shard_id": 0, "from_peer_id": to.0, "to_peer_id": from.0}}),
    )
    .await;
    assert_eq!(s, 404, "abort names another transfer: {v}");
    let (s, v) = cluster_op(
        &c,
        "t",
        json!({"abort_transfer": {"shard_id": 1, "from_peer_id": 1, "to_peer_id": 2}}),
    )
    .await;
    assert_eq!(s, 404, "nothing to abort: {v}");
    let (s, v) = cluster_op(
        &c,
        "t",
        json!({"drop_replica": {"shard_id": 0, "peer_id": other.0}}),
    )
    .await;
    assert_eq!(s, 409, "replica set of a transferring shard: {v}");
    let after = map(&c).await;
    assert_eq!(
        after
            .shard("t", ShardId(0))
            .and_then(|s| s.migration.as_ref())
            .map(|m| m.to),
        Some(to)
    );
    assert_eq!(
        after.shard("t", ShardId(1)),
        m.shard("t", ShardId(1)),
        "refusals changed nothing"
    );
    assert!(after.epoch >= epoch);

    // Abort: target dropped, source kept, recorded as failed.
    let (s, v) = cluster_op(
        &c,
        "t",
        json!({"abort_transfer": {"shard_id": 0, "from_peer_id": from.0, "to_peer_id": to.0}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let m = map(&c).await;
    let shard = m.shard("t", ShardId(0)).expect("shard 0");
    assert!(shard.migration.is_none());
    assert!(!shard.holds(to) && shard.holds(from));
    assert_eq!(m.transfers.failed, 1);
    let last = m.transfers.recent.last().expect("a record");
    assert_eq!(
        last.outcome,
        TransferOutcome::Failed {
            reason: "aborted by the operator".into()
        }
    );
    let metrics = c.ok(Method::GET, "/api/cluster/metrics", None).await;
    assert_eq!(
        (&metrics["failed_migrations"], &metrics["active_migrations"]),
        (&json!(1), &json!(0))
    );
    let v = c
        .ok(Method::GET, "/api/cluster/transfers?fresh=true", None)
        .await;
    assert_eq!(
        (
            &v["failed"],
            &v["recent"][0]["outcome"],
            &v["recent"][0]["reason"]
        ),
        (
            &json!(1),
            &json!("failed"),
            &json!("aborted by the operator")
        ),
        "{v}"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drop_replica_and_replication_factor() {
    let _serial = SERIAL.lock().await;
    let c = TestCluster::start(Options::default()).await;
    quiet(&c).await;
    seed(&c, "r", 30).await;
    let m = map(&c).await;
    let s0 = m.shard("r", ShardId(0)).expect("shard 0").clone();
    let follower = s0
        .nodes()
        .find(|n| Some(*n) != s0.primary)
        .expect("a follower");
    let outsider = m
        .nodes
        .keys()
        .copied()
        .find(|n| !s0.holds(*n))
        .expect("outsider");

    let (s, v) = cluster_op(
        &c,
        "r",
        json!({"drop_replica": {"shard_id": 0, "peer_id": follower.0}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let shard = map(&c)
        .await
        .shard("r", ShardId(0))
        .cloned()
        .expect("shard 0");
    assert_eq!(
        shard.nodes().collect::<Vec<_>>(),
        vec![s0.primary.expect("primary")]
    );

    let (s, v) = cluster_op(
        &c,
        "r",
        json!({"drop_replica": {"shard_id": 0, "peer_id": s0.primary.expect("p").0}}),
    )
    .await;
    assert_eq!(s, 400, "the last replica: {v}");
    assert!(err(&v).contains("last replica"), "{v}");
    let (s, v) = cluster_op(
        &c,
        "r",
        json!({"drop_replica": {"shard_id": 0, "peer_id": outsider.0}}),
    )
    .await;
    assert_eq!(s, 404, "not a replica: {v}");
    assert_eq!(
        map(&c)
            .await
            .shard("r", ShardId(0))
            .map(|s| s.replicas.len()),
        Some(1)
    );

    let (s, v) = c
        .req(
            Method::PATCH,
            "/collections/r",
            Some(json!({"params": {"replication_factor": 3}})),
            None,
        )
        .await;
    assert_eq!((s, &v["result"]), (200, &json!(true)), "{v}");
    assert_eq!(map(&c).await.collections["r"].config.replication_factor, 3);
    let (s, v) = c
        .req(
            Method::PATCH,
            "/collections/r",
            Some(json!({"params": {"replication_factor": 0}})),
            None,
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = c
        .req(
            Method::PATCH,
            "/collections/r",
            Some(json!({"optimizers_config": {"indexing_threshold": 0}})),
            None,
        )
        .await;
    assert_eq!(s, 400, "unsupported change: {v}");
    let (s, _) = c
        .req(
            Method::PATCH,
            "/collections/nope",
            Some(json!({"params": {"replication_factor": 2}})),
            None,
        )
        .await;
    assert_eq!(s, 404);
    assert_eq!(map(&c).await.collections["r"].config.replication_factor, 3);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drain_then_remove_nodes() {
    let _serial = SERIAL.lock().await;
    let c = TestCluster::start(Options::default()).await;
    quiet(&c).await;
    // A node that holds nothing can go at once.
    c.meta
        .register_node(&NodeInfo::new(NodeId(4), "node-4"))
        .await
        .expect("register 4");
    let (s, v) = c
        .req(Method::DELETE, "/api/cluster/nodes/4", None, None)
        .await;
    assert_eq!((s, &v["result"]["removed"]), (200, &json!(true)), "{v}");
    assert!(!map(&c).await.nodes.contains_key(&NodeId(4)));
    let (s, _) = c
        .req(Method::DELETE, "/api/cluster/nodes/4", None, None)
        .await;
    assert_eq!(s, 404, "already gone");
    c.meta
        .register_node(&NodeInfo::new(NodeId(5), "node-5"))
        .await
        .expect("register 5");
    let (s, v) = c.req(Method::DELETE, "/cluster/peer/5", None, None).await;
    assert_eq!(
        (s, &v["result"]),
        (200, &json!(true)),
        "Qdrant's remove peer: {v}"
    );

    seed(&c, "d", 30).await;
    let held = map(&c).await.shards_on(NodeId(3)).len();
    assert!(held > 0, "node 3 holds a replica of `d`");
    let (s, v) = c
        .req(Method::DELETE, "/api/cluster/nodes/3", None, None)
        .await;
    assert_eq!(s, 409, "{v}");
    assert!(
        err(&v).contains(&format!("still holds {held} replica")),
        "{v}"
    );

    let (s, v) = c.post("/api/cluster/nodes/3/drain", json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (&v["result"]["node"], &v["result"]["state"]),
        (&json!(3), &json!("draining"))
    );
    assert_eq!(map(&c).await.nodes[&NodeId(3)].state, NodeState::Draining);
    let (s, v) = c.post("/api/cluster/nodes/3/drain", json!({})).await;
    assert_eq!(s, 200, "draining twice is fine: {v}");
    let (s, _) = c.post("/api/cluster/nodes/9/drain", json!({})).await;
    assert_eq!(s, 404);
    let (s, v) = c.post("/api/cluster/nodes/x/drain", json!({})).await;
    assert_eq!(s, 400, "{v}");
    let v = c.ok(Method::GET, "/api/cluster/nodes", None).await;
    let n3 = v["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["id"] == 3))
        .cloned()
        .expect("node 3 listed");
    assert_eq!(n3["state"], "draining", "{v}");
    assert!(n3["replicas"].is_u64(), "{n3}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settings_refusals_and_the_write_key() {
    let _serial = SERIAL.lock().await;
    let c = TestCluster::start(Options {
        keys: ApiKeys {
            read_write: Some("rw".into()),
            read_only: Some("ro".into()),
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let v = c
        .req(Method::GET, "/api/cluster/settings", None, Some("ro"))
        .await;
    assert_eq!(v.0, 200, "{v:?}");
    assert_eq!(
        v.1["result"]["rebalancing.max_concurrent_migrations"], 2,
        "the spec's default"
    );
    for (method, path, body) in [
        (
            Method::PUT,
            "/api/cluster/settings",
            Some(json!({"rebalancing.auto_enabled": false})),
        ),
        (Method::POST, "/api/cluster/nodes/1/drain", None),
        (Method::DELETE, "/api/cluster/nodes/1", None),
        (Method::POST, "/api/cluster/rebalance", None),
        (
            Method::POST,
            "/collections/c/cluster",
            Some(json!({"drop_replica": {"shard_id": 0, "peer_id": 1}})),
        ),
        (
            Method::PATCH,
            "/collections/c",
            Some(json!({"params": {"replication_factor": 2}})),
        ),
    ] {
        let (s, v) = c.req(method.clone(), path, body.clone(), Some("ro")).await;
        assert_eq!(s, 403, "{method} {path} with the read-only key: {v}");
        let (s, _) = c.req(method.clone(), path, body, None).await;
        assert_eq!(s, 401, "{method} {path} without a key");
    }
    for path in ["/api/cluster/transfers", "/api/cluster/nodes"] {
        assert_eq!(
            c.req(Method::GET, path, None, Some("ro")).await.0,
            200,
            "{path}"
        );
    }
    assert_eq!(map(&c).await.nodes[&NodeId(1)].state, NodeState::Alive);

    let (s, v) = c
        .req(
            Method::PUT,
            "/api/cluster/settings",
            Some(json!({"rebalancing.trigger_threshold": "lots"})),
            Some("rw"),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = c
        .req(
            Method::PUT,
            "/api/cluster/settings",
            Some(json!({"rebalancing.colour": "blue"})),
            Some("rw"),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(!map(&c)
        .await
        .config
        .contains_key("rebalancing.trigger_threshold"));
    let (s, v) = c
        .req(Method::PUT, "/api/cluster/settings", Some(json!({"rebalancing.trigger_threshold": 0.35, "rebalancing.max_concurrent_migrations": 4})), Some("rw"))
        .await;
    assert_eq!(s, 200, "{v}");
    let m = map(&c).await;
    assert_eq!(m.config["rebalancing.trigger_threshold"], "0.35");
    assert_eq!(m.config["rebalancing.max_concurrent_migrations"], "4");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebalance_route_starts_the_planned_moves() {
    let _serial = SERIAL.lock().await;
    let c = TestCluster::start(Options::default()).await;
    quiet(&c).await;
    seed(&c, "b", 30).await;
    // An empty 4th node: the only imbalance. (Registered only; it holds
    // nothing, so nothing has to reach it for the plan.)
    c.meta
        .register_node(&NodeInfo::new(NodeId(4), "node-4"))
        .await
        .expect("register 4");
    let v = c.ok(Method::POST, "/api/cluster/rebalance", None).await;
    assert_eq!(v["moves"], json!([]), "no transfer slot, no move: {v}");
    let (s, v) = c
        .put(
            "/api/cluster/settings",
            // The seeded shards hold a few KB: below the default floor.
            json!({"rebalancing.max_concurrent_migrations": 1, "rebalancing.min_imbalance_bytes": 0}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let v = c.ok(Method::POST, "/api/cluster/rebalance", None).await;
    let moves = v["moves"].as_array().cloned().unwrap_or_default();
    assert_eq!(moves.len(), 1, "one slot, one move: {v}");
    assert_eq!(moves[0]["to"], 4, "{v}");
    let m = map(&c).await;
    assert!(m.epoch.0 >= v["epoch"].as_u64().unwrap_or(u64::MAX), "{v}");
    let shard = m
        .shard(
            "b",
            ShardId(moves[0]["shard"].as_u64().unwrap_or(99) as u32),
        )
        .expect("the moved shard");
    assert_eq!(shard.migration.as_ref().map(|m| m.to), Some(NodeId(4)));
    c.shutdown().await;
}
