//! Which network the gossip runs on: real UDP, or (tests) an in-process
//! network from [`testsuite`](crate::testsuite).

use std::net::SocketAddr;

use chitchat::transport::{Transport, UdpTransport};

use crate::error::MembershipError;

/// The gossip transport of one node.
#[derive(Clone, Default)]
pub enum GossipTransport {
    /// UDP datagrams (the real thing).
    #[default]
    Udp,
    /// chitchat's in-memory `ChannelTransport`, with partition controls.
    #[cfg(any(test, feature = "testsuite"))]
    InMemory(crate::testsuite::InMemoryNetwork),
}

impl GossipTransport {
    pub(crate) fn as_chitchat(&self) -> &dyn Transport {
        match self {
            GossipTransport::Udp => &UdpTransport,
            #[cfg(any(test, feature = "testsuite"))]
            GossipTransport::InMemory(network) => network.transport(),
        }
    }

    /// The concrete address to listen on. chitchat needs our advertised
    /// address before it opens the socket and never reports the port it got,
    /// so for port 0 we pick a free port first: for UDP by binding and
    /// releasing one (a small race, retried by `join`), for the in-memory
    /// network from its counter.
    pub(crate) fn resolve_listen(&self, listen: SocketAddr) -> Result<SocketAddr, MembershipError> {
        if listen.port() != 0 {
            return Ok(listen);
        }
        match self {
            GossipTransport::Udp => std::net::UdpSocket::bind(listen)
                .and_then(|socket| socket.local_addr())
                .map_err(|e| MembershipError::Bind {
                    addr: listen,
                    reason: e.to_string(),
                }),
            #[cfg(any(test, feature = "testsuite"))]
            GossipTransport::InMemory(network) => Ok(network.next_addr()),
        }
    }
}
