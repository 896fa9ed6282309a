//! Resource limits over HTTP: each over-limit request is a 4xx whose
//! message names the limit, and changes nothing.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::*;

/// Sends and expects `status` with `needle` in the error message.
async fn refused(c: &TestCluster, m: Method, path: &str, body: Value, status: u16, needle: &str) {
    let (s, v) = c.req(m.clone(), path, Some(body), None).await;
    assert_eq!(s, status, "{m} {path}: {v}");
    let msg = v["status"]["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains(needle),
        "{m} {path}: {needle:?} not in {msg:?}"
    );
}

/// A filter `depth` levels deep (each level nests the next in `must`).
fn nested_filter(depth: usize) -> Value {
    let mut f = json!({"must": [{"has_id": [1]}]});
    for _ in 1..depth {
        f = json!({ "must": [f] });
    }
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_limit_is_a_4xx_naming_it() {
    let _serial = SERIAL.lock().await;
    let c = TestCluster::start(Options::default()).await;
    seed(&c, "lim", 20).await;
    let q = vector(3, DIM);

    // Vector dimension on create (limit 65,536).
    refused(
        &c,
        Method::PUT,
        "/collections/huge",
        json!({"vectors": {"size": 65_537, "distance": "Cosine"}}),
        400,
        "65536",
    )
    .await;
    // limit / offset on search, query and scroll (offset + limit <= 10,000).
    let search = "/collections/lim/points/search";
    refused(
        &c,
        Method::POST,
        search,
        json!({"vector": q, "limit": 10_001}),
        400,
        "10000",
    )
    .await;
    refused(
        &c,
        Method::POST,
        search,
        json!({"vector": q, "limit": 2, "offset": 9_999}),
        400,
        "offset + limit must not exceed 10000",
    )
    .await;
    refused(
        &c,
        Method::POST,
        "/collections/lim/points/query",
        json!({"query": q, "limit": 10_001}),
        400,
        "10000",
    )
    .await;
    refused(
        &c,
        Method::POST,
        "/collections/lim/points/scroll",
        json!({"limit": 10_001}),
        400,
        "limit must be between 1 and 10000",
    )
    .await;
    // Searches per batch (1,000).
    let searches: Vec<Value> = (0..1_001)
        .map(|_| json!({"vector": q, "limit": 1}))
        .collect();
    refused(
        &c,
        Method::POST,
        "/collections/lim/points/search/batch",
        json!({ "searches": searches }),
        400,
        "exceed the limit of 1000",
    )
    .await;
    let queries: Vec<Value> = (0..1_001)
        .map(|_| json!({"query": q, "limit": 1}))
        .collect();
    refused(
        &c,
        Method::POST,
        "/collections/lim/points/query/batch",
        json!({ "searches": queries }),
        400,
        "exceed the limit of 1000",
    )
    .await;
    // Filter nesting (32 levels), on search, scroll, count and delete.
    let deep = nested_filter(33);
    for (path, body) in [
        (search, json!({"vector": q, "limit": 1, "filter": deep})),
        (
            "/collections/lim/points/scroll",
            json!({"limit": 1, "filter": deep}),
        ),
        ("/collections/lim/points/count", json!({"filter": deep})),
        ("/collections/lim/points/delete", json!({"filter": deep})),
    ] {
        refused(&c, Method::POST, path, body, 400, "limit of 32 levels").await;
    }
    let (s, v) = c
        .req(
            Method::POST,
            search,
            Some(json!({"vector": q, "limit": 1, "filter": nested_filter(32)})),
            None,
        )
        .await;
    assert_eq!(s, 200, "32 levels are allowed: {v}");
    // Points per upsert batch (10,000), in a 1-d collection so the body
    // stays under the body limit.
    c.ok(
        Method::PUT,
        "/collections/tiny",
        Some(json!({"vectors": {"size": 1, "distance": "Dot"}})),
    )
    .await;
    let points: Vec<Value> = (0..10_001)
        .map(|i| json!({"id": i, "vector": [1.0]}))
        .collect();
    refused(
        &c,
        Method::PUT,
        "/collections/tiny/points?wait=true",
        json!({ "points": points }),
        400,
        "exceeds the limit of 10000",
    )
    .await;
    // Request body size (1 MiB in the test cluster).
    let big = "x".repeat(1 << 20);
    refused(
        &c,
        Method::PUT,
        "/collections/lim/points",
        json!({"points": [{"id": 1, "vector": q, "payload": {"big": big}}]}),
        413,
        "limit of 1048576 bytes",
    )
    .await;

    // Nothing was changed by any of them.
    let count = |name: &'static str| {
        let c = &c;
        async move {
            c.ok(
                Method::POST,
                &format!("/collections/{name}/points/count"),
                Some(json!({})),
            )
            .await["count"]
                .as_u64()
        }
    };
    assert_eq!(count("lim").await, Some(20));
    assert_eq!(count("tiny").await, Some(0));
    assert_eq!(
        c.get("/collections/huge/exists").await.1["result"]["exists"],
        false
    );
    c.shutdown().await;
}
