//! What one node publishes ([`LocalNode`]) and what the others read back
//! ([`Member`]), with the parsing between the two and gossip key-values.
//!
//! Parsing is lenient where it can be: a malformed optional value (an
//! address, the capacity, one replica entry) is dropped with a warning and
//! the rest of the member is kept. Only a missing or unknown `role`, or a
//! storage node without a usable `rpc_addr`, makes the node unusable; it is
//! then left out of the member lists (with a warning), never a panic.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::keys;

/// What a node does in the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Hosts shard replicas; serves QUIC RPCs.
    Storage,
    /// Stateless front end; routes client requests to storage nodes.
    Gateway,
    /// A meta-service member. It joins the gossip to *learn* liveness
    /// (chitchat has no observer mode); it publishes no replicas.
    Meta,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Storage => "storage",
            Role::Gateway => "gateway",
            Role::Meta => "meta",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = MemberParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "storage" => Ok(Role::Storage),
            "gateway" => Ok(Role::Gateway),
            "meta" => Ok(Role::Meta),
            other => Err(MemberParseError::UnknownRole {
                value: other.to_string(),
            }),
        }
    }
}

/// Resources a node offers, for placement and rebalancing. Zero = unknown.
/// Gossiped as JSON; unknown fields are ignored and missing ones default, so
/// fields can be added without breaking older nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Capacity {
    pub cpus: u32,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
}

/// A node as seen through gossip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Stable across restarts. Storage nodes use the decimal form of their
    /// `protocol::NodeId` (see [`Member::protocol_node_id`]).
    pub node_id: String,
    /// Changes on every restart (start time in ms by default); a new
    /// generation of the same `node_id` is a new incarnation of the node.
    pub generation: u64,
    pub role: Role,
    /// Address the node gossips on.
    pub gossip_addr: SocketAddr,
    /// QUIC data-plane address; always present for [`Role::Storage`].
    pub rpc_addr: Option<SocketAddr>,
    pub http_addr: Option<SocketAddr>,
    pub capacity: Capacity,
    /// Version vector: `(collection, shard)` → highest applied sequence.
    pub replicas: BTreeMap<(String, u32), u64>,
    /// Key-values outside the reserved set ([`keys::is_reserved`]).
    pub extra: BTreeMap<String, String>,
}

impl Member {
    /// Highest applied sequence number of a replica this node holds.
    pub fn replica_seq(&self, collection: &str, shard: u32) -> Option<u64> {
        self.replicas.get(&(collection.to_string(), shard)).copied()
    }

    /// The node id as the meta-service knows it, when `node_id` is the
    /// decimal form of a `protocol::NodeId` (the convention for storage
    /// nodes).
    pub fn protocol_node_id(&self) -> Option<protocol::NodeId> {
        self.node_id.parse().ok().map(protocol::NodeId)
    }

    /// Parses a member from its gossip key-values. Malformed optional values
    /// are dropped with a `tracing` warning; see the module doc for what is
    /// fatal.
    pub fn from_key_values<'a>(
        node_id: &str,
        generation: u64,
        gossip_addr: SocketAddr,
        key_values: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Member, MemberParseError> {
        let parsed = parse(node_id, generation, gossip_addr, key_values)?;
        for warning in &parsed.warnings {
            tracing::warn!(node_id, %warning, "ignoring malformed gossip value");
        }
        Ok(parsed.member)
    }
}

