//! What a storage node publishes ([`LocalNode`]) and what the others read
//! back ([`Member`]), with the parsing between the two and gossip
//! key-values.
//!
//! Parsing is lenient where it can be: a malformed optional value (the
//! HTTP address, one replica entry) is dropped with a warning and the rest
//! of the member is kept. A node id that is not a [`NodeId`], a missing
//! role or one other than `storage`, or a missing or unusable `rpc_addr`
//! makes the node unusable; it is then left out of the member lists (with
//! a warning), never a panic.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use protocol::{NodeId, SeqNo, ShardId};
use thiserror::Error;

use crate::keys;

/// A storage node as seen through gossip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The node's id in the cluster map; stable across restarts.
    pub node_id: NodeId,
    /// Changes on every restart (start time in ms by default); a new
    /// generation of the same `node_id` is a new incarnation of the node.
    pub generation: u64,
    /// Address the node gossips on.
    pub gossip_addr: SocketAddr,
    /// QUIC data-plane address.
    pub rpc_addr: SocketAddr,
    pub http_addr: Option<SocketAddr>,
    /// Version vector: `(collection, shard)` → highest applied sequence.
    pub replicas: BTreeMap<(String, ShardId), SeqNo>,
}

impl Member {
    /// Highest applied sequence number of a replica this node holds.
    pub fn replica_seq(&self, collection: &str, shard: ShardId) -> Option<SeqNo> {
        self.replicas.get(&(collection.to_string(), shard)).copied()
    }
}

/// Why a node's key-values do not make a usable member.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub(crate) enum MemberParseError {
    #[error("node id `{value}` is not a storage node id")]
    BadNodeId { value: String },
    #[error("no `role` key")]
    MissingRole,
    /// Only storage nodes join the gossip; anything else is ignored.
    #[error("role `{value}` is not `storage`")]
    NotStorage { value: String },
    #[error("storage node without a valid `rpc_addr`")]
    MissingRpcAddr,
}

/// A member plus what parsing noticed on the way.
pub(crate) struct Parsed {
    pub member: Member,
    /// `status = leaving`: shutting down gracefully, no longer a live member.
    pub leaving: bool,
    /// One line per dropped value.
    pub warnings: Vec<String>,
}

pub(crate) fn parse<'a>(
    node_id: &str,
    generation: u64,
    gossip_addr: SocketAddr,
    key_values: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Parsed, MemberParseError> {
    let node_id = node_id
        .parse::<u64>()
        .map(NodeId)
        .map_err(|_| MemberParseError::BadNodeId {
            value: node_id.to_string(),
        })?;
    let mut role = None;
    let mut rpc_addr = None;
    let mut http_addr = None;
    let mut leaving = false;
    let mut replicas = BTreeMap::new();
    let mut warnings = Vec::new();

    for (key, value) in key_values {
        match key {
            keys::ROLE => role = Some(value),
            keys::RPC_ADDR => rpc_addr = value.parse().ok(),
            keys::HTTP_ADDR => match value.parse() {
                Ok(addr) => http_addr = Some(addr),
                Err(_) => warnings.push(format!("{key} = {value:?}: not an ip:port")),
            },
            keys::STATUS => leaving = value == keys::STATUS_LEAVING,
            _ if key.starts_with(keys::REPLICA_PREFIX) => {
                match (keys::parse_replica_key(key), value.parse::<u64>()) {
                    (Some((collection, shard)), Ok(seq)) => {
                        replicas.insert((collection.to_string(), shard), SeqNo(seq));
                    }
                    _ => warnings.push(format!("{key} = {value:?}: not a replica sequence")),
                }
            }
            // Keys we do not know (a newer node's, or chitchat's own) are
            // not ours to judge.
            _ => {}
        }
    }

    match role {
        None => return Err(MemberParseError::MissingRole),
        Some(keys::ROLE_STORAGE) => {}
        Some(other) => {
            return Err(MemberParseError::NotStorage {
                value: other.to_string(),
            })
        }
    }
    let rpc_addr = rpc_addr.ok_or(MemberParseError::MissingRpcAddr)?;
    Ok(Parsed {
        member: Member {
            node_id,
            generation,
            gossip_addr,
            rpc_addr,
            http_addr,
            replicas,
        },
        leaving,
        warnings,
    })
}

/// What this storage node publishes when it joins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalNode {
    /// QUIC data-plane address other nodes and gateways connect to.
    pub rpc_addr: SocketAddr,
    pub http_addr: Option<SocketAddr>,
    /// The version vector at start (a restarted node publishes what it
    /// recovered from disk straight away).
    pub replicas: BTreeMap<(String, ShardId), SeqNo>,
}

impl LocalNode {
    pub fn storage(rpc_addr: SocketAddr, http_addr: Option<SocketAddr>) -> Self {
        LocalNode {
            rpc_addr,
            http_addr,
            replicas: BTreeMap::new(),
        }
    }

