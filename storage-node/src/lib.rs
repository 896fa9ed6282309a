//! Storage node: hosts shard replicas, each a durable FAISS-backed engine.
//!
//! # Layout
//!
//! - [`shard`]: one shard replica: the write path (sequence numbers, WAL,
//!   apply), reads (search, get, scroll, count), snapshots, background
//!   indexing and compaction within the node's index-build budget,
//!   index status, checkpoints.
//! - [`node`]: the data plane: replicas held, primary write path with
//!   replication and acknowledgements, replica catch-up, request handling,
//!   shard transfers (snapshot, delta, verify, switch) as the primary
//!   executes them.
//! - [`server`]: the `storage-node` process: QUIC server, meta-service
//!   sync and write lease, gossip, `/metrics` and `/health`.
//! - [`bitmap`]: offset sets in FAISS's selector layout.
//! - [`segment`]: a batch of points with an index; tombstones as a bitmap.
//! - [`payload_index`]: a segment's payload indexes (they narrow a
//!   filter's candidates; the filter still decides).
//! - [`wal`]: the write-ahead log (CRC-framed records, group commit).
//! - [`ann`]: the FAISS boundary (all `unsafe` lives here).
//! - [`error`]: the crate's error type.
//! - `testsuite` (feature `testsuite`): nodes on an in-memory network.

pub mod ann;
pub mod bitmap;
pub mod error;
pub mod node;
pub mod payload_index;
pub mod segment;
pub mod server;
pub mod shard;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;
pub mod wal;

pub use error::{Result, ShardError};
pub use shard::{
    BuildBudget, Shard, ShardDigest, ShardOptions, ShardSnapshot, SnapshotPoint, SnapshotWriter,
};
pub use wal::{SyncMode, WalOptions};
