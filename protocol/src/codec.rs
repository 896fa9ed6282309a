//! msgpack encoding for the wire and the WAL. Structs are encoded as maps
//! (field names included) so that optional fields and later additions stay
//! readable by older and newer peers.

use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CodecError {
    #[error("encode: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    #[error("decode: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(rmp_serde::to_vec_named(value)?)
}

/// Deepest nesting of msgpack arrays and maps [`decode`] accepts.
/// Decoding recurses once per level (twice for the untagged filter
/// conditions), on a tokio worker's 2 MiB stack: at rmp-serde's default
/// of 1,024 a filter nested ~300 levels deep overflowed it in a debug
/// build (release: ~0.6 of 1 MiB). Nothing legitimate comes near 256: JSON
/// bodies are at most 128 deep (serde_json's limit, so payloads are too),
/// filters at most `MAX_FILTER_DEPTH` (32, two levels each), and the
/// messages around them add fewer than ten.
pub const MAX_DECODE_DEPTH: usize = 256;

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MAX_DECODE_DEPTH);
    Ok(T::deserialize(&mut de)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) {
        let bytes = encode(v).unwrap();
        let back: T = decode(&bytes).unwrap();
        assert_eq!(&back, v);
    }

    #[test]
    fn round_trips_every_message_kind() {
        let payload = json!({"s": "x", "n": -3, "u": 18446744073709551615u64, "f": 1.5,
                             "b": true, "a": [1, "two", null], "o": {"k": {"deep": 1}}});
        let p = Point {
            id: PointId::Uuid(uuid::Uuid::new_v4()),
            vector: vec![0.5, -1.0],
            payload: Some(payload.as_object().cloned().unwrap()),
        };
        let filter: Filter = serde_json::from_value(json!({
            "must": [{"key": "s", "match": {"value": "x"}}, {"has_id": [1, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]}],
            "should": [{"key": "n", "range": {"gte": -5.0}}, {"key": "b", "match": {"any": [true]}}],
            "must_not": [{"must": [{"key": "o.k.deep", "match": {"except": [2, 3]}}]}]
        }))
        .unwrap();
        round_trip(&p);
        round_trip(&filter);
        round_trip(&CollectionConfig::new(384, Distance::Cosine));
        let mut req = SearchRequest::new(vec![1.0, 2.0], 10);
        req.filter = Some(filter.clone());
        req.params.hnsw_ef = Some(128);
        req.score_threshold = Some(0.5);
        round_trip(&req);
        for op in [
            Operation::Upsert {
                points: vec![p.clone()],
            },
            Operation::Delete {
                ids: vec![PointId::Num(1)],
            },
            Operation::DeleteByFilter { filter },
            Operation::SetPayload {
                ids: vec![PointId::Num(2)],
                payload: p.payload.clone().unwrap(),
            },
            Operation::DeletePayloadKeys {
                ids: vec![PointId::Num(2)],
                keys: vec!["s".into()],
            },
            Operation::ClearPayload { ids: vec![] },
        ] {
            round_trip(&SequencedOperation {
                seq: SeqNo(9),
                term: Term(2),
                op,
            });
        }
        round_trip(&ScoredPoint {
            id: PointId::Num(3),
            version: 4,
            score: 0.25,
            payload: None,
            vector: Some(vec![1.0]),
        });
        round_trip(&ScrollResponse {
            points: vec![],
            next_page_offset: Some(PointId::Num(5)),
        });
    }

    /// msgpack of a count request whose filter nests `levels` filters,
    /// each `{"must": [ ... ]}`, around one field condition.
    fn deeply_nested_count(levels: usize) -> Vec<u8> {
        let mut filter = json!({"key": "a", "match": {"value": 1}});
        for _ in 0..levels {
            filter = json!({"must": [filter]});
        }
        let req = json!({"type": "count", "shard": {"collection": "c", "shard": 0}, "epoch": 1,
                         "request": {"filter": filter}});
        // Encoded on a big stack: serde_json's Value drops and encodes recursively.
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(move || rmp_serde::to_vec_named(&req).unwrap())
            .unwrap()
            .join()
            .unwrap()
    }

    /// Regression (fuzz harness, `fuzz/regressions/frame/deep-filter`): a
    /// 300-level filter, about 3 KB on the wire, overflowed a tokio
    /// worker's 2 MiB stack while decoding (debug build) and aborted the
    /// storage node. Now refused at the depth limit, on the same stack.
    #[test]
    fn deep_nesting_is_refused_within_a_worker_stack() {
        let bytes = deeply_nested_count(300);
        let result = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || decode::<crate::rpc::StorageRequest>(&bytes).map(|_| ()))
            .unwrap()
            .join()
            .expect("decoding must not overflow the stack");
        assert!(
            matches!(&result, Err(CodecError::Decode(e)) if e.to_string().contains("depth")),
            "{result:?}"
        );
        // The deepest filter a request may carry still decodes.
        let ok = deeply_nested_count(crate::filter::MAX_FILTER_DEPTH);
        assert!(decode::<crate::rpc::StorageRequest>(&ok).is_ok());
    }

    /// The deepest payload the gateway can accept (serde_json parses at
    /// most 128 levels) fits under the decode limit inside a point.
    #[test]
    fn the_deepest_json_payload_still_decodes() {
        let mut text = String::from("1");
        for _ in 0..127 {
            text = format!("[{text}]");
        }
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut payload = Payload::new();
        payload.insert("p".into(), value);
        round_trip(&SequencedOperation {
            seq: SeqNo(1),
            term: Term(1),
            op: Operation::Upsert {
                points: vec![Point {
                    id: PointId::Num(1),
                    vector: vec![1.0],
                    payload: Some(payload),
                }],
            },
        });
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode::<SequencedOperation>(&[0xc1, 0xff, 0x00]).is_err());
        assert!(decode::<Point>(&[]).is_err());
    }

    proptest! {
        #[test]
        fn points_round_trip(id in any::<u64>(), vector in proptest::collection::vec(-1e6f32..1e6, 0..64),
                             key in "[a-z]{1,8}", val in any::<i64>()) {
            let mut payload = Payload::new();
            payload.insert(key, json!(val));
            round_trip(&Point { id: PointId::Num(id), vector, payload: Some(payload) });
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode::<SequencedOperation>(&bytes);
        }
    }
}
