//! Real UDP on 127.0.0.1 with OS-chosen ports: convergence, crash detection
//! (measured), restart.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use membership::testsuite::next_change_matching;
use membership::{ClusterChange, GossipTransport, Membership, MembershipConfig};
use protocol::{NodeId, SeqNo, ShardId};

use crate::helpers::*;

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Joins on a fixed port, retrying briefly while the previous incarnation's
/// socket is still being torn down.
async fn rejoin(
    node_id: u64,
    generation: u64,
    listen: SocketAddr,
    seeds: &[SocketAddr],
    i: u16,
) -> Membership {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut config = membership::testsuite::test_config(NodeId(node_id), listen)
            .with_seeds(seeds.iter().map(|s| s.to_string()));
        config.generation = Some(generation);
        match Membership::join(config, storage_node(i), GossipTransport::Udp).await {
            Ok(m) => return m,
            Err(e) if e.is_transient() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("rejoin failed: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_three_nodes_converge_detect_crash_and_restart() {
    init_tracing();
    let udp = GossipTransport::Udp;
    let a = join(1, 1, any_port(), &[], storage_node(1), &udp).await;
    let seeds = [a.gossip_addr()];
    let b = join(2, 1, any_port(), &seeds, storage_node(2), &udp).await;
    let mut c = join(3, 1, any_port(), &seeds, storage_node(3), &udp).await;
    assert_ne!(a.gossip_addr().port(), 0);
    for node in [&a, &b, &c] {
        wait_live(node, &[1, 2, 3]).await;
    }

    // Steady state: nobody flaps for a while (many detection timeouts).
    let mut a_changes = a.subscribe();
    let flap = next_change_matching(&mut a_changes, Duration::from_secs(3), |ch| {
        matches!(ch, ClusterChange::Remove(_))
    })
    .await;
    assert_eq!(flap, None, "a live node was declared dead");

    // Version-vector update over UDP.
    let mut b_changes = b.subscribe();
    c.set_replica_seq("docs", ShardId(0), SeqNo(7))
        .await
        .unwrap();
    let update = next_change_matching(&mut b_changes, CONVERGE, |ch| {
        matches!(ch, ClusterChange::Update(m) if m.node_id == NodeId(3) && m.replica_seq("docs", ShardId(0)) == Some(SeqNo(7)))
    })
    .await;
    assert!(update.is_some(), "update over UDP not seen");

    // Crash `c` (drop every handle: no goodbye, UDP traffic stops) three
    // times, measuring detection at `a` and `b`, and restart it each time.
    let c_addr = c.gossip_addr();
    let mut times = Vec::new();
    for generation in 2..=4 {
        let mut a_changes = a.subscribe();
        let mut b_changes = b.subscribe();
        let t0 = Instant::now();
        drop(c);
        for (name, changes) in [("a", &mut a_changes), ("b", &mut b_changes)] {
            let removed = next_change_matching(
                changes,
                DETECT,
                |ch| matches!(ch, ClusterChange::Remove(m) if m.node_id == NodeId(3)),
            )
            .await;
            assert!(
                removed.is_some(),
                "{name} did not see c die within {DETECT:?}"
            );
            times.push(t0.elapsed());
        }
        // The dead node's last version vector stays readable.
        let dead = a.dead_members().await;
        assert_eq!(ids(&dead), [3]);
        assert_eq!(dead[0].replica_seq("docs", ShardId(0)), Some(SeqNo(7)));

        c = rejoin(3, generation, c_addr, &seeds, 3).await;
        c.set_replica_seq("docs", ShardId(0), SeqNo(7))
            .await
            .unwrap();
        let added = next_change_matching(&mut a_changes, CONVERGE, |ch| {
            matches!(ch, ClusterChange::Add(m) if m.node_id == NodeId(3) && m.generation == generation)
        })
        .await;
        assert!(
            added.is_some(),
            "restarted c (generation {generation}) not added"
        );
        assert!(a.dead_members().await.is_empty());
        wait_live(&b, &[1, 2, 3]).await;
        // Let the failure detectors collect samples of the new incarnation:
        // until they have, the prior (one gossip interval) dominates and a
        // kill takes longer to detect (up to ~2 s right after a join).
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    times.sort();
    println!(
        "UDP crash detection (gossip {:?}, phi {}): min {:?} median {:?} max {:?} over {} observations",
        MembershipConfig::new(NodeId(1), "y", any_port()).gossip_interval,
        MembershipConfig::new(NodeId(1), "y", any_port()).phi_threshold,
        times[0],
        times[times.len() / 2],
        times[times.len() - 1],
        times.len()
    );
    for node in [a, b, c] {
        node.shutdown().await;
    }
}

#[tokio::test]
async fn join_refuses_a_port_in_use() {
    let a = join(
        1,
        1,
        any_port(),
        &[],
        storage_node(1),
        &GossipTransport::Udp,
    )
    .await;
    let config = membership::testsuite::test_config(NodeId(2), a.gossip_addr());
    let err = Membership::join(config, storage_node(2), GossipTransport::Udp)
        .await
        .expect_err("port in use");
    assert!(
        matches!(err, membership::MembershipError::Bind { .. }),
        "{err}"
    );
    a.shutdown().await;
}
