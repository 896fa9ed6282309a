use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::util::{Cluster, SERIAL};
use crate::{config_cmd, register_nodes};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grow_from_one_to_three_members_through_the_admin_api() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::start_bootstrap_first(3, &["--node-dead-after-ms", "3600000"]);
    let first = cluster.member(1).client();
    let deadline = Instant::now() + Duration::from_secs(15);
    while cluster
        .member(1)
        .health()
        .await
        .is_none_or(|h| h.state != "Leader")
    {
        assert!(
            Instant::now() < deadline,
            "member 1 did not lead\n{}",
            cluster.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    register_nodes(&first, 2).await;
    first
        .submit(&config_cmd(0))
        .await
        .expect("write on one member");

    // Members 2 and 3 are running but not part of any cluster yet.
    for id in [2, 3] {
        let addr = cluster.member(id).addr.clone();
        first.add_learner(id, &addr).await.expect("add learner");
    }
    first
        .change_membership(BTreeSet::from([1, 2, 3]), false)
        .await
        .expect("change membership");
    let (leader, _) = cluster
        .wait_leader(Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("members do not agree on a leader\n{}", cluster.log_tails()));
    assert_eq!(leader, 1);
    assert!(
        cluster
            .wait_epoch_everywhere(3, Duration::from_secs(10))
            .await
    );

    // The three now form a quorum without member 1.
    cluster.member(1).kill();
    let (new_leader, _) = cluster
        .wait_leader(Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("no leader among 2 and 3\n{}", cluster.log_tails()));
    assert_ne!(new_leader, 1);
    let epoch = cluster
        .client_of_running()
        .submit(&config_cmd(1))
        .await
        .expect("write without member 1");
    assert_eq!(epoch.0, 4);

    // Remove the dead member for good: {2, 3} is the whole cluster now.
    let survivors = cluster.client_of_running();
    survivors
        .change_membership(BTreeSet::from([2, 3]), false)
        .await
        .expect("remove member 1");
    let raft: serde_json::Value =
        reqwest::get(format!("http://{}/admin/raft", cluster.member(2).addr))
            .await
            .expect("GET /admin/raft")
            .json()
            .await
            .expect("raft metrics");
    let voters = raft["membership_config"]["membership"]["configs"].to_string();
    assert_eq!(voters, "[[2,3]]", "{raft}");
    assert_eq!(
        survivors
            .submit(&config_cmd(2))
            .await
            .expect("write after removal")
            .0,
        5
    );
}
