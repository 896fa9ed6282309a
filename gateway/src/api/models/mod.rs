//! Qdrant's JSON request shapes, parsed into `protocol` types, and the
//! answer shapes. Every parser refuses bad input with a 400 that says what
//! is wrong, before anything is sent to a shard.
//!
//! - [`collection`]: `PUT /collections/{name}` bodies, distances, write
//!   consistency factors.
//! - [`points`]: upsert bodies, point selectors, `with_payload` / `with_vector`.
//! - [`search`]: search and query bodies.
//! - [`params`]: query-string parameters (`consistency`, `partial`, ...).
//! - [`answers`]: scored points, records, update results.
//! - [`cluster_ops`]: `POST /collections/{name}/cluster` operations and
//!   `PATCH /collections/{name}`.
//! - [`shapes`]: OpenAPI schemas of point ids and payloads.

mod answers;
mod cluster_ops;
mod collection;
mod params;
mod points;
mod search;
mod shapes;

use protocol::Filter;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{GatewayError, Result};

pub use answers::{record_out, scored_out, update_result, RecordOut, ScoredOut};
pub use cluster_ops::{parse_cluster_op, parse_update_collection, ClusterOp};
pub use collection::{
    distance_name, parse_create_collection, parse_distance, write_consistency_factor,
    write_consistency_from_factor,
};
pub use params::{parse_partial, parse_read_consistency, parse_write_consistency};
pub use points::check_magnitude as check_vector_magnitude;
pub use points::{parse_selector, parse_upsert, parse_with_vector, PayloadSelector, Selector};
pub use search::{ParamsIn, SearchIn, SearchSpec};
pub use shapes::{ExtendedPointId, Payload};

/// Deserialises `v` as `T`, naming `what` in the error.
pub fn parse<T: DeserializeOwned>(v: Value, what: &str) -> Result<T> {
    serde_json::from_value(v)
        .map_err(|e| GatewayError::bad_request(format!("Format error in JSON body ({what}): {e}")))
}

/// Drops `null` members recursively (clients send unset optionals as null;
/// the filter types refuse unknown and null fields).
pub fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

pub fn parse_filter(v: Option<Value>) -> Result<Option<Filter>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(mut v) => {
            strip_nulls(&mut v);
            let f: Filter = serde_json::from_value(v)
                .map_err(|e| GatewayError::bad_request(format!("malformed filter: {e}")))?;
            f.validate()?;
            Ok(Some(f))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use protocol::{Payload, WriteConsistency};
    use serde_json::json;

    use super::*;
    use crate::scatter::ReadConsistency;

    #[test]
    fn selectors_and_params() {
        assert_eq!(
            PayloadSelector::parse(None, true).unwrap(),
            PayloadSelector::All
        );
        assert_eq!(
            PayloadSelector::parse(Some(json!(["a"])), false).unwrap(),
            PayloadSelector::Include(vec!["a".into()])
        );
        let mut p = Payload::new();
        p.insert("a".into(), json!(1));
        p.insert("b".into(), json!(2));
        let ex = PayloadSelector::parse(Some(json!({"exclude": ["a"]})), false).unwrap();
        assert_eq!(ex.apply(Some(p)).unwrap().len(), 1);
        let q: BTreeMap<String, String> = [("consistency".to_string(), "all".to_string())].into();
        assert_eq!(parse_read_consistency(&q).unwrap(), ReadConsistency::All);
        let q: BTreeMap<String, String> = [("consistency".to_string(), "most".to_string())].into();
        assert!(parse_read_consistency(&q).is_err());
        use crate::api::points::query_parse::parse_query;
        use crate::query::tree::{QueryKind, VectorInput};
        assert!(matches!(
            parse_query(json!([1.0, 2.0])).unwrap(),
            QueryKind::Nearest(VectorInput::Dense(_))
        ));
        assert!(matches!(
            parse_query(json!({"nearest": 7})).unwrap(),
            QueryKind::Nearest(VectorInput::Id(_))
        ));
        assert!(parse_query(json!({"recommend": {}})).is_err());
        assert!(parse_query(json!([3e38, 3e38])).is_err());
        assert!(parse_query(json!({"nearest": [1e19, 1.0]})).is_err());
        assert!(parse_filter(Some(
            json!({"must": [{"key": "a", "match": {"value": 1}, "range": null}]})
        ))
        .unwrap()
        .is_some());
        assert!(parse_filter(Some(json!({"must": [{"key": "a"}]}))).is_err());
        assert_eq!(
            write_consistency_from_factor(Some(2), 3),
            WriteConsistency::Majority
        );
        assert_eq!(
            write_consistency_from_factor(Some(3), 3),
            WriteConsistency::All
        );
        assert_eq!(write_consistency_factor(WriteConsistency::Majority, 3), 2);
    }
}
