//! The chaos suite: starts the docker-compose cluster, drives it through a
//! recording client while faults are injected, and checks the recorded
//! history against what the cluster holds afterwards.
//!
//! # Layout
//!
//! - [`points`]: the deterministic content of every point id (vector and
//!   payload), so a read-back can tell a wrong point from a right one.
//! - [`history`]: what the client saw (acknowledged / unknown writes,
//!   searches) and the pure checks on it: lost, unknown, wrong content,
//!   failover and gap times.
//! - [`converge`]: the pure comparison of every replica's count and
//!   checksum (from the nodes' `GET /replicas`).
//! - [`timeline`]: cluster-map samples over time and the pure queries on
//!   them (when was a node marked dead, when did a shard get a new primary).
//! - [`report`]: one scenario's result, the markdown table, the JSON report.
//! - [`compose`]: `docker-compose` / `docker` CLI control of the cluster.
//! - [`fault`]: fault injection: SIGKILL, restart, iptables partitions
//!   entered through the containers' network namespaces.
//! - [`client`]: the gateway REST calls and the client's retry policy.
//! - [`cluster`]: the runner's view of the running cluster: addresses,
//!   meta-service map and leader, node replicas, waiting for a settled or
//!   converged state.
//! - [`workload`]: the recording write and search loops.
//! - [`scenarios`]: the scenarios of the suite and of the elastic cluster.

pub mod client;
pub mod cluster;
pub mod compose;
pub mod converge;
pub mod fault;
pub mod history;
pub mod points;
pub mod report;
pub mod scenarios;
pub mod timeline;
pub mod workload;

pub use client::{Gateway, RetryPolicy};
pub use cluster::Cluster;
pub use compose::Compose;
pub use history::{History, Verdict};
pub use report::{ScenarioReport, SuiteReport};