    /// The initial gossip key-values.
    pub(crate) fn key_values(&self) -> Vec<(String, String)> {
        let mut kvs = vec![
            (keys::ROLE.to_string(), keys::ROLE_STORAGE.to_string()),
            (keys::STATUS.to_string(), keys::STATUS_SERVING.to_string()),
            (keys::RPC_ADDR.to_string(), self.rpc_addr.to_string()),
        ];
        if let Some(addr) = self.http_addr {
            kvs.push((keys::HTTP_ADDR.to_string(), addr.to_string()));
        }
        for ((collection, shard), seq) in &self.replicas {
            kvs.push((keys::replica_key(collection, *shard), seq.0.to_string()));
        }
        kvs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gossip() -> SocketAddr {
        "127.0.0.1:7946".parse().unwrap()
    }

    #[test]
    fn local_node_round_trips_through_key_values() {
        let mut local = LocalNode::storage(
            "127.0.0.1:7000".parse().unwrap(),
            Some("127.0.0.1:8080".parse().unwrap()),
        );
        local
            .replicas
            .insert(("docs".into(), ShardId(3)), SeqNo(42));
        local.replicas.insert(("a/b".into(), ShardId(0)), SeqNo(0));
        let kvs = local.key_values();
        let parsed = parse(
            "17",
            9,
            gossip(),
            kvs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .unwrap();
        assert!(parsed.warnings.is_empty());
        assert!(!parsed.leaving);
        let m = parsed.member;
        assert_eq!(m.node_id, NodeId(17));
        assert_eq!(m.generation, 9);
        assert_eq!(m.rpc_addr, local.rpc_addr);
        assert_eq!(m.http_addr, local.http_addr);
        assert_eq!(m.replicas, local.replicas);
        assert_eq!(m.replica_seq("docs", ShardId(3)), Some(SeqNo(42)));
        assert_eq!(m.replica_seq("docs", ShardId(4)), None);
    }

    #[test]
    fn malformed_optional_values_are_dropped_with_warnings() {
        let kvs = [
            ("role", "storage"),
            ("rpc_addr", "127.0.0.1:7000"),
            ("http_addr", "not an address"),
            ("replica:docs/1", "12"),
            ("replica:docs/2", "-5"),
            ("replica:docs/x", "7"),
            ("replica:nokey", "7"),
            // Unknown keys (an older node's `capacity`) are ignored quietly.
            ("capacity", "{broken json"),
            ("zone", "eu"),
        ];
        let parsed = parse("1", 1, gossip(), kvs).unwrap();
        assert_eq!(parsed.warnings.len(), 4, "{:?}", parsed.warnings);
        let m = parsed.member;
        assert_eq!(m.http_addr, None);
        assert_eq!(m.replicas.len(), 1);
        assert_eq!(m.replica_seq("docs", ShardId(1)), Some(SeqNo(12)));
    }

    #[test]
    fn unusable_members_are_errors() {
        let storage = [("role", "storage"), ("rpc_addr", "127.0.0.1:1")];
        assert!(parse("1", 1, gossip(), storage).is_ok());
        assert!(matches!(
            parse("n1", 1, gossip(), storage).err(),
            Some(MemberParseError::BadNodeId { .. })
        ));
        assert_eq!(
            parse("1", 1, gossip(), [("rpc_addr", "127.0.0.1:1")]).err(),
            Some(MemberParseError::MissingRole)
        );
        for role in ["gateway", "meta", "wizard"] {
            assert!(matches!(
                parse(
                    "1",
                    1,
                    gossip(),
                    [("role", role), ("rpc_addr", "127.0.0.1:1")]
                )
                .err(),
                Some(MemberParseError::NotStorage { .. })
            ));
        }
        assert_eq!(
            parse(
                "1",
                1,
                gossip(),
                [("role", "storage"), ("rpc_addr", "nope")]
            )
            .err(),
            Some(MemberParseError::MissingRpcAddr)
        );
        assert_eq!(
            parse("1", 1, gossip(), [("role", "storage")]).err(),
            Some(MemberParseError::MissingRpcAddr)
        );
    }

    #[test]
    fn leaving_status_is_reported() {
        let p = parse(
            "1",
            1,
            gossip(),
            [
                ("role", "storage"),
                ("rpc_addr", "127.0.0.1:1"),
                ("status", "leaving"),
            ],
        )
        .unwrap();
        assert!(p.leaving);
    }

    proptest::proptest! {
        /// Arbitrary key-values never panic the parser.
        #[test]
        fn parse_never_panics(
            node_id in ".{0,8}",
            kvs in proptest::collection::vec((".{0,24}", ".{0,24}"), 0..12),
        ) {
            let _ = parse(&node_id, 1, gossip(), kvs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
    }
}
