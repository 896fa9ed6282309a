//! Random operation sequences against a plain map: after every restart
//! and every round of background work the shard holds exactly what the
//! model says, its incremental checksum equals a recomputed one, and its
//! snapshot pages cover every point exactly once.

use std::collections::BTreeMap;

use proptest::prelude::*;
use protocol::{Distance, Operation, Payload, Point, PointId};
use serde_json::json;

use super::*;

type Model = BTreeMap<PointId, (Vec<f32>, Option<Payload>)>;

#[derive(Clone, Debug)]
enum Step {
    Upsert(Vec<(u64, f32, i64)>),
    Delete(Vec<u64>),
    SetPayload(Vec<u64>, i64),
    Clear(Vec<u64>),
    Background,
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    let id = 0u64..60;
    prop_oneof![
        6 => proptest::collection::vec((id.clone(), -10.0f32..10.0, 0i64..5), 1..12).prop_map(Step::Upsert),
        2 => proptest::collection::vec(id.clone(), 1..6).prop_map(Step::Delete),
        2 => (proptest::collection::vec(id.clone(), 1..4), 0i64..5).prop_map(|(ids, v)| Step::SetPayload(ids, v)),
        1 => proptest::collection::vec(id, 1..3).prop_map(Step::Clear),
        1 => Just(Step::Background),
        1 => Just(Step::Reopen),
    ]
}

fn to_op(step: &Step) -> Option<Operation> {
    let ids = |v: &Vec<u64>| v.iter().map(|i| PointId::Num(*i)).collect::<Vec<_>>();
    Some(match step {
        Step::Upsert(ps) => Operation::Upsert {
            points: ps
                .iter()
                .map(|(id, x, tag)| Point {
                    id: PointId::Num(*id),
                    vector: vec![*x, *id as f32, 1.0],
                    payload: Some(payload(json!({"tag": tag}))),
                })
                .collect(),
        },
        Step::Delete(v) => Operation::Delete { ids: ids(v) },
        Step::SetPayload(v, x) => Operation::SetPayload {
            ids: ids(v),
            payload: payload(json!({"extra": x})),
        },
        Step::Clear(v) => Operation::ClearPayload { ids: ids(v) },
        Step::Background | Step::Reopen => return None,
    })
}

fn apply_model(model: &mut Model, op: &Operation) {
    match op {
        Operation::Upsert { points } => {
            for p in points {
                model.insert(p.id, (p.vector.clone(), p.payload.clone()));
            }
        }
        Operation::Delete { ids } => ids.iter().for_each(|id| {
            model.remove(id);
        }),
        Operation::SetPayload { ids, payload } => {
            for id in ids {
                if let Some((_, p)) = model.get_mut(id) {
                    let t = p.get_or_insert_with(Payload::new);
                    t.extend(payload.clone());
                }
            }
        }
        Operation::ClearPayload { ids } => {
            for id in ids {
                if let Some((_, p)) = model.get_mut(id) {
                    *p = None;
                }
            }
        }
        _ => unreachable!(),
    }
}

fn check(shard: &storage_node::Shard, model: &Model) -> Result<(), TestCaseError> {
    let snap = shard.snapshot();
    let got: Model = snap
        .points
        .into_iter()
        .map(|p| (p.point.id, (p.point.vector, p.point.payload)))
        .collect();
    prop_assert_eq!(&got, model);
    // The checksum kept on every apply equals the one walked from scratch.
    prop_assert_eq!(shard.content_checksum(), shard.recompute_checksum());
    // Snapshot pages (7 points or ~100 bytes each) cover every point once.
    let mut paged = Model::new();
    let mut after = None;
    for _ in 0..100 {
        let (page, next) = shard.snapshot_page(after, 7, 100);
        prop_assert!(page.len() <= 7);
        let bytes: usize = page.iter().map(|p| p.approx_bytes()).sum();
        let last = page.last().map_or(0, |p| p.approx_bytes());
        prop_assert!(bytes <= 100 + last, "a page of {} bytes", bytes);
        for p in page {
            let fresh = paged
                .insert(p.point.id, (p.point.vector, p.point.payload))
                .is_none();
            prop_assert!(fresh, "a point in two pages");
        }
        after = next;
        if after.is_none() {
            break;
        }
    }
    prop_assert!(after.is_none());
    prop_assert_eq!(&paged, model);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn shard_matches_model_across_restarts_and_compaction(steps in proptest::collection::vec(step(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let reopen = || open(dir.path(), 3, Distance::Dot, 25);
        let mut shard = reopen();
        let mut model = Model::new();
        for s in &steps {
            match s {
                Step::Background => while shard.run_background_once().unwrap() {},
                Step::Reopen => {
                    drop(shard);
                    shard = reopen();
                }
                _ => {
                    let op = to_op(s).unwrap();
                    shard.apply(op.clone()).unwrap();
                    apply_model(&mut model, &op);
                }
            }
            check(&shard, &model)?;
        }
        drop(shard);
        let shard = reopen();
        check(&shard, &model)?;
    }
}
