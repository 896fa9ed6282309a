//! One test per command and per refusal of the state machine.

use super::*;
use protocol::cluster::{NodeInfo, RebalancePlan, ShardMove};
use protocol::{CollectionConfig, Distance};
use std::collections::BTreeMap;

fn node(id: u64) -> NodeInfo {
    NodeInfo::new(NodeId(id), format!("127.0.0.1:{}", 9000 + id))
}

/// A map with nodes 1..=n registered (epoch n).
fn map_with_nodes(n: u64) -> ClusterMap {
    let mut map = ClusterMap::default();
    for id in 1..=n {
        apply(&mut map, &ClusterCommand::AddNode { node: node(id) }).unwrap();
    }
    map
}

fn config(shards: u32, rf: u32) -> CollectionConfig {
    let mut c = CollectionConfig::new(4, Distance::Cosine);
    c.shard_number = shards;
    c.replication_factor = rf;
    c
}

fn create(name: &str, shards: u32, rf: u32) -> ClusterCommand {
    ClusterCommand::CreateCollection {
        name: name.into(),
        config: config(shards, rf),
    }
}

/// Applies and expects a refusal that leaves the map untouched.
fn refused(map: &mut ClusterMap, cmd: ClusterCommand) -> CommandError {
    let before = map.clone();
    let err = apply(map, &cmd).unwrap_err();
    assert_eq!(*map, before, "a refused {} changed the map", cmd.kind());
    err
}

fn shard(map: &ClusterMap, c: &str, s: u32) -> ShardInfo {
    map.shard(c, ShardId(s)).unwrap().clone()
}

#[test]
fn create_collection_spreads_replicas_and_primaries_by_load() {
    let mut map = map_with_nodes(5);
    let epoch = apply(&mut map, &create("docs", 8, 3)).unwrap();
    assert_eq!(epoch, Epoch(6));
    let coll = &map.collections["docs"];
    assert_eq!(coll.shards.len(), 8);
    let mut replicas = BTreeMap::<NodeId, usize>::new();
    let mut primaries = BTreeMap::<NodeId, usize>::new();
    for s in coll.shards.values() {
        let nodes: Vec<NodeId> = s.nodes().collect();
        let distinct: std::collections::BTreeSet<_> = nodes.iter().collect();
        assert_eq!((nodes.len(), distinct.len()), (3, 3));
        assert_eq!(s.primary, Some(nodes[0]), "primary first");
        assert_eq!(s.term, Term(1));
        assert!(s.replicas.iter().all(|r| r.state == ReplicaState::Active));
        for n in nodes {
            *replicas.entry(n).or_default() += 1;
        }
        *primaries.entry(s.primary.unwrap()).or_default() += 1;
    }
    // 24 replicas on 5 nodes: 4 or 5 each; 8 primaries: 1 or 2 each.
    assert!(
        replicas.values().all(|c| (4..=5).contains(c)),
        "{replicas:?}"
    );
    assert!(
        primaries.values().all(|c| (1..=2).contains(c)),
        "{primaries:?}"
    );
    // A second collection fills the least-loaded nodes first.
    apply(&mut map, &create("more", 5, 1)).unwrap();
    let on: std::collections::BTreeSet<NodeId> = map.collections["more"]
        .shards
        .values()
        .map(|s| s.primary.unwrap())
        .collect();
    assert_eq!(on.len(), 5, "one shard per node when shards <= nodes");
}

#[test]
fn shards_spread_one_per_node_when_they_fit() {
    for (nodes, shards) in [(3u64, 3u32), (4, 3), (6, 6), (3, 2)] {
        let mut map = map_with_nodes(nodes);
        apply(&mut map, &create("docs", shards, 1)).unwrap();
        let on: std::collections::BTreeSet<NodeId> = map.collections["docs"]
            .shards
            .values()
            .map(|s| s.primary.unwrap())
            .collect();
        assert_eq!(on.len(), shards as usize, "{nodes} nodes, {shards} shards");
    }
}

#[test]
fn a_replication_factor_above_the_node_count_is_placed_as_far_as_it_fits() {
    let mut map = map_with_nodes(2);
    apply(&mut map, &create("big", 2, 3)).unwrap();
    for s in map.collections["big"].shards.values() {
        assert_eq!(s.replicas.len(), 2);
    }
    assert_eq!(map.collections["big"].config.replication_factor, 3);
}

