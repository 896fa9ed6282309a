//! Indexing, checkpoints and WAL truncation while writes and searches go on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use protocol::{CountRequest, Distance, SearchRequest, SeqNo};
use storage_node::{Shard, ShardError, ShardOptions};

use super::*;

#[test]
fn writes_and_searches_continue_while_segments_are_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 32;
    let opts = ShardOptions {
        background: true,
        ..options(1000)
    };
    let shard = Shard::open(dir.path(), config(dim, Distance::Cosine), opts.clone()).unwrap();
    let done = AtomicBool::new(false);
    let searches = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut r = rng(8);
            let mut n = 0;
            while !done.load(Ordering::SeqCst) {
                let hits = shard
                    .search(&SearchRequest::new(random_vector(&mut r, dim), 10))
                    .unwrap();
                assert!(hits.len() <= 10);
                n += 1;
            }
            n
        });
        fill(&shard, &mut rng(9), 0, 5000, dim);
        done.store(true, Ordering::SeqCst);
        reader.join().unwrap()
    });
    assert!(searches > 0);
    // The background worker indexes the frozen segments on its own.
    let deadline = Instant::now() + Duration::from_secs(120);
    while shard
        .segment_info()
        .iter()
        .filter(|s| matches!(s.2, storage_node::ann::AnnKind::Flat))
        .count()
        > 1
    {
        assert!(
            Instant::now() < deadline,
            "segments not indexed: {:?}",
            shard.segment_info()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(shard.count(&CountRequest::default()).unwrap(), 5000);
    let checksum = shard.content_checksum();
    // The checkpoint let the WAL go: old operations need a snapshot now.
    assert!(matches!(
        shard.operations_since(SeqNo(0)),
        Err(ShardError::WalTruncated { .. })
    ));
    let snap = shard.snapshot();
    assert_eq!(snap.points.len(), 5000);
    assert_eq!(snap.seq, shard.applied_seq());
    drop(shard);
    let shard = Shard::open(dir.path(), config(dim, Distance::Cosine), opts).unwrap();
    assert_eq!(shard.content_checksum(), checksum);
}

#[test]
fn an_idle_growing_segment_gets_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ShardOptions {
        background: true,
        idle_seal_after: Duration::from_millis(200),
        idle_seal_min_points: 100,
        ..options(10_000)
    };
    let shard = Shard::open(dir.path(), config(8, Distance::Dot), opts).unwrap();
    fill(&shard, &mut rng(15), 0, 1500, 8);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(
        shard.segment_info().first(),
        Some((1500, 1500, storage_node::ann::AnnKind::Hnsw { .. }))
    ) {
        assert!(
            Instant::now() < deadline,
            "idle segment never indexed: {:?}",
            shard.segment_info()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(shard.count(&CountRequest::default()).unwrap(), 1500);
}

#[test]
fn small_sealed_segments_merge_into_one_graph_once_the_shard_is_idle() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 8;
    let opts = ShardOptions {
        background: true,
        idle_seal_after: Duration::from_millis(300),
        idle_seal_min_points: 100,
        merge_below_points: 10_000,
        ..options(500)
    };
    let shard = Shard::open(dir.path(), config(dim, Distance::Dot), opts).unwrap();
    fill(&shard, &mut rng(16), 0, 2600, dim);
    let probe = SearchRequest::new(random_vector(&mut rng(17), dim), 10);
    let deadline = Instant::now() + Duration::from_secs(60);
    // Five full segments of 500 and an idle tail of 100: one graph of 2,600.
    while !matches!(
        shard.segment_info().as_slice(),
        [(2600, 2600, storage_node::ann::AnnKind::Hnsw { .. })]
            | [
                (2600, 2600, storage_node::ann::AnnKind::Hnsw { .. }),
                (0, 0, _)
            ]
            | [
                (0, 0, _),
                (2600, 2600, storage_node::ann::AnnKind::Hnsw { .. })
            ]
    ) {
        assert!(
            Instant::now() < deadline,
            "segments never merged: {:?}",
            shard.segment_info()
        );
        assert_eq!(shard.search(&probe).unwrap().len(), 10);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(shard.count(&CountRequest::default()).unwrap(), 2600);
}

#[test]
fn operations_since_streams_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), 4, Distance::Dot, 10_000);
    fill(&shard, &mut rng(10), 0, 2000, 4); // 4 operations of 500
    let ops = shard.operations_since(SeqNo(2)).unwrap();
    assert_eq!(
        ops.iter().map(|o| o.seq).collect::<Vec<_>>(),
        vec![SeqNo(3), SeqNo(4)]
    );
    // A replica applying them in order ends with the same content.
    let dir2 = tempfile::tempdir().unwrap();
    let replica = open(dir2.path(), 4, Distance::Dot, 10_000);
    for op in shard.operations_since(SeqNo(0)).unwrap() {
        replica.apply_sequenced(op.clone()).unwrap();
        replica.apply_sequenced(op).unwrap(); // a duplicate is harmless
    }
    assert_eq!(replica.content_checksum(), shard.content_checksum());
    assert_eq!(replica.applied_seq(), SeqNo(4));
}

#[test]
fn optimize_merges_everything_into_one_ann_segment() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), 8, Distance::Dot, 300);
    fill(&shard, &mut rng(11), 0, 1700, 8);
    let before = shard.content_checksum();
    shard.optimize().unwrap();
    let info = shard.segment_info();
    assert_eq!(info.len(), 2, "{info:?}"); // the merged segment + an empty growing one
    assert_eq!(info[0].0, 1700);
    assert_eq!(info[1].0, 0);
    assert_eq!(shard.content_checksum(), before);
}

