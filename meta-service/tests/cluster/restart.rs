use std::time::Duration;

use meta_client::MetaReadConsistency;

use crate::util::{Cluster, SERIAL};
use crate::{collection_config, config_cmd, register_nodes};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_restart_all_three_restores_the_exact_state() {
    let _serial = SERIAL.lock().await;
    // A snapshot every 10 entries, keeping 5 behind it: the state survives
    // through snapshot + log tail, not a full log.
    let flags = [
        "--node-dead-after-ms",
        "3600000",
        "--snapshot-interval",
        "10",
        "--keep-logs-after-snapshot",
        "5",
    ];
    let mut cluster = Cluster::start(3, &flags);
    cluster
        .wait_leader(Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("no leader elected\n{}", cluster.log_tails()));
    let client = cluster.client();
    register_nodes(&client, 4).await;
    client
        .create_collection("a", collection_config(3, 3))
        .await
        .expect("create a");
    client
        .create_collection("b", collection_config(2, 1))
        .await
        .expect("create b");
    for i in 0..40 {
        client.submit(&config_cmd(i)).await.expect("update config");
    }
    client.delete_collection("b").await.expect("delete b");
    let before = cluster.linearizable_map().await.map;
    assert_eq!(before.epoch.0, 47);
    assert!(
        cluster
            .wait_epoch_everywhere(47, Duration::from_secs(10))
            .await
    );

    let snapshots = cluster
        .members
        .iter()
        .filter(|m| m.dir.join("data/sm/snapshot.bin").exists())
        .count();
    assert_eq!(snapshots, 3, "every member built a snapshot");

    for m in &mut cluster.members {
        m.kill();
    }
    for m in &mut cluster.members {
        m.start();
    }
    cluster
        .wait_leader(Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("no leader after restart\n{}", cluster.log_tails()));
    let after = cluster.linearizable_map().await.map;
    assert_eq!(after, before, "state after restarting every member");
    assert!(
        cluster
            .wait_epoch_everywhere(47, Duration::from_secs(10))
            .await
    );
    for m in &cluster.members {
        let local = m
            .client()
            .cluster_map(MetaReadConsistency::Local)
            .await
            .expect("local map");
        assert_eq!(local.map, before, "member {}", m.id);
    }
    // And it keeps working.
    assert_eq!(
        client
            .submit(&config_cmd(1000))
            .await
            .expect("write after restart")
            .0,
        48
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_member_catches_up_from_a_snapshot() {
    let _serial = SERIAL.lock().await;
    let flags = [
        "--node-dead-after-ms",
        "3600000",
        "--snapshot-interval",
        "10",
        "--keep-logs-after-snapshot",
        "0",
    ];
    let mut cluster = Cluster::start(3, &flags);
    let (leader, _) = cluster
        .wait_leader(Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("no leader elected\n{}", cluster.log_tails()));
    let client = cluster.client();
    register_nodes(&client, 3).await;
    assert!(
        cluster
            .wait_epoch_everywhere(3, Duration::from_secs(10))
            .await
    );

    // A follower misses 40 commands; the others snapshot and purge the log
    // it would need.
    let lagging = cluster
        .members
        .iter()
        .map(|m| m.id)
        .find(|&id| id != leader)
        .expect("a follower");
    cluster.member(lagging).kill();
    let survivors = cluster.client_of_running();
    for i in 0..40 {
        survivors
            .submit(&config_cmd(i))
            .await
            .expect("write with one member down");
    }
    let expected = cluster.linearizable_map().await.map;
    assert_eq!(expected.epoch.0, 43);

    cluster.member(lagging).start();
    assert!(
        cluster
            .wait_epoch_everywhere(43, Duration::from_secs(15))
            .await,
        "lagging member did not catch up\n{}",
        cluster.log_tails()
    );
    let local = cluster
        .member(lagging)
        .client()
        .cluster_map(MetaReadConsistency::Local)
        .await
        .expect("local map");
    assert_eq!(local.map, expected);
    let m = cluster.member(lagging);
    let log = std::fs::read_to_string(m.dir.join(format!("member-{lagging}.2.log"))).expect("log");
    assert!(
        log.contains("snapshot installed"),
        "caught up without a snapshot?\n{}",
        cluster.log_tails()
    );
}
