//! QUIC RPC with mutual TLS between storage nodes and gateways.
//!
//! Generic over the message types: a request is one msgpack frame on a new
//! bidirectional stream, the answer one frame (or several, for snapshots).
//! Every peer proves itself with a certificate signed by the cluster CA.
//!
//! ```text
//! RpcClient::call(addr, name, &req, timeout) ──QUIC stream──▶ RpcServer ─▶ Service::call(peer, req)
//! ```
//!
//! # Layout
//!
//! - [`certs`]: dev cluster CA and node certificates (rcgen), also the `certs` binary.
//! - [`tls`]: PEM loading, mTLS quinn configs, the peer's proven identity.
//! - [`frame`]: length-prefixed msgpack frames with a size limit; refusal codes.
//! - [`config`]: timeouts, frame and stream limits.
//! - [`server`]: `RpcServer`, the `Service` trait, shutdown and drain.
//! - [`client`]: `RpcClient` with its connection cache; streamed responses.
//! - [`error`]: `TransportError` and `is_transient()`.
//! - [`metrics`]: `transport_*` metric names.

pub mod certs;
pub mod client;
pub mod config;
pub mod error;
pub mod frame;
pub mod metrics;
pub mod server;
pub mod tls;

pub use client::{ResponseStream, RpcClient};
pub use config::RpcConfig;
pub use error::{Refusal, TransportError};
pub use server::{service_fn, Reply, RpcServer, Service, ServiceFn};
pub use tls::{PeerIdentity, TlsConfig, ALPN};
