//! storage-node's integration tests, one binary (FAISS is linked once):
//!
//! - [`shard`]: the shard engine against real FAISS indexes and a real disk.
//! - [`crash`]: SIGKILL a writing child process, check what survived.
//! - [`node`]: replication between in-process nodes on an in-memory network.
//! - [`cluster`]: real `storage-node` processes with an in-process
//!   meta-service (`testsuite::ProcessCluster`): kills, partitions.
//! - [`shutdown`]: a clean stop: drained, gossip left, shards closed, and
//!   fast even in the middle of an index build.
//! - [`ops`]: what operators read of a node: its log file (plain text
//!   without colour codes, or JSON lines with `LOG_FORMAT=json`) and the
//!   disk gauges on `/metrics`.
//! - [`transfer`]: shard transfers: chunked snapshots under writes, the
//!   quorum during a copy, moves with a real meta-service.
//! - [`config_file`]: the binary refuses a config file with a bad key
//!   (naming it and the file) and shows a good file's values.

mod cluster;
mod config_file;
mod crash;
mod node;
mod ops;
mod shard;
mod shutdown;
mod transfer;
