//! The controller's decisions, as pure functions over a map.

use super::*;
use protocol::cluster::{NodeInfo, RebalanceSettings, ReplicaReport};
use protocol::{CollectionConfig, Distance};

const POLICY: Policy = Policy {
    dead_after: DeadAfter::fixed(1_000),
    // Tests of other rules treat nodes never heard from like silent ones;
    // `new_leader_gives_every_node_a_grace_period` sets its own.
    new_leader_grace_ms: 0,
    node_dead_backstop_ms: 3_000,
    replica_replace_after_ms: 10_000,
};

/// Nodes 1..=n and a collection `c` with one shard at replication factor 3.
fn cluster(n: u64) -> ClusterMap {
    let mut map = ClusterMap::default();
    for id in 1..=n {
        let node = NodeInfo::new(NodeId(id), format!("127.0.0.1:{id}"));
        apply(&mut map, &ClusterCommand::AddNode { node }).unwrap();
    }
    let mut config = CollectionConfig::new(4, Distance::Dot);
    config.replication_factor = 3;
    apply(
        &mut map,
        &ClusterCommand::CreateCollection {
            name: "c".into(),
            config,
        },
    )
    .unwrap();
    map
}

fn heartbeat(live: &mut Liveness, node: NodeId, at: u64, term: u64, seq: u64) {
    let hb = Heartbeat {
        node,
        epoch: Default::default(),
        replicas: vec![ReplicaReport {
            collection: "c".into(),
            shard: ShardId(0),
            applied: SeqNo(seq),
            term: Term(term),
            points: 0,
            bytes: 0,
            poisoned: false,
            lag_ms: None,
        }],
        reads_last_minute: 0,
    };
    live.record(&hb, at, POLICY.dead_after);
}

/// A heartbeat from a node that holds no replica yet.
fn heartbeat_empty(live: &mut Liveness, node: NodeId, at: u64) {
    live.record(
        &Heartbeat {
            node,
            epoch: Default::default(),
            replicas: vec![],
            reads_last_minute: 0,
        },
        at,
        POLICY.dead_after,
    );
}

/// Plans, applies, and returns the commands without their epoch guards.
fn run(map: &mut ClusterMap, live: &Liveness, now: u64) -> Vec<ClusterCommand> {
    let cmds = plan(map, live, now, &POLICY);
    for c in &cmds {
        assert!(
            matches!(c, ClusterCommand::IfEpoch { epoch, .. } if *epoch == map.epoch),
            "{c:?}"
        );
        apply(map, c).unwrap();
    }
    cmds.iter().map(|c| c.unguarded().clone()).collect()
}

fn unguarded(cmds: Vec<ClusterCommand>) -> Vec<ClusterCommand> {
    cmds.iter().map(|c| c.unguarded().clone()).collect()
}

#[test]
fn a_plan_made_on_a_stale_map_is_refused() {
    let mut map = cluster(3);
    let live = Liveness::default();
    let stale = plan(&map, &live, 5_000, &POLICY);
    assert!(stale.len() > 1);
    // Something else changes the map first: the plan's first command is
    // refused, and the loop (`run`) stops there and re-plans, because the
    // guards of the later commands assume the earlier ones applied.
    apply(
        &mut map,
        &ClusterCommand::UpdateConfig {
            key: "k".into(),
            value: "v".into(),
        },
    )
    .unwrap();
    let before = map.clone();
    assert!(matches!(
        apply(&mut map, &stale[0]),
        Err(protocol::cluster::CommandError::EpochMismatch { .. })
    ));
    assert_eq!(map, before);
}

fn shard(map: &ClusterMap) -> protocol::cluster::ShardInfo {
    map.shard("c", ShardId(0)).unwrap().clone()
}

#[test]
fn healthy_cluster_needs_nothing() {
    let map = cluster(3);
    let mut live = Liveness::default();
    for n in 1..=3 {
        heartbeat(&mut live, NodeId(n), 500, 1, 10);
    }
    assert!(plan(&map, &live, 1_000, &POLICY).is_empty());
}

/// The nodes `cmds` mark dead.
fn marked_dead(cmds: &[ClusterCommand]) -> Vec<NodeId> {
    cmds.iter()
        .filter_map(|c| match c {
            ClusterCommand::SetNodeState {
                node,
                state: NodeState::Dead,
                ..
            } => Some(*node),
            _ => None,
        })
        .collect()
}

