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
//! - [`frame`]: length-prefixed msgpack frames with a size limit.
//! - [`refusal`]: why a peer reset a request stream ([`Refusal`]) and its wire codes.
//! - [`config`]: timeouts, frame and stream limits.
//! - [`server`]: `RpcServer`, the `Service` trait, shutdown and drain.
//! - [`client`]: `RpcClient` with its connection cache; streamed responses.
//! - [`error`]: `TransportError`, every transport failure, mapped once from quinn / rustls.
//! - [`call_error`]: [`CallError`], a call to a node that produced no answer, as
//!   callers of storage nodes see it, with the `is_transient()` their retries read.
//! - [`metrics`]: `transport_*` metric names.

pub mod call_error;
pub mod certs;
pub mod client;
pub mod config;
pub mod error;
pub mod frame;
pub mod metrics;
pub mod refusal;
pub mod server;
pub mod tls;

pub use call_error::CallError;
pub use client::{ResponseStream, RpcClient};
pub use config::RpcConfig;
pub use error::TransportError;
pub use refusal::Refusal;
pub use server::{service_fn, Reply, RpcServer, Service, ServiceFn};
pub use tls::{PeerIdentity, TlsConfig, ALPN};
