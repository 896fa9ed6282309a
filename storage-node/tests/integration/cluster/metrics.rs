//! `/api/cluster/metrics` through a gateway over real storage-node
//! processes (issue 15): the replication lag of a shard whose replica is
//! paused (SIGSTOP) grows in milliseconds and falls back once it resumes;
//! a finished shard move counts in `completed_migrations`; the storage
//! nodes' reads show in `local_queries_per_sec`.

use std::time::{Duration, Instant};

use protocol::{NodeId, ShardId};
use serde_json::{json, Value};

use super::start;

const DIM: u64 = 8;

struct Rest {
    http: reqwest::Client,
    url: String,
}

impl Rest {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let v: Value = resp.json().await.expect("JSON body");
        assert!(status.is_success(), "{path}: {status} {v}");
        v["result"].clone()
    }

    async fn metrics(&self) -> Value {
        self.send(reqwest::Method::GET, "/api/cluster/metrics", None)
            .await
    }

    async fn create(&self, name: &str, rf: u32) {
        let body = json!({
            "vectors": {"size": DIM, "distance": "Dot"},
            "shard_number": 1, "replication_factor": rf,
        });
        let path = format!("/collections/{name}");
        let created = self.send(reqwest::Method::PUT, &path, Some(body)).await;
        assert_eq!(created, json!(true));
    }

    async fn upsert(&self, name: &str, first: u64, n: u64) {
        let points: Vec<Value> = (first..first + n)
            .map(|i| json!({"id": i, "vector": (0..DIM).map(|d| ((i + d) % 7) as f32).collect::<Vec<_>>()}))
            .collect();
        let path = format!("/collections/{name}/points?wait=true");
        let body = json!({ "points": points });
        self.send(reqwest::Method::PUT, &path, Some(body)).await;
    }
}

fn lag_of(metrics: &Value, shard: &str) -> Option<f64> {
    metrics["replication_lag_ms"][shard].as_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_metrics_show_lag_of_a_paused_replica_reads_and_a_finished_move() {
    let mut cluster = start(3).await;
    let gw = cluster.start_gateway().await;
    let rest = Rest {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        url: format!("http://{}", gw.addr()),
    };
    rest.create("lag", 3).await;
    rest.create("moved", 1).await;
    rest.upsert("lag", 0, 100).await;
    rest.upsert("moved", 0, 100).await;
    for _ in 0..20 {
        let q = json!({"vector": vec![1.0; DIM as usize], "limit": 3});
        rest.send(
            reqwest::Method::POST,
            "/collections/lag/points/search",
            Some(q),
        )
        .await;
    }

    // A finished move counts once it has switched.
    cluster.refresh_map().await;
    let from = cluster.primary_of("moved", ShardId(0)).await;
    let to = NodeId(from.0 % 3 + 1);
    let op = json!({"move_shard": {"shard_id": 0, "from_peer_id": from.0, "to_peer_id": to.0}});
    rest.send(
        reqwest::Method::POST,
        "/collections/moved/cluster",
        Some(op),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        let m = rest.metrics().await;
        if m["completed_migrations"] == json!(1) && m["active_migrations"] == json!(0) {
            break m;
        }
        assert!(Instant::now() < deadline, "the move did not finish: {m}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(metrics["failed_migrations"], 0, "{metrics}");
    // The 20 searches went to the storage nodes within the last minute.
    let local = metrics["local_queries_per_sec"].as_f64().expect("a rate");
    assert!(local > 0.0, "{metrics}");
    assert!(metrics["remote_queries_per_sec"].as_f64() > Some(0.0));
    // Every replica has everything: no lag worth the name.
    let idle = lag_of(&metrics, "lag/0").expect("lag/0 reported");
    assert!(idle < 300.0, "{metrics}");

    // Pause a replica that is not the primary; writes go on at `majority`.
    let primary = cluster.primary_of("lag", ShardId(0)).await;
    let paused = NodeId(primary.0 % 3 + 1);
    cluster.pause(paused);
    let paused_at = Instant::now();
    rest.upsert("lag", 1_000, 10).await;
    // The test cluster declares a node dead after 1.5 s of silence (and
    // the primary stops streaming to it): look before that.
    let mut seen = 0.0f64;
    while paused_at.elapsed() < Duration::from_millis(1_300) {
        let m = rest.metrics().await;
        seen = seen.max(lag_of(&m, "lag/0").unwrap_or(0.0));
        if seen >= 500.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let prom = cluster.http_get(primary, "/metrics").await;
    cluster.resume(paused);
    assert!(
        seen >= 500.0,
        "lag of a replica paused for {:?}: {seen} ms",
        paused_at.elapsed()
    );
    let labels = format!("collection=\"lag\",shard=\"0\",peer=\"{paused}\"");
    let lag_line = prom
        .lines()
        .find(|l| l.starts_with("storage_replication_lag_seconds") && l.contains(&labels))
        .unwrap_or_else(|| panic!("no lag gauge for the paused peer:\n{prom}"));
    let secs: f64 = lag_line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a value");
    assert!(secs > 0.2, "{lag_line}");

    // Once it is back (alive again, caught up), the lag falls back.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = rest.metrics().await;
        if lag_of(&m, "lag/0").is_some_and(|l| l < 300.0) && m["dead_nodes"] == json!(0) {
            break;
        }
        assert!(Instant::now() < deadline, "the lag stayed: {m}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    gw.shutdown().await.expect("gateway shutdown");
    cluster.stop().await;
}
