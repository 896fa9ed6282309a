//! The gateway: a stateless, Qdrant-compatible HTTP front for the cluster.
//! It caches the cluster map from the meta-service, routes each write to
//! its shard's primary, fans reads out to one replica per shard (retrying
//! and hedging across replicas) and merges the answers.
//!
//! ```text
//!  HTTP ─▶ api (auth, limits, Qdrant shapes) ─▶ Gateway ─┬─ writes: group by shard ─▶ primary
//!                                                        └─ reads: scatter ─▶ merge top-k / scroll
//!                 MapCache ◀── watch ── meta-service      ShardClient ──▶ storage nodes
//! ```
//!
//! # Layout
//!
//! - [`client`]: the [`ShardClient`] trait the data-plane transport implements,
//!   and its error, [`CallError`] (shared with the storage nodes, from `transport`).
//! - [`quic`]: [`QuicShardClient`], that trait over QUIC + mTLS (`transport`).
//! - [`map`]: [`MetaApi`] (what we need from the meta-service) and the
//!   [`MapCache`] with its watch loop.
//! - [`routing`]: a request's points grouped by shard (which shard holds a
//!   point is `protocol::routing::shard_for_point`).
//! - [`merge`]: pure top-k and scroll merges.
//! - [`health`]: per-node in-flight and failure tracking.
//! - [`gateway`]: the shared [`Gateway`] state, routing options, counters.
//! - [`scatter`]: replica choice, retries, hedging, fan-out.
//! - [`reads`]: search / scroll / count / retrieve over a collection.
//! - [`query`]: Qdrant's query API (prefetch, fusion, recommend, discover,
//!   context, order_by, sample) evaluated from global reads.
//! - [`writes`]: per-shard writes to primaries.
//! - [`admin`]: collection create / delete.
//! - [`status`]: a collection's status and index counts from its replicas.
//! - [`operator`]: operator commands (moves, drains, settings) sent to the
//!   meta-service, epoch-guarded where the gateway decided on a map.
//! - [`transfers`]: running and finished shard transfers with progress,
//!   one shape for every route and the CLI.
//! - [`api`]: the HTTP routes and layers.
//! - [`config`]: YAML + env + flags.
//! - [`server`]: serve the router until shutdown.
//! - [`tls`]: optional HTTPS on the REST port (rustls).
//! - [`telemetry`]: logs and the Prometheus recorder.
//! - [`error`]: [`GatewayError`], mapped to HTTP once.

pub mod admin;
pub mod api;
pub mod client;
pub mod config;
pub mod error;
pub mod gateway;
pub mod health;
pub mod map;
pub mod merge;
pub mod operator;
pub mod query;
pub mod quic;
pub mod reads;
pub mod routing;
pub mod scatter;
pub mod server;
pub mod status;
pub mod telemetry;
#[cfg(test)]
mod testkit;
pub mod tls;
pub mod transfers;
pub mod writes;

pub use client::{CallError, CallFuture, ShardClient};
pub use config::Config;
pub use error::GatewayError;
pub use gateway::{Gateway, RoutingOptions};
pub use map::{MapCache, MetaApi};
pub use quic::QuicShardClient;
pub use reads::ReadOptions;
pub use scatter::ReadConsistency;
