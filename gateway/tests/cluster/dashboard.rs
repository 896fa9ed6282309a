//! `GET /dashboard`: served without an API key (it holds no data), as a
//! self-contained HTML page whose polled routes all exist and answer with
//! the key. What the page shows is checked in headless Chromium by
//! `gateway/tests/dashboard/check.sh`.

use gateway::api::ApiKeys;
use reqwest::Method;

use crate::harness::*;

/// The paths the page's script fetches: every `get("/...")` in it.
fn polled_routes(page: &str) -> Vec<String> {
    page.split("get(\"/")
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(p, _)| format!("/{p}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dashboard_page_needs_no_key_and_polls_routes_that_exist() {
    let _serial = SERIAL.lock().await;
    let c = TestCluster::start(Options {
        keys: ApiKeys {
            read_write: Some("rw-secret".into()),
            ..Default::default()
        },
        ..Options::default()
    })
    .await;

    let resp = c
        .http
        .get(format!("{}/dashboard", c.url))
        .send()
        .await
        .expect("GET /dashboard");
    assert_eq!(resp.status(), 200);
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = resp.text().await.expect("page");
    // Self-contained: nothing loaded from another origin.
    assert!(!page.contains("http://") && !page.contains("https://"));
    assert!(
        page.contains("\"api-key\""),
        "the key goes in the api-key header"
    );

    let routes = polled_routes(&page);
    for want in [
        "/api/cluster/health",
        "/api/cluster/topology",
        "/api/cluster/metrics",
        "/api/cluster/transfers",
        "/collections/",
        "/metrics",
    ] {
        assert!(routes.iter().any(|r| r == want), "{want} not in {routes:?}");
    }
    for route in routes.iter().filter(|r| !r.ends_with('/')) {
        let (s, v) = c.req(Method::GET, route, None, None).await;
        assert_eq!(s, 401, "{route} without a key: {v}");
        let (s, v) = c.req(Method::GET, route, None, Some("rw-secret")).await;
        // `/metrics` is 404 on a gateway without Prometheus; the page says so.
        assert!(
            s == 200 || (route == "/metrics" && s == 404),
            "{route}: {s} {v}"
        );
    }
    c.shutdown().await;
}
