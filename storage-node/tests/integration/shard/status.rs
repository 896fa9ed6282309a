//! A shard's index status (what the gateway's collection `status` is built
//! from) through its whole life, and index builds held to the node's
//! build budget.

use std::time::{Duration, Instant};

use protocol::rpc::OptimizerState;
use protocol::{Distance, Operation, PointId};
use storage_node::{BuildBudget, Shard, ShardOptions};

use super::*;

#[test]
fn the_status_counts_indexed_and_pending_points_until_everything_is_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ShardOptions {
        idle_seal_min_points: 300,
        ..options(1000)
    };
    let shard = Shard::open(dir.path(), config(8, Distance::Dot), opts).unwrap();
    let s = shard.index_status();
    assert!(s.is_optimized(), "{s:?}");
    assert_eq!((s.points, s.segments), (0, 0));

    // Below the idle-seal threshold the growing segment stays exact on
    // purpose: fully optimised, nothing indexed.
    fill(&shard, &mut rng(1), 0, 200, 8);
    let s = shard.index_status();
    assert!(s.is_optimized(), "{s:?}");
    assert_eq!((s.points, s.indexed_points, s.segments), (200, 0, 1));

    // 200 + 500 + 500 freezes 1,200; the next 1,000 freeze; 300 grow,
    // enough to be sealed once idle: everything waits for an index.
    fill(&shard, &mut rng(2), 200, 2300, 8);
    let s = shard.index_status();
    assert_eq!(
        (s.points, s.indexed_points, s.pending_points),
        (2500, 0, 2500),
        "{s:?}"
    );
    assert_eq!(s.segments, 3);
    assert_eq!(s.optimizer, OptimizerState::Pending);
    assert!(!s.is_optimized());

    assert!(shard.run_background_once().unwrap());
    let s = shard.index_status();
    assert_eq!((s.indexed_points, s.pending_points), (1200, 1300), "{s:?}");
    assert!(shard.run_background_once().unwrap());
    let s = shard.index_status();
    assert_eq!((s.indexed_points, s.pending_points), (2200, 300), "{s:?}");
    assert_eq!(s.optimizer, OptimizerState::Pending);

    // What the worker does once idle: seal, index, merge.
    shard.optimize().unwrap();
    let s = shard.index_status();
    assert!(s.is_optimized(), "{s:?}");
    assert_eq!((s.points, s.indexed_points, s.segments), (2500, 2500, 1));

    // Many tombstones make a rewrite due, and it is reported as such.
    shard
        .apply(Operation::Delete {
            ids: (0..1000).map(PointId::Num).collect(),
        })
        .unwrap();
    let s = shard.index_status();
    assert_eq!(
        (s.points, s.indexed_points, s.pending_points),
        (1500, 1500, 0)
    );
    assert_eq!(s.optimizer, OptimizerState::Pending, "{s:?}");
    assert!(shard.run_background_once().unwrap());
    let s = shard.index_status();
    assert!(s.is_optimized(), "{s:?}");
    assert_eq!((s.points, s.indexed_points, s.segments), (1500, 1500, 1));
}

/// A shard that indexes in the background under `budget` (segments of
/// 1,000 points, 8-d).
fn shard_on_budget(budget: &std::sync::Arc<BuildBudget>) -> (tempfile::TempDir, Shard) {
    let dir = tempfile::tempdir().unwrap();
    let opts = ShardOptions {
        background: true,
        build_budget: budget.clone(),
        ..options(1000)
    };
    let shard = Shard::open(dir.path(), config(8, Distance::Dot), opts).unwrap();
    (dir, shard)
}

#[test]
fn index_builds_wait_for_the_nodes_budget_and_say_so() {
    let budget = BuildBudget::new(1, 2);
    let (_dir, shard) = shard_on_budget(&budget);
    // Another replica of the node holds the only slot.
    let held = budget.acquire(&|| false).expect("free slot");
    fill(&shard, &mut rng(3), 0, 1000, 8);
    let deadline = Instant::now() + Duration::from_secs(30);
    while shard.index_status().optimizer != OptimizerState::Waiting {
        assert!(
            Instant::now() < deadline,
            "build never waited: {:?}",
            shard.index_status()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!((budget.running(), budget.waiting()), (1, 1));
    std::thread::sleep(Duration::from_millis(300));
    let s = shard.index_status();
    assert_eq!(
        (s.indexed_points, s.pending_points),
        (0, 1000),
        "built without a slot: {s:?}"
    );

    drop(held);
    while !shard.index_status().is_optimized() {
        assert!(
            Instant::now() < deadline,
            "never indexed after the slot was freed: {:?}",
            shard.index_status()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(shard.index_status().indexed_points, 1000);
    assert_eq!((budget.running(), budget.waiting()), (0, 0));
}

#[test]
fn a_closing_shard_stops_waiting_for_a_build_slot() {
    let budget = BuildBudget::new(1, 2);
    let (_dir, shard) = shard_on_budget(&budget);
    let _held = budget.acquire(&|| false).expect("free slot");
    fill(&shard, &mut rng(4), 0, 1000, 8);
    let deadline = Instant::now() + Duration::from_secs(30);
    while budget.waiting() == 0 {
        assert!(Instant::now() < deadline, "build never waited");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    shard.close().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "close waited for the slot"
    );
    assert_eq!(budget.waiting(), 0);
}
