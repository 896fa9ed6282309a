//! What an operator reads of a `storage-node` process: its log (stderr to
//! a file, as under a process manager: plain text without colour codes, or
//! JSON lines when `LOG_FORMAT=json`) and the disk gauges on `/metrics`.

use lifecycle::logging::check;
use protocol::NodeId;
use testsuite::{ProcessCluster, ProcessOptions};

/// One node until it is alive in the map (it has logged its start and its
/// registration by then); its log so far and its `/metrics`.
async fn one_node(env: &[(&str, &str)]) -> (String, String) {
    let mut options = ProcessOptions::new(env!("CARGO_BIN_EXE_storage-node"), 1);
    options.env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut cluster = ProcessCluster::start(options).await;
    let metrics = cluster.http_get(NodeId(1), "/metrics").await;
    let log = std::fs::read_to_string(cluster.log_path(NodeId(1))).expect("node log");
    cluster.stop().await;
    (log, metrics)
}

/// The value of an unlabelled gauge in Prometheus text.
fn gauge(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_logs_without_colour_or_as_json_and_exports_its_disk_space() {
    let (text, metrics) = one_node(&[("LOG_FORMAT", "text")]).await;
    check::plain_text(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));

    let free = gauge(&metrics, "storage_data_dir_free_bytes");
    let total = gauge(&metrics, "storage_data_dir_total_bytes");
    assert!(
        matches!((free, total), (Some(f), Some(t)) if t > 0.0 && f <= t),
        "disk gauges {free:?} / {total:?} in:\n{metrics}"
    );

    let (json, _) = one_node(&[("LOG_FORMAT", "json")]).await;
    check::json_lines(&json).unwrap_or_else(|e| panic!("{e}\n{json}"));
}