#[test]
fn create_collection_refusals() {
    let mut map = map_with_nodes(2);
    apply(&mut map, &create("docs", 1, 1)).unwrap();
    assert!(matches!(
        refused(&mut map, create("docs", 1, 1)),
        CommandError::CollectionExists { .. }
    ));
    assert!(matches!(
        refused(&mut map, create("bad", 0, 1)),
        CommandError::Invalid { .. }
    ));
    assert!(matches!(
        refused(&mut map, create("a/b", 1, 1)),
        CommandError::Invalid { .. }
    ));
    assert!(matches!(
        refused(&mut map, create("", 1, 1)),
        CommandError::Invalid { .. }
    ));
}

#[test]
fn create_collection_skips_dead_and_draining_nodes() {
    let mut map = map_with_nodes(3);
    apply(
        &mut map,
        &ClusterCommand::SetNodeState {
            node: NodeId(1),
            state: NodeState::Dead,
            at_ms: 1,
        },
    )
    .unwrap();
    apply(
        &mut map,
        &ClusterCommand::SetNodeState {
            node: NodeId(2),
            state: NodeState::Draining,
            at_ms: 1,
        },
    )
    .unwrap();
    apply(&mut map, &create("docs", 4, 2)).unwrap();
    for s in map.collections["docs"].shards.values() {
        assert_eq!(s.primary, Some(NodeId(3)));
        assert_eq!(s.nodes().collect::<Vec<_>>(), vec![NodeId(3)]);
    }
    let mut none = map_with_nodes(0);
    assert_eq!(
        refused(&mut none, create("docs", 1, 1)),
        CommandError::NotEnoughNodes {
            needed: 1,
            available: 0
        }
    );
}

#[test]
fn delete_collection() {
    let mut map = map_with_nodes(1);
    apply(&mut map, &create("docs", 1, 1)).unwrap();
    apply(
        &mut map,
        &ClusterCommand::DeleteCollection {
            name: "docs".into(),
        },
    )
    .unwrap();
    assert!(map.collections.is_empty());
    assert_eq!(
        refused(
            &mut map,
            ClusterCommand::DeleteCollection {
                name: "docs".into()
            }
        ),
        CommandError::CollectionNotFound {
            name: "docs".into()
        }
    );
}

#[test]
fn create_and_delete_shard() {
    let mut map = map_with_nodes(3);
    apply(&mut map, &create("docs", 1, 2)).unwrap();
    let from_ring = ClusterCommand::CreateShard {
        collection: "docs".into(),
        shard: ShardId(1),
        replicas: None,
    };
    apply(&mut map, &from_ring).unwrap();
    assert_eq!(shard(&map, "docs", 1).replicas.len(), 2);
    let explicit = ClusterCommand::CreateShard {
        collection: "docs".into(),
        shard: ShardId(2),
        replicas: Some(vec![NodeId(3), NodeId(1)]),
    };
    apply(&mut map, &explicit).unwrap();
    let s = shard(&map, "docs", 2);
    assert_eq!(s.nodes().collect::<Vec<_>>(), vec![NodeId(3), NodeId(1)]);
    assert_eq!(s.primary, Some(NodeId(3)));

    assert!(matches!(
        refused(&mut map, explicit),
        CommandError::ShardExists { .. }
    ));
    let unknown_coll = ClusterCommand::CreateShard {
        collection: "nope".into(),
        shard: ShardId(0),
        replicas: None,
    };
    assert!(matches!(
        refused(&mut map, unknown_coll),
        CommandError::CollectionNotFound { .. }
    ));
    let unknown_node = ClusterCommand::CreateShard {
        collection: "docs".into(),
        shard: ShardId(3),
        replicas: Some(vec![NodeId(42)]),
    };
    assert_eq!(
        refused(&mut map, unknown_node),
        CommandError::NodeNotFound { node: NodeId(42) }
    );
    let dup = ClusterCommand::CreateShard {
        collection: "docs".into(),
        shard: ShardId(3),
        replicas: Some(vec![NodeId(1), NodeId(1)]),
    };
    assert!(matches!(
        refused(&mut map, dup),
        CommandError::Invalid { .. }
    ));
    let empty = ClusterCommand::CreateShard {
        collection: "docs".into(),
        shard: ShardId(3),
        replicas: Some(vec![]),
    };
    assert!(matches!(
        refused(&mut map, empty),
        CommandError::Invalid { .. }
    ));

    apply(
        &mut map,
        &ClusterCommand::DeleteShard {
            collection: "docs".into(),
            shard: ShardId(2),
        },
    )
    .unwrap();
    assert!(map.shard("docs", ShardId(2)).is_none());
    let again = ClusterCommand::DeleteShard {
        collection: "docs".into(),
        shard: ShardId(2),
    };
    assert!(matches!(
        refused(&mut map, again),
        CommandError::ShardNotFound { .. }
    ));
}

