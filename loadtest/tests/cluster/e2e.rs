use std::path::Path;
use std::time::Duration;

use loadtest::gen::GenOptions;
use loadtest::ingest::IngestOptions;
use loadtest::mixed::MixedOptions;
use loadtest::search::SearchOptions;
use loadtest::{read_fvecs, read_ivecs, Client, CollectionSpec, SearchParams};
use serde_json::Value;

use gateway::api::HttpOptions;
use gateway::RoutingOptions;
use testsuite::{Options, TestCluster};

/// The shared in-process cluster with the gateway's default HTTP limits
/// (ingest batches are large) and generous timeouts (the machine is slow).
async fn start_cluster() -> TestCluster {
    TestCluster::start(Options {
        http: HttpOptions::default(),
        routing: RoutingOptions {
            shard_timeout: Duration::from_secs(10),
            ..RoutingOptions::default()
        },
        write_timeout: Duration::from_secs(5),
        ..Options::default()
    })
    .await
}

fn data(dir: &Path) {
    let opts = GenOptions {
        n: 600,
        nq: 30,
        dim: 16,
        clusters: 8,
        k: 10,
        seed: 3,
        normalise: true,
    };
    loadtest::gen::run(dir, &opts).expect("gen");
}

fn search_opts(concurrency: usize, batch: usize, params: SearchParams) -> SearchOptions {
    SearchOptions {
        k: 10,
        concurrency,
        batch,
        queries: 90,
        duration: Duration::from_secs(60),
        warmup: 5,
        params,
        metrics_urls: Vec::new(),
    }
}

