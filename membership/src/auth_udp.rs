//! chitchat over UDP with every datagram sealed (`auth`) and every
//! received one verified, de-duplicated and reassembled (`replay`) before
//! chitchat decodes it. Dropped datagrams are counted by reason and never
//! reach chitchat, so a forged digest cannot trigger a catch-up.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use chitchat::transport::{RecvOutcome, SendOutcome, Socket, Transport};
use chitchat::ChitchatEnvelope;
use tracing::{debug, warn};

use crate::auth::{seal, DropReason, GossipAuth, MAX_DATAGRAM};
use crate::codec::Codec;
use crate::replay::{Opened, Opener};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A random session id for a new socket (a new replay window at peers).
fn new_session() -> anyhow::Result<u64> {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut b = [0u8; 8];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| anyhow::anyhow!("no system randomness for the gossip session id"))?;
    Ok(u64::from_be_bytes(b))
}

#[async_trait::async_trait]
impl Transport for GossipAuth {
    async fn open(&self, listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let socket = tokio::net::UdpSocket::bind(listen_addr)
            .await
            .with_context(|| format!("failed to bind to {listen_addr}/UDP for gossip"))?;
        Ok(Box::new(AuthUdpSocket {
            socket,
            auth: self.clone(),
            session: new_session()?,
            counter: 1,
            opener: Opener::new(self.clone()),
            codec: Codec::open().await?,
            recv_buf: vec![0u8; MAX_DATAGRAM + 1].into_boxed_slice(),
        }))
    }
}

struct AuthUdpSocket {
    socket: tokio::net::UdpSocket,
    auth: GossipAuth,
    session: u64,
    counter: u64,
    opener: Opener,
    codec: Codec,
    recv_buf: Box<[u8]>,
}

#[async_trait::async_trait]
impl Socket for AuthUdpSocket {
    fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.socket
            .local_addr()
            .context("failed to get UDP socket address")
    }

    async fn send(
        &mut self,
        to: SocketAddr,
        envelope: ChitchatEnvelope,
    ) -> anyhow::Result<SendOutcome> {
        let bytes = self.codec.encode(envelope).await?;
        let datagrams = seal(
            self.auth.key(),
            self.session,
            &mut self.counter,
            now_ms(),
            &bytes,
        )
        .with_context(|| {
            format!(
                "gossip message of {} bytes is too large to seal",
                bytes.len()
            )
        })?;
        let mut num_bytes_sent = 0;
        for datagram in datagrams {
            num_bytes_sent += self
                .socket
                .send_to(&datagram, to)
                .await
                .context("failed to send chitchat message to peer")?;
        }
        Ok(SendOutcome { num_bytes_sent })
    }

    /// Cancellation-safe: state changes only after `recv_from` returned,
    /// and a datagram handed to the decoder is collected by the next call
    /// if this one is dropped before it came out.
    async fn recv(&mut self) -> anyhow::Result<RecvOutcome> {
        if let Some(outcome) = self.codec.finish_decode().await? {
            return Ok(outcome);
        }
        loop {
            let (len, from_addr) = match self.socket.recv_from(&mut self.recv_buf).await {
                Ok(r) => r,
                // What chitchat's own UDP socket treats as transient.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::ConnectionRefused
                            | std::io::ErrorKind::OutOfMemory
                    ) =>
                {
                    warn!(error = %e, "transient UDP recv error");
                    continue;
                }
                Err(e) => return Err(e).context("fatal UDP recv error"),
            };
            let payload = match self.opener.open(&self.recv_buf[..len], now_ms()) {
                Ok(Opened::Message(payload)) => payload,
                Ok(Opened::Pending) => continue,
                Err(reason) => {
                    self.drop_datagram(reason, from_addr, len);
                    continue;
                }
            };
            match self.codec.decode(&payload, from_addr).await? {
                Some(outcome) => return Ok(outcome),
                // Authentic but undecodable: a key holder running an
                // incompatible version. Dropped like the rest.
                None => self.drop_datagram(DropReason::Malformed, from_addr, len),
            }
        }
    }
}

impl AuthUdpSocket {
    fn drop_datagram(&self, reason: DropReason, from: SocketAddr, len: usize) {
        self.auth.count_drop(reason);
        debug!(%from, len, reason = reason.as_str(), "gossip datagram dropped");
    }
}