#[test]
fn new_leader_gives_every_node_a_grace_period() {
    let map = cluster(3);
    const POLICY: Policy = Policy {
        new_leader_grace_ms: 2_000,
        ..self::POLICY
    };
    let mut live = Liveness::default();
    live.reset(10_000);
    // Nobody heard from yet, but the leader only took over 500 ms ago.
    assert!(plan(&map, &live, 10_500, &POLICY).is_empty());
    // Past the ordinary grace (1 s) the nodes may still be looking for the
    // new leader: the longer one (2 s) applies to nodes not heard from.
    // Node 1 found the new leader and beats every 100 ms; 2 and 3 never do.
    for at in (10_100..=11_500).step_by(100) {
        heartbeat(&mut live, NodeId(1), at, 1, 10);
    }
    assert!(marked_dead(&unguarded(plan(&map, &live, 11_500, &POLICY))).is_empty());
    for at in (11_600..=12_100).step_by(100) {
        heartbeat(&mut live, NodeId(1), at, 1, 10);
    }
    // After the longer grace the silent ones are dead.
    assert_eq!(
        marked_dead(&unguarded(plan(&map, &live, 12_101, &POLICY))),
        vec![NodeId(2), NodeId(3)]
    );
}

/// A leader that stalls (a starved CPU, a slow quorum behind the heartbeat
/// handler) sees every node silent at once: that is the leader's fault,
/// not theirs, so nobody is marked dead until the backstop.
#[test]
fn a_leader_that_hears_nobody_marks_nobody_dead_before_the_backstop() {
    let map = cluster(3);
    let mut live = Liveness::default();
    live.hearing_gap_cap_ms = Some(300);
    for n in 1..=3 {
        heartbeat(&mut live, NodeId(n), 1_000, 1, 10);
    }
    assert!(unguarded(plan(&map, &live, 2_500, &POLICY)).is_empty());
    // The stall ends with node 1's beat: the other two are behind it by
    // less than the grace, so still alive.
    heartbeat(&mut live, NodeId(1), 3_500, 1, 10);
    assert!(unguarded(plan(&map, &live, 3_500, &POLICY)).is_empty());
    // Silent past the backstop (3 s here): dead, whatever else was heard.
    let cmds = unguarded(plan(&map, &live, 4_001, &POLICY));
    assert_eq!(marked_dead(&cmds), vec![NodeId(2), NodeId(3)]);
}

/// The other side of the stall rule: a node that stops beating while the
/// others go on is dead after the ordinary grace.
#[test]
fn a_node_silent_while_the_others_beat_is_dead_after_the_grace() {
    let map = cluster(3);
    let mut live = Liveness::default();
    live.hearing_gap_cap_ms = Some(300);
    for at in (0..=2_000).step_by(100) {
        for n in 1..=3 {
            if n != 3 || at <= 1_000 {
                heartbeat(&mut live, NodeId(n), at, 1, 10);
            }
        }
    }
    assert!(unguarded(plan(&map, &live, 1_900, &POLICY)).is_empty());
    let cmds = unguarded(plan(&map, &live, 2_001, &POLICY));
    assert!(
        cmds.iter().any(|c| matches!(
            c,
            ClusterCommand::SetNodeState {
                node: NodeId(3),
                state: NodeState::Dead,
                ..
            }
        )),
        "{cmds:?}"
    );
}

#[test]
fn dead_primary_fails_over_to_most_up_to_date_replica() {
    let mut map = cluster(3);
    let s = shard(&map);
    let nodes: Vec<_> = s.nodes().collect();
    let (primary, second, third) = (nodes[0], nodes[1], nodes[2]);
    let mut live = Liveness::default();
    heartbeat(&mut live, primary, 0, 1, 100);
    heartbeat(&mut live, second, 1_500, 1, 90);
    heartbeat(&mut live, third, 1_500, 1, 95);
    let cmds = run(&mut map, &live, 2_000);
    assert_eq!(
        cmds,
        vec![ClusterCommand::SetNodeState {
            node: primary,
            state: NodeState::Dead,
            at_ms: 2_000
        }],
        "reports older than the death may predate acknowledged writes"
    );
    // The third replica in ring order is ahead of the second: it wins.
    heartbeat(&mut live, second, 2_100, 1, 90);
    heartbeat(&mut live, third, 2_100, 1, 95);
    let cmds = run(&mut map, &live, 2_200);
    assert_eq!(
        cmds,
        vec![ClusterCommand::PromotePrimary {
            collection: "c".into(),
            shard: ShardId(0),
            node: third,
            expected_term: Some(Term(1))
        }]
    );
    let s = shard(&map);
    assert_eq!((s.primary, s.term), (Some(third), Term(2)));
    // Nothing more to do until the replacement grace period ends.
    heartbeat(&mut live, second, 2_500, 2, 95);
    heartbeat(&mut live, third, 2_500, 2, 95);
    assert!(plan(&map, &live, 3_000, &POLICY).is_empty());
}

