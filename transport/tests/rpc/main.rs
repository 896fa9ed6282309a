//! Integration tests: real QUIC on 127.0.0.1, certificates in temp dirs.

mod support;

mod certs_cli;
mod failures;
mod lifecycle;
mod mtls;
mod requests;
