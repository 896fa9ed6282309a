//! The data routes end to end: create, upsert (both forms), search against
//! brute force, filters, query, batch search, scroll and count across
//! shards, retrieve, delete, payload operations, bad input.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn collection_and_points_end_to_end() {
    let _serial = SERIAL.lock().await;
    let c = TestCluster::start(Options::default()).await;
    let points = seed(&c, "docs", 300).await;

    // Batch form adds 100 more.
    let ids: Vec<u64> = (300..400).collect();
    let vectors: Vec<Vec<f32>> = ids.iter().map(|i| vector(*i, DIM)).collect();
    let payloads: Vec<Value> = ids
        .iter()
        .map(|i| json!({"group": i % 3, "n": i}))
        .collect();
    c.ok(
        Method::PUT,
        "/collections/docs/points",
        Some(json!({"batch": {"ids": ids, "vectors": vectors, "payloads": payloads}})),
    )
    .await;
    let mut all = points;
    all.extend(ids.iter().map(|i| (*i, vector(*i, DIM))));

    // Collection routes.
    let info = c.ok(Method::GET, "/collections/docs", None).await;
    assert_eq!(info["points_count"], 400);
    assert_eq!(info["config"]["params"]["shard_number"], 3);
    assert_eq!(info["config"]["params"]["replication_factor"], 2);
    assert_eq!(info["config"]["params"]["vectors"]["size"], DIM);
    assert_eq!(
        c.ok(Method::GET, "/collections/docs/exists", None).await["exists"],
        true
    );
    assert_eq!(
        c.ok(Method::GET, "/collections/nope/exists", None).await["exists"],
        false
    );
    let list = c.ok(Method::GET, "/collections", None).await;
    assert_eq!(list["collections"][0]["name"], "docs");
    let (s, _) = c
        .put(
            "/collections/docs",
            json!({"vectors": {"size": DIM, "distance": "Cosine"}}),
        )
        .await;
    assert_eq!(s, 409);

    // Count across shards, with a filter.
    assert_eq!(
        c.ok(
            Method::POST,
            "/collections/docs/points/count",
            Some(json!({}))
        )
        .await["count"],
        400
    );
    let g1 = json!({"must": [{"key": "group", "match": {"value": 1}}]});
    let n1 = all.iter().filter(|(i, _)| i % 3 == 1).count();
    assert_eq!(
        c.ok(
            Method::POST,
            "/collections/docs/points/count",
            Some(json!({"filter": g1, "exact": true}))
        )
        .await["count"],
        n1
    );

    // Search vs brute force, plain, filtered, with offset.
    for qi in 0..5u64 {
        let q = vector(10_000 + qi, DIM);
        let hits = c
            .ok(
                Method::POST,
                "/collections/docs/points/search",
                Some(json!({"vector": q, "limit": 10})),
            )
            .await;
        assert_eq!(
            ids_of(&hits),
            brute_force(&all, &q, 10, |_| true),
            "query {qi}"
        );
        let scores: Vec<f64> = hits
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["score"].as_f64().unwrap())
            .collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]));
        let best = hits[0]["id"].as_u64().unwrap();
        let want = cosine(&all[best as usize].1, &q) as f64;
        assert!((scores[0] - want).abs() < 1e-4, "{} vs {want}", scores[0]);
        assert!(hits[0]["payload"].is_null());

        let hits = c
            .ok(
                Method::POST,
                "/collections/docs/points/search",
                Some(json!({"vector": q, "limit": 7, "filter": g1, "with_payload": true})),
            )
            .await;
        assert_eq!(ids_of(&hits), brute_force(&all, &q, 7, |i| i % 3 == 1));
        assert_eq!(hits[0]["payload"]["group"], 1);

        let hits = c
            .ok(
                Method::POST,
                "/collections/docs/points/search",
                Some(json!({"vector": q, "limit": 5, "offset": 5})),
            )
            .await;
        assert_eq!(
            ids_of(&hits),
            brute_force(&all, &q, 10, |_| true)[5..].to_vec()
        );

        let res = c.ok(Method::POST, "/collections/docs/points/query", Some(json!({"query": q, "limit": 10, "params": {"hnsw_ef": 128, "exact": true}, "with_vector": true}))).await;
        assert_eq!(ids_of(&res["points"]), brute_force(&all, &q, 10, |_| true));
        assert_eq!(res["points"][0]["vector"].as_array().unwrap().len(), DIM);
    }
    // Query by point id, nearest form, score threshold.
    let res = c
        .ok(
            Method::POST,
            "/collections/docs/points/query",
            Some(json!({"query": 42, "limit": 3})),
        )
        .await;
    // As in Qdrant, the point queried by is not among its own neighbours.
    let points = res["points"].as_array().expect("points");
    assert_eq!(points.len(), 3);
    assert!(points.iter().all(|p| p["id"] != 42), "{res}");
    let q = vector(7, DIM);
    let res = c
        .ok(
            Method::POST,
            "/collections/docs/points/query",
            Some(json!({"query": {"nearest": q}, "limit": 50, "score_threshold": 0.5})),
        )
        .await;
    let pts = res["points"].as_array().unwrap();
    assert!(!pts.is_empty());
    assert!(pts.iter().all(|p| p["score"].as_f64().unwrap() >= 0.5));
    let qb = c
        .ok(
            Method::POST,
            "/collections/docs/points/query/batch",
            Some(json!({"searches": [{"query": q, "limit": 2}, {"query": 8, "limit": 1}]})),
        )
        .await;
    assert_eq!(qb[0]["points"].as_array().unwrap().len(), 2);
    assert_eq!(qb[1]["points"].as_array().unwrap().len(), 1);
    assert_ne!(
        qb[1]["points"][0]["id"], 8,
        "the point queried by is left out"
    );
    c.ok(
        Method::PUT,
        "/collections/docs/index",
        Some(json!({"field_name": "group", "field_schema": "integer"})),
    )
    .await;
    c.ok(Method::DELETE, "/collections/docs/index/group", None)
        .await;
    assert_eq!(
        c.ok(Method::GET, "/collections/docs/aliases", None).await["aliases"],
        json!([])
    );
    let batch = c.ok(Method::POST, "/collections/docs/points/search/batch", Some(json!({"searches": [{"vector": q, "limit": 2}, {"vector": vector(8, DIM), "limit": 3}]}))).await;
    assert_eq!(batch[0].as_array().unwrap().len(), 2);
    assert_eq!(batch[1][0]["id"], 8);

    // Scroll across shards: every id once, in order.
    let mut seen = Vec::new();
    let mut offset = Value::Null;
    for _ in 0..100 {
        let page = c
            .ok(
                Method::POST,
                "/collections/docs/points/scroll",
                Some(json!({"limit": 37, "offset": offset, "with_payload": false})),
            )
            .await;
        let pts = page["points"].as_array().unwrap();
        assert!(pts.iter().all(|p| p["payload"].is_null()));
        seen.extend(pts.iter().map(|p| p["id"].as_u64().unwrap()));
        offset = page["next_page_offset"].clone();
        if offset.is_null() {
            break;
        }
    }
    assert_eq!(seen, (0..400).collect::<Vec<u64>>());
    let page = c
        .ok(
            Method::POST,
            "/collections/docs/points/scroll",
            Some(json!({"limit": 500, "filter": g1})),
        )
        .await;
    assert_eq!(page["points"].as_array().unwrap().len(), n1);
    assert_eq!(page["points"][0]["payload"]["group"], 1);

    // Retrieve and get.
    let recs = c
        .ok(
            Method::POST,
            "/collections/docs/points",
            Some(json!({"ids": [5, 399, 100000, 6], "with_vector": true})),
        )
        .await;
    assert_eq!(ids_of(&recs), vec![5, 399, 6]);
    assert_eq!(recs[0]["payload"]["n"], 5);
    let p = c.ok(Method::GET, "/collections/docs/points/17", None).await;
    assert_eq!(p["id"], 17);
    assert_eq!(p["vector"].as_array().unwrap().len(), DIM);
    assert_eq!(c.get("/collections/docs/points/123456").await.0, 404);
    assert_eq!(c.get("/collections/docs/points/not-an-id").await.0, 400);

    // Payload operations.
    c.ok(
        Method::POST,
        "/collections/docs/points/payload",
        Some(json!({"payload": {"color": "red"}, "points": [1, 2]})),
    )
    .await;
    let p = c.ok(Method::GET, "/collections/docs/points/1", None).await;
    assert_eq!(p["payload"], json!({"group": 1, "n": 1, "color": "red"}));
    c.ok(
        Method::PUT,
        "/collections/docs/points/payload",
        Some(json!({"payload": {"only": true}, "points": [2]})),
    )
    .await;
    assert_eq!(
        c.ok(Method::GET, "/collections/docs/points/2", None).await["payload"],
        json!({"only": true})
    );
    c.ok(
        Method::POST,
        "/collections/docs/points/payload/delete",
        Some(json!({"keys": ["color"], "points": [1]})),
    )
    .await;
    assert_eq!(
        c.ok(Method::GET, "/collections/docs/points/1", None).await["payload"],
        json!({"group": 1, "n": 1})
    );
    c.ok(
        Method::POST,
        "/collections/docs/points/payload/clear",
        Some(json!({"points": [1]})),
    )
    .await;
    assert_eq!(
        c.ok(Method::GET, "/collections/docs/points/1", None).await["payload"],
        json!({})
    );
    // Filter-selected payload write.
    let n_range = json!({"must": [{"key": "n", "range": {"gte": 10, "lt": 15}}]});
    c.ok(
        Method::POST,
        "/collections/docs/points/payload",
        Some(json!({"payload": {"tag": "x"}, "filter": n_range})),
    )
    .await;
    let tagged = json!({"must": [{"key": "tag", "match": {"value": "x"}}]});
    assert_eq!(
        c.ok(
            Method::POST,
            "/collections/docs/points/count",
            Some(json!({"filter": tagged}))
        )
        .await["count"],
        5
    );

    // Deletes by id and by filter.
    c.ok(
        Method::POST,
        "/collections/docs/points/delete?wait=true",
        Some(json!({"points": [0, 3, 6]})),
    )
    .await;
    assert_eq!(
        c.ok(
            Method::POST,
            "/collections/docs/points/count",
            Some(json!({}))
        )
        .await["count"],
        397
    );
    assert_eq!(c.get("/collections/docs/points/3").await.0, 404);
    c.ok(
        Method::POST,
        "/collections/docs/points/delete",
        Some(json!({"filter": tagged})),
    )
    .await;
    assert_eq!(
        c.ok(
            Method::POST,
            "/collections/docs/points/count",
            Some(json!({}))
        )
        .await["count"],
        392
    );

    // Bad input: 4xx, clear message, nothing changed.
    let before = c
        .ok(
            Method::POST,
            "/collections/docs/points/count",
            Some(json!({})),
        )
        .await["count"]
        .clone();
    let bad: Vec<(Method, &str, Value, u16, &str)> = vec![
        (
            Method::PUT,
            "/collections/docs/points",
            json!({"points": [{"id": 9001, "vector": [1.0, 2.0]}]}),
            400,
            "dimension",
        ),
        (
            Method::PUT,
            "/collections/docs/points",
            json!({"points": [{"id": 9001, "vector": vector(1, DIM)}, {"id": 9002, "vector": [1e39, 0, 0, 0, 0, 0, 0, 0]}]}),
            400,
            "finite",
        ),
        (
            Method::PUT,
            "/collections/docs/points",
            json!({"points": [{"id": -4, "vector": vector(1, DIM)}]}),
            400,
            "Format error",
        ),
        (
            Method::PUT,
            "/collections/nope/points",
            json!({"points": [{"id": 1, "vector": vector(1, DIM)}]}),
            404,
            "doesn't exist",
        ),
        (
            Method::POST,
            "/collections/docs/points/search",
            json!({"vector": [1.0], "limit": 3}),
            400,
            "dimension",
        ),
        (
            Method::POST,
            "/collections/docs/points/search",
            json!({"vector": vector(1, DIM), "limit": 3, "filter": {"must": [{"key": "a"}]}}),
            400,
            "filter",
        ),
        (
            Method::POST,
            "/collections/docs/points/delete",
            json!({"nothing": 1}),
            400,
            "points",
        ),
        (
            Method::PUT,
            "/collections/bad",
            json!({"vectors": {"size": 0, "distance": "Cosine"}}),
            400,
            "dimension",
        ),
    ];
    for (m, path, body, status, needle) in bad {
        let (s, v) = c.req(m.clone(), path, Some(body), None).await;
        assert_eq!(s, status, "{m} {path}: {v}");
        let msg = v["status"]["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(msg.contains(needle), "{path}: {msg:?} lacks {needle:?}");
    }
    // Malformed JSON, NaN literal, oversized body.
    for raw in [
        "{\"points\": [",
        "{\"points\": [{\"id\": 1, \"vector\": [NaN, 0, 0, 0, 0, 0, 0, 0]}]}",
    ] {
        let r = c
            .http
            .put(format!("{}/collections/docs/points", c.url))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let v: Value = r.json().await.unwrap();
        assert!(
            v["status"]["error"].as_str().unwrap().contains("JSON"),
            "{v}"
        );
    }
    let huge = format!(
        "{{\"points\": [{{\"id\": 1, \"vector\": [{}]}}]}}",
        vec!["0.5"; 600_000].join(",")
    );
    let r = c
        .http
        .put(format!("{}/collections/docs/points", c.url))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(
        r.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..]),
        "the unread body leaves the connection unusable; the client must not pool it"
    );
    assert_eq!(
        c.ok(
            Method::POST,
            "/collections/docs/points/count",
            Some(json!({}))
        )
        .await["count"],
        before
    );
    assert_eq!(c.get("/collections/docs/points/9001").await.0, 404);
    assert_eq!(c.get("/no/such/route").await.0, 404);
    let (s, v) = c
        .req(Method::POST, "/collections/docs", Some(json!({})), None)
        .await;
    assert_eq!(
        s, 405,
        "PATCH is routed now (replication factor); POST is not"
    );
    assert!(v["status"]["error"].is_string(), "{v}");

    // Cluster routes and metrics.
    let (s, health) = c.get("/api/cluster/health").await;
    assert_eq!(s, 200, "{health}");
    assert_eq!(health["result"]["status"], "healthy");
    let m = c.ok(Method::GET, "/api/cluster/metrics", None).await;
    assert_eq!(m["active_nodes"], 3);
    assert_eq!(m["total_shards"], 3);
    assert_eq!(m["healthy_shards"], 3);
    assert!(m["avg_scatter_fanout"].as_f64().unwrap() >= 3.0, "{m}");
    assert!(m["remote_queries_per_sec"].as_f64().unwrap() > 0.0);
    let topo = c.ok(Method::GET, "/api/cluster/topology", None).await;
    assert_eq!(topo["nodes"].as_array().unwrap().len(), 3);
    let shards = topo["collections"][0]["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 3);
    assert!(shards
        .iter()
        .all(|s| s["replicas"].as_array().unwrap().len() == 2 && s["primary"].is_u64()));
    let cl = c.ok(Method::GET, "/collections/docs/cluster", None).await;
    assert_eq!(cl["shard_count"], 3);
    assert_eq!(cl["remote_shards"].as_array().unwrap().len(), 6);
    assert_eq!(
        c.ok(Method::GET, "/cluster", None).await["status"],
        "enabled"
    );
    let (s, root) = c.get("/").await;
    assert_eq!(s, 200);
    assert!(root["version"].is_string());
    assert_eq!(c.get("/healthz").await.0, 200);
    assert_eq!(c.get("/readyz").await.0, 200);
    let prom = c
        .http
        .get(format!("{}/metrics", c.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(prom.contains("gateway_http_requests_total"), "{prom}");
    assert!(prom.contains("gateway_http_request_duration_seconds_bucket"));
    assert!(prom.contains("gateway_fanout_shards"));

    // Delete the collection.
    assert_eq!(c.ok(Method::DELETE, "/collections/docs", None).await, true);
    assert_eq!(c.get("/collections/docs").await.0, 404);
    assert_eq!(c.ok(Method::DELETE, "/collections/docs", None).await, false);
    c.shutdown().await;
}
