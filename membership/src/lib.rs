//! Storage-node gossip: chitchat (scuttlebutt + phi-accrual failure
//! detection) behind a small handle (the quickwit-cluster shape).
//!
//! Each storage node [`Membership::join`]s one gossip cluster, publishes
//! its addresses ([`LocalNode`]) and its version vector (per replica, the
//! highest applied sequence number, [`Membership::set_replica_seq`]), and
//! reads a shard's version vector over the live nodes
//! ([`Membership::shard_versions`]) to find out whether its replica is
//! behind (anti-entropy). That is the whole production API; ids are
//! `protocol`'s ([`protocol::NodeId`], [`protocol::ShardId`],
//! [`protocol::SeqNo`]). Liveness for failover comes from the
//! meta-service's heartbeats, not from here. No chitchat type crosses this
//! crate's API.
//!
//! With feature `testsuite`, tests also get member lists, change events
//! (`ClusterChange` through a `ChangeStream`), crash simulation and an
//! in-memory network.
//!
//! # Layout
//!
//! - `config`: [`MembershipConfig`], defaults, the SWIM → chitchat mapping.
//! - `keys`: every gossip key and the `replica:{collection}/{shard}` format.
//! - `member`: [`LocalNode`] (published) and `Member` (parsed back, lenient).
//! - `change`: `ClusterChange` (logged; followed by tests).
//! - `handle`: [`Membership`]: join, publish, read versions, shutdown.
//! - `watcher`: background task, chitchat live map → member snapshots,
//!   change logs, gauges.
//! - `transport`: [`GossipTransport`]: UDP, or in-memory for tests.
//! - `error`: [`MembershipError`].
//! - `testsuite` (feature `testsuite`): in-memory network, test configs.
//!
//! # Metrics
//!
//! Gauges `membership_live_nodes` (this node included) and
//! `membership_dead_nodes`.

mod change;
mod config;
mod error;
mod handle;
mod keys;
mod member;
mod transport;
mod watcher;

#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;

#[cfg(any(test, feature = "testsuite"))]
pub use change::{ChangeStream, ClusterChange};
pub use config::{MembershipConfig, SwimTimings};
pub use error::MembershipError;
pub use handle::Membership;
pub use member::LocalNode;
#[cfg(any(test, feature = "testsuite"))]
pub use member::Member;
pub use transport::GossipTransport;