#[test]
fn add_node_registers_and_updates() {
    let mut map = map_with_nodes(1);
    assert_eq!(map.epoch, Epoch(1));
    let mut moved = node(1);
    moved.addr = "10.0.0.1:7000".into();
    moved.state = NodeState::Dead; // ignored: registering means alive
    apply(&mut map, &ClusterCommand::AddNode { node: moved }).unwrap();
    assert_eq!(map.nodes[&NodeId(1)].addr, "10.0.0.1:7000");
    assert_eq!(map.nodes[&NodeId(1)].state, NodeState::Alive);
    let mut bad = node(2);
    bad.addr.clear();
    assert!(matches!(
        refused(&mut map, ClusterCommand::AddNode { node: bad }),
        CommandError::Invalid { .. }
    ));
}

/// A removed node that is still running may not come back with the same
/// data directory (incarnation); a fresh one with the same id may, and an
/// old node that reports no incarnation is not held to it.
#[test]
fn a_removed_node_cannot_register_again_with_the_same_incarnation() {
    let mut map = ClusterMap::default();
    let first = NodeInfo {
        incarnation: 41,
        ..node(4)
    };
    apply(
        &mut map,
        &ClusterCommand::AddNode {
            node: first.clone(),
        },
    )
    .unwrap();
    apply(&mut map, &ClusterCommand::RemoveNode { node: NodeId(4) }).unwrap();
    assert_eq!(
        refused(&mut map, ClusterCommand::AddNode { node: first }),
        CommandError::NodeRemoved { node: NodeId(4) }
    );
    assert!(!map.nodes.contains_key(&NodeId(4)));
    let fresh = NodeInfo {
        incarnation: 42,
        ..node(4)
    };
    apply(&mut map, &ClusterCommand::AddNode { node: fresh }).unwrap();
    assert_eq!(map.nodes[&NodeId(4)].incarnation, 42);

    apply(&mut map, &ClusterCommand::AddNode { node: node(5) }).unwrap();
    apply(&mut map, &ClusterCommand::RemoveNode { node: NodeId(5) }).unwrap();
    apply(&mut map, &ClusterCommand::AddNode { node: node(5) }).unwrap();
}

#[test]
fn remove_node() {
    let mut map = map_with_nodes(2);
    apply(
        &mut map,
        &ClusterCommand::CreateShard {
            collection: "x".into(),
            shard: ShardId(0),
            replicas: None,
        },
    )
    .unwrap_err();
    apply(&mut map, &create("docs", 1, 1)).unwrap();
    let holder = shard(&map, "docs", 0).primary.unwrap();
    let other = if holder == NodeId(1) {
        NodeId(2)
    } else {
        NodeId(1)
    };
    assert_eq!(
        refused(&mut map, ClusterCommand::RemoveNode { node: holder }),
        CommandError::NodeHoldsReplicas {
            node: holder,
            replicas: 1
        }
    );
    apply(&mut map, &ClusterCommand::RemoveNode { node: other }).unwrap();
    assert!(!map.nodes.contains_key(&other));
    assert_eq!(
        refused(&mut map, ClusterCommand::RemoveNode { node: other }),
        CommandError::NodeNotFound { node: other }
    );
}

#[test]
fn set_node_state() {
    let mut map = map_with_nodes(1);
    let dead = ClusterCommand::SetNodeState {
        node: NodeId(1),
        state: NodeState::Dead,
        at_ms: 77,
    };
    apply(&mut map, &dead).unwrap();
    assert_eq!(map.nodes[&NodeId(1)].state, NodeState::Dead);
    assert_eq!(map.nodes[&NodeId(1)].state_since_ms, 77);
    assert!(matches!(
        refused(&mut map, dead),
        CommandError::Invalid { .. }
    ));
    let unknown = ClusterCommand::SetNodeState {
        node: NodeId(5),
        state: NodeState::Dead,
        at_ms: 1,
    };
    assert_eq!(
        refused(&mut map, unknown),
        CommandError::NodeNotFound { node: NodeId(5) }
    );
}

