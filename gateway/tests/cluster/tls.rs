//! HTTPS on the REST port: a gateway configured with `gateway.tls` serves
//! create / upsert / search to a reqwest client that trusts the test CA,
//! and refuses plain HTTP and clients that do not trust its certificate.

use std::sync::Arc;
use std::time::Duration;

use gateway::config::{Config, Overrides};
use gateway::tls::RestTls;
use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rest_port_serves_https_only() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = transport::certs::generate_ca("rest-test-ca").expect("ca");
    let cert = transport::certs::issue(
        &ca,
        "127.0.0.1",
        &["localhost".to_string()],
        &["127.0.0.1".parse().expect("ip")],
    )
    .expect("issue");
    let files = RestTls {
        cert: dir.path().join("rest.pem"),
        key: dir.path().join("rest.key"),
    };
    std::fs::write(&files.cert, &cert.cert_pem).expect("write cert");
    std::fs::write(&files.key, &cert.key_pem).expect("write key");

    let cluster = TestCluster::start(Options::default()).await;
    let mut config = Config::load(
        None,
        |_| None,
        &Overrides {
            rest_port: Some(0),
            listen_host: Some("127.0.0.1".into()),
            ..Overrides::default()
        },
    )
    .expect("config");
    config.tls = Some(files);
    let gw = gateway::server::start_with(
        &config,
        Arc::new(cluster.meta.clone()),
        cluster.shard_client(),
    )
    .await
    .expect("start the TLS gateway");
    let port = gw.addr().port();

    let trusting = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem.as_bytes()).expect("ca"))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let https = format!("https://127.0.0.1:{port}");
    let send = |m: reqwest::Method, path: &str, body: serde_json::Value| {
        trusting
            .request(m, format!("{https}{path}"))
            .json(&body)
            .send()
    };
    let r = send(
        reqwest::Method::PUT,
        "/collections/secure",
        json!({"vectors": {"size": DIM, "distance": "Cosine"}, "shard_number": 2, "replication_factor": 2}),
    )
    .await
    .expect("create over HTTPS");
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let points: Vec<_> = (0..20u64)
        .map(|i| json!({"id": i, "vector": vector(i, DIM)}))
        .collect();
    let r = send(
        reqwest::Method::PUT,
        "/collections/secure/points?wait=true",
        json!({ "points": points }),
    )
    .await
    .expect("upsert over HTTPS");
    assert_eq!(r.status(), 200);
    let r = send(
        reqwest::Method::POST,
        "/collections/secure/points/search",
        json!({"vector": vector(7, DIM), "limit": 1}),
    )
    .await
    .expect("search over HTTPS");
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["result"][0]["id"], 7, "{v}");

    // Plain HTTP to the same port gets no answer.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let r = plain
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(r.is_err(), "plain HTTP was answered: {r:?}");
    // A client that does not trust the certificate refuses the server.
    let stranger = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(
                transport::certs::generate_ca("other-ca")
                    .expect("ca")
                    .cert_pem
                    .as_bytes(),
            )
            .expect("ca"),
        )
        .build()
        .expect("client");
    assert!(stranger
        .get(format!("{https}/healthz"))
        .send()
        .await
        .is_err());
    // After all that the TLS port still serves.
    let r = trusting
        .get(format!("{https}/healthz"))
        .send()
        .await
        .expect("healthz over HTTPS");
    assert_eq!(r.status(), 200);

    gw.shutdown().await.expect("shutdown");
    cluster.shutdown().await;
}