/// Regression (found by the crash test): a segment frozen during WAL
/// replay must start the next one at the replayed operation, not at the
/// checkpoint's sequence number, or a later checkpoint truncates WAL
/// records whose points live only in memory.
#[test]
fn segments_frozen_during_replay_keep_their_wal() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(12);
    // One WAL file per record, so truncation is exact.
    let opts = ShardOptions {
        wal: storage_node::WalOptions {
            max_file_bytes: 1,
            ..Default::default()
        },
        ..options(100)
    };
    let reopen = || Shard::open(dir.path(), config(4, Distance::Dot), opts.clone()).unwrap();
    let shard = reopen();
    for i in 0..9 {
        // 4 ops fill a segment: frozen after ops 4 and 8; op 9 is growing.
        let points = (i * 30..i * 30 + 30)
            .map(|id| protocol::Point {
                id: protocol::PointId::Num(id),
                vector: random_vector(&mut r, 4),
                payload: None,
            })
            .collect();
        shard.apply(protocol::Operation::Upsert { points }).unwrap();
    }
    // Index only the first frozen segment: checkpoint at 9, replay from 5.
    assert!(shard.run_background_once().unwrap());
    drop(shard);
    // Replay of 5..=8 freezes a segment at op 8, below the checkpoint.
    let shard = reopen();
    let expected = shard.content_checksum();
    assert_eq!(expected.0, 270);
    while shard.run_background_once().unwrap() {}
    drop(shard);
    assert_eq!(reopen().content_checksum(), expected);
}

#[test]
fn a_replica_built_from_a_snapshot_continues_the_sequence() {
    let src_dir = tempfile::tempdir().unwrap();
    let shard = open(src_dir.path(), 8, Distance::Cosine, 300);
    shard.set_term(protocol::Term(3));
    fill(&shard, &mut rng(13), 0, 700, 8);
    shard
        .apply(protocol::Operation::Delete {
            ids: vec![protocol::PointId::Num(5)],
        })
        .unwrap();
    let snap = shard.snapshot();
    assert_eq!(shard.term_at(snap.seq).unwrap(), Some(protocol::Term(3)));
    let dst_dir = tempfile::tempdir().unwrap();
    let replica = Shard::create_from_snapshot(
        dst_dir.path(),
        config(8, Distance::Cosine),
        options(300),
        &snap,
        shard.last_term(),
    )
    .unwrap();
    assert_eq!(replica.content_checksum(), shard.content_checksum());
    assert_eq!(replica.applied_seq(), snap.seq);
    assert_eq!(replica.last_term(), protocol::Term(3));
    // The primary goes on; the replica follows from the WAL delta.
    fill(&shard, &mut rng(14), 700, 100, 8);
    for op in shard.operations_since(snap.seq).unwrap() {
        replica.apply_sequenced(op).unwrap();
    }
    assert_eq!(replica.content_checksum(), shard.content_checksum());
    drop(replica);
    let replica = open(dst_dir.path(), 8, Distance::Cosine, 300);
    assert_eq!(replica.content_checksum(), shard.content_checksum());
    assert_eq!(replica.applied_seq(), shard.applied_seq());
}

#[test]
fn a_snapshot_written_in_chunks_gets_its_ann_index_in_the_background() {
    use storage_node::ann::AnnKind;
    use storage_node::SnapshotWriter;
    let src_dir = tempfile::tempdir().unwrap();
    let shard = open(src_dir.path(), 8, Distance::Dot, 5_000);
    fill(&shard, &mut rng(21), 0, 2_500, 8);
    let digest = shard.digest();
    let dst_dir = tempfile::tempdir().unwrap();
    let mut writer = SnapshotWriter::create(
        dst_dir.path(),
        config(8, Distance::Dot),
        options(1_000),
        digest.seq,
        digest.last_term,
    )
    .unwrap();
    // Pages of 300 points; the writer holds at most one segment (1,000).
    let mut after = None;
    loop {
        let (page, next) = shard.snapshot_page(after, 300, usize::MAX);
        writer.add(page).unwrap();
        after = next;
        if after.is_none() {
            break;
        }
    }
    let replica = writer.finish().unwrap();
    assert_eq!(replica.digest(), digest);
    let kinds: Vec<AnnKind> = replica.segment_info().iter().map(|s| s.2).collect();
    assert_eq!(
        &kinds[..3],
        &[AnnKind::Flat, AnnKind::Flat, AnnKind::Flat],
        "written as exact segments, no index build while receiving"
    );
    while replica.run_background_once().unwrap() {}
    let sealed: Vec<_> = replica
        .segment_info()
        .into_iter()
        .filter(|s| s.0 > 0)
        .collect();
    assert_eq!(sealed.len(), 1, "{sealed:?}");
    assert!(matches!(sealed[0].2, AnnKind::Hnsw { .. }));
    assert_eq!(replica.content_checksum(), shard.content_checksum());
    let q = SearchRequest::new(vec![0.5; 8], 5);
    assert_eq!(
        replica
            .search(&q)
            .unwrap()
            .iter()
            .map(|h| h.id)
            .collect::<Vec<_>>(),
        shard
            .search(&q)
            .unwrap()
            .iter()
            .map(|h| h.id)
            .collect::<Vec<_>>()
    );
}