const EXACT: SearchParams = SearchParams {
    hnsw_ef: None,
    exact: true,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_search_mixed_against_the_real_gateway() {
    // The gateway's recorder first (one per process; the in-process
    // meta-service would install its own), for the per-stage breakdown.
    assert!(gateway::telemetry::prometheus().is_some());
    let cluster = start_cluster().await;
    let dir = tempfile::tempdir().expect("tempdir");
    data(dir.path());
    let base = read_fvecs(&dir.path().join("base.fvecs"), None).expect("base");
    let queries = read_fvecs(&dir.path().join("queries.fvecs"), None).expect("queries");
    let truth = read_ivecs(&dir.path().join("groundtruth.ivecs"), None).expect("gt");

    let client = Client::new(&cluster.url, "lt", 4, Duration::from_secs(20)).expect("client");
    client
        .create_collection(&CollectionSpec {
            dim: 16,
            distance: "Cosine".into(),
            shards: 3,
            replication_factor: 2,
            m: 16,
            ef_construct: 64,
        })
        .await
        .expect("create");
    let opts = IngestOptions {
        batch: 64,
        concurrency: 4,
        consistency: Some("majority".into()),
        id_offset: 0,
        attempts: 3,
        searchable_timeout: Duration::from_secs(30),
        duration: Duration::from_secs(120),
        progress: false,
    };
    let payloads: Vec<Value> = (0..600).map(|i| serde_json::json!({"row": i})).collect();
    let ing = loadtest::ingest::run(&client, &base, Some(&payloads), &opts)
        .await
        .expect("ingest");
    assert_eq!(ing.vectors, 600, "{ing:?}");
    assert_eq!(ing.batches, 10);
    assert_eq!(ing.failed_batches, 0, "{ing:?}");
    assert!(ing.searchable_after_ack_s.is_some(), "{ing:?}");
    assert_eq!(ing.count_seen, Some(600));
    assert_eq!(client.count().await.expect("count"), 600);

    // Exact search through scatter-gather must match brute force.
    for (conc, batch) in [(1, 1), (4, 1), (2, 5)] {
        let out = loadtest::search::run(
            &client,
            &queries,
            Some(&truth),
            &search_opts(conc, batch, EXACT),
        )
        .await
        .expect("search");
        assert_eq!(out.errors, 0, "{out:?}");
        assert_eq!(out.queries, 90, "conc {conc} batch {batch}: {out:?}");
        assert_eq!(out.recall_queries, 90);
        assert_eq!(out.recall, Some(1.0), "conc {conc} batch {batch}: {out:?}");
        assert!(out.qps > 0.0 && out.latency.p99_ms >= out.latency.p50_ms);
    }
    let hnsw = SearchParams {
        hnsw_ef: Some(64),
        exact: false,
    };
    let with_breakdown = SearchOptions {
        metrics_urls: vec![format!("{}/metrics", cluster.url)],
        ..search_opts(2, 1, hnsw)
    };
    let out = loadtest::search::run(&client, &queries, Some(&truth), &with_breakdown)
        .await
        .expect("search");
    assert_eq!(out.errors, 0, "{out:?}");
    assert!(out.recall.unwrap_or(0.0) >= 0.9, "{out:?}");
    // Where the time goes: the gateway's stages, and (one process here,
    // one metrics recorder) the node's, each seen once per query or shard.
    let stage = |name: &str| out.stages.iter().find(|s| s.stage == name);
    let parse = stage("gateway: parse JSON").expect("parse stage");
    assert_eq!(parse.count, out.requests, "{:?}", out.stages);
    let calls = stage("shard call (QUIC + node)").expect("shard calls");
    assert!(calls.count >= out.requests * 3, "{:?}", out.stages);
    let engine = stage("node: engine search").expect("engine stage");
    assert!(engine.mean_ms <= calls.mean_ms, "{:?}", out.stages);

    let mixed = MixedOptions {
        search_rate: 40.0,
        upsert_rate: 5.0,
        batch: 32,
        k: 10,
        params: EXACT,
        duration: Duration::from_millis(1500),
        max_in_flight: 8,
        consistency: Some("majority".into()),
        id_offset: 0,
    };
    let m = loadtest::mixed::run(&client, &base, &queries, Some(&truth), &mixed)
        .await
        .expect("mixed");
    assert!(m.search.ok >= 20 && m.upsert.ok >= 2, "{m:?}");
    assert_eq!((m.search.errors, m.upsert.errors), (0, 0), "{m:?}");
    // Upserts rewrite rows with their own vectors: recall stays exact.
    assert_eq!(m.recall, Some(1.0));
    assert_eq!(client.count().await.expect("count"), 600);

    // A missing collection is counted as errors, not a panic or a hang.
    let missing = Client::new(&cluster.url, "nope", 2, Duration::from_secs(5)).expect("client");
    let out = loadtest::search::run(&missing, &queries, Some(&truth), &search_opts(2, 1, EXACT))
        .await
        .expect("search");
    assert_eq!((out.requests, out.errors), (0, 90), "{out:?}");
    assert!(out.first_error.unwrap_or_default().contains("404"));

    // The binary end to end: ingest with --create, then search, reports on disk.
    let bin = env!("CARGO_BIN_EXE_loadtest");
    let d = dir.path();
    let run = |args: Vec<String>| async move {
        let out = tokio::process::Command::new(bin)
            .args(&args)
            .output()
            .await
            .expect("spawn loadtest");
        assert!(
            out.status.success(),
            "loadtest {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let s = |p: &Path| p.display().to_string();
    let ingest_report = d.join("ingest.json");
    let table = run(vec![
        "ingest".into(),
        "--url".into(),
        cluster.url.clone(),
        "--collection".into(),
        "cli".into(),
        "--base".into(),
        s(&d.join("base.fvecs")),
        "--limit".into(),
        "300".into(),
        "--batch".into(),
        "50".into(),
        "--concurrency".into(),
        "3".into(),
        "--consistency".into(),
        "majority".into(),
        "--create".into(),
        "--shards".into(),
        "2".into(),
        "--rf".into(),
        "1".into(),
        "--m".into(),
        "16".into(),
        "--ef-construct".into(),
        "64".into(),
        "--no-progress".into(),
        "--report".into(),
        s(&ingest_report),
    ])
    .await;
    assert!(table.contains("| vectors |"), "{table}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&ingest_report).expect("report"))
        .expect("json");
    assert_eq!(r["figures"]["ingest"]["vectors"], 300);
    assert_eq!(r["params"]["shards"], 2);
    assert!(r["machine"]["cores"].as_u64().is_some());

    let search_report = d.join("search.json");
    run(vec![
        "search".into(),
        "--url".into(),
        cluster.url.clone(),
        "--collection".into(),
        "lt".into(),
        "--queries".into(),
        s(&d.join("queries.fvecs")),
        "--groundtruth".into(),
        s(&d.join("groundtruth.ivecs")),
        "--concurrency".into(),
        "1,3".into(),
        "--hnsw-ef".into(),
        "32,64".into(),
        "--queries-count".into(),
        "30".into(),
        "--warmup".into(),
        "3".into(),
        "--baseline".into(),
        "--base".into(),
        s(&d.join("base.fvecs")),
        "--m".into(),
        "16".into(),
        "--ef-construct".into(),
        "64".into(),
        "--threads".into(),
        "1".into(),
        "--report".into(),
        s(&search_report),
    ])
    .await;
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&search_report).expect("report"))
        .expect("json");
    let runs = r["figures"]["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 4);
    for run in runs {
        assert_eq!(run["cluster"]["errors"], 0, "{run}");
        assert_eq!(run["cluster"]["queries"], 30, "{run}");
        assert!(
            run["faiss"]["recall"].as_f64().unwrap_or(0.0) >= 0.9,
            "{run}"
        );
        assert!(
            run["ratio_qps_cluster_over_faiss"].as_f64().is_some(),
            "{run}"
        );
    }
    cluster.shutdown().await;
}