fn migrating_map() -> (ClusterMap, NodeId, NodeId) {
    let mut map = map_with_nodes(3);
    apply(&mut map, &create("docs", 1, 2)).unwrap();
    let s = shard(&map, "docs", 0);
    let from = s.primary.unwrap();
    let to = (1..=3).map(NodeId).find(|n| !s.holds(*n)).unwrap();
    let plan = RebalancePlan {
        moves: vec![ShardMove {
            collection: "docs".into(),
            shard: ShardId(0),
            from,
            to,
            kind: protocol::cluster::TransferKind::Move,
        }],
        created_at_ms: 5,
    };
    apply(&mut map, &ClusterCommand::RebalanceShards { plan }).unwrap();
    (map, from, to)
}

#[test]
fn rebalance_update_and_complete_migration() {
    let (mut map, from, to) = migrating_map();
    let s = shard(&map, "docs", 0);
    assert_eq!(s.replica(to).unwrap().state, ReplicaState::Initializing);
    let m = s.migration.unwrap();
    assert_eq!(
        (m.from, m.to, m.phase, m.started_at_ms),
        (from, to, MigrationPhase::Snapshot, 5)
    );

    let complete = ClusterCommand::CompleteMigration {
        collection: "docs".into(),
        shard: ShardId(0),
        to,
        verified: protocol::cluster::Verification {
            seq: protocol::SeqNo(3),
            points: 10,
            checksum: 77,
        },
        at_ms: 20,
    };
    assert!(matches!(
        refused(&mut map, complete.clone()),
        CommandError::TransferNotReady { .. }
    ));
    let update = ClusterCommand::UpdateMigration {
        collection: "docs".into(),
        shard: ShardId(0),
        to,
        phase: MigrationPhase::Verify,
        points_copied: 10,
        points_total: 10,
        bytes_copied: 160,
        bytes_total: 160,
        at_ms: 10,
    };
    let wrong_target = ClusterCommand::UpdateMigration {
        collection: "docs".into(),
        shard: ShardId(0),
        to: from,
        phase: MigrationPhase::Verify,
        points_copied: 10,
        points_total: 10,
        bytes_copied: 160,
        bytes_total: 160,
        at_ms: 10,
    };
    assert!(matches!(
        refused(&mut map, wrong_target),
        CommandError::NoMigration { .. }
    ));
    apply(&mut map, &update).unwrap();
    let m = shard(&map, "docs", 0).migration.unwrap();
    assert_eq!(
        (m.points_copied, m.bytes_copied, m.updated_at_ms),
        (10, 160, 10)
    );
    apply(&mut map, &complete).unwrap();
    let s = shard(&map, "docs", 0);
    assert!(s.migration.is_none());
    assert!(!s.holds(from));
    assert_eq!(s.replica(to).unwrap().state, ReplicaState::Active);
    assert_eq!(
        s.primary,
        Some(to),
        "the source was primary, so the target takes over"
    );
    assert_eq!(s.term, Term(2));
    assert_eq!((map.transfers.completed, map.transfers.failed), (1, 0));
    assert_eq!(map.transfers.recent[0].points_copied, 10);
    assert!(matches!(
        refused(&mut map, complete),
        CommandError::NoMigration { .. }
    ));
    assert!(matches!(
        refused(&mut map, update),
        CommandError::NoMigration { .. }
    ));
}

#[test]
fn abort_migration_drops_the_target() {
    let (mut map, from, to) = migrating_map();
    let abort = ClusterCommand::AbortMigration {
        collection: "docs".into(),
        shard: ShardId(0),
        reason: "operator".into(),
        at_ms: 9,
    };
    apply(&mut map, &abort).unwrap();
    let s = shard(&map, "docs", 0);
    assert!(s.holds(from) && !s.holds(to) && s.migration.is_none());
    assert_eq!(s.term, Term(1));
    assert_eq!((map.transfers.completed, map.transfers.failed), (0, 1));
    assert_eq!(
        map.transfers.recent[0].outcome,
        protocol::cluster::TransferOutcome::Failed {
            reason: "operator".into()
        }
    );
    assert!(matches!(
        refused(&mut map, abort),
        CommandError::NoMigration { .. }
    ));
}

