//! Metric names (the `metrics` facade; the binary installs the exporter).
//! Every metric carries a `side` label, `client` or `server`.
//!
//! | name | type | labels |
//! |------|------|--------|
//! | `transport_requests_total` | counter | side, kind (`unary`/`stream`) |
//! | `transport_errors_total` | counter | side, kind ([`crate::TransportError::kind`]) |
//! | `transport_bytes_sent_total` | counter | side |
//! | `transport_bytes_received_total` | counter | side |
//! | `transport_connections_total` | counter | side (connections established) |
//! | `transport_request_duration_seconds` | histogram | side, kind |

use std::time::Duration;

use crate::TransportError;

pub const REQUESTS: &str = "transport_requests_total";
pub const ERRORS: &str = "transport_errors_total";
pub const BYTES_SENT: &str = "transport_bytes_sent_total";
pub const BYTES_RECEIVED: &str = "transport_bytes_received_total";
pub const CONNECTIONS: &str = "transport_connections_total";
pub const REQUEST_DURATION: &str = "transport_request_duration_seconds";

/// Which end of a connection recorded a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

pub(crate) fn request(side: Side, kind: &'static str) {
    metrics::counter!(REQUESTS, "side" => side.as_str(), "kind" => kind).increment(1);
}

pub(crate) fn error(side: Side, e: &TransportError) {
    metrics::counter!(ERRORS, "side" => side.as_str(), "kind" => e.kind()).increment(1);
}

pub(crate) fn bytes_sent(side: Side, n: usize) {
    metrics::counter!(BYTES_SENT, "side" => side.as_str()).increment(n as u64);
}

pub(crate) fn bytes_received(side: Side, n: usize) {
    metrics::counter!(BYTES_RECEIVED, "side" => side.as_str()).increment(n as u64);
}

pub(crate) fn connection(side: Side) {
    metrics::counter!(CONNECTIONS, "side" => side.as_str()).increment(1);
}

pub(crate) fn duration(side: Side, kind: &'static str, elapsed: Duration) {
    metrics::histogram!(REQUEST_DURATION, "side" => side.as_str(), "kind" => kind)
        .record(elapsed.as_secs_f64());
}