/// The chaos partition run of 2026-12-02: the primary and one replica cut
/// off together, the primary declared dead a second before its companion.
/// Meanwhile the companion's last report, from before the cut, said it was
/// level with the replica on the other side, so two reports made a
/// "majority" and that replica was promoted — without the writes the pair
/// acknowledged until the primary's lease ran out (72 lost). Only reports
/// heard after the primary's death count.
#[test]
fn a_report_older_than_the_primarys_death_does_not_count() {
    let mut map = cluster(3);
    let nodes: Vec<_> = shard(&map).nodes().collect();
    let (primary, companion, other) = (nodes[0], nodes[1], nodes[2]);
    let mut live = Liveness::default();
    heartbeat(&mut live, primary, 500, 1, 40);
    heartbeat(&mut live, companion, 1_400, 1, 40);
    heartbeat(&mut live, other, 1_900, 1, 40);
    run(&mut map, &live, 2_000);
    assert_eq!(map.nodes[&primary].state, NodeState::Dead);
    assert_eq!(
        map.nodes[&companion].state,
        NodeState::Alive,
        "not silent long enough yet"
    );
    heartbeat(&mut live, other, 2_100, 1, 40);
    let cmds = run(&mut map, &live, 2_200);
    assert!(
        !cmds
            .iter()
            .any(|c| matches!(c, ClusterCommand::PromotePrimary { .. })),
        "{cmds:?}"
    );
    assert_eq!(shard(&map).primary, Some(primary));
}

/// Issue 14, defect 3: a primary whose WAL is poisoned (a failed write or
/// fsync) refuses writes but keeps heartbeating: it is replaced like a
/// dead one, by a replica that is not poisoned itself.
#[test]
fn a_primary_reporting_a_poisoned_wal_is_replaced() {
    let mut map = cluster(3);
    let nodes: Vec<_> = shard(&map).nodes().collect();
    let (primary, second, third) = (nodes[0], nodes[1], nodes[2]);
    let mut live = Liveness::default();
    let poisoned = |live: &mut Liveness, node, at, seq| {
        let hb = Heartbeat {
            node,
            epoch: Default::default(),
            replicas: vec![ReplicaReport {
                collection: "c".into(),
                shard: ShardId(0),
                applied: SeqNo(seq),
                term: Term(1),
                points: 0,
                bytes: 0,
                poisoned: true,
                lag_ms: None,
            }],
            reads_last_minute: 0,
        };
        live.record(&hb, at, POLICY.dead_after);
    };
    heartbeat(&mut live, primary, 500, 1, 10);
    heartbeat(&mut live, second, 500, 1, 10);
    heartbeat(&mut live, third, 500, 1, 10);
    assert!(plan(&map, &live, 600, &POLICY).is_empty());
    // The primary and the third replica are poisoned: the healthy second
    // leads...
    // (Reports count only once heard after the primary's own.)
    poisoned(&mut live, primary, 700, 12);
    poisoned(&mut live, third, 720, 12);
    heartbeat(&mut live, second, 700, 1, 11);
    // ...but never while it is behind what the poisoned third holds.
    assert!(plan(&map, &live, 800, &POLICY).is_empty());
    heartbeat(&mut live, second, 750, 1, 12);
    let cmds = run(&mut map, &live, 800);
    assert_eq!(
        cmds,
        vec![ClusterCommand::PromotePrimary {
            collection: "c".into(),
            shard: ShardId(0),
            node: second,
            expected_term: Some(Term(1))
        }]
    );
    assert_eq!(shard(&map).primary, Some(second));
}

#[test]
fn ties_follow_ring_order_and_initializing_replicas_are_skipped() {
    let mut map = cluster(3);
    let nodes: Vec<_> = shard(&map).nodes().collect();
    let st = ClusterCommand::SetReplicaState {
        collection: "c".into(),
        shard: ShardId(0),
        node: nodes[1],
        state: ReplicaState::Initializing,
    };
    // The primary is declared dead at 2 000; the others report after it.
    let fail_over = |map: &mut ClusterMap, reports: [(NodeId, u64); 2]| {
        let mut live = Liveness::default();
        for (n, seq) in reports {
            heartbeat(&mut live, n, 1_500, 1, seq);
        }
        run(map, &live, 2_000);
        for (n, seq) in reports {
            heartbeat(&mut live, n, 2_100, 1, seq);
        }
        run(map, &live, 2_200);
    };
    apply(&mut map, &st).unwrap();
    fail_over(&mut map, [(nodes[1], 3), (nodes[2], 7)]); // nodes[1] not in sync
    assert_eq!(shard(&map).primary, Some(nodes[2]));

    // An initializing replica ahead of every in-sync one may hold
    // acknowledged writes they lack: nobody is promoted.
    let mut map = cluster(3);
    apply(&mut map, &st).unwrap();
    fail_over(&mut map, [(nodes[1], 500), (nodes[2], 7)]);
    assert_eq!(shard(&map).primary, Some(nodes[0]));

    // Equal progress: the first in ring order wins.
    let mut map = cluster(3);
    fail_over(&mut map, [(nodes[1], 7), (nodes[2], 7)]);
    assert_eq!(shard(&map).primary, Some(nodes[1]));
}