/// Why a node's key-values do not make a usable member.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MemberParseError {
    #[error("no `role` key")]
    MissingRole,
    #[error("unknown role `{value}`")]
    UnknownRole { value: String },
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
    let mut role = None;
    let mut rpc_addr = None;
    let mut http_addr = None;
    let mut capacity = Capacity::default();
    let mut leaving = false;
    let mut replicas = BTreeMap::new();
    let mut extra = BTreeMap::new();
    let mut warnings = Vec::new();

    let addr = |key: &str, value: &str, warnings: &mut Vec<String>| match value.parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            warnings.push(format!("{key} = {value:?}: not an ip:port"));
            None
        }
    };

    for (key, value) in key_values {
        match key {
            keys::ROLE => role = Some(value.parse::<Role>()?),
            keys::RPC_ADDR => rpc_addr = addr(key, value, &mut warnings),
            keys::HTTP_ADDR => http_addr = addr(key, value, &mut warnings),
            keys::CAPACITY => match serde_json::from_str(value) {
                Ok(c) => capacity = c,
                Err(e) => warnings.push(format!("{key} = {value:?}: {e}")),
            },
            keys::STATUS => leaving = value == keys::STATUS_LEAVING,
            _ if key.starts_with(keys::REPLICA_PREFIX) => {
                match (keys::parse_replica_key(key), value.parse::<u64>()) {
                    (Some((collection, shard)), Ok(seq)) => {
                        replicas.insert((collection.to_string(), shard), seq);
                    }
                    _ => warnings.push(format!("{key} = {value:?}: not a replica sequence")),
                }
            }
            _ => {
                extra.insert(key.to_string(), value.to_string());
            }
        }
    }

    let role = role.ok_or(MemberParseError::MissingRole)?;
    if role == Role::Storage && rpc_addr.is_none() {
        return Err(MemberParseError::MissingRpcAddr);
    }
    Ok(Parsed {
        member: Member {
            node_id: node_id.to_string(),
            generation,
            role,
            gossip_addr,
            rpc_addr,
            http_addr,
            capacity,
            replicas,
            extra,
        },
        leaving,
        warnings,
    })
}

/// What this node publishes when it joins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalNode {
    pub role: Role,
    /// Required for [`Role::Storage`].
    pub rpc_addr: Option<SocketAddr>,
    pub http_addr: Option<SocketAddr>,
    pub capacity: Capacity,
    /// The version vector at start (a restarted node publishes what it
    /// recovered from disk straight away).
    pub replicas: BTreeMap<(String, u32), u64>,
    /// Free-form keys (must not be reserved, see [`keys::is_reserved`]).
    pub extra: BTreeMap<String, String>,
}

