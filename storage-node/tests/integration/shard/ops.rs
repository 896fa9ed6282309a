use protocol::{
    CountRequest, Distance, Operation, Point, PointId, ScrollRequest, SearchRequest, SeqNo,
};
use serde_json::json;

use super::*;

#[test]
fn upsert_replace_get_delete_count() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), 4, Distance::Dot, 1000);
    let p = |id: u64, x: f32| Point {
        id: PointId::Num(id),
        vector: vec![x, 0.0, 0.0, 0.0],
        payload: Some(payload(json!({"x": x}))),
    };
    assert_eq!(
        shard
            .apply(Operation::Upsert {
                points: vec![p(1, 1.0), p(2, 2.0)]
            })
            .unwrap(),
        SeqNo(1)
    );
    assert_eq!(
        shard
            .apply(Operation::Upsert {
                points: vec![p(1, 3.0)]
            })
            .unwrap(),
        SeqNo(2)
    );
    let got = shard.get(&[PointId::Num(1), PointId::Num(9)], true, true);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].vector.as_deref(), Some(&[3.0, 0.0, 0.0, 0.0][..]));
    assert_eq!(got[0].payload.as_ref().unwrap()["x"], json!(3.0));
    assert_eq!(shard.count(&CountRequest::default()).unwrap(), 2);
    shard
        .apply(Operation::Delete {
            ids: vec![PointId::Num(2), PointId::Num(77)],
        })
        .unwrap();
    assert_eq!(shard.count(&CountRequest::default()).unwrap(), 1);
    assert!(shard.get(&[PointId::Num(2)], false, false).is_empty());
    assert_eq!(shard.applied_seq(), SeqNo(3));
}

#[test]
fn payload_operations() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), 2, Distance::Euclid, 1000);
    let id = PointId::Num(5);
    shard
        .apply(Operation::Upsert {
            points: vec![Point {
                id,
                vector: vec![0.0, 1.0],
                payload: Some(payload(json!({"a": 1, "b": 2}))),
            }],
        })
        .unwrap();
    let get = || shard.get(&[id], true, false)[0].payload.clone().unwrap();
    shard
        .apply(Operation::SetPayload {
            ids: vec![id],
            payload: payload(json!({"b": 3, "c": 4})),
        })
        .unwrap();
    assert_eq!(
        serde_json::Value::Object(get()),
        json!({"a": 1, "b": 3, "c": 4})
    );
    shard
        .apply(Operation::DeletePayloadKeys {
            ids: vec![id],
            keys: vec!["a".into()],
        })
        .unwrap();
    assert_eq!(serde_json::Value::Object(get()), json!({"b": 3, "c": 4}));
    shard
        .apply(Operation::OverwritePayload {
            ids: vec![id],
            payload: payload(json!({"z": true})),
        })
        .unwrap();
    assert_eq!(serde_json::Value::Object(get()), json!({"z": true}));
    shard
        .apply(Operation::ClearPayload { ids: vec![id] })
        .unwrap();
    assert!(get().is_empty());
}

#[test]
fn delete_by_filter_is_logged_as_ids() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), 8, Distance::Dot, 1000);
    fill(&shard, &mut rng(1), 0, 100, 8);
    let filter =
        serde_json::from_value(json!({"must": [{"key": "group", "match": {"value": 3}}]})).unwrap();
    let seq = shard.apply(Operation::DeleteByFilter { filter }).unwrap();
    assert_eq!(shard.count(&CountRequest::default()).unwrap(), 90);
    let ops = shard.operations_since(SeqNo(seq.0 - 1)).unwrap();
    match &ops[0].op {
        Operation::Delete { ids } => assert_eq!(ids.len(), 10),
        other => panic!("expected a resolved delete, got {other:?}"),
    }
}

