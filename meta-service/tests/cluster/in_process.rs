use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use meta_client::{MetaClient, MetaReadConsistency};
use meta_service::{MetaConfig, MetaNode};

use crate::{collection_config, register_nodes};

/// A single-member cluster started inside the test's runtime, once it
/// leads; its address, and the directory to keep while it runs.
async fn leading_standalone_member() -> (MetaNode, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let node = MetaNode::start(MetaConfig::new(1, addr.clone(), dir.path()), listener)
        .await
        .expect("start");
    node.initialize(BTreeMap::new()).await.expect("initialize");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !node.app.is_leader() {
        assert!(Instant::now() < deadline, "standalone member did not lead");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (node, addr, dir)
}

/// The library use other crates' tests rely on: a member started inside
/// the test's runtime, driven through the typed client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_standalone_member() {
    let _serial = crate::util::SERIAL.lock().await;
    let (node, addr, _dir) = leading_standalone_member().await;
    let client = MetaClient::new([addr]);
    register_nodes(&client, 3).await;
    client
        .create_collection("docs", collection_config(4, 3))
        .await
        .expect("create");
    let view = client
        .cluster_map(MetaReadConsistency::Linearizable)
        .await
        .expect("map");
    assert!(view.linearizable);
    assert_eq!(view.map.collections["docs"].shards.len(), 4);
    node.shutdown().await;
}

/// A presence request is held by the leader and its close is counted as a
/// lost node; a follower-free member that shuts down answers it at once
/// instead of holding its graceful shutdown for the 30 s hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_held_its_close_is_counted_and_shutdown_does_not_wait_for_it() {
    let _serial = crate::util::SERIAL.lock().await;
    let (node, addr, _dir) = leading_standalone_member().await;
    let client = MetaClient::new([addr.clone()]);
    register_nodes(&client, 2).await;
    let metrics = || async {
        reqwest::get(format!("http://{addr}/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    };
    let lost = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("meta_presence_lost_total "))
            .map_or(0.0, |v| v.trim().parse::<f64>().expect("a number"))
    };

    // Held, then dropped by the client (as a killed process's kernel would).
    let held = tokio::spawn({
        let client = client.clone();
        async move { client.presence(0, protocol::NodeId(1)).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !held.is_finished(),
        "the leader answered a presence request at once"
    );
    held.abort();
    let deadline = Instant::now() + Duration::from_secs(5);
    while lost(&metrics().await) < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the closed presence was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A node the map does not know is refused.
    let unknown = client.presence(0, protocol::NodeId(9)).await;
    assert!(unknown.is_err_and(|e| e.refusal().is_some()));

    // Held again; shutdown answers it and does not wait out the hold.
    let held = tokio::spawn({
        let client = client.clone();
        async move { client.presence(0, protocol::NodeId(2)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    node.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown waited {:?} for a held presence request",
        started.elapsed()
    );
    let answered = held.await.expect("join");
    assert!(answered.is_ok(), "{answered:?}");
}
