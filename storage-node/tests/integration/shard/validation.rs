//! Bad input gets a typed error and changes nothing.

use protocol::point::MAX_BATCH_POINTS;
use protocol::{Distance, Operation, Point, PointId, SearchRequest, ValidationError};
use serde_json::json;
use storage_node::ShardError;

use super::*;

#[test]
fn bad_writes_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), 4, Distance::Dot, 1000);
    fill(&shard, &mut rng(7), 0, 20, 4);
    let before = (shard.applied_seq(), shard.content_checksum());
    let point = |v: Vec<f32>| Point {
        id: PointId::Num(1000),
        vector: v,
        payload: None,
    };
    let bad = vec![
        // One bad point spoils the whole batch: the good one is not applied either.
        Operation::Upsert {
            points: vec![point(vec![1.0; 4]), point(vec![1.0; 3])],
        },
        Operation::Upsert {
            points: vec![point(vec![1.0, f32::NAN, 0.0, 0.0])],
        },
        Operation::Upsert {
            points: vec![point(vec![f32::INFINITY, 0.0, 0.0, 0.0])],
        },
        Operation::Upsert {
            points: (0..MAX_BATCH_POINTS as u64 + 1)
                .map(|i| Point {
                    id: PointId::Num(i),
                    vector: vec![0.0; 4],
                    payload: None,
                })
                .collect(),
        },
        Operation::Upsert {
            points: vec![Point {
                id: PointId::Num(1),
                vector: vec![0.0; 4],
                payload: Some(payload(json!({"big": "x".repeat(2 << 20)}))),
            }],
        },
        Operation::DeleteByFilter {
            filter: serde_json::from_value(json!({"must": [{"key": "a", "range": {}}]})).unwrap(),
        },
    ];
    for op in bad {
        match shard.apply(op) {
            Err(ShardError::Invalid(_)) => {}
            other => panic!("expected a validation error, got {other:?}"),
        }
    }
    assert_eq!((shard.applied_seq(), shard.content_checksum()), before);
}

#[test]
fn bad_searches_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), 4, Distance::Dot, 1000);
    let cases = [
        SearchRequest::new(vec![1.0; 3], 10),
        SearchRequest::new(vec![f32::NAN, 0.0, 0.0, 0.0], 10),
        SearchRequest::new(vec![1.0; 4], 0),
        SearchRequest::new(vec![1.0; 4], 1_000_000),
    ];
    for req in cases {
        assert!(
            matches!(shard.search(&req), Err(ShardError::Invalid(_))),
            "{req:?}"
        );
    }
    let mut req = SearchRequest::new(vec![1.0; 4], 10);
    req.filter = Some(serde_json::from_value(json!({"must": [{"key": "a"}]})).unwrap());
    assert!(matches!(
        shard.search(&req),
        Err(ShardError::Invalid(ValidationError::MalformedFilter { .. }))
    ));
}

#[test]
fn reopening_with_another_dimension_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), 4, Distance::Dot, 1000));
    let err = storage_node::Shard::open(dir.path(), config(8, Distance::Dot), options(1000)).err();
    assert!(matches!(
        err,
        Some(ShardError::Invalid(ValidationError::InvalidConfig { .. }))
    ));
}