#[test]
fn no_alive_in_sync_replica_means_no_promotion() {
    let mut map = cluster(3);
    let live = Liveness::default();
    let cmds = run(&mut map, &live, 5_000);
    assert!(cmds
        .iter()
        .all(|c| matches!(c, ClusterCommand::SetNodeState { .. })));
    assert_eq!(shard(&map).term, Term(1));
}

/// The partition the chaos suite found: the primary and one replica cut
/// off together acknowledged writes at `majority`; the lone replica on the
/// other side must not take over (it would drop them).
#[test]
fn a_lone_surviving_replica_is_not_promoted_over_a_lost_majority() {
    let mut map = cluster(3);
    let nodes: Vec<_> = shard(&map).nodes().collect();
    let mut live = Liveness::default();
    heartbeat(&mut live, nodes[2], 1_900, 1, 40);
    let cmds = run(&mut map, &live, 2_000);
    assert!(
        cmds.iter()
            .all(|c| matches!(c, ClusterCommand::SetNodeState { .. })),
        "{cmds:?}"
    );
    assert_eq!(map.nodes[&nodes[0]].state, NodeState::Dead);
    assert_eq!(map.nodes[&nodes[1]].state, NodeState::Dead);
    let s = shard(&map);
    assert_eq!((s.primary, s.term), (Some(nodes[0]), Term(1)));

    // The cut-off pair comes back: the old primary keeps the shard.
    for (n, seq) in [(nodes[0], 52), (nodes[1], 52), (nodes[2], 40)] {
        heartbeat(&mut live, n, 2_400, 1, seq);
    }
    run(&mut map, &live, 2_500);
    let s = shard(&map);
    assert_eq!((s.primary, s.term), (Some(nodes[0]), Term(1)));
}

#[test]
fn the_failover_quorum_follows_the_write_consistency() {
    let map = cluster(3);
    let s = shard(&map);
    let nodes: Vec<_> = s.nodes().collect();
    let progress = |n: NodeId| (n == nodes[2]).then_some((Term(1), SeqNo(40)));
    // `all`: every acknowledged write is on every replica; one suffices.
    assert_eq!(
        failover_candidate(&s, nodes[0], WriteConsistency::All, progress),
        Some(nodes[2])
    );
    // `majority` (and `one`, held to majority): two of three must report.
    for c in [WriteConsistency::Majority, WriteConsistency::One] {
        assert_eq!(failover_candidate(&s, nodes[0], c, progress), None);
    }
    let both = |n: NodeId| match n {
        n if n == nodes[1] => Some((Term(1), SeqNo(38))),
        n if n == nodes[2] => Some((Term(1), SeqNo(40))),
        _ => None,
    };
    assert_eq!(
        failover_candidate(&s, nodes[0], WriteConsistency::Majority, both),
        Some(nodes[2])
    );
    // A later term beats a longer history of an older one.
    let newer_term = |n: NodeId| match n {
        n if n == nodes[1] => Some((Term(2), SeqNo(30))),
        n if n == nodes[2] => Some((Term(1), SeqNo(40))),
        _ => None,
    };
    assert_eq!(
        failover_candidate(&s, nodes[0], WriteConsistency::Majority, newer_term),
        Some(nodes[1])
    );
}

#[test]
fn replicas_of_an_idle_shard_become_active_after_a_failover() {
    let mut map = cluster(3);
    let nodes: Vec<_> = shard(&map).nodes().collect();
    let mut live = Liveness::default();
    heartbeat(&mut live, nodes[1], 1_900, 1, 40);
    heartbeat(&mut live, nodes[2], 1_900, 1, 40);
    run(&mut map, &live, 2_000);
    heartbeat(&mut live, nodes[1], 2_100, 1, 40);
    heartbeat(&mut live, nodes[2], 2_100, 1, 40);
    run(&mut map, &live, 2_200);
    let s = shard(&map);
    assert_eq!(s.term, Term(2));
    let new_primary = s.primary.unwrap();
    // The old primary returns, rebuilt to the new primary's history; no
    // write under term 2 yet, so everyone still reports term 1.
    for n in &nodes {
        heartbeat(&mut live, *n, 2_400, 1, 40);
    }
    // Alive again (its replica back to initializing), then level with the
    // primary in the same pass.
    run(&mut map, &live, 2_500);
    assert_eq!(map.nodes[&nodes[0]].state, NodeState::Alive);
    assert_eq!(
        shard(&map).replica(nodes[0]).unwrap().state,
        ReplicaState::Active,
        "level with the idle primary {new_primary}"
    );
    // A replica further along the old term holds writes the new primary
    // never had: not in sync.
    let mut map2 = map.clone();
    apply(
        &mut map2,
        &ClusterCommand::SetReplicaState {
            collection: "c".into(),
            shard: ShardId(0),
            node: nodes[0],
            state: ReplicaState::Initializing,
        },
    )
    .unwrap();
    heartbeat(&mut live, nodes[0], 2_700, 1, 45);
    run(&mut map2, &live, 2_800);
    assert_eq!(
        shard(&map2).replica(nodes[0]).unwrap().state,
        ReplicaState::Initializing
    );
}

