//! Integration tests: an in-process meta-service (one member), three
//! in-process storage nodes (real shards in temp dirs) on an in-memory
//! network that can take nodes down or slow them, and the gateway's
//! router served on 127.0.0.1:0, driven over HTTP with reqwest.

mod auth;
mod data;
mod failures;
mod harness;
mod quic;
