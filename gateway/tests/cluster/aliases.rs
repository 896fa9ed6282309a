//! Aliases resolved on the collection routes, an atomic switch, the batch
//! update route, and the 501 of a feature we lack, over HTTP against the
//! in-process cluster (the Python tests do the same with qdrant-client).

use reqwest::Method;
use serde_json::json;

use crate::harness::*;

fn change(actions: serde_json::Value) -> serde_json::Value {
    json!({ "actions": actions })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aliases_resolve_on_every_route_and_switch_at_once() {
    let _serial = SERIAL.lock().await;
    let c = TestCluster::start(Options::default()).await;
    let v1 = seed(&c, "v1", 60).await;
    seed(&c, "v2", 90).await;
    c.ok(
        Method::POST,
        "/collections/aliases",
        Some(change(
            json!([{"create_alias": {"collection_name": "v1", "alias_name": "prod"}}]),
        )),
    )
    .await;
    let listed = c.ok(Method::GET, "/aliases", None).await;
    assert_eq!(
        listed["aliases"],
        json!([{"alias_name": "prod", "collection_name": "v1"}])
    );
    assert_eq!(
        c.ok(Method::GET, "/collections/v1/aliases", None).await["aliases"][0]["alias_name"],
        "prod"
    );

    // Reads and writes through the alias reach v1.
    assert_eq!(
        c.ok(Method::GET, "/collections/prod", None).await["points_count"],
        60
    );
    let q = vector(7, DIM);
    let hits = c
        .ok(
            Method::POST,
            "/collections/prod/points/search",
            Some(json!({"vector": q, "limit": 5, "params": {"exact": true}})),
        )
        .await;
    assert_eq!(ids_of(&hits), brute_force(&v1, &q, 5, |_| true));
    let ops = json!({"operations": [
        {"upsert": {"points": [{"id": 500, "vector": vector(500, DIM), "payload": {"x": 1}}]}},
        {"set_payload": {"payload": {"y": 2}, "filter": {"must": [{"key": "x", "match": {"value": 1}}]}}},
        {"delete": {"points": [0, 1]}},
    ]});
    let results = c
        .ok(Method::POST, "/collections/prod/points/batch", Some(ops))
        .await;
    assert_eq!(results.as_array().map(Vec::len), Some(3));
    let got = c
        .ok(
            Method::POST,
            "/collections/v1/points",
            Some(json!({"ids": [500, 0]})),
        )
        .await;
    assert_eq!(got[0]["payload"], json!({"x": 1, "y": 2}));
    assert_eq!(got.as_array().map(Vec::len), Some(1));
    let (s, body) = c
        .post(
            "/collections/prod/points/batch",
            json!({"operations": [
                {"upsert": {"points": [{"id": 501, "vector": vector(501, DIM)}]}},
                {"update_vectors": {"points": []}},
            ]}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(body.to_string().contains("update_vectors"), "{body}");
    assert_eq!(
        c.ok(Method::POST, "/collections/v1/points/count", None)
            .await["count"],
        59
    );

    // The switch (delete + create in one command, see the meta-service's
    // `an_alias_switch_is_one_atomic_step`): the gateway answers after it
    // took the new map, so the next request already resolves to v2.
    c.ok(
        Method::POST,
        "/collections/aliases",
        Some(change(json!([
            {"delete_alias": {"alias_name": "prod"}},
            {"create_alias": {"collection_name": "v2", "alias_name": "prod"}},
        ]))),
    )
    .await;
    assert_eq!(
        c.ok(Method::POST, "/collections/prod/points/count", None)
            .await["count"],
        90
    );

    // Rules and refusals.
    let (s, _) = c
        .post(
            "/collections/aliases",
            change(json!([{"create_alias": {"collection_name": "v1", "alias_name": "v2"}}])),
        )
        .await;
    assert_eq!(s, 400, "an alias may not shadow a collection");
    let (s, _) = c
        .post(
            "/collections/aliases",
            change(json!([{"rename_alias": {"old_alias_name": "nope", "new_alias_name": "x"}}])),
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = c
        .put(
            "/collections/prod",
            json!({"vectors": {"size": DIM, "distance": "Cosine"}}),
        )
        .await;
    assert_eq!(s, 400, "a collection may not take an alias's name");
    c.ok(Method::DELETE, "/collections/v2", None).await;
    assert_eq!(
        c.ok(Method::GET, "/aliases", None).await["aliases"],
        json!([])
    );
    assert_eq!(c.get("/collections/prod").await.0, 404);

    let (s, body) = c.get("/collections/v1/snapshots").await;
    assert_eq!(s, 501);
    assert!(body.to_string().contains("snapshots"), "{body}");
    let cluster = c.ok(Method::GET, "/cluster", None).await;
    let last = cluster["consensus_thread_status"]["last_update"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(last.len() == 24 && last.ends_with('Z'), "{last}");
    c.shutdown().await;
}
