//! The rebalancer's decisions on maps built with the real state machine.

use proptest::prelude::*;
use protocol::cluster::{
    ClusterCommand, Heartbeat, MigrationPhase, NodeInfo, NodeState, ReplicaReport, Verification,
};
use protocol::{CollectionConfig, Distance, SeqNo, Term};

use super::*;
use crate::commands::apply;

fn add_node(map: &mut ClusterMap, id: u64) {
    let node = NodeInfo::new(NodeId(id), format!("127.0.0.1:{id}"));
    apply(map, &ClusterCommand::AddNode { node }).unwrap();
}

fn map(nodes: u64, shards: u32, rf: u32) -> ClusterMap {
    let mut map = ClusterMap::default();
    for id in 1..=nodes {
        add_node(&mut map, id);
    }
    let mut config = CollectionConfig::new(4, Distance::Dot);
    config.shard_number = shards;
    config.replication_factor = rf;
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

fn set(map: &mut ClusterMap, key: &str, value: &str) {
    let cmd = ClusterCommand::UpdateConfig {
        key: key.into(),
        value: value.into(),
    };
    apply(map, &cmd).unwrap();
}

/// Every node reports `bytes(shard)` KB for each replica it holds.
fn reports(map: &ClusterMap, bytes: impl Fn(ShardId) -> u64) -> Liveness {
    let mut live = Liveness::default();
    for node in map.nodes.keys() {
        let replicas = map
            .shards_on(*node)
            .into_iter()
            .map(|(collection, shard)| ReplicaReport {
                collection,
                shard,
                applied: SeqNo(1),
                term: Term(1),
                points: bytes(shard) * 1_000 / 16,
                bytes: bytes(shard) * 1_000,
                poisoned: false,
                lag_ms: None,
            })
            .collect();
        let hb = Heartbeat {
            node: *node,
            epoch: map.epoch,
            replicas,
            reads_last_minute: 0,
        };
        live.record(&hb, 1, crate::liveness::DeadAfter::fixed(5_000));
    }
    live
}

/// Starts `plan` and completes every transfer it started.
fn start_and_complete(map: &mut ClusterMap, plan: RebalancePlan) {
    let moves = plan.moves.clone();
    apply(map, &ClusterCommand::RebalanceShards { plan }).unwrap();
    for mv in moves {
        complete(map, mv);
    }
}

/// Verifies and switches one running transfer.
fn complete(map: &mut ClusterMap, mv: ShardMove) {
    {
        let report = ClusterCommand::UpdateMigration {
            collection: mv.collection.clone(),
            shard: mv.shard,
            to: mv.to,
            phase: MigrationPhase::Verify,
            points_copied: 1,
            points_total: 1,
            bytes_copied: 16,
            bytes_total: 16,
            at_ms: 2,
        };
        apply(map, &report).unwrap();
        let complete = ClusterCommand::CompleteMigration {
            collection: mv.collection,
            shard: mv.shard,
            to: mv.to,
            verified: Verification {
                seq: SeqNo(1),
                points: 1,
                checksum: 1,
            },
            at_ms: 3,
        };
        apply(map, &complete).unwrap();
    }
}

fn spread(loads: &BTreeMap<NodeId, u64>) -> u64 {
    loads.values().max().unwrap() - loads.values().min().unwrap()
}

#[test]
fn on_by_default_and_off_when_disabled() {
    let mut m = map(3, 12, 1);
    add_node(&mut m, 9);
    let live = reports(&m, |_| 1_000);
    assert!(plan(&m, &live, 0, false).is_some(), "default is on");
    set(&mut m, RebalanceSettings::KEY_ENABLED, "false");
    assert!(plan(&m, &live, 0, false).is_none());
    assert!(
        plan(&m, &live, 0, true).is_some(),
        "an explicit request plans even when automatic rebalancing is off"
    );
}

#[test]
fn creation_spreads_shards_one_per_node() {
    let m = map(3, 3, 1);
    let live = reports(&m, |_| 0);
    let l = loads(&m, &live);
    assert!(l.values().all(|v| *v == 1), "{l:?}");
    assert!(plan(&m, &live, 0, false).is_none());
}

#[test]
fn new_node_gets_its_share_within_the_concurrency_cap() {
    let mut m = map(3, 12, 2);
    add_node(&mut m, 4);
    let live = reports(&m, |_| 10_000);
    let p = plan(&m, &live, 42, false).expect("a plan");
    assert_eq!(p.moves.len(), 2, "capped at 2 concurrent transfers");
    assert!(p.moves.iter().all(|mv| mv.to == NodeId(4)), "{p:?}");
    assert_eq!(p.created_at_ms, 42);
    apply(&mut m, &ClusterCommand::RebalanceShards { plan: p }).unwrap();
    assert!(plan(&m, &live, 43, false).is_none(), "both slots taken");
}

#[test]
fn rounds_of_transfers_even_out_a_joined_node() {
    let mut m = map(3, 6, 2);
    add_node(&mut m, 4);
    for round in 0..20 {
        let live = reports(&m, |_| 10_000);
        match plan(&m, &live, round, false) {
            Some(p) => start_and_complete(&mut m, p),
            None => break,
        }
    }
    let live = reports(&m, |_| 10_000);
    let l = loads(&m, &live);
    let mean = l.values().sum::<u64>() as f64 / l.len() as f64;
    for (n, v) in &l {
        assert!((*v as f64 - mean).abs() <= 0.2 * mean, "node {n}: {l:?}");
    }
}

#[test]
fn a_draining_node_is_emptied_even_with_rebalancing_off() {
    let mut m = map(4, 8, 2);
    set(&mut m, RebalanceSettings::KEY_ENABLED, "false");
    set(&mut m, RebalanceSettings::KEY_MAX_CONCURRENT, "100");
    let st = ClusterCommand::SetNodeState {
        node: NodeId(2),
        state: NodeState::Draining,
        at_ms: 1,
    };
    apply(&mut m, &st).unwrap();
    let held = m.shards_on(NodeId(2)).len();
    assert!(held > 0);
    let live = reports(&m, |_| 100);
    let p = plan(&m, &live, 5, false).expect("drain moves");
    assert_eq!(p.moves.len(), held);
    assert!(p
        .moves
        .iter()
        .all(|mv| mv.from == NodeId(2) && mv.to != NodeId(2)));
    start_and_complete(&mut m, p);
    assert!(m.shards_on(NodeId(2)).is_empty());
}

#[test]
fn an_under_replicated_shard_is_completed_when_a_node_joins() {
    let mut m = map(2, 2, 3);
    assert!(m.collections["c"]
        .shards
        .values()
        .all(|s| s.replicas.len() == 2));
    let live = reports(&m, |_| 100);
    assert!(
        plan(&m, &live, 0, false).is_none(),
        "no node to add a replica on"
    );
    add_node(&mut m, 3);
    let live = reports(&m, |_| 100);
    let p = plan(&m, &live, 0, false).expect("replicate transfers");
    assert!(p
        .moves
        .iter()
        .all(|mv| mv.kind == TransferKind::Replicate && mv.to == NodeId(3)));
    start_and_complete(&mut m, p);
    assert!(m.collections["c"]
        .shards
        .values()
        .all(|s| s.replicas.len() == 3));
}

#[test]
fn a_failed_transfer_is_not_planned_again_at_once() {
    let mut m = map(3, 12, 1);
    add_node(&mut m, 4);
    set(&mut m, RebalanceSettings::KEY_MAX_CONCURRENT, "1");
    let live = reports(&m, |_| 1_000);
    let p = plan(&m, &live, 100, false).expect("a plan");
    let mv = p.moves[0].clone();
    apply(&mut m, &ClusterCommand::RebalanceShards { plan: p }).unwrap();
    let abort = ClusterCommand::AbortMigration {
        collection: mv.collection.clone(),
        shard: mv.shard,
        reason: "target refused".into(),
        at_ms: 200,
    };
    apply(&mut m, &abort).unwrap();
    let again = plan(&m, &live, 300, false).expect("another move");
    assert!(
        !(again.moves[0].shard == mv.shard && again.moves[0].to == mv.to),
        "{again:?}"
    );
    let later = plan(&m, &live, 200 + RETRY_AFTER_MS, false).expect("a plan");
    assert_eq!(later.moves[0].shard, mv.shard, "retried after the pause");
}

#[test]
fn nearly_equal_shards_are_not_shuffled_for_a_small_gain() {
    // 9 replicas on 5 nodes (2,2,2,2,1 shards): the spread is one shard;
    // moving a shard 1% lighter would gain 2% of it, at the cost of a copy.
    let m = map(5, 3, 3);
    let live = reports(&m, |s| 100_000 - s.0 as u64 * 1_000);
    assert!(plan(&m, &live, 0, false).is_none());
}

#[test]
fn a_tiny_collection_is_not_rebalanced() {
    // 6 shards of ~1 KB on 3 nodes, a 4th joins: the spread (4 KB) is
    // far above 20% of the mean, but below the 64 KiB floor.
    let mut m = map(3, 6, 2);
    add_node(&mut m, 4);
    let tiny = |m: &ClusterMap| {
        let mut live = Liveness::default();
        for node in m.nodes.keys() {
            let replicas = m
                .shards_on(*node)
                .into_iter()
                .map(|(collection, shard)| ReplicaReport {
                    collection,
                    shard,
                    applied: SeqNo(1),
                    term: Term(1),
                    points: 32,
                    bytes: 1_024,
                    poisoned: false,
                    lag_ms: None,
                })
                .collect();
            let hb = Heartbeat {
                node: *node,
                epoch: m.epoch,
                replicas,
                reads_last_minute: 0,
            };
            live.record(&hb, 1, crate::liveness::DeadAfter::fixed(5_000));
        }
        live
    };
    assert!(plan(&m, &tiny(&m), 0, false).is_none());
    set(&mut m, RebalanceSettings::KEY_MIN_IMBALANCE_BYTES, "0");
    assert!(plan(&m, &tiny(&m), 0, false).is_some());
}

#[test]
fn draining_and_dead_nodes_receive_nothing() {
    let mut m = map(3, 12, 1);
    for (id, state) in [(4, NodeState::Draining), (5, NodeState::Dead)] {
        add_node(&mut m, id);
        let st = ClusterCommand::SetNodeState {
            node: NodeId(id),
            state,
            at_ms: 1,
        };
        apply(&mut m, &st).unwrap();
    }
    let live = reports(&m, |_| 1_000);
    if let Some(p) = plan(&m, &live, 0, false) {
        assert!(p.moves.iter().all(|mv| mv.to.0 <= 3), "{p:?}");
    }
}

#[test]
fn heavy_shards_weigh_more_than_light_ones() {
    // 2 nodes, 4 shards RF 1: shard 0 is as heavy as the other three together.
    let mut m = map(2, 4, 1);
    set(&mut m, RebalanceSettings::KEY_MAX_CONCURRENT, "10");
    let weight = |s: ShardId| if s.0 == 0 { 3_000 } else { 1_000 };
    for _ in 0..10 {
        let live = reports(&m, weight);
        match plan(&m, &live, 0, false) {
            Some(p) => start_and_complete(&mut m, p),
            None => break,
        }
    }
    let l = loads(&m, &reports(&m, weight));
    assert!(
        spread(&l) <= 10_000,
        "the heavy shard alone on one node: {l:?}"
    );
}

#[test]
fn a_move_still_running_counts_as_done_for_its_source() {
    // 12 shards on 3 nodes, a 4th joins, 2 transfer slots. When the first
    // move has switched and the second still runs, its source must count
    // as already rid of the shard: else it ties with the untouched node
    // as busiest and may give a second shard, which a later move undoes
    // (seen in bench-transfer.sh: 4 transfers where 3 do).
    let mut m = map(3, 12, 1);
    add_node(&mut m, 4);
    let live = reports(&m, |_| 10_000);
    let first = plan(&m, &live, 0, false).expect("moves to node 4");
    assert_eq!(first.moves.len(), 2);
    let (done, running) = (first.moves[0].clone(), first.moves[1].clone());
    apply(&mut m, &ClusterCommand::RebalanceShards { plan: first }).unwrap();
    complete(&mut m, done.clone());
    // The running move's source holds slightly heavier shards: counted
    // with the one it is handing over, it would look the busiest.
    let heavy: BTreeSet<ShardId> = m
        .shards_on(running.from)
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    let weight = |s: ShardId| if heavy.contains(&s) { 10_100 } else { 10_000 };
    let next = plan(&m, &reports(&m, weight), 1, false).expect("the third move");
    assert_eq!(next.moves.len(), 1, "{next:?}");
    let third = &next.moves[0];
    assert!(
        third.from != done.from && third.from != running.from && third.to == NodeId(4),
        "{third:?} after {done:?} and {running:?}"
    );
    start_and_complete(&mut m, next);
    complete(&mut m, running);
    assert!(plan(&m, &reports(&m, |_| 10_000), 2, false).is_none());
    assert_eq!(m.shards_on(NodeId(4)).len(), 3);
}

#[test]
fn a_shard_its_new_node_has_not_reported_yet_is_not_weightless() {
    // 12 shards on 3 nodes, a 4th joins: 3 moves even it out. After the
    // first two complete, the leader has not heard node 4 since: the moved
    // shards are reported by nobody. Weighing nothing they made node 4 look
    // empty and drew two more moves there (then undone).
    let mut m = map(3, 12, 1);
    add_node(&mut m, 4);
    let stale = reports(&m, |_| 10_000);
    let first = plan(&m, &stale, 0, false).expect("moves to node 4");
    assert_eq!(first.moves.len(), 2);
    start_and_complete(&mut m, first);
    let next = plan(&m, &stale, 1, false).expect("the third move");
    assert_eq!(next.moves.len(), 1, "{next:?}");
    start_and_complete(&mut m, next);
    assert!(plan(&m, &reports(&m, |_| 10_000), 2, false).is_none());
    assert_eq!(m.shards_on(NodeId(4)).len(), 3);
}

/// Places collection `name`'s shards by hand: `placement[i]` are the
/// nodes of shard `i`, the first one primary.
fn place(map: &mut ClusterMap, name: &str, placement: &[&[u64]]) {
    let shards = &mut map.collections.get_mut(name).unwrap().shards;
    for (i, nodes) in placement.iter().enumerate() {
        let id = ShardId(i as u32);
        shards.insert(id, ShardInfo::new(id, nodes.iter().map(|n| NodeId(*n))));
    }
}

#[test]
fn one_collection_crowded_on_two_nodes_is_spread_even_when_the_totals_are_level() {
    // Collection c (6 shards RF 2) sits 4/2/2/4 on nodes 1-4; collection b
    // fills nodes 2 and 3 so that every node holds the same in all. The
    // totals alone would never move anything.
    let mut m = map(4, 6, 2);
    place(
        &mut m,
        "c",
        &[&[1, 4], &[1, 4], &[1, 4], &[1, 4], &[2, 3], &[2, 3]],
    );
    let mut config = CollectionConfig::new(4, Distance::Dot);
    config.shard_number = 2;
    config.replication_factor = 1;
    let create = ClusterCommand::CreateCollection {
        name: "b".into(),
        config,
    };
    apply(&mut m, &create).unwrap();
    place(&mut m, "b", &[&[2], &[3]]);
    for _ in 0..10 {
        match plan(&m, &reports(&m, |_| 10_000), 0, false) {
            Some(p) => start_and_complete(&mut m, p),
            None => break,
        }
    }
    let per_node: Vec<usize> = (1..=4)
        .map(|n| {
            m.collections["c"]
                .shards
                .values()
                .filter(|s| s.holds(NodeId(n)))
                .count()
        })
        .collect();
    assert_eq!(per_node, vec![3, 3, 3, 3], "c's replicas per node");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the cluster, rounds of planned transfers end (no
    /// oscillation), never increase the spread, and stop within the
    /// threshold or where no move would shrink it.
    #[test]
    fn rebalancing_converges(
        nodes in 2u64..6,
        shards in 1u32..16,
        rf in 1u32..4,
        weights in proptest::collection::vec(0u64..50_000, 16),
        joined in 0u64..3,
    ) {
        let mut m = map(nodes, shards, rf);
        for id in 0..joined {
            add_node(&mut m, nodes + 1 + id);
        }
        let weight = |s: ShardId| weights[s.0 as usize % weights.len()];
        let mut last = spread(&loads(&m, &reports(&m, weight)));
        let mut rounds = 0;
        while let Some(p) = plan(&m, &reports(&m, weight), 0, false) {
            rounds += 1;
            prop_assert!(rounds < 200, "no convergence");
            let only_moves = p.moves.iter().all(|mv| mv.kind == TransferKind::Move);
            start_and_complete(&mut m, p);
            let rf_ok = m.collections["c"].shards.values().all(|s| s.replicas.len() as u32 <= rf);
            prop_assert!(rf_ok);
            let now = spread(&loads(&m, &reports(&m, weight)));
            // Filling replicas may raise the spread; moves never do.
            if only_moves {
                prop_assert!(now <= last, "spread went {} -> {}", last, now);
            }
            last = now;
        }
        let filled = m.collections["c"].shards.values().all(|s| s.replicas.len() as u64 == (rf as u64).min(nodes + joined));
        prop_assert!(filled, "every shard at its replication factor where nodes allow");
    }
}