#[test]
fn rebalance_refusals() {
    let (mut map, from, to) = migrating_map();
    let mv = |from, to| ClusterCommand::RebalanceShards {
        plan: RebalancePlan {
            moves: vec![ShardMove {
                collection: "docs".into(),
                shard: ShardId(0),
                from,
                to,
                kind: protocol::cluster::TransferKind::Move,
            }],
            created_at_ms: 0,
        },
    };
    assert!(matches!(
        refused(&mut map, mv(from, to)),
        CommandError::MigrationInProgress { .. }
    ));
    let empty = ClusterCommand::RebalanceShards {
        plan: RebalancePlan::default(),
    };
    assert!(matches!(
        refused(&mut map, empty),
        CommandError::Invalid { .. }
    ));

    let mut map = map_with_nodes(4);
    apply(&mut map, &create("docs", 1, 2)).unwrap();
    let s = shard(&map, "docs", 0);
    let holders: Vec<_> = s.nodes().collect();
    let free: Vec<_> = (1..=4).map(NodeId).filter(|n| !s.holds(*n)).collect();
    assert!(matches!(
        refused(&mut map, mv(free[0], free[1])),
        CommandError::NotAReplica { .. }
    ));
    assert!(matches!(
        refused(&mut map, mv(holders[0], holders[1])),
        CommandError::Invalid { .. }
    ));
    assert_eq!(
        refused(&mut map, mv(holders[0], NodeId(9))),
        CommandError::NodeNotFound { node: NodeId(9) }
    );
    apply(
        &mut map,
        &ClusterCommand::SetNodeState {
            node: free[0],
            state: NodeState::Dead,
            at_ms: 1,
        },
    )
    .unwrap();
    assert_eq!(
        refused(&mut map, mv(holders[0], free[0])),
        CommandError::NodeNotAlive { node: free[0] }
    );
    let twice = ClusterCommand::RebalanceShards {
        plan: RebalancePlan {
            moves: vec![
                ShardMove {
                    collection: "docs".into(),
                    shard: ShardId(0),
                    from: holders[0],
                    to: free[1],
                    kind: protocol::cluster::TransferKind::Move,
                },
                ShardMove {
                    collection: "docs".into(),
                    shard: ShardId(0),
                    from: holders[1],
                    to: free[1],
                    kind: protocol::cluster::TransferKind::Move,
                },
            ],
            created_at_ms: 0,
        },
    };
    assert!(matches!(
        refused(&mut map, twice),
        CommandError::MigrationInProgress { .. }
    ));
    let missing = ClusterCommand::RebalanceShards {
        plan: RebalancePlan {
            moves: vec![ShardMove {
                collection: "docs".into(),
                shard: ShardId(7),
                from: holders[0],
                to: free[1],
                kind: protocol::cluster::TransferKind::Move,
            }],
            created_at_ms: 0,
        },
    };
    assert!(matches!(
        refused(&mut map, missing),
        CommandError::ShardNotFound { .. }
    ));
}

#[test]
fn update_config() {
    let mut map = ClusterMap::default();
    apply(
        &mut map,
        &ClusterCommand::UpdateConfig {
            key: "k".into(),
            value: "v".into(),
        },
    )
    .unwrap();
    assert_eq!(map.config["k"], "v");
    assert_eq!(map.epoch, Epoch(1));
    let empty = ClusterCommand::UpdateConfig {
        key: String::new(),
        value: "v".into(),
    };
    assert!(matches!(
        refused(&mut map, empty),
        CommandError::Invalid { .. }
    ));
}