#[test]
fn scroll_pages_through_everything_in_id_order() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), 4, Distance::Dot, 64);
    fill(&shard, &mut rng(2), 0, 250, 4);
    shard.run_background_once().unwrap();
    let mut seen = Vec::new();
    let mut offset = None;
    loop {
        let page = shard
            .scroll(&ScrollRequest {
                offset,
                limit: 37,
                filter: None,
                with_payload: true,
                with_vector: false,
            })
            .unwrap();
        seen.extend(page.points.iter().map(|r| r.id));
        match page.next_page_offset {
            Some(next) => offset = Some(next),
            None => break,
        }
    }
    let expected: Vec<PointId> = (0..250).map(PointId::Num).collect();
    assert_eq!(seen, expected);
    let filter =
        serde_json::from_value(json!({"must": [{"key": "group", "match": {"any": [1, 2]}}]}))
            .unwrap();
    let page = shard
        .scroll(&ScrollRequest {
            offset: None,
            limit: 1000,
            filter: Some(filter),
            with_payload: false,
            with_vector: false,
        })
        .unwrap();
    assert_eq!(page.points.len(), 50);
    assert!(page.next_page_offset.is_none());
}

/// Exact top-k by brute force over the shard's own content.
fn brute_force(
    shard: &storage_node::Shard,
    query: &[f32],
    k: usize,
    filter: Option<&protocol::Filter>,
) -> Vec<PointId> {
    let snap = shard.snapshot();
    let mut scored: Vec<(f32, PointId)> = snap
        .points
        .iter()
        .filter(|p| filter.is_none_or(|f| f.matches(p.point.id, p.point.payload.as_ref())))
        .map(|p| {
            (
                p.point
                    .vector
                    .iter()
                    .zip(query)
                    .map(|(a, b)| a * b)
                    .sum::<f32>(),
                p.point.id,
            )
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|s| s.1).collect()
}

#[test]
fn search_across_growing_frozen_and_sealed_segments_is_correct() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 16;
    let shard = open(dir.path(), dim, Distance::Dot, 300);
    let mut r = rng(3);
    fill(&shard, &mut r, 0, 1200, dim); // batches of 500: two frozen segments + a growing one
    shard.run_background_once().unwrap(); // the first frozen one becomes HNSW
    let kinds = shard.segment_info();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    for _ in 0..20 {
        let q = random_vector(&mut r, dim);
        let mut req = SearchRequest::new(q.clone(), 10);
        req.params.exact = true;
        let got: Vec<PointId> = shard.search(&req).unwrap().iter().map(|s| s.id).collect();
        assert_eq!(got, brute_force(&shard, &q, 10, None));
    }
}

#[test]
fn filtered_search_returns_the_true_filtered_top_k() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 16;
    let shard = open(dir.path(), dim, Distance::Dot, 12_000);
    let mut r = rng(4);
    fill(&shard, &mut r, 0, 12_000, dim);
    shard.run_background_once().unwrap();
    assert!(matches!(
        shard.segment_info()[0].2,
        storage_node::ann::AnnKind::Hnsw { .. }
    ));
    // 9 in 10 match (HNSW with a selector), 1 in 10 and 3 points (exact
    // scan: a graph walk would miss most of them).
    let filters = [
        json!({"must_not": [{"key": "group", "match": {"value": 0}}]}),
        json!({"must": [{"key": "group", "match": {"value": 7}}]}),
        json!({"must": [{"key": "n", "range": {"gte": 100, "lt": 103}}]}),
        json!({"must_not": [{"key": "group", "match": {"any": [0, 1, 2, 3, 4, 5, 6, 7]}}]}),
    ];
    for f in filters {
        let filter: protocol::Filter = serde_json::from_value(f).unwrap();
        for _ in 0..10 {
            let q = random_vector(&mut r, dim);
            let mut req = SearchRequest::new(q.clone(), 10);
            req.filter = Some(filter.clone());
            req.with_payload = true;
            let hits = shard.search(&req).unwrap();
            let expected = brute_force(&shard, &q, 10, Some(&filter));
            assert_eq!(
                hits.len(),
                expected.len(),
                "never fewer than limit when more match"
            );
            for h in &hits {
                assert!(filter.matches(h.id, h.payload.as_ref()));
            }
            let got: Vec<PointId> = hits.iter().map(|h| h.id).collect();
            let overlap = got.iter().filter(|id| expected.contains(id)).count();
            assert!(
                overlap >= expected.len().min(9),
                "filtered recall too low: {got:?} vs {expected:?}"
            );
        }
    }
}

