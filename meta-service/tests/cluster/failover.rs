use std::time::{Duration, Instant};

use meta_client::MetaReadConsistency;

use crate::util::{Cluster, SERIAL};
use crate::{collection_config, config_cmd, register_nodes};

/// Flags that keep the controller from changing the map on its own (the
/// fake storage nodes never heartbeat).
const QUIET: &[&str] = &["--node-dead-after-ms", "3600000"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_sigkill_new_leader_within_a_second_and_nothing_lost() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::start(3, QUIET);
    let (old_leader, old_term) = cluster
        .wait_leader(Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("no leader elected\n{}", cluster.log_tails()));

    // Commit some state, through the whole client (any member).
    let client = cluster.client();
    register_nodes(&client, 3).await;
    client
        .create_collection("docs", collection_config(4, 2))
        .await
        .expect("create collection");
    for i in 0..20 {
        client.submit(&config_cmd(i)).await.expect("update config");
    }
    let before = cluster.linearizable_map().await.map;
    assert_eq!(before.epoch.0, 24);

    // SIGKILL the leader and time the election of the next one.
    cluster.member(old_leader).kill();
    let killed_at = Instant::now();
    let mut new_leader = None;
    while killed_at.elapsed() < Duration::from_secs(5) && new_leader.is_none() {
        for m in cluster.members.iter().filter(|m| m.is_running()) {
            if let Some(h) = m.health().await {
                if h.state == "Leader" && h.term > old_term {
                    new_leader = Some((h.id, killed_at.elapsed()));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (new_leader, took) =
        new_leader.unwrap_or_else(|| panic!("no new leader in 5 s\n{}", cluster.log_tails()));
    println!(
        "leader {old_leader} SIGKILLed; member {new_leader} elected leader after {} ms",
        took.as_millis()
    );
    assert_ne!(new_leader, old_leader);
    assert!(
        took < Duration::from_secs(1),
        "failover took {took:?}\n{}",
        cluster.log_tails()
    );

    // Every committed command is still there.
    let after = cluster.linearizable_map().await.map;
    assert_eq!(after, before);

    // Writes continue, also when sent to a follower.
    let survivors = cluster.client_of_running();
    for i in 20..25 {
        survivors
            .submit(&config_cmd(i))
            .await
            .expect("write after failover");
    }
    let follower = cluster
        .members
        .iter()
        .find(|m| m.is_running() && m.id != new_leader)
        .expect("a running follower");
    let epoch = follower
        .client()
        .submit(&config_cmd(99))
        .await
        .expect("write via a follower");
    assert_eq!(epoch.0, 30);

    // The killed member comes back and catches up.
    cluster.member(old_leader).start();
    assert!(
        cluster
            .wait_epoch_everywhere(30, Duration::from_secs(15))
            .await,
        "restarted member did not catch up\n{}",
        cluster.log_tails()
    );
    let local = cluster
        .member(old_leader)
        .client()
        .cluster_map(MetaReadConsistency::Local)
        .await
        .expect("local map");
    assert_eq!(local.map, cluster.linearizable_map().await.map);
}