#[test]
fn long_dead_replica_is_replaced_on_a_live_node() {
    let mut map = cluster(4);
    let s = shard(&map);
    let nodes: Vec<_> = s.nodes().collect();
    let spare = (1..=4).map(NodeId).find(|n| !s.holds(*n)).unwrap();
    let dead = nodes[2];
    let mut live = Liveness::default();
    for n in [nodes[0], nodes[1]] {
        heartbeat(&mut live, n, 1_900, 1, 50);
    }
    heartbeat_empty(&mut live, spare, 1_900);
    run(&mut map, &live, 2_000);
    assert_eq!(map.nodes[&dead].state, NodeState::Dead);
    assert!(shard(&map).holds(dead), "kept during the grace period");

    for n in [nodes[0], nodes[1]] {
        heartbeat(&mut live, n, 12_500, 1, 60);
    }
    heartbeat_empty(&mut live, spare, 12_500);
    let cmds = run(&mut map, &live, 12_600);
    assert_eq!(
        cmds,
        vec![ClusterCommand::SetReplicas {
            collection: "c".into(),
            shard: ShardId(0),
            replicas: vec![nodes[0], nodes[1], spare]
        }]
    );
    let s = shard(&map);
    assert_eq!(s.replica(spare).unwrap().state, ReplicaState::Initializing);
    assert_eq!((s.primary, s.term), (Some(nodes[0]), Term(1)));

    // Once the new replica reports the primary's position it is in sync.
    heartbeat(&mut live, spare, 13_000, 1, 60);
    let cmds = run(&mut map, &live, 13_100);
    assert_eq!(
        cmds,
        vec![ClusterCommand::SetReplicaState {
            collection: "c".into(),
            shard: ShardId(0),
            node: spare,
            state: ReplicaState::Active
        }]
    );
}

#[test]
fn returning_node_is_alive_again_and_resyncs() {
    let mut map = cluster(3);
    let nodes: Vec<_> = shard(&map).nodes().collect();
    let back = nodes[2];
    let mut live = Liveness::default();
    heartbeat(&mut live, nodes[0], 1_900, 1, 5);
    heartbeat(&mut live, nodes[1], 1_900, 1, 5);
    run(&mut map, &live, 2_000);
    assert_eq!(map.nodes[&back].state, NodeState::Dead);

    for n in nodes.iter() {
        heartbeat(&mut live, *n, 2_400, 1, if *n == back { 3 } else { 5 });
    }
    let cmds = run(&mut map, &live, 2_500);
    assert_eq!(map.nodes[&back].state, NodeState::Alive);
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    assert_eq!(
        shard(&map).replica(back).unwrap().state,
        ReplicaState::Initializing
    );

    // It catches up: active again.
    heartbeat(&mut live, back, 2_700, 1, 5);
    run(&mut map, &live, 2_800);
    assert_eq!(
        shard(&map).replica(back).unwrap().state,
        ReplicaState::Active
    );
}

#[test]
fn healthy_cluster_rebalances_onto_a_new_node_unless_disabled() {
    let mut map = cluster(3);
    // Every shard placed on the first three nodes, then a fourth joins.
    for s in 1..12 {
        let cmd = ClusterCommand::CreateShard {
            collection: "c".into(),
            shard: ShardId(s),
            replicas: None,
        };
        apply(&mut map, &cmd).unwrap();
    }
    let node = NodeInfo::new(NodeId(4), "127.0.0.1:4");
    apply(&mut map, &ClusterCommand::AddNode { node }).unwrap();
    // Empty shards: below the default floor of an imbalance worth a copy.
    let no_floor = ClusterCommand::UpdateConfig {
        key: RebalanceSettings::KEY_MIN_IMBALANCE_BYTES.into(),
        value: "0".into(),
    };
    apply(&mut map, &no_floor).unwrap();
    let mut live = Liveness::default();
    for n in 1..=4 {
        heartbeat_empty(&mut live, NodeId(n), 900);
    }
    let mut off = map.clone();
    let disable = ClusterCommand::UpdateConfig {
        key: RebalanceSettings::KEY_ENABLED.into(),
        value: "false".into(),
    };
    apply(&mut off, &disable).unwrap();
    assert!(run(&mut off, &live, 1_000).is_empty(), "disabled");
    let cmds = run(&mut map, &live, 1_000);
    assert!(
        matches!(&cmds[..], [ClusterCommand::RebalanceShards { plan }] if plan.moves.iter().all(|m| m.to == NodeId(4))),
        "on by default: {cmds:?}"
    );
}

