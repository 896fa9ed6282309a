//! Every gossip key a node publishes, in one place.
//!
//! A node's chitchat state is a flat map of string keys to string values.
//! The layout, one key per fact so that a change gossips only that key:
//!
//! | key                            | value                                   |
//! |--------------------------------|-----------------------------------------|
//! | `role`                         | `storage`, `gateway` or `meta`          |
//! | `rpc_addr`                     | QUIC data-plane address, `ip:port`      |
//! | `http_addr`                    | HTTP address, `ip:port`                 |
//! | `capacity`                     | JSON [`Capacity`](crate::Capacity)      |
//! | `status`                       | `serving` or `leaving`                  |
//! | `replica:{collection}/{shard}` | highest applied sequence number, decimal|
//!
//! The version vector is one key per replica rather than one blob: chitchat
//! sends only the keys whose version changed, so a busy shard re-gossips a
//! few bytes, not the node's whole replica list. A removed replica is a
//! deleted key (a tombstone chitchat garbage-collects later).
//!
//! The collection name may itself contain `/`: the shard number is what
//! follows the *last* `/`. Keys not listed here are free for callers
//! ([`Membership::set`](crate::Membership::set)) and show up in
//! [`Member::extra`](crate::Member::extra).

/// `storage`, `gateway` or `meta`.
pub const ROLE: &str = "role";
/// QUIC RPC address other nodes and gateways connect to.
pub const RPC_ADDR: &str = "rpc_addr";
/// HTTP address (operators, Qdrant-compatible API on gateways).
pub const HTTP_ADDR: &str = "http_addr";
/// JSON-encoded [`Capacity`](crate::Capacity).
pub const CAPACITY: &str = "capacity";
/// `serving` while up; `leaving` once a graceful shutdown has begun.
pub const STATUS: &str = "status";
/// Prefix of the version-vector keys: `replica:{collection}/{shard}`.
pub const REPLICA_PREFIX: &str = "replica:";

pub const STATUS_SERVING: &str = "serving";
pub const STATUS_LEAVING: &str = "leaving";

/// Keys the handle manages itself; [`Membership::set`](crate::Membership::set)
/// refuses them so a caller cannot publish a malformed role or address.
pub fn is_reserved(key: &str) -> bool {
    matches!(key, ROLE | RPC_ADDR | HTTP_ADDR | CAPACITY | STATUS)
        || key.starts_with(REPLICA_PREFIX)
}

/// The gossip key of one replica's applied sequence number.
pub fn replica_key(collection: &str, shard: u32) -> String {
    format!("{REPLICA_PREFIX}{collection}/{shard}")
}

/// Splits `replica:{collection}/{shard}` back into its parts; `None` when the
/// key is not a replica key or is malformed.
pub fn parse_replica_key(key: &str) -> Option<(&str, u32)> {
    let rest = key.strip_prefix(REPLICA_PREFIX)?;
    let (collection, shard) = rest.rsplit_once('/')?;
    if collection.is_empty() {
        return None;
    }
    Some((collection, shard.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_key_round_trips() {
        for (c, s) in [("docs", 0), ("a/b", 7), ("x", u32::MAX)] {
            assert_eq!(parse_replica_key(&replica_key(c, s)), Some((c, s)));
        }
    }

    #[test]
    fn malformed_replica_keys_are_none() {
        for k in [
            "replica:",
            "replica:docs",
            "replica:/3",
            "replica:docs/x",
            "replica:docs/-1",
            "role",
        ] {
            assert_eq!(parse_replica_key(k), None, "{k}");
        }
    }

    #[test]
    fn reserved_keys() {
        assert!(is_reserved(ROLE));
        assert!(is_reserved("replica:docs/1"));
        assert!(!is_reserved("zone"));
    }
}