#[test]
fn tombstones_are_never_returned_and_compaction_purges_them() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 8;
    let shard = open(dir.path(), dim, Distance::Dot, 500);
    let mut r = rng(5);
    fill(&shard, &mut r, 0, 500, dim);
    shard.run_background_once().unwrap();
    let deleted: Vec<PointId> = (0..150).map(PointId::Num).collect();
    shard
        .apply(Operation::Delete {
            ids: deleted.clone(),
        })
        .unwrap();
    for _ in 0..20 {
        let req = SearchRequest::new(random_vector(&mut r, dim), 50);
        for hit in shard.search(&req).unwrap() {
            assert!(
                !deleted.contains(&hit.id),
                "deleted point {} returned",
                hit.id
            );
        }
    }
    // 30% tombstones > 20%: the segment is rewritten without them.
    assert!(shard.run_background_once().unwrap());
    let info = shard.segment_info();
    assert_eq!(info[0].0, 350, "{info:?}");
    assert_eq!(info[0].1, 350);
    assert_eq!(shard.count(&CountRequest::default()).unwrap(), 350);
    drop(shard);
    let shard = open(dir.path(), dim, Distance::Dot, 500);
    assert_eq!(shard.count(&CountRequest::default()).unwrap(), 350);
    assert!(shard.get(&deleted, false, false).is_empty());
}

#[test]
fn euclid_scores_and_threshold_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), 2, Distance::Euclid, 1000);
    let points = (0..10u64)
        .map(|i| Point {
            id: PointId::Num(i),
            vector: vec![i as f32, 0.0],
            payload: None,
        })
        .collect();
    shard.apply(Operation::Upsert { points }).unwrap();
    let mut req = SearchRequest::new(vec![0.0, 0.0], 3);
    let hits = shard.search(&req).unwrap();
    assert_eq!(
        hits.iter().map(|h| h.score).collect::<Vec<_>>(),
        vec![0.0, 1.0, 2.0]
    );
    req.offset = 2;
    assert_eq!(shard.search(&req).unwrap()[0].id, PointId::Num(2));
    req.offset = 0;
    req.limit = 10;
    req.score_threshold = Some(4.5);
    assert_eq!(shard.search(&req).unwrap().len(), 5);
}

#[test]
fn cosine_normalises() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), 2, Distance::Cosine, 1000);
    shard
        .apply(Operation::Upsert {
            points: vec![
                Point {
                    id: PointId::Num(1),
                    vector: vec![10.0, 0.0],
                    payload: None,
                },
                Point {
                    id: PointId::Num(2),
                    vector: vec![1.0, 1.0],
                    payload: None,
                },
            ],
        })
        .unwrap();
    let hits = shard
        .search(&SearchRequest::new(vec![3.0, 0.0], 2))
        .unwrap();
    assert_eq!(hits[0].id, PointId::Num(1));
    assert!((hits[0].score - 1.0).abs() < 1e-5);
    assert!((hits[1].score - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-5);
}

#[test]
fn ivf_segments_search_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 8;
    let mut c = config(dim, Distance::Dot);
    c.index = protocol::collection::IndexKind::Ivf {
        nlist: 16,
        nprobe: 16,
    };
    let shard = storage_node::Shard::open(dir.path(), c.clone(), options(1000)).unwrap();
    let mut r = rng(6);
    fill(&shard, &mut r, 0, 1000, dim);
    shard.run_background_once().unwrap();
    assert!(matches!(
        shard.segment_info()[0].2,
        storage_node::ann::AnnKind::Ivf { .. }
    ));
    let q = random_vector(&mut r, dim);
    let before = shard.search(&SearchRequest::new(q.clone(), 5)).unwrap();
    assert_eq!(before.len(), 5);
    let exact = brute_force(&shard, &q, 5, None);
    // nprobe == nlist: IVF is exhaustive.
    assert_eq!(before.iter().map(|h| h.id).collect::<Vec<_>>(), exact);
    drop(shard);
    let shard = storage_node::Shard::open(dir.path(), c, options(1000)).unwrap();
    assert_eq!(shard.search(&SearchRequest::new(q, 5)).unwrap(), before);
}

