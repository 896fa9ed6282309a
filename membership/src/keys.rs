//! Every gossip key a node publishes, in one place.
//!
//! A node's chitchat state is a flat map of string keys to string values.
//! The layout, one key per fact so that a change gossips only that key:
//!
//! | key                            | value                                   |
//! |--------------------------------|-----------------------------------------|
//! | `role`                         | `storage` (the only role that joins)    |
//! | `rpc_addr`                     | QUIC data-plane address, `ip:port`      |
//! | `http_addr`                    | HTTP address, `ip:port`                 |
//! | `status`                       | `serving` or `leaving`                  |
//! | `replica:{collection}/{shard}` | highest applied sequence number, decimal|
//!
//! The version vector is one key per replica rather than one blob: chitchat
//! sends only the keys whose version changed, so a busy shard re-gossips a
//! few bytes, not the node's whole replica list.
//!
//! The collection name may itself contain `/`: the shard number is what
//! follows the *last* `/`. Other keys are ignored when read, so a newer
//! node may publish more.

use protocol::ShardId;

pub const ROLE: &str = "role";
/// The value of [`ROLE`] for a storage node.
pub const ROLE_STORAGE: &str = "storage";
/// QUIC RPC address other nodes and gateways connect to.
pub const RPC_ADDR: &str = "rpc_addr";
/// HTTP address (operators).
pub const HTTP_ADDR: &str = "http_addr";
/// `serving` while up; `leaving` once a graceful shutdown has begun.
pub const STATUS: &str = "status";
/// Prefix of the version-vector keys: `replica:{collection}/{shard}`.
pub const REPLICA_PREFIX: &str = "replica:";

pub const STATUS_SERVING: &str = "serving";
pub const STATUS_LEAVING: &str = "leaving";

/// The gossip key of one replica's applied sequence number.
pub fn replica_key(collection: &str, shard: ShardId) -> String {
    format!("{REPLICA_PREFIX}{collection}/{}", shard.0)
}

/// Splits `replica:{collection}/{shard}` back into its parts; `None` when the
/// key is not a replica key or is malformed.
pub fn parse_replica_key(key: &str) -> Option<(&str, ShardId)> {
    let rest = key.strip_prefix(REPLICA_PREFIX)?;
    let (collection, shard) = rest.rsplit_once('/')?;
    if collection.is_empty() {
        return None;
    }
    Some((collection, ShardId(shard.parse().ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_key_round_trips() {
        for (c, s) in [("docs", 0), ("a/b", 7), ("x", u32::MAX)] {
            assert_eq!(
                parse_replica_key(&replica_key(c, ShardId(s))),
                Some((c, ShardId(s)))
            );
        }
        assert_eq!(replica_key("docs", ShardId(3)), "replica:docs/3");
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
}
