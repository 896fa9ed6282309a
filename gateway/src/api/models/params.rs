//! Query-string parameters of the data routes.

use std::collections::BTreeMap;

use protocol::WriteConsistency;
use serde_json::Value;

use crate::error::{GatewayError, Result};
use crate::scatter::ReadConsistency;

/// `?consistency=` on reads: `one`, `majority` / `quorum`, `all`, or a
/// number (1 → one, otherwise majority).
pub fn parse_read_consistency(q: &BTreeMap<String, String>) -> Result<ReadConsistency> {
    match q.get("consistency").map(String::as_str) {
        None | Some("one") | Some("1") => Ok(ReadConsistency::One),
        Some("majority") | Some("quorum") => Ok(ReadConsistency::Majority),
        Some("all") => Ok(ReadConsistency::All),
        Some(n) if n.parse::<u32>().is_ok() => Ok(ReadConsistency::Majority),
        Some(other) => Err(GatewayError::bad_request(format!(
            "consistency must be one, majority, quorum, all or a number, not {other:?}"
        ))),
    }
}

/// `?write_consistency=` on writes, else the collection's default.
pub fn parse_write_consistency(
    q: &BTreeMap<String, String>,
    default: WriteConsistency,
) -> Result<WriteConsistency> {
    match q.get("write_consistency").map(String::as_str) {
        // `?wait=false` without a level: answer once the primary has the
        // write durably logged (its WAL synced) and applied; the replicas
        // get it by the usual replication, the client does not wait.
        None if q.get("wait").is_some_and(|w| w == "false") => Ok(WriteConsistency::One),
        None => Ok(default),
        Some("one") => Ok(WriteConsistency::One),
        Some("majority") | Some("quorum") => Ok(WriteConsistency::Majority),
        Some("all") => Ok(WriteConsistency::All),
        Some(other) => Err(GatewayError::bad_request(format!(
            "write_consistency must be one, majority or all, not {other:?}"
        ))),
    }
}

/// `?partial=true` (or a `"partial": true` body flag).
pub fn parse_partial(q: &BTreeMap<String, String>, body: Option<&Value>) -> Result<bool> {
    let from_body = body
        .and_then(|b| b.get("partial"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match q.get("partial").map(String::as_str) {
        None => Ok(from_body),
        Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(from_body),
        Some(other) => Err(GatewayError::bad_request(format!(
            "partial must be true or false, not {other:?}"
        ))),
    }
}
