//! Point routes: writes (upsert, delete, payload ops) split per shard and
//! sent to primaries ([`write`]), a list of them in order ([`batch`]); reads (retrieve, scroll, count, search)
//! scatter-gathered ([`read`]); Qdrant's query API ([`query`]); group-by
//! and facets ([`groups`]). [`fuzzing`]: the bodies as the
//! routes parse them, for the fuzz targets.

// Visible to `api`, whose router names each handler's OpenAPI path.
pub(super) mod batch;
#[doc(hidden)]
pub mod fuzzing;
pub(super) mod groups;
pub(super) mod query;
pub(crate) mod query_parse;
pub(super) mod read;
pub(super) mod write;

use std::collections::BTreeMap;

use protocol::{Operation, PointId, ShardId};
use serde_json::{json, Value};

use super::models::{parse_partial, parse_read_consistency, Selector};
use super::AppState;
use crate::error::{GatewayError, Result};
use crate::reads::ReadOptions;
use crate::routing::group_by_shard;

pub use batch::batch;
pub use groups::{facet, query_groups, search_groups};
pub use query::{query, query_batch};
pub use read::{count, get_point, retrieve, scroll, search, search_batch};
pub use write::{clear_payload, delete, delete_payload, overwrite_payload, set_payload, upsert};

/// Largest number of points a filter may select for a payload write.
pub(super) const MAX_FILTER_SELECTED: usize = 100_000;

pub(super) fn object(body: Value) -> Result<serde_json::Map<String, Value>> {
    match body {
        Value::Object(m) => Ok(m),
        _ => Err(GatewayError::bad_request("body must be a JSON object")),
    }
}

pub(super) fn wait_flag(q: &BTreeMap<String, String>) -> bool {
    q.get("wait").is_none_or(|w| w != "false")
}

pub(super) fn read_opts(q: &BTreeMap<String, String>, body: Option<&Value>) -> Result<ReadOptions> {
    Ok(ReadOptions {
        consistency: parse_read_consistency(q)?,
        partial: parse_partial(q, body)?,
    })
}

/// A read's result, with `missing_shards` added when some are missing.
pub(super) fn with_missing<T: serde::Serialize>(value: T, missing: &[ShardId]) -> Value {
    let mut v = serde_json::to_value(value).unwrap_or(Value::Null);
    if !missing.is_empty() {
        let list: Vec<u32> = missing.iter().map(|s| s.0).collect();
        match &mut v {
            Value::Object(m) => {
                m.insert("missing_shards".into(), json!(list));
                m.insert("partial".into(), json!(true));
            }
            other => {
                *other = json!({"points": other.take(), "missing_shards": list, "partial": true});
            }
        }
    }
    v
}

/// Splits ids by shard into one operation per shard.
pub(super) fn per_shard_ids(
    collection: &str,
    shard_number: u32,
    ids: Vec<PointId>,
    op: impl Fn(Vec<PointId>) -> Operation,
) -> BTreeMap<ShardId, Operation> {
    group_by_shard(collection, shard_number, ids, |i| *i)
        .into_iter()
        .map(|(s, ids)| (s, op(ids)))
        .collect()
}

/// Resolves a selector into per-shard operations.
pub(super) async fn selected(
    st: &AppState,
    name: &str,
    shard_number: u32,
    selector: Selector,
    op: impl Fn(Vec<PointId>) -> Operation,
) -> Result<BTreeMap<ShardId, Operation>> {
    let ids = match selector {
        Selector::Ids(ids) => ids,
        Selector::Filter(f) => st.gw.ids_matching(name, f, MAX_FILTER_SELECTED).await?,
    };
    protocol::point::validate_batch_len(ids.len())?;
    Ok(per_shard_ids(name, shard_number, ids, op))
}