/// Moves shard 0's second replica to a node that holds none (a 4-node
/// cluster), started at `at_ms`: the (source, target).
fn start_move(map: &mut ClusterMap, at_ms: u64) -> (NodeId, NodeId) {
    let s = shard(map);
    let from = s.nodes().nth(1).unwrap();
    let to = (1..=4).map(NodeId).find(|n| !s.holds(*n)).unwrap();
    let plan = protocol::cluster::RebalancePlan {
        moves: vec![protocol::cluster::ShardMove {
            collection: "c".into(),
            shard: ShardId(0),
            from,
            to,
            kind: protocol::cluster::TransferKind::Move,
        }],
        created_at_ms: at_ms,
    };
    apply(map, &ClusterCommand::RebalanceShards { plan }).unwrap();
    (from, to)
}

#[test]
fn a_transfer_without_progress_is_failed_and_a_dead_source_does_not_stop_one() {
    let mut map = cluster(4);
    let (from, _) = start_move(&mut map, 1_000);
    let mut live = Liveness::default();
    for n in (1..=4).map(NodeId) {
        heartbeat(&mut live, n, 1_900, 1, 5);
    }
    // The source dies: the primary still streams, the transfer goes on.
    let dead = ClusterCommand::SetNodeState {
        node: from,
        state: NodeState::Dead,
        at_ms: 1_950,
    };
    apply(&mut map, &dead).unwrap();
    let cmds = run(&mut map, &live, 2_000);
    assert!(
        !cmds
            .iter()
            .any(|c| matches!(c, ClusterCommand::AbortMigration { .. })),
        "{cmds:?}"
    );
    assert!(shard(&map).migration.is_some());
    // Silent past the stall limit (60 s by default): failed, with a reason.
    let mut live = Liveness::default();
    for n in (1..=4).map(NodeId) {
        heartbeat(&mut live, n, 62_000, 1, 5);
    }
    let cmds = run(&mut map, &live, 62_500);
    assert!(
        cmds.iter().any(|c| matches!(c, ClusterCommand::AbortMigration { reason, .. } if reason.contains("no progress"))),
        "{cmds:?}"
    );
    assert_eq!(map.transfers.failed, 1);
}

#[test]
fn a_transfer_target_is_not_activated_by_catching_up() {
    let mut map = cluster(4);
    let (_, to) = start_move(&mut map, 1_000);
    let mut live = Liveness::default();
    for n in (1..=4).map(NodeId) {
        heartbeat(&mut live, n, 1_900, 1, 5);
    }
    run(&mut map, &live, 2_000);
    assert_eq!(
        shard(&map).replica(to).unwrap().state,
        ReplicaState::Initializing,
        "only the verified switch makes a transfer target Active"
    );
}

#[test]
fn a_lowered_replication_factor_drops_the_surplus_once_the_rest_is_level() {
    let mut map = cluster(3);
    let lower = ClusterCommand::SetReplicationFactor {
        collection: "c".into(),
        replication_factor: 2,
    };
    apply(&mut map, &lower).unwrap();
    let primary = shard(&map).primary.unwrap();
    let mut live = Liveness::default();
    let others: Vec<NodeId> = shard(&map).nodes().filter(|n| *n != primary).collect();
    heartbeat(&mut live, primary, 900, 1, 9);
    heartbeat(&mut live, others[0], 900, 1, 9);
    heartbeat(&mut live, others[1], 900, 1, 7);
    let cmds = run(&mut map, &live, 1_000);
    // The lagging replica is the one dropped: the kept ones are level.
    assert!(
        matches!(&cmds[..], [ClusterCommand::SetReplicas { replicas, .. }] if replicas.len() == 2 && replicas.contains(&primary) && !replicas.contains(&others[1])),
        "{cmds:?}"
    );
}

#[test]
fn a_surplus_replica_waits_while_the_kept_ones_lag() {
    let mut map = cluster(3);
    let lower = ClusterCommand::SetReplicationFactor {
        collection: "c".into(),
        replication_factor: 2,
    };
    apply(&mut map, &lower).unwrap();
    let primary = shard(&map).primary.unwrap();
    let others: Vec<NodeId> = shard(&map).nodes().filter(|n| *n != primary).collect();
    let mut live = Liveness::default();
    heartbeat(&mut live, primary, 900, 1, 9);
    // Both lag: whichever is kept might miss an acknowledged write.
    heartbeat(&mut live, others[0], 900, 1, 8);
    heartbeat(&mut live, others[1], 900, 1, 7);
    assert!(run(&mut map, &live, 1_000).is_empty());
    assert_eq!(shard(&map).replicas.len(), 3);
}

#[test]
fn migration_to_a_dead_node_is_aborted() {
    let mut map = cluster(4);
    let (from, to) = start_move(&mut map, 0);
    let mut live = Liveness::default();
    for n in (1..=4).map(NodeId).filter(|n| *n != to) {
        heartbeat(&mut live, n, 1_900, 1, 5);
    }
    let cmds = run(&mut map, &live, 2_000);
    assert!(
        cmds.contains(&ClusterCommand::AbortMigration {
            collection: "c".into(),
            shard: ShardId(0),
            reason: format!("target node {to} is dead"),
            at_ms: 2_000,
        }),
        "{cmds:?}"
    );
    let s = shard(&map);
    assert!(s.migration.is_none() && !s.holds(to) && s.holds(from));
}

