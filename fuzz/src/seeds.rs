//! The seed corpus: real encodings of real messages, made by the same
//! encoders the services use, so the fuzzer starts from inputs that get
//! past the first checks. Committed under `fuzz/corpus/<target>/`; the
//! test `seeds::tests::the_committed_corpus_is_what_the_generator_makes`
//! keeps the files in step with this code (`FUZZ_WRITE_SEEDS=1` rewrites
//! them).

use protocol::rpc::{ShardRef, StorageError, StorageRequest, StorageResponse};
use protocol::{
    CountRequest, Epoch, Filter, Operation, Payload, Point, PointId, Record, ScoredPoint, SeqNo,
    SequencedOperation, ShardId, Term, WriteConsistency,
};
use protocol::{ScrollRequest, ScrollResponse, SearchRequest};
use serde_json::json;
use transport::frame::{encode_body, DEFAULT_MAX_FRAME};

use gateway::api::points::fuzzing::Route;

/// One seed file: its name and bytes.
pub type Seed = (String, Vec<u8>);

/// The seeds of `target` (a name from [`crate::TARGETS`]).
pub fn for_target(target: &str) -> Vec<Seed> {
    match target {
        "frame" => frame_seeds(),
        "wal_record" => wal_seeds(),
        "snapshot_chunk" => snapshot_seeds(),
        "json_models" => json_seeds(),
        _ => Vec::new(),
    }
}

fn uuid() -> PointId {
    match "5c56c793-69f3-4fbf-87e6-c4bf54c28c26".parse() {
        Ok(id) => id,
        Err(_) => PointId::Num(0),
    }
}

fn payload(i: u64) -> Option<Payload> {
    json!({"city": "Berlin", "n": i, "tags": ["a", "b"], "nested": {"x": 1.5, "ok": true}, "none": null})
        .as_object()
        .cloned()
}

fn points(n: u64) -> Vec<Point> {
    (0..n)
        .map(|i| Point {
            id: if i == 1 { uuid() } else { PointId::Num(i) },
            vector: vec![i as f32, 0.5, -1.0, 2.0],
            payload: if i % 2 == 0 { payload(i) } else { None },
        })
        .collect()
}

fn filter() -> Filter {
    let f = json!({
        "must": [{"key": "city", "match": {"value": "Berlin"}}, {"has_id": [1, 2]}],
        "should": [{"key": "n", "range": {"gte": 1.0, "lt": 10.0}}],
        "must_not": [{"must": [{"key": "nested.ok", "match": {"any": [false]}}]}]
    });
    serde_json::from_value(f).unwrap_or_default()
}

fn shard() -> ShardRef {
    ShardRef {
        collection: "fuzz".into(),
        shard: ShardId(1),
    }
}

fn operations() -> Vec<Operation> {
    vec![
        Operation::Upsert { points: points(3) },
        Operation::Delete {
            ids: vec![PointId::Num(1), uuid()],
        },
        Operation::DeleteByFilter { filter: filter() },
        Operation::SetPayload {
            ids: vec![PointId::Num(2)],
            payload: payload(7).unwrap_or_default(),
        },
        Operation::OverwritePayload {
            ids: vec![PointId::Num(2)],
            payload: payload(8).unwrap_or_default(),
        },
        Operation::DeletePayloadKeys {
            ids: vec![PointId::Num(2)],
            keys: vec!["city".into()],
        },
        Operation::ClearPayload {
            ids: vec![PointId::Num(3)],
        },
    ]
}

fn sequenced() -> Vec<SequencedOperation> {
    operations()
        .into_iter()
        .enumerate()
        .map(|(i, op)| SequencedOperation {
            seq: SeqNo(i as u64 + 1),
            term: Term(2),
            op,
        })
        .collect()
}

fn install_snapshot(first: bool, last: bool, n: u64) -> StorageRequest {
    StorageRequest::InstallSnapshot {
        shard: shard(),
        term: Term(3),
        seq: SeqNo(42),
        chunk: points(n)
            .into_iter()
            .map(|point| protocol::rpc::SnapshotEntry { point, version: 9 })
            .collect(),
        first,
        last,
        last_term: Some(Term(2)),
        consistent_from: last.then_some(SeqNo(44)),
        snapshot_id: Some(77),
    }
}

