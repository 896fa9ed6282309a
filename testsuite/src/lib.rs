//! Test clusters shared by the integration tests of `storage-node`,
//! `gateway` and `loadtest`: one harness instead of one per crate.
//!
//! A crate of its own, used only as a dev-dependency, because a cluster
//! needs the meta-service and the storage nodes and gateway must not
//! depend on it (only tests may link Raft next to them). The crates' own
//! `testsuite` features hold the pieces that need no meta-service (e.g.
//! `storage_node::testsuite`'s in-memory network); this crate composes them.
//!
//! # Layout
//!
//! - [`meta`]: one meta-service member on 127.0.0.1:0, leading.
//! - [`in_process`]: [`TestCluster`]: meta member, three storage nodes
//!   (real shards in temp dirs; in-memory network, or QUIC + mTLS to the
//!   gateway) and the gateway's HTTP server, all in this process.
//! - [`processes`]: [`ProcessCluster`]: a meta member in this process and
//!   real `storage-node` child processes on loopback (kill, SIGTERM,
//!   restart, cgroups for partitions).

pub mod in_process;
pub mod meta;
pub mod processes;

pub use in_process::{Options, TestCluster};
pub use processes::{ProcessCluster, ProcessOptions};