impl LocalNode {
    pub fn storage(rpc_addr: SocketAddr, http_addr: Option<SocketAddr>) -> Self {
        LocalNode {
            role: Role::Storage,
            rpc_addr: Some(rpc_addr),
            http_addr,
            capacity: Capacity::default(),
            replicas: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }

    pub fn gateway(http_addr: SocketAddr) -> Self {
        LocalNode {
            role: Role::Gateway,
            rpc_addr: None,
            http_addr: Some(http_addr),
            capacity: Capacity::default(),
            replicas: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }

    /// A meta-service member; `http_addr` is its API address.
    pub fn meta(http_addr: SocketAddr) -> Self {
        LocalNode {
            role: Role::Meta,
            ..Self::gateway(http_addr)
        }
    }

    pub fn with_capacity(mut self, capacity: Capacity) -> Self {
        self.capacity = capacity;
        self
    }

    /// The initial gossip key-values.
    pub(crate) fn key_values(&self) -> Vec<(String, String)> {
        let mut kvs = vec![
            (keys::ROLE.to_string(), self.role.to_string()),
            (keys::STATUS.to_string(), keys::STATUS_SERVING.to_string()),
            (
                keys::CAPACITY.to_string(),
                // Serializing plain integers cannot fail.
                serde_json::to_string(&self.capacity).unwrap_or_default(),
            ),
        ];
        if let Some(addr) = self.rpc_addr {
            kvs.push((keys::RPC_ADDR.to_string(), addr.to_string()));
        }
        if let Some(addr) = self.http_addr {
            kvs.push((keys::HTTP_ADDR.to_string(), addr.to_string()));
        }
        for ((collection, shard), seq) in &self.replicas {
            kvs.push((keys::replica_key(collection, *shard), seq.to_string()));
        }
        kvs.extend(self.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
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
        )
        .with_capacity(Capacity {
            cpus: 4,
            memory_bytes: 1 << 30,
            disk_bytes: 1 << 40,
        });
        local.replicas.insert(("docs".into(), 3), 42);
        local.replicas.insert(("a/b".into(), 0), 0);
        local.extra.insert("zone".into(), "eu-1".into());
        let kvs = local.key_values();
        let parsed = parse(
            "n1",
            9,
            gossip(),
            kvs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .unwrap();
        assert!(parsed.warnings.is_empty());
        assert!(!parsed.leaving);
        let m = parsed.member;
        assert_eq!(m.node_id, "n1");
        assert_eq!(m.generation, 9);
        assert_eq!(m.role, Role::Storage);
        assert_eq!(m.rpc_addr, local.rpc_addr);
        assert_eq!(m.http_addr, local.http_addr);
        assert_eq!(m.capacity, local.capacity);
        assert_eq!(m.replicas, local.replicas);
        assert_eq!(m.extra, local.extra);
        assert_eq!(m.replica_seq("docs", 3), Some(42));
        assert_eq!(m.protocol_node_id(), None);
        let m = Member::from_key_values("17", 1, gossip(), [("role", "gateway")]).unwrap();
        assert_eq!(m.protocol_node_id(), Some(protocol::NodeId(17)));
    }

    #[test]
    fn malformed_optional_values_are_dropped_with_warnings() {
        let kvs = [
            ("role", "storage"),
            ("rpc_addr", "127.0.0.1:7000"),
            ("http_addr", "not an address"),
            ("capacity", "{broken json"),
            ("replica:docs/1", "12"),
            ("replica:docs/2", "-5"),
            ("replica:docs/x", "7"),
            ("replica:nokey", "7"),
            ("zone", "eu"),
        ];
        let parsed = parse("n1", 1, gossip(), kvs).unwrap();
        assert_eq!(parsed.warnings.len(), 5, "{:?}", parsed.warnings);
        let m = parsed.member;
        assert_eq!(m.http_addr, None);
        assert_eq!(m.capacity, Capacity::default());
        assert_eq!(m.replicas.len(), 1);
        assert_eq!(m.replica_seq("docs", 1), Some(12));
        assert_eq!(m.extra.get("zone").map(String::as_str), Some("eu"));
        // The public entry point logs instead of returning warnings.
        assert!(Member::from_key_values("n1", 1, gossip(), kvs).is_ok());
    }

    #[test]
    fn unusable_members_are_errors() {
        assert_eq!(
            parse("n", 1, gossip(), [("rpc_addr", "127.0.0.1:1")]).err(),
            Some(MemberParseError::MissingRole)
        );
        assert!(matches!(
            parse("n", 1, gossip(), [("role", "wizard")]).err(),
            Some(MemberParseError::UnknownRole { .. })
        ));
        assert_eq!(
            parse(
                "n",
                1,
                gossip(),
                [("role", "storage"), ("rpc_addr", "nope")]
            )
            .err(),
            Some(MemberParseError::MissingRpcAddr)
        );
        // Gateways and meta members need no RPC address.
        assert!(parse("n", 1, gossip(), [("role", "gateway")]).is_ok());
        assert_eq!(
            parse("n", 1, gossip(), [("role", "meta")])
                .unwrap()
                .member
                .role,
            Role::Meta
        );
    }

    #[test]
    fn leaving_status_is_reported() {
        let p = parse(
            "n",
            1,
            gossip(),
            [("role", "gateway"), ("status", "leaving")],
        )
        .unwrap();
        assert!(p.leaving);
    }

    proptest::proptest! {
        /// Arbitrary key-values never panic the parser.
        #[test]
        fn parse_never_panics(kvs in proptest::collection::vec((".{0,24}", ".{0,24}"), 0..12)) {
            let _ = parse("n", 1, gossip(), kvs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
    }
}