fn requests() -> Vec<(&'static str, StorageRequest)> {
    let mut search = SearchRequest::new(vec![1.0, 0.0, 0.0, 0.5], 10);
    search.filter = Some(filter());
    search.params.hnsw_ef = Some(64);
    search.score_threshold = Some(0.25);
    vec![
        (
            "write",
            StorageRequest::Write {
                shard: shard(),
                epoch: Epoch(5),
                op: Operation::Upsert { points: points(2) },
                consistency: WriteConsistency::Majority,
            },
        ),
        (
            "replicate",
            StorageRequest::Replicate {
                shard: shard(),
                term: Term(2),
                ops: sequenced(),
            },
        ),
        ("install_snapshot", install_snapshot(true, true, 3)),
        (
            "search",
            StorageRequest::Search {
                shard: shard(),
                epoch: Epoch(5),
                request: search,
            },
        ),
        (
            "get",
            StorageRequest::Get {
                shard: shard(),
                epoch: Epoch(5),
                ids: vec![PointId::Num(1), uuid()],
                with_payload: true,
                with_vector: false,
            },
        ),
        (
            "scroll",
            StorageRequest::Scroll {
                shard: shard(),
                epoch: Epoch(5),
                request: ScrollRequest {
                    offset: Some(PointId::Num(3)),
                    limit: 20,
                    filter: Some(filter()),
                    with_payload: true,
                    with_vector: true,
                },
            },
        ),
        (
            "count",
            StorageRequest::Count {
                shard: shard(),
                epoch: Epoch(5),
                request: CountRequest {
                    filter: Some(filter()),
                    estimate: true,
                },
            },
        ),
        ("status", StorageRequest::Status { shard: shard() }),
        (
            "term_at",
            StorageRequest::TermAt {
                shard: shard(),
                seq: SeqNo(3),
            },
        ),
        (
            "catch_up",
            StorageRequest::CatchUp {
                shard: shard(),
                replica: protocol::NodeId(2),
                applied: SeqNo(1),
            },
        ),
    ]
}

fn responses() -> Vec<(&'static str, StorageResponse)> {
    let applied = SeqNo(9);
    vec![
        (
            "written",
            StorageResponse::Written {
                seq: SeqNo(3),
                acks: 2,
            },
        ),
        (
            "hits",
            StorageResponse::Hits {
                hits: vec![ScoredPoint {
                    id: uuid(),
                    version: 4,
                    score: 0.75,
                    payload: payload(1),
                    vector: Some(vec![1.0, 2.0, 3.0, 4.0]),
                }],
                applied,
            },
        ),
        (
            "records",
            StorageResponse::Records {
                records: vec![Record {
                    id: PointId::Num(5),
                    payload: payload(5),
                    vector: None,
                }],
                applied,
            },
        ),
        (
            "scrolled",
            StorageResponse::Scrolled {
                page: ScrollResponse {
                    points: vec![],
                    next_page_offset: Some(PointId::Num(6)),
                },
                applied,
            },
        ),
        (
            "error",
            StorageResponse::Error {
                error: StorageError::NotPrimary {
                    primary: Some(protocol::NodeId(3)),
                    epoch: Epoch(8),
                },
            },
        ),
    ]
}

/// A frame as `transport` writes it: big-endian length, then the body.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn body<T: serde::Serialize>(v: &T) -> Vec<u8> {
    encode_body(v, DEFAULT_MAX_FRAME).unwrap_or_default()
}

fn frame_seeds() -> Vec<Seed> {
    let mut out: Vec<Seed> = requests()
        .iter()
        .map(|(name, r)| (format!("req-{name}"), framed(&body(r))))
        .collect();
    out.extend(
        responses()
            .iter()
            .map(|(name, r)| (format!("resp-{name}"), framed(&body(r)))),
    );
    // A streamed reply: several frames back to back, the last cut short.
    let mut stream = Vec::new();
    for (_, r) in responses().iter().take(3) {
        stream.extend(framed(&body(r)));
    }
    stream.extend_from_slice(&[0, 0, 1]);
    out.push(("stream-torn".into(), stream));
    out
}

