//! The OpenAPI document against the router it describes, on a live
//! gateway: the document it serves at `/openapi.json` is the one
//! `api::openapi_document` builds, and every documented operation, sent
//! with its path parameters filled in, reaches a handler (never the "no
//! such route" 404 nor the 405 fallback), and the 501 routes answer 501.
//! The other direction, a route the document lacks, is prevented by
//! construction: `api::router` registers every route through utoipa-axum's
//! `routes!` from the handler's annotation, and the 501 routes from the
//! table that also documents them.

use serde_json::{json, Value};

use crate::harness::*;

/// `path` with every `{param}` replaced by a value of the right kind that
/// names nothing that exists (so no documented route changes data here).
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{name}" => "openapi-absent",
            "{id}" if path.starts_with("/collections/") => "7",
            "{id}" => "999999",
            "{shard}" => "0",
            s if s.starts_with('{') => "x",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_documented_operation_is_routed() {
    let _serial = SERIAL.lock().await;
    let c = TestCluster::start(Options::default()).await;
    let (status, doc) = c.get("/openapi.json").await;
    assert_eq!(status, 200, "{doc}");
    let built = serde_json::to_value(gateway::api::openapi_document()).expect("document");
    assert_eq!(doc, built, "the served document is the built one");
    assert_eq!(doc["openapi"], "3.1.0");

    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        let item = item.as_object().expect("path item");
        for (method, op) in item {
            let method: reqwest::Method = method.to_uppercase().parse().expect("method");
            let body = matches!(method.as_str(), "PUT" | "POST" | "PATCH").then(|| json!({}));
            let url = concrete(path);
            let (status, answer) = c.req(method.clone(), &url, body, None).await;
            let what = format!("{method} {url} (documented as {path})");
            assert_ne!(status, 405, "{what}: method not routed: {answer}");
            let error = answer["status"]["error"].as_str().unwrap_or("");
            assert!(
                !(status == 404 && error.contains("no such route")),
                "{what}: path not routed: {answer}"
            );
            let tags = op["tags"].as_array().cloned().unwrap_or_default();
            if tags.contains(&Value::from("unsupported")) {
                assert_eq!(status, 501, "{what}: {answer}");
            }
            operations += 1;
        }
    }
    // 52 operations of annotated handlers, and the 501 routes: 26 paths
    // × 5 methods.
    assert_eq!(operations, 52 + 26 * 5, "operations documented");
    c.shutdown().await;
}

/// The document says `score` is a number: a vector so large that a score
/// against it overflows `f32` (which JSON carries as `null`) is refused
/// with a 400, on upsert and on search, and the largest accepted vectors
/// still score finitely (Dot, and Euclid between opposite extremes).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scores_stay_numbers_at_the_largest_accepted_vectors() {
    let _serial = SERIAL.lock().await;
    let c = TestCluster::start(Options::default()).await;
    // Just under the limit: |v|² = 2x² < f32::MAX / 4.
    let x = 6.5e18_f32;
    for distance in ["Dot", "Euclid"] {
        let name = format!("big-{}", distance.to_lowercase());
        c.ok(
            reqwest::Method::PUT,
            &format!("/collections/{name}"),
            Some(json!({"vectors": {"size": 2, "distance": distance}, "shard_number": 2})),
        )
        .await;
        let (status, answer) = c
            .put(
                &format!("/collections/{name}/points?wait=true"),
                json!({"points": [{"id": 1, "vector": [3e38, 3e38]}]}),
            )
            .await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer.to_string().contains("vector too large"), "{answer}");
        let (status, answer) = c
            .post(
                &format!("/collections/{name}/points/search"),
                json!({"vector": [1e19, 1e19]}),
            )
            .await;
        assert_eq!(status, 400, "{answer}");
        c.ok(
            reqwest::Method::PUT,
            &format!("/collections/{name}/points?wait=true"),
            Some(json!({"points": [{"id": 1, "vector": [x, x]}]})),
        )
        .await;
        for query in [[x, x], [-x, -x]] {
            let hits = c
                .ok(
                    reqwest::Method::POST,
                    &format!("/collections/{name}/points/search"),
                    Some(json!({"vector": query})),
                )
                .await;
            let score = &hits[0]["score"];
            assert!(
                score.as_f64().is_some_and(f64::is_finite),
                "{distance} {query:?}: score {score}"
            );
        }
    }
    c.shutdown().await;
}

/// Collection creation waits at most `create_wait` for the replicas to
/// open, however many there are: with many replicas that each answer (here
/// slowly), it used to ask them one by one past that bound, and on real
/// processes the request timed out (504) after the collection was created
/// (1,024 shards × 3 replicas, limits the document states).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn collection_creation_answers_within_its_wait() {
    let _serial = SERIAL.lock().await;
    let mut opts = Options::default();
    opts.routing.create_wait = std::time::Duration::from_secs(2);
    let c = TestCluster::start(opts).await;
    for id in 1..=3 {
        c.set_delay(id, Some(std::time::Duration::from_millis(50)));
    }
    let started = std::time::Instant::now();
    // 192 replicas × 50 ms ≈ 10 s when each is asked in turn to the end.
    let (status, answer) = c
        .put(
            "/collections/many",
            json!({"vectors": {"size": 2, "distance": "Dot"}, "shard_number": 64, "replication_factor": 3}),
        )
        .await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{answer}");
    assert!(
        took < std::time::Duration::from_millis(3500),
        "took {took:?}"
    );
    for id in 1..=3 {
        c.set_delay(id, None);
    }
    c.shutdown().await;
}
