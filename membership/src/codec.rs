//! chitchat's own wire codec, borrowed through loopback sockets.
//!
//! chitchat 0.13 keeps `ChitchatEnvelope`'s encoder and decoder private to
//! the crate; only its UDP socket uses them. To seal exactly the bytes
//! chitchat would send (and hand it exactly the bytes it would read), each
//! authenticated socket owns two of chitchat's own `UdpSocket`s on
//! 127.0.0.1: the *encoder* "sends" an envelope to our loopback socket,
//! which reads the encoded datagram back; verified bytes are sent to the
//! *decoder*, whose `recv` decodes them. Loopback delivery is complete when
//! `send_to` returns, so each step is one system call away. Datagrams on
//! these sockets from any other local address are ignored.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use chitchat::transport::{RecvOutcome, Socket, UdpSocket as ChitchatUdp};
use chitchat::ChitchatEnvelope;
use tokio::net::UdpSocket;

use crate::auth::MAX_DATAGRAM;

/// How long a datagram handed to the decoder may take to come out. It is
/// already queued on loopback; an authentic but undecodable one (chitchat
/// drops it and waits for the next) is given up after this.
const DECODE_WAIT: Duration = Duration::from_millis(200);

pub(crate) struct Codec {
    encoder: ChitchatUdp,
    encoded: UdpSocket,
    decoder: ChitchatUdp,
    feed: UdpSocket,
    /// The true sender of a datagram handed to the decoder and not yet
    /// decoded (the caller's future was dropped in between).
    pending_from: Option<SocketAddr>,
    buf: Box<[u8]>,
}

impl Codec {
    pub async fn open() -> anyhow::Result<Codec> {
        let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
        let encoded = UdpSocket::bind(loopback)
            .await
            .context("bind the gossip encoder's loopback socket")?;
        let feed = UdpSocket::bind(loopback)
            .await
            .context("bind the gossip decoder's loopback socket")?;
        Ok(Codec {
            encoder: ChitchatUdp::open(loopback).await?,
            encoded,
            decoder: ChitchatUdp::open(loopback).await?,
            feed,
            pending_from: None,
            buf: vec![0u8; MAX_DATAGRAM + 1].into_boxed_slice(),
        })
    }

    /// The bytes chitchat puts on the wire for `envelope`.
    pub async fn encode(&mut self, envelope: ChitchatEnvelope) -> anyhow::Result<Vec<u8>> {
        // Left over from an encode whose future was dropped.
        while self.encoded.try_recv_from(&mut self.buf).is_ok() {}
        let target = self.encoded.local_addr()?;
        let from_encoder = self.encoder.local_addr()?;
        self.encoder.send(target, envelope).await?;
        loop {
            let (len, from) = self.encoded.recv_from(&mut self.buf).await?;
            if from == from_encoder {
                return Ok(self.buf[..len].to_vec());
            }
        }
    }

    /// The envelope in `bytes` (verified, from `from`), or `None` if
    /// chitchat cannot decode it.
    pub async fn decode(
        &mut self,
        bytes: &[u8],
        from: SocketAddr,
    ) -> anyhow::Result<Option<RecvOutcome>> {
        let decoder = self.decoder.local_addr()?;
        self.feed.send_to(bytes, decoder).await?;
        self.pending_from = Some(from);
        self.finish_decode().await
    }

    /// Collects what the decoder made of the datagram last fed to it, if
    /// it was not collected yet.
    pub async fn finish_decode(&mut self) -> anyhow::Result<Option<RecvOutcome>> {
        let Some(from) = self.pending_from else {
            return Ok(None);
        };
        let feed = self.feed.local_addr()?;
        let outcome = loop {
            match tokio::time::timeout(DECODE_WAIT, self.decoder.recv()).await {
                Err(_) => break None,
                Ok(received) => {
                    let received = received?;
                    // Only what we fed it; anything else on loopback is
                    // unauthenticated.
                    if received.from_addr == feed {
                        break Some(RecvOutcome {
                            from_addr: from,
                            ..received
                        });
                    }
                }
            }
        };
        self.pending_from = None;
        Ok(outcome)
    }
}