fn wal_seeds() -> Vec<Seed> {
    let records: Vec<Vec<u8>> = sequenced()
        .iter()
        .map(|op| protocol::wal_record::encode(op).unwrap_or_default())
        .collect();
    let mut out: Vec<Seed> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("record-{i}"), r.clone()))
        .collect();
    let file: Vec<u8> = records.concat();
    let mut torn = file.clone();
    torn.truncate(file.len() - 3);
    out.push(("file".into(), file));
    out.push(("file-torn-tail".into(), torn));
    // Bare bodies: the target also frames its input with a valid CRC.
    for (i, op) in sequenced().iter().enumerate().take(3) {
        out.push((
            format!("body-{i}"),
            protocol::codec::encode(op).unwrap_or_default(),
        ));
    }
    out
}

fn snapshot_seeds() -> Vec<Seed> {
    vec![
        ("first".into(), body(&install_snapshot(true, false, 4))),
        ("middle".into(), body(&install_snapshot(false, false, 2))),
        ("last".into(), body(&install_snapshot(false, true, 1))),
        ("empty-last".into(), body(&install_snapshot(false, true, 0))),
        (
            "replicate".into(),
            body(&StorageRequest::Replicate {
                shard: shard(),
                term: Term(2),
                ops: sequenced(),
            }),
        ),
    ]
}

