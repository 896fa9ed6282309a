//! Load generator for the cluster's Qdrant-compatible REST API, with a raw
//! FAISS baseline measured in the same run.
//!
//! # Layout
//!
//! - [`vecs`]: texmex `.fvecs` / `.ivecs` reading and writing, checked.
//! - [`stats`]: latency histogram (HDR) percentiles and recall@k.
//! - [`report`]: the JSON report (parameters, machine, git commit, figures)
//!   and the markdown table printed after a run.
//! - [`client`]: the HTTP client and request bodies, serialised once.
//! - Runners, one per subcommand: [`ingest`], [`search`], [`mixed`],
//!   [`baseline`] (in-process FAISS HNSW), [`gen`] (synthetic data + exact
//!   ground truth).
//! - [`error`]: the crate's one error type.
//!
//! Every runner is bounded by a count and a duration, and talks only to the
//! address it is given.

pub mod baseline;
pub mod breakdown;
pub mod client;
pub mod error;
pub mod gen;
pub mod ingest;
pub mod mixed;
pub mod report;
pub mod search;
pub mod stats;
pub mod vecs;

pub use client::{Client, CollectionSpec, SearchParams};
pub use error::{Error, Result};
pub use report::{Machine, Report, Table};
pub use stats::{Latencies, LatencySummary, Recall};
pub use vecs::{read_fvecs, read_ivecs, Vecs};
