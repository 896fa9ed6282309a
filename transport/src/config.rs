//! Knobs shared by [`crate::RpcServer`] and [`crate::RpcClient`].

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::frame::DEFAULT_MAX_FRAME;
use crate::TransportError;

#[derive(Debug, Clone)]
pub struct RpcConfig {
    /// Largest frame body accepted or sent, in bytes. A request above the
    /// server's limit is refused with [`crate::Refusal::FrameTooLarge`].
    pub max_frame: usize,
    /// Concurrent request streams a server accepts per connection; further
    /// streams wait in the client's `open_bi` (QUIC flow control).
    pub max_concurrent_streams: u32,
    /// Bound on establishing a connection (QUIC + TLS handshake).
    pub connect_timeout: Duration,
    /// A connection with no traffic for this long is closed. Keep-alives
    /// keep idle-but-healthy connections open.
    pub idle_timeout: Duration,
    /// Interval of QUIC keep-alive pings; must be below `idle_timeout`.
    pub keep_alive: Duration,
    /// Server side: bound on receiving a whole request frame, and on
    /// writing each response frame (a client that stops reading cannot pin
    /// a handler task).
    pub frame_timeout: Duration,
    /// How long a shutting-down server waits for in-flight requests.
    pub drain_timeout: Duration,
    /// Local address of a client's UDP socket.
    pub client_bind: SocketAddr,
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            max_frame: DEFAULT_MAX_FRAME,
            max_concurrent_streams: 256,
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(5),
            frame_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
            client_bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        }
    }
}

impl RpcConfig {
    /// quinn's transport parameters. Only the server accepts streams; a
    /// client takes none (`accepts_streams = false`).
    pub(crate) fn quinn_transport(
        &self,
        accepts_streams: bool,
    ) -> Result<Arc<quinn::TransportConfig>, TransportError> {
        let idle = quinn::IdleTimeout::try_from(self.idle_timeout)
            .map_err(|e| TransportError::config(format!("idle_timeout: {e}")))?;
        if self.keep_alive >= self.idle_timeout {
            return Err(TransportError::config(
                "keep_alive must be shorter than idle_timeout",
            ));
        }
        let streams = if accepts_streams {
            self.max_concurrent_streams
        } else {
            0
        };
        let mut t = quinn::TransportConfig::default();
        t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(streams))
            .max_concurrent_uni_streams(quinn::VarInt::from_u32(0))
            .max_idle_timeout(Some(idle))
            .keep_alive_interval(Some(self.keep_alive));
        Ok(Arc::new(t))
    }
}