#[test]
fn set_replicas_keeps_states_and_moves_primary() {
    let mut map = map_with_nodes(4);
    apply(&mut map, &create("docs", 1, 2)).unwrap();
    let s = shard(&map, "docs", 0);
    let primary = s.primary.unwrap();
    let secondary = s.nodes().nth(1).unwrap();
    let free: Vec<_> = (1..=4).map(NodeId).filter(|n| !s.holds(*n)).collect();

    // Keep the primary, add a node: same term, the new replica initialises.
    let set = |nodes: Vec<NodeId>| ClusterCommand::SetReplicas {
        collection: "docs".into(),
        shard: ShardId(0),
        replicas: nodes,
    };
    apply(&mut map, &set(vec![primary, secondary, free[0]])).unwrap();
    let s = shard(&map, "docs", 0);
    assert_eq!(s.term, Term(1));
    assert_eq!(
        s.replica(free[0]).unwrap().state,
        ReplicaState::Initializing
    );

    // Dropping the primary is refused: it leaves by a transfer.
    assert!(matches!(
        refused(&mut map, set(vec![free[0], secondary])),
        CommandError::Invalid { .. }
    ));
    // Dropping a secondary keeps the term.
    apply(&mut map, &set(vec![primary, free[0]])).unwrap();
    let s = shard(&map, "docs", 0);
    assert_eq!((s.primary, s.term), (Some(primary), Term(1)));
    assert!(!s.holds(secondary));

    // Refusals.
    assert!(matches!(
        refused(&mut map, set(vec![free[0]])),
        CommandError::Invalid { .. }
    ));
    assert_eq!(
        refused(&mut map, set(vec![NodeId(99)])),
        CommandError::NodeNotFound { node: NodeId(99) }
    );
    assert!(matches!(
        refused(&mut map, set(vec![])),
        CommandError::Invalid { .. }
    ));
    let unknown = ClusterCommand::SetReplicas {
        collection: "docs".into(),
        shard: ShardId(5),
        replicas: vec![secondary],
    };
    assert!(matches!(
        refused(&mut map, unknown),
        CommandError::ShardNotFound { .. }
    ));
}

#[test]
fn set_replicas_refused_while_migrating() {
    let (mut map, from, _) = migrating_map();
    let cmd = ClusterCommand::SetReplicas {
        collection: "docs".into(),
        shard: ShardId(0),
        replicas: vec![from],
    };
    assert!(matches!(
        refused(&mut map, cmd),
        CommandError::MigrationInProgress { .. }
    ));
}

#[test]
fn set_replica_state() {
    let mut map = map_with_nodes(3);
    apply(&mut map, &create("docs", 1, 2)).unwrap();
    let s = shard(&map, "docs", 0);
    let primary = s.primary.unwrap();
    let secondary = s.nodes().nth(1).unwrap();
    let free = (1..=3).map(NodeId).find(|n| !s.holds(*n)).unwrap();
    let st = |node, state| ClusterCommand::SetReplicaState {
        collection: "docs".into(),
        shard: ShardId(0),
        node,
        state,
    };
    apply(&mut map, &st(secondary, ReplicaState::Initializing)).unwrap();
    assert_eq!(
        shard(&map, "docs", 0).replica(secondary).unwrap().state,
        ReplicaState::Initializing
    );
    assert!(matches!(
        refused(&mut map, st(secondary, ReplicaState::Initializing)),
        CommandError::Invalid { .. }
    ));
    assert!(matches!(
        refused(&mut map, st(primary, ReplicaState::Initializing)),
        CommandError::Invalid { .. }
    ));
    assert!(matches!(
        refused(&mut map, st(free, ReplicaState::Active)),
        CommandError::NotAReplica { .. }
    ));
    apply(&mut map, &st(secondary, ReplicaState::Active)).unwrap();
}

#[test]
fn promote_primary() {
    let mut map = map_with_nodes(3);
    apply(&mut map, &create("docs", 1, 3)).unwrap();
    let s = shard(&map, "docs", 0);
    let nodes: Vec<_> = s.nodes().collect();
    let promote = |node, expected_term| ClusterCommand::PromotePrimary {
        collection: "docs".into(),
        shard: ShardId(0),
        node,
        expected_term,
    };
    let epoch = map.epoch;
    apply(&mut map, &promote(nodes[1], Some(Term(1)))).unwrap();
    let s = shard(&map, "docs", 0);
    assert_eq!(
        (s.primary, s.term, map.epoch),
        (Some(nodes[1]), Term(2), Epoch(epoch.0 + 1))
    );

    // A stale controller's second promotion is refused.
    assert_eq!(
        refused(&mut map, promote(nodes[2], Some(Term(1)))),
        CommandError::TermMismatch {
            collection: "docs".into(),
            shard: ShardId(0),
            expected: Term(1),
            actual: Term(2)
        }
    );
    let st = ClusterCommand::SetReplicaState {
        collection: "docs".into(),
        shard: ShardId(0),
        node: nodes[2],
        state: ReplicaState::Initializing,
    };
    apply(&mut map, &st).unwrap();
    assert!(matches!(
        refused(&mut map, promote(nodes[2], None)),
        CommandError::ReplicaNotInSync { .. }
    ));
    apply(
        &mut map,
        &ClusterCommand::SetNodeState {
            node: nodes[0],
            state: NodeState::Dead,
            at_ms: 1,
        },
    )
    .unwrap();
    assert_eq!(
        refused(&mut map, promote(nodes[0], None)),
        CommandError::NodeNotAlive { node: nodes[0] }
    );
    apply(&mut map, &ClusterCommand::AddNode { node: node(4) }).unwrap();
    assert!(matches!(
        refused(&mut map, promote(NodeId(4), None)),
        CommandError::NotAReplica { .. }
    ));
    let missing = ClusterCommand::PromotePrimary {
        collection: "x".into(),
        shard: ShardId(0),
        node: nodes[0],
        expected_term: None,
    };
    assert!(matches!(
        refused(&mut map, missing),
        CommandError::CollectionNotFound { .. }
    ));
}