/// The availability issue's defect: a primary dead for longer than
/// `replica_replace_after`, with no successor the failover rule accepts
/// (here: the primary and one replica cut off together, which may hold
/// writes acknowledged at `majority` that the third lacks), must not be
/// replaced by a `SetReplicas` that elects a primary around
/// [`failover_candidate`] — neither the first active replica in list order
/// (here on a dead node), nor, once a fresh replica reports, the minority.
/// Both with the primary first in the replica list and not.
#[test]
fn a_long_dead_primary_is_not_replaced_around_the_failover_rule() {
    for primary_at in [0, 1] {
        let mut map = cluster(4);
        let s = shard(&map);
        let nodes: Vec<_> = s.nodes().collect();
        let spare = (1..=4).map(NodeId).find(|n| !s.holds(*n)).unwrap();
        if primary_at == 1 {
            let promote = ClusterCommand::PromotePrimary {
                collection: "c".into(),
                shard: ShardId(0),
                node: nodes[1],
                expected_term: Some(Term(1)),
            };
            apply(&mut map, &promote).unwrap();
        }
        let (primary, term) = (nodes[primary_at], shard(&map).term);
        let mut live = Liveness::default();
        heartbeat(&mut live, nodes[2], 1_900, 1, 40);
        heartbeat_empty(&mut live, spare, 1_900);
        run(&mut map, &live, 2_000);
        assert_eq!(map.nodes[&nodes[0]].state, NodeState::Dead);
        assert_eq!(map.nodes[&nodes[1]].state, NodeState::Dead);

        // Long past the replacement grace period, only the third replica
        // and the spare (reporting the shard once it is assigned) are heard.
        for now in [12_500, 13_000, 13_500, 14_000] {
            heartbeat(&mut live, nodes[2], now - 100, 1, 40);
            heartbeat(&mut live, spare, now - 100, 1, 0);
            let cmds = run(&mut map, &live, now);
            let s = shard(&map);
            assert_eq!(
                (s.primary, s.term),
                (Some(primary), term),
                "primary at {primary_at}, at {now} ms: {cmds:?}"
            );
        }
    }
}

/// The grace adapting per node between 0.6 and 5 s.
const ADAPTIVE: Policy = Policy {
    dead_after: DeadAfter {
        min_ms: 600,
        max_ms: 5_000,
    },
    node_dead_backstop_ms: 60_000,
    ..POLICY
};

/// The grace adapts per node (short for regular heartbeats), but a node is
/// never declared dead while a lease it was granted may still run: the
/// long lease of its first heartbeat (no history yet) may be the last
/// grant it received, if the acks of the later, shorter ones were lost.
#[test]
fn a_node_is_not_declared_dead_while_a_lease_it_got_may_still_run() {
    let map = cluster(3);
    let mut live = Liveness::default();
    for at in (1_000..=1_900).step_by(100) {
        for node in 1..=3 {
            heartbeat(&mut live, NodeId(node), at, 1, 10);
            live.grant_lease(NodeId(node), ADAPTIVE.dead_after, at);
        }
    }
    assert_eq!(live.dead_after(NodeId(1), ADAPTIVE.dead_after), 600);
    // Node 1 goes silent; the others keep beating.
    let mut at = 2_000;
    while at <= 6_600 {
        for node in 2..=3 {
            heartbeat(&mut live, NodeId(node), at, 1, 10);
            live.grant_lease(NodeId(node), ADAPTIVE.dead_after, at);
        }
        at += 100;
    }
    // Silent for 2.3 s, far past its 600 ms grace, but its first eight
    // heartbeats (no history yet) got 2.5 s leases, the last at 1.7 s:
    // with the 100 ms margin, over only at 4.3 s.
    assert!(marked_dead(&unguarded(plan(&map, &live, 4_300, &ADAPTIVE))).is_empty());
    assert_eq!(
        marked_dead(&unguarded(plan(&map, &live, 4_301, &ADAPTIVE))),
        vec![NodeId(1)]
    );
}

