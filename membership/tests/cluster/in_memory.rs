//! Three nodes on chitchat's in-memory transport: convergence, updates,
//! graceful leave, crash, partition and restart.

use std::time::Instant;

use membership::testsuite::{next_change_matching, InMemoryNetwork};
use membership::{ClusterChange, GossipTransport, Membership, MembershipError};
use protocol::{NodeId, SeqNo, ShardId};

use crate::helpers::*;

async fn three_nodes(network: &InMemoryNetwork) -> (Membership, Membership, Membership) {
    let transport = GossipTransport::InMemory(network.clone());
    let a = join(1, 1, network.next_addr(), &[], storage_node(1), &transport).await;
    let seeds = [a.gossip_addr()];
    let b = join(
        2,
        1,
        network.next_addr(),
        &seeds,
        storage_node(2),
        &transport,
    )
    .await;
    let c = join(
        3,
        1,
        network.next_addr(),
        &seeds,
        storage_node(3),
        &transport,
    )
    .await;
    for node in [&a, &b, &c] {
        wait_live(node, &[1, 2, 3]).await;
    }
    (a, b, c)
}

#[tokio::test]
async fn three_nodes_converge_and_key_updates_arrive_as_update() {
    init_tracing();
    let network = InMemoryNetwork::new();
    let (a, b, c) = three_nodes(&network).await;

    // Everyone sees everyone's published values.
    let a_from_c = c.live_member(NodeId(1)).expect("a live at c");
    assert_eq!(a_from_c.rpc_addr, storage_node(1).rpc_addr);
    assert_eq!(a_from_c.http_addr, storage_node(1).http_addr);
    assert_eq!(a_from_c.gossip_addr, a.gossip_addr());

    // A subscriber starts with the current members…
    let mut changes = c.subscribe();
    let mut initial = Vec::new();
    for _ in 0..3 {
        match changes.recv().await {
            Some(ClusterChange::Add(m)) => initial.push(m.node_id.0),
            other => panic!("expected an initial Add, got {other:?}"),
        }
    }
    initial.sort();
    assert_eq!(initial, [1, 2, 3]);

    // …then a replica seq published by `a` arrives as an Update.
    let docs2 = ShardId(2);
    let t0 = Instant::now();
    a.set_replica_seq("docs", docs2, SeqNo(41)).await.unwrap();
    let change = next_change_matching(&mut changes, CONVERGE, |c| {
        matches!(c, ClusterChange::Update(m) if m.node_id == NodeId(1) && m.replica_seq("docs", docs2) == Some(SeqNo(41)))
    })
    .await;
    assert!(change.is_some(), "replica seq update did not arrive");
    println!("replica seq update propagated in {:?}", t0.elapsed());
    b.set_replica_seq("docs", docs2, SeqNo(39)).await.unwrap();
    let change = next_change_matching(&mut changes, CONVERGE, |c| {
        matches!(c, ClusterChange::Update(m) if m.node_id == NodeId(2) && m.replica_seq("docs", docs2) == Some(SeqNo(39)))
    })
    .await;
    assert!(change.is_some(), "b's replica seq did not arrive");
    let vv = c.shard_versions("docs", docs2);
    assert_eq!(
        vv.iter().collect::<Vec<_>>(),
        [(NodeId(1), SeqNo(41)), (NodeId(2), SeqNo(39))]
    );
    assert!(c.shard_versions("docs", ShardId(3)).is_empty());
    assert!(matches!(
        a.set_replica_seq("", docs2, SeqNo(1)).await,
        Err(MembershipError::InvalidConfig { .. })
    ));
    for node in [a, b, c] {
        node.shutdown().await;
    }
}

#[tokio::test]
async fn graceful_shutdown_is_a_prompt_remove_and_restart_is_an_add() {
    init_tracing();
    let network = InMemoryNetwork::new();
    let (a, b, c) = three_nodes(&network).await;
    let mut changes = a.subscribe();

    let mut b_own_changes = b.subscribe();
    let t0 = Instant::now();
    let b_addr = b.gossip_addr();
    b.shutdown().await;
    // The leaving node's own streams end.
    let ended = tokio::time::timeout(DETECT, async {
        while b_own_changes.recv().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "b's change stream did not end on shutdown");
    let removed = next_change_matching(
        &mut changes,
        DETECT,
        |c| matches!(c, ClusterChange::Remove(m) if m.node_id == NodeId(2)),
    )
    .await;
    assert!(removed.is_some(), "graceful leave not seen");
    println!("graceful leave seen after {:?}", t0.elapsed());
    assert!(matches!(
        b.set_replica_seq("docs", ShardId(0), SeqNo(1)).await,
        Err(MembershipError::ShutDown)
    ));

    // Once the failure detector agrees, `b` is listed as dead.
    let dead_seen = tokio::time::timeout(DETECT, async {
        loop {
            if a.dead_members()
                .await
                .iter()
                .any(|m| m.node_id == NodeId(2))
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(dead_seen.is_ok(), "b never listed dead");

    // Same id, next generation: an Add, and no longer dead.
    let transport = GossipTransport::InMemory(network.clone());
    let b2 = join(
        2,
        2,
        b_addr,
        &[a.gossip_addr()],
        storage_node(2),
        &transport,
    )
    .await;
    let added = next_change_matching(
        &mut changes,
        CONVERGE,
        |c| matches!(c, ClusterChange::Add(m) if m.node_id == NodeId(2) && m.generation == 2),
    )
    .await;
    assert!(added.is_some(), "restarted b not added");
    assert!(!a
        .dead_members()
        .await
        .iter()
        .any(|m| m.node_id == NodeId(2)));
    for node in [a, b2, c] {
        node.shutdown().await;
    }
}

#[tokio::test]
async fn crashed_and_partitioned_nodes_are_removed_and_come_back() {
    init_tracing();
    let network = InMemoryNetwork::new();
    let (a, b, c) = three_nodes(&network).await;
    let mut changes = a.subscribe();

    // Crash: `c` stops without a goodbye.
    let t0 = Instant::now();
    c.kill();
    let removed = next_change_matching(
        &mut changes,
        DETECT,
        |ch| matches!(ch, ClusterChange::Remove(m) if m.node_id == NodeId(3)),
    )
    .await;
    assert!(removed.is_some(), "crashed c not removed within {DETECT:?}");
    println!("in-memory: crash detected after {:?}", t0.elapsed());

    // Partition: `b`'s traffic is dropped.
    let t0 = Instant::now();
    network
        .isolate(b.gossip_addr(), &[a.gossip_addr(), c.gossip_addr()])
        .await;
    let removed = next_change_matching(
        &mut changes,
        DETECT,
        |ch| matches!(ch, ClusterChange::Remove(m) if m.node_id == NodeId(2)),
    )
    .await;
    assert!(
        removed.is_some(),
        "partitioned b not removed within {DETECT:?}"
    );
    println!("in-memory: partition detected after {:?}", t0.elapsed());
    let dead: Vec<_> = a
        .dead_members()
        .await
        .into_iter()
        .map(|m| m.node_id.0)
        .collect();
    assert_eq!(dead, [2, 3]);

    // Heal: the same incarnation of `b` comes back as an Add.
    network.heal(b.gossip_addr(), a.gossip_addr()).await;
    let added = next_change_matching(
        &mut changes,
        CONVERGE,
        |ch| matches!(ch, ClusterChange::Add(m) if m.node_id == NodeId(2) && m.generation == 1),
    )
    .await;
    assert!(added.is_some(), "healed b not added back");
    wait_live(&a, &[1, 2]).await;
    a.shutdown().await;
    b.shutdown().await;
}
