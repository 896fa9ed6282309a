//! Cluster membership and failure detection: chitchat gossip behind a small
//! handle (the quickwit-cluster shape).
//!
//! Storage nodes, gateways and meta-service members (role `meta`, to learn
//! liveness) [`Membership::join`] one gossip cluster and
//! publish who they are ([`LocalNode`]: role, addresses, capacity) and their
//! version vector (per replica, the highest applied sequence number). The
//! meta-service and gateways read [`Membership::live_members`] and follow
//! [`ClusterChange`] events from [`Membership::subscribe`]. No chitchat type
//! crosses this crate's API.
//!
//! # Layout
//!
//! - `config`: [`MembershipConfig`], defaults, the SWIM → chitchat mapping.
//! - `keys`: every gossip key and the `replica:{collection}/{shard}` format.
//! - `member`: [`LocalNode`] (published) and [`Member`] (parsed back, lenient).
//! - `change`: [`ClusterChange`] and the lossless [`ChangeStream`].
//! - `handle`: [`Membership`]: join, set, members, subscribe, shutdown.
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
pub mod keys;
mod member;
mod transport;
mod watcher;

#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;

pub use change::{ChangeStream, ClusterChange};
pub use config::{MembershipConfig, SwimSettings};
pub use error::MembershipError;
pub use handle::Membership;
pub use member::{Capacity, LocalNode, Member, MemberParseError, Role};
pub use transport::GossipTransport;
