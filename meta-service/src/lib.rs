//! The meta-service: a small openraft cluster (3 members, or 1 standalone)
//! that holds the one authoritative cluster map — collections, shards,
//! replica sets, primaries and terms, node states — and the controller that
//! keeps it healthy (failover, re-replication).
//!
//! # Layout
//!
//! - [`config`]: tunables (Raft timings, snapshot interval, grace periods).
//! - [`commands`]: the state machine proper: `apply(map, command)`, a pure
//!   function that validates and applies one [`ClusterCommand`], one small
//!   function per command (split by what they change).
//! - [`store`]: openraft storage on disk: the log in redb, the state machine
//!   with snapshots written as files.
//! - [`liveness`]: what the leader heard from storage nodes (heartbeats),
//!   the controller's input.
//! - [`app`]: [`app::App`], the shared state of a member (Raft handle, map,
//!   liveness) handed to the HTTP handlers and the controller; commits and
//!   forwards to the leader.
//! - [`network`]: HTTP/JSON (axum server, reqwest client): Raft RPCs between
//!   members, the management endpoints, and the public API.
//! - [`controller`]: failure handling on the leader, as pure functions over
//!   the map plus a thin loop.
//! - [`server`]: wiring: config → stores → network → Raft → HTTP server,
//!   and the shutdown path. [`MetaNode`] starts one member in-process.
//! - [`error`]: the API error type and its HTTP mapping.
//!
//! The API's wire types (and `MetaClient`, the client gateways and storage
//! nodes use) live in the `meta-client` crate, so that its users do not
//! link openraft, redb or axum; this crate answers with the same types.
//!
//! Modules import downwards only (`server` → `controller`, `network` →
//! `app` → `liveness`, `error`, `config`; `controller`, `store` →
//! `commands`), so no two modules import each other; the README says how to
//! check.
//!
//! # Why HTTP/JSON and not QUIC + msgpack
//!
//! Meta traffic is small and rare (map reads, a heartbeat per node per
//! second, a few commands); operators and scripts want `curl`; and openraft's
//! reference network is HTTP/JSON. The data plane's QUIC stays where the
//! bytes are.

use std::io::Cursor;

pub mod app;
pub mod commands;
pub mod config;
pub mod controller;
pub mod error;
pub mod leadership;
pub mod liveness;
pub mod network;
pub mod server;
pub mod stats;
pub mod store;

pub use config::MetaConfig;
pub use error::ApiError;
pub use protocol::cluster::{ClusterCommand, ClusterMap, CommandError};
pub use server::MetaNode;

pub use meta_client::MemberId;

/// What one command returns once applied: the new epoch, or the refusal.
pub type CommandOutcome = Result<protocol::Epoch, CommandError>;

openraft::declare_raft_types!(
    /// Raft types of the meta-service.
    pub TypeConfig:
        D = ClusterCommand,
        R = CommandOutcome,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type MemberNode = openraft::BasicNode;
pub type LogId = openraft::LogId<MemberId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type RaftStorageError = openraft::StorageError<MemberId>;
pub type Vote = openraft::Vote<MemberId>;
pub type SnapshotMeta = openraft::SnapshotMeta<MemberId, MemberNode>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type StoredMembership = openraft::StoredMembership<MemberId, MemberNode>;
pub type RaftMetrics = openraft::RaftMetrics<MemberId, MemberNode>;