#[test]
fn every_accepted_command_bumps_the_epoch_by_one() {
    let mut map = map_with_nodes(3);
    let mut epoch = map.epoch;
    for cmd in [
        create("a", 2, 2),
        ClusterCommand::UpdateConfig {
            key: "x".into(),
            value: "1".into(),
        },
        ClusterCommand::CreateShard {
            collection: "a".into(),
            shard: ShardId(9),
            replicas: None,
        },
        ClusterCommand::DeleteShard {
            collection: "a".into(),
            shard: ShardId(9),
        },
        ClusterCommand::DeleteCollection { name: "a".into() },
    ] {
        let e = apply(&mut map, &cmd).unwrap();
        assert_eq!(e, Epoch(epoch.0 + 1));
        assert_eq!(map.epoch, e);
        epoch = e;
    }
}

#[test]
fn if_epoch_is_a_compare_and_set() {
    let mut map = map_with_nodes(1);
    let guarded = |epoch: u64, key: &str| ClusterCommand::IfEpoch {
        epoch: Epoch(epoch),
        command: Box::new(ClusterCommand::UpdateConfig {
            key: key.into(),
            value: "v".into(),
        }),
    };
    assert_eq!(apply(&mut map, &guarded(1, "a")).unwrap(), Epoch(2));
    assert_eq!(
        refused(&mut map, guarded(1, "b")),
        CommandError::EpochMismatch {
            expected: Epoch(1),
            actual: Epoch(2)
        }
    );
    // The inner command's own refusal comes through unchanged.
    let inner_refused = ClusterCommand::IfEpoch {
        epoch: Epoch(2),
        command: Box::new(ClusterCommand::DeleteCollection { name: "x".into() }),
    };
    assert_eq!(
        refused(&mut map, inner_refused),
        CommandError::CollectionNotFound { name: "x".into() }
    );
    let nested = ClusterCommand::IfEpoch {
        epoch: Epoch(2),
        command: Box::new(guarded(2, "c")),
    };
    assert!(matches!(
        refused(&mut map, nested),
        CommandError::Invalid { .. }
    ));
    assert_eq!(guarded(2, "c").kind(), "update_config");
}

#[test]
fn re_registering_a_dead_node_marks_its_replicas_behind() {
    let mut map = map_with_nodes(3);
    apply(&mut map, &create("docs", 1, 3)).unwrap();
    let s = shard(&map, "docs", 0);
    let (primary, other) = (s.primary.unwrap(), s.nodes().nth(1).unwrap());
    for n in [primary, other] {
        apply(
            &mut map,
            &ClusterCommand::SetNodeState {
                node: n,
                state: NodeState::Dead,
                at_ms: 1,
            },
        )
        .unwrap();
    }
    apply(
        &mut map,
        &ClusterCommand::AddNode {
            node: node(other.0),
        },
    )
    .unwrap();
    apply(
        &mut map,
        &ClusterCommand::AddNode {
            node: node(primary.0),
        },
    )
    .unwrap();
    let s = shard(&map, "docs", 0);
    assert_eq!(map.nodes[&other].state, NodeState::Alive);
    assert_eq!(s.replica(other).unwrap().state, ReplicaState::Initializing);
    assert_eq!(
        s.replica(primary).unwrap().state,
        ReplicaState::Active,
        "the primary stays"
    );

    // A draining node that restarts stays draining.
    apply(
        &mut map,
        &ClusterCommand::SetNodeState {
            node: other,
            state: NodeState::Draining,
            at_ms: 2,
        },
    )
    .unwrap();
    apply(
        &mut map,
        &ClusterCommand::AddNode {
            node: node(other.0),
        },
    )
    .unwrap();
    assert_eq!(map.nodes[&other].state, NodeState::Draining);
}

