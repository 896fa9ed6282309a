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
            ..Default::default()
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

/// Keys scoped to collection `a`: the read key reads `a` only and writes
/// nothing; the read-write key writes `a` but not `b`; neither reaches `b`
/// through an alias, creates or deletes other collections, or administers
/// the cluster; listings show only `a`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn collection_keys_reach_only_their_collections() {
    use gateway::api::{CollectionKey, ScopeAccess};
    let _serial = SERIAL.lock().await;
    let scoped = |key: &str, access| CollectionKey {
        key: key.into(),
        collections: ["a".to_string()].into(),
        access,
    };
    let c = TestCluster::start(Options {
        keys: ApiKeys {
            read_write: Some("admin".into()),
            read_only: None,
            collection_keys: vec![
                scoped("a-read", ScopeAccess::Read),
                scoped("a-write", ScopeAccess::ReadWrite),
            ],
        },
        ..Options::default()
    })
    .await;
    let admin = Some("admin");
    let create = json!({"vectors": {"size": DIM, "distance": "Cosine"}, "shard_number": 2, "replication_factor": 2});
    for name in ["a", "b"] {
        let (s, v) = c
            .req(
                Method::PUT,
                &format!("/collections/{name}"),
                Some(create.clone()),
                admin,
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let aliases = json!({"actions": [
        {"create_alias": {"collection_name": "b", "alias_name": "b-alias"}},
        {"create_alias": {"collection_name": "a", "alias_name": "a-alias"}},
    ]});
    let (s, v) = c
        .req(Method::POST, "/collections/aliases", Some(aliases), admin)
        .await;
    assert_eq!(s, 200, "{v}");
    let upsert = |id: u64| json!({"points": [{"id": id, "vector": vector(id, DIM)}]});
    let search = json!({"vector": vector(1, DIM), "limit": 3});
    let status = |key: &'static str, m: Method, path: &str, body: Option<serde_json::Value>| {
        let c = &c;
        let path = path.to_string();
        async move {
            let (s, v) = c.req(m, &path, body, Some(key)).await;
            if s == 403 {
                assert!(
                    v["status"]["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("Forbidden")),
                    "{v}"
                );
            }
            s
        }
    };

    // Read-only on a: reads a, not b (nor through b's alias), writes nothing.
    let r = "a-read";
    assert_eq!(
        status(
            r,
            Method::POST,
            "/collections/a/points/search",
            Some(search.clone())
        )
        .await,
        200
    );
    assert_eq!(
        status(
            r,
            Method::POST,
            "/collections/a-alias/points/search",
            Some(search.clone())
        )
        .await,
        200
    );
    assert_eq!(status(r, Method::GET, "/collections/a", None).await, 200);
    assert_eq!(
        status(
            r,
            Method::POST,
            "/collections/b/points/search",
            Some(search.clone())
        )
        .await,
        403
    );
    assert_eq!(
        status(
            r,
            Method::POST,
            "/collections/b-alias/points/search",
            Some(search.clone())
        )
        .await,
        403
    );
    assert_eq!(status(r, Method::GET, "/collections/b", None).await, 403);
    assert_eq!(
        status(r, Method::GET, "/collections/b/exists", None).await,
        403
    );
    assert_eq!(
        status(
            r,
            Method::PUT,
            "/collections/a/points?wait=true",
            Some(upsert(1))
        )
        .await,
        403
    );
    assert_eq!(status(r, Method::DELETE, "/collections/a", None).await, 403);

    // Read-write on a: writes a (also through a's alias), not b.
    let w = "a-write";
    assert_eq!(
        status(
            w,
            Method::PUT,
            "/collections/a/points?wait=true",
            Some(upsert(1))
        )
        .await,
        200
    );
    assert_eq!(
        status(
            w,
            Method::PUT,
            "/collections/a-alias/points?wait=true",
            Some(upsert(2))
        )
        .await,
        200
    );
    assert_eq!(
        status(
            w,
            Method::PUT,
            "/collections/b/points?wait=true",
            Some(upsert(3))
        )
        .await,
        403
    );
    assert_eq!(
        status(
            w,
            Method::PUT,
            "/collections/b-alias/points?wait=true",
            Some(upsert(4))
        )
        .await,
        403
    );
    assert_eq!(
        status(
            w,
            Method::POST,
            "/collections/b/points/search",
            Some(search.clone())
        )
        .await,
        403
    );
    // Collections of other names: neither created nor deleted.
    assert_eq!(
        status(w, Method::PUT, "/collections/c", Some(create.clone())).await,
        403
    );
    assert_eq!(status(w, Method::DELETE, "/collections/b", None).await, 403);
    // Cluster administration and alias changes need the global key.
    assert_eq!(
        status(
            w,
            Method::PATCH,
            "/collections/a",
            Some(json!({"replication_factor": 1}))
        )
        .await,
        403
    );
    assert_eq!(
        status(w, Method::GET, "/api/cluster/health", None).await,
        403
    );
    assert_eq!(
        status(w, Method::POST, "/api/cluster/rebalance", Some(json!({}))).await,
        403
    );
    assert_eq!(status(w, Method::GET, "/cluster", None).await, 403);
    let realias =
        json!({"actions": [{"create_alias": {"collection_name": "b", "alias_name": "mine"}}]});
    assert_eq!(
        status(w, Method::POST, "/collections/aliases", Some(realias)).await,
        403
    );

    // The writes landed where allowed, and nowhere else.
    let count = |name: &'static str| {
        let c = &c;
        async move {
            let (s, v) = c
                .req(
                    Method::POST,
                    &format!("/collections/{name}/points/count"),
                    Some(json!({})),
                    admin,
                )
                .await;
            assert_eq!(s, 200, "{v}");
            v["result"]["count"].as_u64()
        }
    };
    assert_eq!(count("a").await, Some(2));
    assert_eq!(count("b").await, Some(0));

    // A query may not read another collection through `lookup_from` or
    // `with_lookup` (nor through an alias); group-by and facets are reads.
    let lookup = |from: &str| json!({"query": {"recommend": {"positive": [1]}}, "lookup_from": {"collection": from}});
    let query = "/collections/a/points/query";
    assert_eq!(status(r, Method::POST, query, Some(lookup("b"))).await, 403);
    assert_eq!(
        status(r, Method::POST, query, Some(lookup("b-alias"))).await,
        403
    );
    assert_ne!(
        status(r, Method::POST, query, Some(lookup("a-alias"))).await,
        403
    );
    let groups = |with_lookup: &str| json!({"query": vector(1, DIM), "group_by": "g", "with_lookup": with_lookup});
    let path = "/collections/a/points/query/groups";
    assert_eq!(status(r, Method::POST, path, Some(groups("a"))).await, 200);
    assert_eq!(status(r, Method::POST, path, Some(groups("b"))).await, 403);
    let facet = json!({"key": "g"});
    assert_eq!(
        status(r, Method::POST, "/collections/a/facet", Some(facet.clone())).await,
        200
    );
    assert_eq!(
        status(r, Method::POST, "/collections/b/facet", Some(facet)).await,
        403
    );

    // Listings show only the scope.
    for key in [r, w] {
        let (s, v) = c.req(Method::GET, "/collections", None, Some(key)).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["result"]["collections"], json!([{"name": "a"}]));
        let (s, v) = c.req(Method::GET, "/aliases", None, Some(key)).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            v["result"]["aliases"],
            json!([{"alias_name": "a-alias", "collection_name": "a"}])
        );
    }
    let (_, v) = c.req(Method::GET, "/collections", None, admin).await;
    assert_eq!(v["result"]["collections"].as_array().map(Vec::len), Some(2));
    c.shutdown().await;
}
