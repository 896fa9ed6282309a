//! The OpenAPI document against the router it describes, on a live
//! gateway: the document it serves at `/openapi.json` is the one
//! `api::openapi_document` builds, and every documented operation, sent
//! with its path parameters filled in, reaches a handler (never the "no
//! such route" 404 nor the 405 fallback). The routes are registered from
//! the same annotations that document them; this test is what would catch
//! a route added beside them (`Router::route`) with a path or method the
//! document then lacks or misstates.

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
    // 47 routed operations and 29 paths × 5 methods of 501 routes.
    assert_eq!(operations, 47 + 29 * 5, "operations documented");
    c.shutdown().await;
}