#[test]
fn dead_node_marked_alive_again_has_its_replicas_behind() {
    let mut map = map_with_nodes(2);
    let replicas = Some(vec![NodeId(2), NodeId(1)]);
    let create_shard = ClusterCommand::CreateShard {
        collection: "x".into(),
        shard: ShardId(0),
        replicas,
    };
    apply(&mut map, &create("x", 1, 1)).unwrap();
    apply(
        &mut map,
        &ClusterCommand::DeleteShard {
            collection: "x".into(),
            shard: ShardId(0),
        },
    )
    .unwrap();
    apply(&mut map, &create_shard).unwrap();
    let state = |node, state| ClusterCommand::SetNodeState {
        node,
        state,
        at_ms: 5,
    };
    apply(&mut map, &state(NodeId(1), NodeState::Dead)).unwrap();
    apply(&mut map, &state(NodeId(1), NodeState::Alive)).unwrap();
    assert_eq!(
        shard(&map, "x", 0).replica(NodeId(1)).unwrap().state,
        ReplicaState::Initializing
    );
    // A dead primary coming back keeps its role (it was not replaced).
    apply(&mut map, &state(NodeId(2), NodeState::Dead)).unwrap();
    apply(&mut map, &state(NodeId(2), NodeState::Alive)).unwrap();
    assert_eq!(
        shard(&map, "x", 0).replica(NodeId(2)).unwrap().state,
        ReplicaState::Active
    );
}

#[test]
fn a_collection_created_again_is_another_incarnation() {
    let mut map = map_with_nodes(3);
    let first = apply(&mut map, &create("c", 1, 1)).unwrap();
    assert_eq!(map.collections["c"].created_epoch, first);
    apply(
        &mut map,
        &ClusterCommand::DeleteCollection { name: "c".into() },
    )
    .unwrap();
    let second = apply(&mut map, &create("c", 1, 1)).unwrap();
    assert_eq!(map.collections["c"].created_epoch, second);
    assert!(second > first);
}

/// Only the controller knows how far each replica got, so only it may pick
/// the successor of a dead primary (`controller::failover_candidate`, then
/// `PromotePrimary`); a `SetReplicas` dropping a dead primary is refused,
/// and so is one dropping a live primary (it leaves by a verified transfer).
#[test]
fn set_replicas_never_elects_around_the_failover_rule() {
    let mut map = map_with_nodes(4);
    apply(&mut map, &create("docs", 1, 3)).unwrap();
    let s = shard(&map, "docs", 0);
    let nodes: Vec<_> = s.nodes().collect();
    let free = (1..=4).map(NodeId).find(|n| !s.holds(*n)).unwrap();
    let set = |replicas: Vec<NodeId>| ClusterCommand::SetReplicas {
        collection: "docs".into(),
        shard: ShardId(0),
        replicas,
    };
    let dead = |node| ClusterCommand::SetNodeState {
        node,
        state: NodeState::Dead,
        at_ms: 1,
    };

    // A live primary dropped: refused (the list's first replica, here on
    // a dead node, or any other, may lack acknowledged writes).
    let mut live_primary = map.clone();
    apply(&mut live_primary, &dead(nodes[1])).unwrap();
    assert!(matches!(
        refused(&mut live_primary, set(vec![free, nodes[1], nodes[2]])),
        CommandError::Invalid { .. }
    ));

    // A dead primary dropped: refused, whoever is left.
    apply(&mut map, &dead(nodes[0])).unwrap();
    assert!(matches!(
        refused(&mut map, set(vec![free, nodes[1], nodes[2]])),
        CommandError::Invalid { .. }
    ));
    // Promoted first, its old slot can go.
    let promote = ClusterCommand::PromotePrimary {
        collection: "docs".into(),
        shard: ShardId(0),
        node: nodes[2],
        expected_term: Some(Term(1)),
    };
    apply(&mut map, &promote).unwrap();
    apply(&mut map, &set(vec![free, nodes[1], nodes[2]])).unwrap();
    let s = shard(&map, "docs", 0);
    assert_eq!((s.primary, s.term), (Some(nodes[2]), Term(2)));
}
