//! Replica failures: retries on the other replica, hedging of a slow one,
//! a shard with no reachable replica (503, or a partial answer naming it),
//! writes after a primary change.

use std::time::Duration;

use protocol::cluster::ClusterCommand;
use protocol::{PointId, ShardId};
use reqwest::Method;
use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replica_failures_and_partial_answers() {
    let _serial = SERIAL.lock().await;
    let c = TestCluster::start(Options::default()).await;
    let all = seed(&c, "f", 240).await;

    // One node down: every shard still has a replica; no search fails.
    c.set_down(1, true);
    for qi in 0..30u64 {
        let q = vector(50_000 + qi, DIM);
        let hits = c
            .ok(
                Method::POST,
                "/collections/f/points/search",
                Some(json!({"vector": q, "limit": 5})),
            )
            .await;
        assert_eq!(ids_of(&hits), brute_force(&all, &q, 5, |_| true));
    }
    assert_eq!(
        c.ok(Method::POST, "/collections/f/points/count", Some(json!({})))
            .await["count"],
        240
    );
    let m = c.ok(Method::GET, "/api/cluster/metrics", None).await;
    assert_eq!(m["suspected_nodes"], 1, "{m}");
    c.set_down(1, false);

    // A slow node is hedged: answers stay correct and hedges are counted.
    c.set_delay(2, Some(Duration::from_millis(600)));
    for qi in 0..12u64 {
        let q = vector(60_000 + qi, DIM);
        let hits = c
            .ok(
                Method::POST,
                "/collections/f/points/search",
                Some(json!({"vector": q, "limit": 5})),
            )
            .await;
        assert_eq!(ids_of(&hits), brute_force(&all, &q, 5, |_| true));
    }
    c.set_delay(2, None);
    let prom = c
        .http
        .get(format!("{}/metrics", c.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let hedges: f64 = prom
        .lines()
        .find(|l| l.starts_with("gateway_hedges_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(hedges > 0.0, "no hedge recorded:\n{prom}");
    assert!(prom.contains("gateway_retries_total"));

    // Both replicas of one shard down: 503 naming it, or a partial answer.
    let map = c.gw().map();
    let shard = &map.collections["f"].shards[&ShardId(0)];
    let holders: Vec<u64> = shard.nodes().map(|n| n.0).collect();
    for h in &holders {
        c.set_down(*h, true);
    }
    // Every shard held only by the downed nodes is gone (shard 0 and any
    // other shard on the same pair).
    let gone: Vec<u32> = map.collections["f"]
        .shards
        .values()
        .filter(|s| s.nodes().all(|n| holders.contains(&n.0)))
        .map(|s| s.id.0)
        .collect();
    assert!(gone.contains(&0));
    let q = vector(70_000, DIM);
    let (s, v) = c
        .post(
            "/collections/f/points/search",
            json!({"vector": q, "limit": 5}),
        )
        .await;
    assert_eq!(s, 503, "{v}");
    let msg = v["status"]["error"].as_str().unwrap();
    assert!(msg.contains("shard 0:"), "{msg}");
    let res = c
        .ok(
            Method::POST,
            "/collections/f/points/search?partial=true",
            Some(json!({"vector": q, "limit": 5})),
        )
        .await;
    assert_eq!(res["missing_shards"], json!(gone));
    assert_eq!(res["partial"], true);
    let in_live_shards =
        |i: u64| !gone.contains(&protocol::routing::shard_for_point("f", &PointId::Num(i), 3).0);
    assert_eq!(
        ids_of(&res["points"]),
        brute_force(&all, &q, 5, in_live_shards)
    );
    let res = c
        .ok(
            Method::POST,
            "/collections/f/points/count",
            Some(json!({"partial": true})),
        )
        .await;
    let live = all.iter().filter(|(i, _)| in_live_shards(*i)).count();
    assert_eq!(res["count"], live);
    assert_eq!(res["missing_shards"], json!(gone));
    let res = c
        .ok(
            Method::POST,
            "/collections/f/points/query?partial=true",
            Some(json!({"query": q, "limit": 3})),
        )
        .await;
    assert_eq!(res["missing_shards"], json!(gone));
    let (s, _) = c
        .post("/collections/f/points/scroll", json!({"limit": 10}))
        .await;
    assert_eq!(s, 503);
    let (s, v) = c.get("/api/cluster/health").await;
    // The map still says the nodes are alive (no heartbeats here): the
    // gateway's own view shows up as suspected nodes instead.
    assert!(s == 200 || s == 503, "{v}");
    for h in &holders {
        c.set_down(*h, false);
    }

    // Primary change through the meta-service: writes follow it.
    let other = shard
        .nodes()
        .find(|n| Some(*n) != shard.primary)
        .expect("second replica");
    c.meta
        .submit(&ClusterCommand::PromotePrimary {
            collection: "f".into(),
            shard: ShardId(0),
            node: other,
            expected_term: Some(shard.term),
        })
        .await
        .expect("promote");
    let pts: Vec<_> = (1000..1030u64)
        .map(|i| json!({"id": i, "vector": vector(i, DIM)}))
        .collect();
    c.ok(
        Method::PUT,
        "/collections/f/points",
        Some(json!({"points": pts})),
    )
    .await;
    assert_eq!(
        c.ok(Method::POST, "/collections/f/points/count", Some(json!({})))
            .await["count"],
        270
    );
    assert!(c.gw().map().collections["f"].shards[&ShardId(0)].primary == Some(other));
    c.shutdown().await;
}

/// Concurrent searches while a node goes down mid-stream: none fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn search_stream_survives_a_node_loss() {
    let _serial = SERIAL.lock().await;
    let c = std::sync::Arc::new(TestCluster::start(Options::default()).await);
    let all = std::sync::Arc::new(seed(&c, "s", 200).await);
    let mut workers = Vec::new();
    for w in 0..6u64 {
        let c = c.clone();
        let all = all.clone();
        workers.push(tokio::spawn(async move {
            let mut done = 0;
            for i in 0..40u64 {
                let q = vector(100_000 + w * 1000 + i, DIM);
                let (s, v) = c
                    .post(
                        "/collections/s/points/search",
                        json!({"vector": q, "limit": 5}),
                    )
                    .await;
                assert_eq!(s, 200, "worker {w} search {i}: {v}");
                assert_eq!(ids_of(&v["result"]), brute_force(&all, &q, 5, |_| true));
                done += 1;
            }
            done
        }));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    c.set_down(3, true);
    let mut total = 0;
    for w in workers {
        total += w.await.expect("worker");
    }
    assert_eq!(total, 240);
    let c = std::sync::Arc::into_inner(c).expect("sole owner");
    c.shutdown().await;
}

/// `?write_consistency=` overrides the collection default; `?consistency=`
/// asks several replicas per shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn write_and_read_consistency() {
    let _serial = SERIAL.lock().await;
    let c = TestCluster::start(Options::default()).await;
    let all = seed(&c, "w", 60).await;
    let q = vector(5, DIM);
    for level in ["one", "majority", "all"] {
        let hits = c
            .ok(
                Method::POST,
                &format!("/collections/w/points/search?consistency={level}"),
                Some(json!({"vector": q, "limit": 3})),
            )
            .await;
        assert_eq!(ids_of(&hits), brute_force(&all, &q, 3, |_| true));
    }
    let (s, _) = c
        .post(
            "/collections/w/points/search?consistency=most",
            json!({"vector": q, "limit": 3}),
        )
        .await;
    assert_eq!(s, 400);

    // Shard 0's follower goes down: a majority (2 of 2) write to shard 0
    // cannot be acknowledged, a `one` write can.
    let map = c.gw().map();
    let shard = &map.collections["w"].shards[&ShardId(0)];
    let follower = shard
        .nodes()
        .find(|n| Some(*n) != shard.primary)
        .expect("follower");
    c.set_down(follower.0, true);
    let id = (1000..)
        .find(|i| protocol::routing::shard_for_point("w", &PointId::Num(*i), 3) == ShardId(0))
        .expect("an id of shard 0");
    let body = json!({"points": [{"id": id, "vector": vector(id, DIM)}]});
    let (s, v) = c.put("/collections/w/points", body.clone()).await;
    assert_eq!(s, 503, "{v}");
    assert!(
        v["status"]["error"]
            .as_str()
            .unwrap()
            .contains("shard(s) 0"),
        "{v}"
    );
    // `wait=false` answers once the primary logged the write durably.
    let ack = c
        .ok(
            Method::PUT,
            "/collections/w/points?wait=false",
            Some(body.clone()),
        )
        .await;
    assert_eq!(ack["status"], "acknowledged", "{ack}");
    c.ok(
        Method::PUT,
        "/collections/w/points?write_consistency=one",
        Some(body),
    )
    .await;
    assert_eq!(
        c.ok(Method::GET, &format!("/collections/w/points/{id}"), None)
            .await["id"],
        id
    );
    // Reads at `all` now miss shard 0's second replica.
    let (s, _) = c
        .post("/collections/w/points/count?consistency=all", json!({}))
        .await;
    assert_eq!(s, 503);
    let (s, _) = c
        .put(
            "/collections/w/points?write_consistency=sometimes",
            json!({"points": []}),
        )
        .await;
    assert_eq!(s, 400);
    c.shutdown().await;
}

/// The request timeout layer answers 504 in Qdrant's error envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_cluster_times_out() {
    let _serial = SERIAL.lock().await;
    let mut opts = Options::default();
    opts.http.request_timeout = Duration::from_millis(400);
    let c = TestCluster::start(opts).await;
    seed(&c, "t", 10).await;
    for n in 1..=3 {
        c.set_delay(n, Some(Duration::from_millis(1500)));
    }
    let (s, v) = c
        .post(
            "/collections/t/points/search",
            json!({"vector": vector(1, DIM), "limit": 3}),
        )
        .await;
    assert_eq!(s, 504, "{v}");
    assert!(
        v["status"]["error"].as_str().unwrap().contains("Timeout"),
        "{v}"
    );
    for n in 1..=3 {
        c.set_delay(n, None);
    }
    c.shutdown().await;
}
