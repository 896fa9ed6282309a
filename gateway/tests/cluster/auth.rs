//! API keys: read-write and read-only, `api-key` header or bearer token.

use gateway::api::ApiKeys;
use reqwest::Method;
use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_only_key_cannot_write() {
    let _serial = SERIAL.lock().await;
    let c = TestCluster::start(Options {
        keys: ApiKeys {
            read_write: Some("rw-secret".into()),
            read_only: Some("ro-secret".into()),
        },
        ..Options::default()
    })
    .await;
    let create = json!({"vectors": {"size": DIM, "distance": "Cosine"}, "shard_number": 2, "replication_factor": 2});
    let (s, v) = c
        .req(Method::PUT, "/collections/a", Some(create.clone()), None)
        .await;
    assert_eq!(s, 401, "{v}");
    let (s, _) = c
        .req(
            Method::PUT,
            "/collections/a",
            Some(create.clone()),
            Some("wrong"),
        )
        .await;
    assert_eq!(s, 401);
    let (s, v) = c
        .req(
            Method::PUT,
            "/collections/a",
            Some(create.clone()),
            Some("ro-secret"),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(
        c.req(
            Method::GET,
            "/collections/a/exists",
            None,
            Some("ro-secret")
        )
        .await
        .1["result"]["exists"],
        false
    );
    let (s, v) = c
        .req(
            Method::PUT,
            "/collections/a",
            Some(create),
            Some("rw-secret"),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    let upsert = json!({"points": [{"id": 1, "vector": vector(1, DIM)}]});
    let (s, _) = c
        .req(
            Method::PUT,
            "/collections/a/points",
            Some(upsert.clone()),
            Some("ro-secret"),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = c
        .req(
            Method::POST,
            "/collections/a/points/delete",
            Some(json!({"points": [1]})),
            Some("ro-secret"),
        )
        .await;
    assert_eq!(s, 403);
    let count = c
        .req(
            Method::POST,
            "/collections/a/points/count",
            Some(json!({})),
            Some("ro-secret"),
        )
        .await;
    assert_eq!(count.0, 200);
    assert_eq!(
        count.1["result"]["count"], 0,
        "the refused write changed nothing"
    );

    // Bearer form of the read-write key.
    let r = c
        .http
        .put(format!("{}/collections/a/points", c.url))
        .bearer_auth("rw-secret")
        .json(&upsert)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (s, v) = c
        .req(
            Method::POST,
            "/collections/a/points/search",
            Some(json!({"vector": vector(1, DIM), "limit": 1})),
            Some("ro-secret"),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"][0]["id"], 1);
    // Probes stay open; metrics need a key.
    assert_eq!(c.get("/healthz").await.0, 200);
    assert_eq!(c.get("/").await.0, 200);
    assert_eq!(c.get("/metrics").await.0, 401);
    c.shutdown().await;
}
