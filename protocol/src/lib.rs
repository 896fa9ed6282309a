//! Every type that crosses a process boundary, and the pure logic that both
//! ends of a connection must agree on. No sockets, no disk.
//!
//! # Layout
//!
//! - [`ids`]: id newtypes (`NodeId`, `ShardId`, `Term`, `Epoch`, `SeqNo`) and
//!   Qdrant-style point ids (unsigned integers or UUIDs).
//! - [`node_name`]: node ids given as numbers or StatefulSet pod names
//!   (`vectordb-storage-2` → 3).
//! - [`collection`]: collection configuration (dimension, distance, HNSW
//!   parameters, sharding, replication, write consistency).
//! - [`point`]: points, payloads and their validation.
//! - [`filter`]: payload filters (`must` / `should` / `must_not` / `min_should`,
//!   full-text, geo, datetime, `nested`, ...) and their
//!   evaluation.
//! - [`payload_index`]: payload index declarations (Qdrant's `field_schema`).
//! - [`search`]: search, scroll and count requests and their answers.
//! - [`operation`]: the write operations a shard applies, in sequence order.
//! - [`rpc`]: storage-node requests and responses (gateway ↔ node, primary ↔ replica).
//! - [`version`]: version vectors (what each replica of a shard applied).
//! - [`routing`]: which shard holds a point ([`routing::shard_for_point`]),
//!   the contract every gateway, storage node and tool computes alike.
//! - [`names`]: the one rule for collection and alias names (they become
//!   directory names on storage nodes).
//! - [`codec`]: msgpack encoding used on the wire and in the WAL.
//! - [`wal_record`]: the framing of one WAL record (length, CRC, body).
//! - [`error`]: validation errors shared by every service.

pub mod codec;
pub mod collection;
pub mod error;
pub mod filter;
pub mod ids;
pub mod names;
pub mod node_name;
pub mod operation;
pub mod payload_index;
pub mod point;
pub mod routing;
pub mod rpc;
pub mod search;
pub mod version;
pub mod wal_record;

pub use collection::{CollectionConfig, Distance, HnswConfig, WriteConsistency};
pub use error::ValidationError;
pub use filter::{Condition, FieldCondition, Filter, Match, MatchValue, Range, RangeInterface};
pub use ids::{Epoch, NodeId, PointId, SeqNo, ShardId, Term};
pub use operation::{Operation, SequencedOperation};
pub use payload_index::{PayloadIndexSpec, PayloadIndexes, PayloadSchemaType};
pub use point::{Payload, Point, Record};
pub use search::{
    CountRequest, ScoredPoint, ScrollRequest, ScrollResponse, SearchParams, SearchRequest,
};
pub use version::VersionVector;

// Cluster-level shared logic (owned by the meta-service work).
pub mod cluster;
pub mod ring;
