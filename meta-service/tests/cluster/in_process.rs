use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use meta_client::{MetaClient, MetaReadConsistency};
use meta_service::{MetaConfig, MetaNode};

use crate::{collection_config, register_nodes};

/// The library use other crates' tests rely on: a member started inside
/// the test's runtime, driven through the typed client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_standalone_member() {
    let _serial = crate::util::SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let node = MetaNode::start(MetaConfig::new(1, addr.clone(), dir.path()), listener)
        .await
        .expect("start");
    node.initialize(BTreeMap::new()).await.expect("initialize");
    let client = MetaClient::new([addr]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !node.app.is_leader() {
        assert!(Instant::now() < deadline, "standalone member did not lead");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