/// A node whose presence connection closed (its process died) is dead as
/// soon as its last lease is over, long before its grace would end; a
/// hung node (connection open) waits out the grace.
#[test]
fn a_node_whose_presence_closed_is_dead_once_its_lease_is_over() {
    let map = cluster(3);
    let mut live = Liveness::default();
    // Beats every 100 ms, but one 1 s gap in the history: a 3 s grace.
    let mut at = 1_000;
    while at <= 7_000 {
        for node in 1..=3 {
            heartbeat(&mut live, NodeId(node), at, 1, 10);
            live.grant_lease(NodeId(node), ADAPTIVE.dead_after, at);
        }
        at += if at == 5_000 { 1_000 } else { 100 };
    }
    let grace = live.dead_after(NodeId(1), ADAPTIVE.dead_after);
    assert!(grace >= 2_500, "{grace}");
    // Node 1's last grant at 7.0 s: a lease of grace / 2, then 100 ms.
    let over = 7_000 + grace / 2 + 100;
    let mut hung = live.clone();
    live.presence_lost(NodeId(1), 7_050);
    for at in (7_100..=over + 100).step_by(100) {
        for node in 2..=3 {
            heartbeat(&mut live, NodeId(node), at, 1, 10);
            heartbeat(&mut hung, NodeId(node), at, 1, 10);
        }
    }
    assert!(marked_dead(&unguarded(plan(&map, &live, over, &ADAPTIVE))).is_empty());
    assert_eq!(
        marked_dead(&unguarded(plan(&map, &live, over + 1, &ADAPTIVE))),
        vec![NodeId(1)]
    );
    assert!(
        marked_dead(&unguarded(plan(&map, &hung, over + 1, &ADAPTIVE))).is_empty(),
        "without the closed connection the grace still runs"
    );
}

/// With a history of regular heartbeats a silent node is dead after the
/// short grace, not the longest one.
#[test]
fn a_regular_node_is_declared_dead_after_the_short_grace() {
    let map = cluster(3);
    let mut live = Liveness::default();
    // Long enough for the first, long leases to run out.
    let mut at = 1_000;
    while at <= 7_000 {
        for node in 1..=3 {
            heartbeat(&mut live, NodeId(node), at, 1, 10);
            live.grant_lease(NodeId(node), ADAPTIVE.dead_after, at);
        }
        at += 100;
    }
    for at in (7_100..=7_600).step_by(100) {
        for node in 2..=3 {
            heartbeat(&mut live, NodeId(node), at, 1, 10);
        }
    }
    assert!(marked_dead(&unguarded(plan(&map, &live, 7_550, &ADAPTIVE))).is_empty());
    assert_eq!(
        marked_dead(&unguarded(plan(&map, &live, 7_650, &ADAPTIVE))),
        vec![NodeId(1)]
    );
}

/// A restarted node registers again (alive as of the registration) before
/// its first heartbeat arrives; its last heartbeat is from before it died.
/// It must not be declared dead again in between.
#[test]
fn a_node_that_registers_again_is_not_dead_before_its_first_heartbeat() {
    let mut map = cluster(3);
    let mut live = Liveness::default();
    for at in (0..=2_000).step_by(100) {
        for n in 1..=3 {
            if n != 3 || at <= 1_000 {
                heartbeat(&mut live, NodeId(n), at, 1, 10);
            }
        }
    }
    run(&mut map, &live, 2_100);
    assert_eq!(map.nodes[&NodeId(3)].state, NodeState::Dead);
    for at in (2_100..=9_900).step_by(100) {
        for n in 1..=2 {
            heartbeat(&mut live, NodeId(n), at, 1, 10);
        }
    }
    let mut again = NodeInfo::new(NodeId(3), "127.0.0.1:3");
    again.state_since_ms = 10_000;
    apply(&mut map, &ClusterCommand::AddNode { node: again }).unwrap();
    assert_eq!(map.nodes[&NodeId(3)].state, NodeState::Alive);
    for at in (10_000..=10_100).step_by(100) {
        for n in 1..=2 {
            heartbeat(&mut live, NodeId(n), at, 1, 10);
        }
    }
    assert!(marked_dead(&run(&mut map, &live, 10_100)).is_empty());
    for at in (10_200..=11_000).step_by(100) {
        for n in 1..=2 {
            heartbeat(&mut live, NodeId(n), at, 1, 10);
        }
    }
    // Still silent a grace after registering: dead again.
    assert_eq!(marked_dead(&run(&mut map, &live, 11_001)), vec![NodeId(3)]);
}

/// The file's rebalancing settings fill the keys the map lacks, and only
/// those: a run-time value already in the map stays.
#[test]
fn file_settings_seed_only_the_keys_the_map_lacks() {
    let mut map = ClusterMap::default();
    let settings: std::collections::BTreeMap<String, String> = [
        (RebalanceSettings::KEY_ENABLED, "false"),
        (RebalanceSettings::KEY_THROTTLE, "12.5"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    apply(
        &mut map,
        &ClusterCommand::UpdateConfig {
            key: RebalanceSettings::KEY_THROTTLE.into(),
            value: "3".into(),
        },
    )
    .unwrap();
    let cmds = seed_settings(&map, &settings);
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    for cmd in &cmds {
        apply(&mut map, cmd).unwrap();
    }
    let s = RebalanceSettings::from_map(&map);
    assert!(!s.auto_enabled, "seeded from the file");
    assert_eq!(s.throttle_mb_per_sec, 3.0, "the run-time value stays");
    assert!(seed_settings(&map, &settings).is_empty(), "once");
}
