//! Integration tests: the shared in-process cluster (`testsuite`): one
//! meta-service member, three storage nodes (real shards in temp dirs) on
//! an in-memory network that can take nodes down or slow them, and the
//! gateway served on 127.0.0.1:0, driven over HTTP with reqwest. `logs`
//! starts the real `gateway` binary and reads its log from a pipe.

mod aliases;
mod auth;
mod config_file;
mod dashboard;
mod data;
mod failures;
mod harness;
mod limits;
mod logs;
mod names;
mod openapi;
mod operator;
mod quic;
mod tls;