/// Request bodies as Qdrant clients send them, each prefixed with the
/// byte that picks its route.
fn json_seeds() -> Vec<Seed> {
    let bodies = [
        (
            Route::Upsert,
            json!({"points": [{"id": 1, "vector": [0.1, 0.2, 0.3, 0.4], "payload": {"city": "Berlin"}},
                              {"id": "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "vector": [1, 0, 0, 0]}]}),
        ),
        (
            Route::Upsert,
            json!({"batch": {"ids": [1, 2], "vectors": [[1, 2, 3, 4], [4, 3, 2, 1]], "payloads": [{"a": 1}, null]}}),
        ),
        (Route::Delete, json!({"points": [1, 2, 3]})),
        (
            Route::Delete,
            json!({"filter": {"must": [{"key": "city", "match": {"value": "Berlin"}}]}}),
        ),
        (
            Route::SetPayload,
            json!({"payload": {"color": "red", "n": 3}, "points": [1]}),
        ),
        (
            Route::OverwritePayload,
            json!({"payload": {"k": [1, 2]}, "filter": {"must_not": [{"has_id": [5]}]}}),
        ),
        (
            Route::DeletePayload,
            json!({"keys": ["color"], "points": [1, 2]}),
        ),
        (Route::ClearPayload, json!({"points": [7]})),
        (
            Route::Batch,
            json!({"operations": [
                {"upsert": {"points": [{"id": 9, "vector": [1, 1, 1, 1]}]}},
                {"set_payload": {"payload": {"a": "b"}, "points": [9]}},
                {"delete": {"points": [9]}}
            ]}),
        ),
        (
            Route::Search,
            json!({"vector": [0.2, 0.1, 0.9, 0.7], "limit": 3, "with_payload": true,
                   "filter": {"should": [{"key": "city", "match": {"any": ["London", "Berlin"]}}]},
                   "params": {"hnsw_ef": 128, "exact": false}, "score_threshold": 0.1}),
        ),
        (
            Route::SearchBatch,
            json!({"searches": [{"vector": [1, 0, 0, 0], "limit": 2},
                                {"vector": [0, 1, 0, 0], "top": 1, "with_vector": true}]}),
        ),
        (
            Route::Query,
            json!({"query": [0.2, 0.1, 0.9, 0.7], "limit": 5, "with_payload": ["city"]}),
        ),
        (
            Route::Query,
            json!({"query": {"nearest": [1, 2, 3, 4]}, "filter": {"must": [{"key": "n", "range": {"gt": 2}}]}}),
        ),
        (Route::QueryBatch, json!({"searches": [{"query": 42}]})),
        (
            Route::Scroll,
            json!({"limit": 10, "offset": 3, "with_payload": {"exclude": ["city"]}, "with_vector": false,
                   "filter": {"must": [{"key": "tags", "match": {"except": ["x"]}}]}}),
        ),
        (
            Route::Count,
            json!({"exact": false, "filter": {"must": [{"key": "city", "match": {"value": "Berlin"}}]}}),
        ),
        (
            Route::CreateCollection,
            json!({"vectors": {"size": 384, "distance": "Cosine"}, "shard_number": 3,
                   "replication_factor": 2, "write_consistency_factor": 2,
                   "hnsw_config": {"m": 16, "ef_construct": 100}}),
        ),
        (
            Route::Scroll,
            json!({"limit": 5, "filter": {
                "must": [{"key": "bio", "match": {"text": "vector search"}},
                         {"key": "at", "range": {"gte": "2024-05-01T12:00:00Z", "lt": "2024-06-01"}},
                         {"key": "tags", "values_count": {"gte": 2}}],
                "should": [{"is_empty": {"key": "notes"}}, {"is_null": {"key": "owner"}},
                           {"key": "title", "match": {"phrase": "hello world"}}],
                "min_should": {"min_count": 1, "conditions": [
                    {"nested": {"key": "diet[]", "filter": {"must": [
                        {"key": "food", "match": {"value": "meat"}}]}}},
                    {"key": "n", "match": {"text_any": "a b"}}]}}}),
        ),
        (
            Route::Count,
            json!({"filter": {"must": [
                {"key": "loc", "geo_radius": {"center": {"lon": 13.4, "lat": 52.5}, "radius": 1000.0}},
                {"key": "loc", "geo_bounding_box": {"top_left": {"lon": 13.0, "lat": 53.0},
                                                     "bottom_right": {"lon": 14.0, "lat": 52.0}}},
                {"key": "loc", "geo_polygon": {"exterior": {"points": [
                    {"lon": 13.0, "lat": 52.0}, {"lon": 14.0, "lat": 52.0},
                    {"lon": 14.0, "lat": 53.0}, {"lon": 13.0, "lat": 52.0}]}}},
                {"key": "tags", "is_empty": false}]}}),
        ),
    ];
    bodies
        .iter()
        .enumerate()
        .map(|(i, (route, b))| {
            let pick = Route::ALL.iter().position(|r| r == route).unwrap_or(0) as u8;
            let mut bytes = vec![pick];
            bytes.extend(serde_json::to_vec(b).unwrap_or_default());
            (format!("{i:02}-{route:?}").to_lowercase(), bytes)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::TARGETS;

    fn corpus_dir(target: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(target)
    }

    #[test]
    fn the_committed_corpus_is_what_the_generator_makes() {
        let write = std::env::var_os("FUZZ_WRITE_SEEDS").is_some();
        for t in &TARGETS {
            let seeds = for_target(t.name);
            assert!(seeds.len() >= 5, "{}: too few seeds", t.name);
            let dir = corpus_dir(t.name);
            if write {
                std::fs::create_dir_all(&dir).unwrap();
            }
            for (name, bytes) in seeds {
                assert!(!bytes.is_empty(), "{}/{name} is empty", t.name);
                let path = dir.join(&name);
                if write {
                    std::fs::write(&path, &bytes).unwrap();
                }
                let on_disk = std::fs::read(&path).unwrap_or_default();
                assert!(
                    on_disk == bytes,
                    "{} differs from the generator: FUZZ_WRITE_SEEDS=1 cargo test -p fuzz seeds",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn every_seed_gets_past_the_first_checks() {
        // A seed that the decoder refuses at once teaches the fuzzer little.
        for (name, b) in frame_seeds().iter().filter(|(n, _)| n.starts_with("req-")) {
            let len =
                transport::frame::body_len([b[0], b[1], b[2], b[3]], DEFAULT_MAX_FRAME).unwrap();
            transport::frame::decode_body::<StorageRequest>(&b[4..4 + len])
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let s =
            protocol::wal_record::scan(&wal_seeds().iter().find(|(n, _)| n == "file").unwrap().1);
        assert_eq!(s.records.len(), operations().len());
        assert!(s.damage.is_none());
        let coll = crate::targets::collection();
        for (name, b) in json_seeds() {
            let route = Route::ALL[usize::from(b[0]) % Route::ALL.len()];
            gateway::api::points::fuzzing::parse_body(route, &b[1..], &coll)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
