//! A node an operator removed while it was still running stays out: it
//! does not register again (it would come back as an empty live node and
//! be given shards), a restart with the same data directory is refused
//! with the reason, and only a fresh data directory joins again.

use std::time::Duration;

use protocol::cluster::ClusterCommand;
use protocol::NodeId;

use super::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_node_stays_out_until_it_has_a_new_data_directory() {
    let mut cluster = start(3).await;
    let gone = NodeId(3);
    cluster.refresh_map().await;
    let health_url = format!(
        "http://{}/health",
        cluster.map().nodes[&gone]
            .api_addr
            .clone()
            .expect("HTTP address")
    );
    cluster
        .meta_client
        .submit(&ClusterCommand::RemoveNode { node: gone })
        .await
        .expect("remove a node that holds nothing");

    // Its heartbeats are refused (unknown node), its registration too.
    let health = loop {
        let h: serde_json::Value = reqwest::get(&health_url)
            .await
            .expect("health")
            .json()
            .await
            .expect("JSON");
        if h["status"] == "removed" {
            break h;
        }
        cluster.refresh_map().await;
        assert!(
            !cluster.map().nodes.contains_key(&gone),
            "the removed node registered again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(health["node"], 3, "{health}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.refresh_map().await;
    assert!(!cluster.map().nodes.contains_key(&gone), "back in the map");

    // Restarted on the same data: refused, with the reason, and it exits.
    cluster.kill(gone);
    cluster.restart(gone).await;
    let status = cluster
        .exited(gone, Duration::from_secs(30))
        .expect("a removed node's restart exits");
    assert!(!status.success());
    let log = std::fs::read_to_string(cluster.log_path(gone)).expect("node log");
    assert!(log.contains("was removed from the cluster"), "{log}");

    // A new data directory is a new node with the same id.
    cluster.wipe_data(gone);
    cluster.restart(gone).await;
    cluster
        .wait_map(Duration::from_secs(30), |m| m.nodes.contains_key(&gone))
        .await;
    cluster.stop().await;
}
