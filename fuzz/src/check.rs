//! The oracle beyond "does not panic": a value one side accepted must
//! cross the wire (`protocol::codec`, msgpack) and come back the same.
//! Compared as bytes after one trip, so NaN payload numbers (never equal
//! to themselves) do not count as a difference.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Panics unless `value` encodes, decodes as `T` and encodes to the same
/// bytes again; returns the decoded value (what the other end works with).
pub fn round_trip<T: Serialize + DeserializeOwned>(value: &T, what: &str) -> T {
    let first = match protocol::codec::encode(value) {
        Ok(b) => b,
        Err(e) => panic!("{what}: an accepted value does not encode: {e}"),
    };
    let back: T = match protocol::codec::decode(&first) {
        Ok(v) => v,
        Err(e) => panic!("{what}: an accepted value does not decode after encoding: {e}"),
    };
    let second = match protocol::codec::encode(&back) {
        Ok(b) => b,
        Err(e) => panic!("{what}: a decoded value does not encode: {e}"),
    };
    assert!(
        first == second,
        "{what}: encoding differs after a round trip"
    );
    back
}