/// A write authorised under term 1 that reaches the shard after a newer
/// primary's `Replicate` raised the term to 2 must not be logged under
/// term 2: the new primary's own operation with that sequence number
/// would then be skipped as already applied (silent divergence).
#[test]
fn a_write_of_an_older_term_is_refused_after_the_term_moved_on() {
    use protocol::{SequencedOperation, Term};
    use storage_node::ShardError;
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), 2, Distance::Dot, 1000);
    let upsert = |id: u64, x: f32| Operation::Upsert {
        points: vec![Point {
            id: PointId::Num(id),
            vector: vec![x, 1.0],
            payload: None,
        }],
    };
    shard.set_term(Term(1));
    assert_eq!(
        shard.apply_in_term(upsert(1, 1.0), Term(1)).unwrap(),
        SeqNo(1)
    );
    // The new primary's Replicate (term 2) raised the term meanwhile.
    shard.set_term(Term(2));
    match shard.apply_in_term(upsert(2, 2.0), Term(1)) {
        Err(ShardError::StaleTerm {
            authorised,
            current,
        }) => {
            assert_eq!((authorised, current), (Term(1), Term(2)));
        }
        other => panic!("expected StaleTerm, got {other:?}"),
    }
    assert_eq!(shard.applied_seq(), SeqNo(1));
    // The new primary's operation 2 is applied, not mistaken for the old one.
    shard
        .apply_sequenced(SequencedOperation {
            seq: SeqNo(2),
            term: Term(2),
            op: upsert(3, 3.0),
        })
        .unwrap();
    assert_eq!(shard.term_at(SeqNo(2)).unwrap(), Some(Term(2)));
    assert_eq!(shard.get(&[PointId::Num(3)], false, false).len(), 1);
    assert!(shard.get(&[PointId::Num(2)], false, false).is_empty());
}

/// The primary resends an operation this replica holds under another
/// term: the histories differ, which must be reported, not acknowledged.
#[test]
fn an_operation_held_under_another_term_is_not_skipped() {
    use protocol::{SequencedOperation, Term};
    use storage_node::ShardError;
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), 2, Distance::Dot, 1000);
    let sop = |seq: u64, term: u64| SequencedOperation {
        seq: SeqNo(seq),
        term: Term(term),
        op: Operation::Delete {
            ids: vec![PointId::Num(seq)],
        },
    };
    assert_eq!(
        shard
            .apply_sequenced_batch(vec![sop(1, 1), sop(2, 1)])
            .unwrap(),
        SeqNo(2)
    );
    // The same operations again: acknowledged without effect.
    assert_eq!(
        shard
            .apply_sequenced_batch(vec![sop(2, 1), sop(3, 1)])
            .unwrap(),
        SeqNo(3)
    );
    assert!(matches!(
        shard.apply_sequenced_batch(vec![sop(3, 2), sop(4, 2)]),
        Err(ShardError::Diverged { .. })
    ));
    assert_eq!(shard.applied_seq(), SeqNo(3));
}

#[test]
fn an_estimated_count_samples_and_an_exact_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), 4, Distance::Dot, 100_000);
    let mut rng = StdRng::seed_from_u64(3);
    // `group` is id % 10: periodic in the ids, which a stride sample of
    // the id order would alias with.
    fill(&shard, &mut rng, 0, 40_000, 4);
    let filter = |g: u64| {
        serde_json::from_value::<protocol::Filter>(
            json!({"must": [{"key": "group", "match": {"value": g}}]}),
        )
        .unwrap()
    };
    let count = |g: u64, estimate: bool| {
        shard
            .count(&CountRequest {
                filter: Some(filter(g)),
                estimate,
            })
            .unwrap()
    };
    for g in [0, 3, 9] {
        assert_eq!(count(g, false), 4_000);
        let est = count(g, true);
        assert!((3_500..=4_500).contains(&est), "group {g}: estimate {est}");
    }
    assert_eq!(count(10, true), 0);
    // Unfiltered, and small shards, are always exact.
    let all = CountRequest {
        filter: None,
        estimate: true,
    };
    assert_eq!(shard.count(&all).unwrap(), 40_000);
    let dir = tempfile::tempdir().unwrap();
    let small = open(dir.path(), 4, Distance::Dot, 100_000);
    fill(&small, &mut rng, 0, 1_000, 4);
    let req = CountRequest {
        filter: Some(filter(7)),
        estimate: true,
    };
    assert_eq!(small.count(&req).unwrap(), 100);
}
