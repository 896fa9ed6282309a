//! Id newtypes. Keeping them distinct types stops a shard id from being
//! passed where a node id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$inner> for $name {
            fn from(v: $inner) -> Self {
                Self(v)
            }
        }
    };
}

id_newtype!(
    /// A storage node, gateway or meta member of the cluster.
    NodeId(u64)
);
id_newtype!(
    /// A shard of one collection (0 .. shard_number).
    ShardId(u32)
);
id_newtype!(
    /// The primary term of a shard; bumped on every promotion.
    Term(u64)
);
id_newtype!(
    /// Version of the cluster map; bumped on every meta-service change.
    Epoch(u64)
);
id_newtype!(
    /// Position of an operation in a shard's history (1-based; 0 = nothing).
    SeqNo(u64)
);

impl SeqNo {
    pub fn next(self) -> SeqNo {
        SeqNo(self.0 + 1)
    }
}

/// A point id, as in Qdrant: an unsigned integer or a UUID.
///
/// In JSON it is a number or a UUID string; integers order before UUIDs so
/// that scrolling has one total order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PointId {
    Num(u64),
    Uuid(Uuid),
}

impl PointId {
    /// Stable bytes for hashing (sharding, checksums). Integers and UUIDs
    /// cannot collide: they differ in length and tag.
    pub fn hash_bytes(&self) -> Vec<u8> {
        match self {
            PointId::Num(n) => {
                let mut v = vec![0u8];
                v.extend_from_slice(&n.to_be_bytes());
                v
            }
            PointId::Uuid(u) => {
                let mut v = vec![1u8];
                v.extend_from_slice(u.as_bytes());
                v
            }
        }
    }
}

impl fmt::Display for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointId::Num(n) => n.fmt(f),
            PointId::Uuid(u) => u.fmt(f),
        }
    }
}

impl From<u64> for PointId {
    fn from(v: u64) -> Self {
        PointId::Num(v)
    }
}

impl From<Uuid> for PointId {
    fn from(v: Uuid) -> Self {
        PointId::Uuid(v)
    }
}

/// Parses a path segment: digits are an integer id, anything else must be a UUID.
impl FromStr for PointId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<u64>() {
            Ok(n) => Ok(PointId::Num(n)),
            Err(_) => Uuid::parse_str(s).map(PointId::Uuid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_id_json_forms() {
        let n: PointId = serde_json::from_str("42").unwrap();
        assert_eq!(n, PointId::Num(42));
        let u: PointId = serde_json::from_str("\"5c56c793-69f3-4fbf-87e6-c4bf54c28c26\"").unwrap();
        assert!(matches!(u, PointId::Uuid(_)));
        assert_eq!(serde_json::to_string(&n).unwrap(), "42");
        assert!(serde_json::from_str::<PointId>("-1").is_err());
        assert!(serde_json::from_str::<PointId>("\"not-a-uuid\"").is_err());
    }

    #[test]
    fn point_id_parses_path_segments() {
        assert_eq!("7".parse::<PointId>().unwrap(), PointId::Num(7));
        assert!("5c56c793-69f3-4fbf-87e6-c4bf54c28c26"
            .parse::<PointId>()
            .is_ok());
        assert!("x".parse::<PointId>().is_err());
    }
}
