//! A collection's status through a gateway over real storage-node
//! processes (issue 13): `yellow` while replicas still have points waiting
//! for an index, then `green` with every point indexed; and each node's
//! index-build budget in its `/metrics`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use storage_node::shard::{available_cores, default_builds};

use super::start;

const POINTS: u64 = 10_500;
const DIM: u64 = 16;
const BATCH: u64 = 500;

async fn collection(http: &reqwest::Client, url: &str) -> Value {
    let v: Value = http
        .get(format!("{url}/collections/idx"))
        .send()
        .await
        .expect("GET collection")
        .json()
        .await
        .expect("JSON");
    assert_eq!(v["status"], "ok", "{v}");
    v["result"].clone()
}

/// Three shards, RF 2, on three nodes whose growing segments are frozen
/// at 2,000 points (`ProcessOptions::max_segment_points`): each shard gets
/// about 3,500 points, so each replica indexes one full segment during
/// the ingest and keeps ~1,500 in its growing segment. That is above the
/// idle-seal threshold (1,000), so those points wait for an index until
/// the shard has seen no write for 5 s: right after the ingest every
/// replica has points pending, and the status must say `yellow`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collection_is_yellow_until_every_replica_is_indexed_then_green_with_every_point() {
    let mut cluster = start(3).await;
    let gw = cluster.start_gateway().await;
    let url = format!("http://{}", gw.addr());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let created: Value = http
        .put(format!("{url}/collections/idx"))
        .json(&json!({
            "vectors": {"size": DIM, "distance": "Dot"},
            "shard_number": 3,
            "replication_factor": 2,
            "hnsw_config": {"m": 8, "ef_construct": 32},
        }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("JSON");
    assert_eq!(created["result"], true, "{created}");

    for first in (0..POINTS).step_by(BATCH as usize) {
        let points: Vec<Value> = (first..first + BATCH)
            .map(|i| {
                let v: Vec<f32> = (0..DIM)
                    .map(|d| ((i * 31 + d * 17) % 101) as f32 / 101.0 - 0.5)
                    .collect();
                json!({"id": i, "vector": v})
            })
            .collect();
        let resp = http
            .put(format!("{url}/collections/idx/points?wait=true"))
            .json(&json!({ "points": points }))
            .send()
            .await
            .expect("upsert");
        assert!(
            resp.status().is_success(),
            "upsert at {first}: {:?}",
            resp.text().await
        );
    }

    let after_ingest = collection(&http, &url).await;
    assert_eq!(after_ingest["points_count"], POINTS, "{after_ingest}");
    assert_eq!(
        after_ingest["status"], "yellow",
        "right after the ingest: {after_ingest}"
    );
    let indexed = after_ingest["indexed_vectors_count"]
        .as_u64()
        .expect("count");
    assert!(indexed < POINTS, "{after_ingest}");

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen_yellow = 1;
    let green = loop {
        let info = collection(&http, &url).await;
        match info["status"].as_str() {
            Some("green") => break info,
            Some("yellow") => seen_yellow += 1,
            other => panic!("unexpected status {other:?}: {info}"),
        }
        // Never green while points wait: the count only says all once done.
        assert!(
            Instant::now() < deadline,
            "still not green after {seen_yellow} polls: {info}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(green["indexed_vectors_count"], POINTS, "{green}");
    assert_eq!(green["points_count"], POINTS, "{green}");
    assert_eq!(green["optimizer_status"], "ok", "{green}");
    // One merged segment per shard once idle (counted on the primary).
    assert_eq!(green["segments_count"], 3, "{green}");

    // Every node ran its builds through its budget, and none is left
    // running or waiting.
    let slots = default_builds(available_cores());
    for node in 1..=3 {
        let metrics = cluster.http_get(protocol::NodeId(node), "/metrics").await;
        let value = |name: &str| -> f64 {
            metrics
                .lines()
                .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("node {node}: no {name} in\n{metrics}"))
        };
        assert!(value("storage_index_builds_total") >= 2.0, "node {node}");
        assert_eq!(value("storage_index_builds_running"), 0.0, "node {node}");
        assert_eq!(value("storage_index_builds_waiting"), 0.0, "node {node}");
        assert_eq!(
            value("storage_index_build_slots"),
            slots as f64,
            "node {node}"
        );
    }

    gw.shutdown().await.expect("gateway shutdown");
    cluster.stop().await;
}
