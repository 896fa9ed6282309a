use std::time::{Duration, Instant};

use meta_client::{ErrorCode, MetaClientError, MetaReadConsistency};

use crate::config_cmd;
use crate::util::{Cluster, SERIAL};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_member_alone_cannot_commit() {
    let _serial = SERIAL.lock().await;
    let flags = [
        "--node-dead-after-ms",
        "3600000",
        "--write-timeout-ms",
        "1000",
    ];
    let mut cluster = Cluster::start(3, &flags);
    let (leader, _) = cluster
        .wait_leader(Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("no leader elected\n{}", cluster.log_tails()));
    let epoch = cluster
        .client()
        .submit(&config_cmd(0))
        .await
        .expect("write with quorum")
        .0;

    // Leave the leader alone: it still believes it leads, but nothing commits.
    let followers: Vec<u64> = cluster
        .members
        .iter()
        .map(|m| m.id)
        .filter(|&id| id != leader)
        .collect();
    for id in &followers {
        cluster.member(*id).kill();
    }
    let alone = cluster.member(leader).client();
    let started = Instant::now();
    let err = alone
        .submit(&config_cmd(1))
        .await
        .expect_err("a lone member must not commit");
    let took = started.elapsed();
    println!(
        "lone leader refused the write after {} ms: {err}",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(4), "bounded: {took:?}");
    assert!(
        matches!(&err, MetaClientError::Api { status: 503, body }
            if matches!(body.code, ErrorCode::Timeout | ErrorCode::NoLeader)),
        "{err:?}"
    );
    assert!(err.is_transient());
    let local = alone
        .cluster_map(MetaReadConsistency::Local)
        .await
        .expect("local read still answers");
    assert_eq!(local.map.epoch.0, epoch, "nothing was applied");
    // Nor does it hand out storage-node leases.
    let hb = protocol::cluster::Heartbeat {
        node: protocol::NodeId(1),
        epoch: Default::default(),
        replicas: vec![],
        reads_last_minute: 0,
    };
    assert!(
        alone.heartbeat(&hb).await.is_err(),
        "a lone leader acked a heartbeat"
    );
    let lin = alone.cluster_map(MetaReadConsistency::Linearizable).await;
    assert!(lin.is_err(), "no linearizable read without a quorum");

    // A follower alone (restarted without its peers) cannot commit either.
    cluster.member(leader).kill();
    let lone_follower = followers[0];
    cluster.member(lone_follower).start();
    let client = cluster
        .member(lone_follower)
        .client()
        .with_retry_for(Duration::ZERO);
    let started = Instant::now();
    let mut last = None;
    // It may not be up yet: bounded retries while the process starts.
    for _ in 0..50 {
        match client.submit(&config_cmd(2)).await {
            Err(MetaClientError::Unreachable { .. } | MetaClientError::NoAnswer { .. }) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => {
                last = Some(other);
                break;
            }
        }
    }
    let res = last.expect("the member answered");
    assert!(res.is_err(), "a lone follower committed: {res:?}");
    println!(
        "lone follower refused the write after {} ms: {:?}",
        started.elapsed().as_millis(),
        res
    );
}
