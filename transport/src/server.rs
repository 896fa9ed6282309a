//! The accepting side: [`RpcServer`] serves a [`Service`] until a shutdown
//! future resolves.
//!
//! ```text
//! run ── accept loop ──▶ connection task (handshake, peer identity)
//!                           └─ accept_bi loop ──▶ stream task: read 1 frame → Service::call → write reply
//! shutdown: stop accepting → broadcast stop → wait for stream tasks (≤ drain_timeout) → close endpoint
//! ```
//!
//! Shutdown follows mini-redis: a `broadcast` channel tells every task to
//! stop taking work, and every task holds a clone of an `mpsc::Sender`
//! whose closing tells `run` that all in-flight requests are answered.

use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use quinn::{RecvStream, SendStream};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, info, warn};

use crate::error::from_connection_error;
use crate::frame;
use crate::metrics::{self, Side};
use crate::refusal::code;
use crate::tls::peer_identity;
use crate::{PeerIdentity, RpcConfig, TlsConfig, TransportError};

/// What a server does with one decoded request. The transport knows
/// nothing about the message types; `Req`/`Resp` are usually the enums of
/// `protocol`.
pub trait Service<Req, Resp>: Send + Sync + 'static {
    /// Answers `req` from `peer`. Errors the caller should see belong in
    /// `Resp` (e.g. `Resp = Result<T, protocol::Error>`); a transport-level
    /// failure is never the handler's to report.
    ///
    /// The future runs to completion even when the client has given up
    /// (timed out, disconnected): handlers that append to a WAL need not be
    /// cancel-safe. Implement it with `async fn call(..) -> Reply<Resp>`.
    fn call(&self, peer: PeerIdentity, req: Req) -> impl Future<Output = Reply<Resp>> + Send;
}

/// A handler's answer: one frame, or a sequence of frames ended by the
/// stream's end (snapshots, WAL deltas).
pub enum Reply<Resp> {
    One(Resp),
    Stream(BoxStream<'static, Resp>),
}

impl<Resp> Reply<Resp> {
    pub fn stream(items: impl Stream<Item = Resp> + Send + 'static) -> Self {
        Reply::Stream(items.boxed())
    }
}

/// A [`Service`] from an async closure: `service_fn(|peer, req| async move { Reply::One(..) })`.
pub fn service_fn<F>(f: F) -> ServiceFn<F> {
    ServiceFn(f)
}

pub struct ServiceFn<F>(F);

impl<F, Fut, Req, Resp> Service<Req, Resp> for ServiceFn<F>
where
    F: Fn(PeerIdentity, Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply<Resp>> + Send,
{
    fn call(&self, peer: PeerIdentity, req: Req) -> impl Future<Output = Reply<Resp>> + Send {
        (self.0)(peer, req)
    }
}

/// A bound QUIC endpoint that accepts mutually authenticated connections.
pub struct RpcServer {
    endpoint: quinn::Endpoint,
    config: RpcConfig,
}

impl RpcServer {
    /// Binds the UDP socket. Must be called inside a Tokio runtime. Bind
    /// `127.0.0.1:0` and read [`RpcServer::local_addr`] to get a free port.
    pub fn bind(
        addr: SocketAddr,
        tls: &TlsConfig,
        config: RpcConfig,
    ) -> Result<Self, TransportError> {
        let server_config = tls.quinn_server(&config)?;
        let endpoint_config = tls.endpoint_config();
        let bind_error = |source| TransportError::Bind { addr, source };
        let socket = std::net::UdpSocket::bind(addr).map_err(bind_error)?;
        let runtime = quinn::default_runtime().ok_or_else(|| {
            bind_error(std::io::Error::other(
                "no async runtime (call inside Tokio)",
            ))
        })?;
        let endpoint = quinn::Endpoint::new(endpoint_config, Some(server_config), socket, runtime)
            .map_err(bind_error)?;
        Ok(RpcServer { endpoint, config })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, TransportError> {
        self.endpoint
            .local_addr()
            .map_err(|source| TransportError::Bind {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })
    }

    /// Serves `service` until `shutdown` resolves, then stops accepting,
    /// lets in-flight requests finish (at most `drain_timeout`) and closes
    /// every connection (peers see `ConnectionLost`, a transient error).
    /// When every request drained, the UDP port is free once this returns;
    /// a handler still running past the deadline holds it until it ends.
    pub async fn run<Req, Resp, S>(
        self,
        service: S,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), TransportError>
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        S: Service<Req, Resp>,
    {
        let RpcServer { endpoint, config } = self;
        let local = endpoint.local_addr().ok();
        info!(addr = ?local, "rpc server listening");
        let shared = Arc::new(Shared {
            service,
            config,
            _types: PhantomData,
        });
        let (stop_tx, _) = broadcast::channel::<()>(1);
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);

        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                incoming = endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    let task = ConnectionTask {
                        shared: shared.clone(),
                        stop: stop_tx.subscribe(),
                        _done: done_tx.clone(),
                    };
                    tokio::spawn(task.run(incoming));
                }
            }
        }

        info!(addr = ?local, "rpc server shutting down");
        drop(stop_tx);
        drop(done_tx);
        let drain = shared.config.drain_timeout;
        if tokio::time::timeout(drain, done_rx.recv()).await.is_err() {
            warn!(
                ?drain,
                "in-flight requests still running at the drain deadline; closing anyway"
            );
        }
        endpoint.close(code::varint(code::SHUTTING_DOWN), b"server shutting down");
        // Bounded: wait_idle lasts about three PTOs, but a peer that vanished
        // must not hold shutdown up.
        let _ = tokio::time::timeout(drain, endpoint.wait_idle()).await;
        Ok(())
    }
}

struct Shared<Req, Resp, S> {
    service: S,
    config: RpcConfig,
    _types: PhantomData<fn(Req) -> Resp>,
}

/// One accepted connection. Holding `_done` keeps `run` from returning
/// before this task, and every stream task it spawned, has ended.
struct ConnectionTask<Req, Resp, S> {
    shared: Arc<Shared<Req, Resp, S>>,
    stop: broadcast::Receiver<()>,
    _done: mpsc::Sender<()>,
}

impl<Req, Resp, S> ConnectionTask<Req, Resp, S>
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    S: Service<Req, Resp>,
{
    async fn run(mut self, incoming: quinn::Incoming) {
        let remote = incoming.remote_address();
        let connecting = match incoming.accept() {
            Ok(c) => c,
            Err(e) => {
                debug!(%remote, error = %e, "incoming connection dropped");
                return;
            }
        };
        let limit = self.shared.config.connect_timeout;
        let conn = tokio::select! {
            _ = self.stop.recv() => return,
            r = tokio::time::timeout(limit, connecting) => match r {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => {
                    let e = from_connection_error(remote, e);
                    metrics::error(Side::Server, &e);
                    warn!(%remote, error = %e, "handshake failed");
                    return;
                }
                Err(_) => {
                    let e = TransportError::Timeout { op: "handshake", after: limit };
                    metrics::error(Side::Server, &e);
                    warn!(%remote, error = %e, "handshake failed");
                    return;
                }
            },
        };
        // The verifier already demanded a CA-signed certificate; a missing
        // name means a certificate we cannot attribute, so refuse it too.
        let Some(peer) = peer_identity(&conn) else {
            warn!(%remote, "peer certificate has no usable name; closing");
            conn.close(
                code::varint(code::INTERNAL),
                b"peer certificate has no name",
            );
            return;
        };
        metrics::connection(Side::Server);
        debug!(%remote, peer = %peer.name, "connection established");

        loop {
            tokio::select! {
                _ = self.stop.recv() => break,
                stream = conn.accept_bi() => match stream {
                    Ok((send, recv)) => {
                        let stream = StreamTask {
                            shared: self.shared.clone(),
                            peer: peer.clone(),
                            _done: self._done.clone(),
                        };
                        tokio::spawn(stream.run(send, recv));
                    }
                    Err(e) => {
                        debug!(%remote, peer = %peer.name, reason = %e, "connection ended");
                        break;
                    }
                },
            }
        }
    }
}

/// One request stream.
struct StreamTask<Req, Resp, S> {
    shared: Arc<Shared<Req, Resp, S>>,
    peer: PeerIdentity,
    _done: mpsc::Sender<()>,
}

impl<Req, Resp, S> StreamTask<Req, Resp, S>
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    S: Service<Req, Resp>,
{
    async fn run(self, mut send: SendStream, mut recv: RecvStream) {
        let started = Instant::now();
        let config = &self.shared.config;
        let addr = self.peer.addr;

        let read = read_request(&mut recv, config.max_frame, addr);
        let read = tokio::time::timeout(config.frame_timeout, read).await;
        let read = read.unwrap_or(Err(TransportError::Timeout {
            op: "read request",
            after: config.frame_timeout,
        }));
        let req: Req = match read {
            Ok(req) => req,
            Err(e) => {
                metrics::error(Side::Server, &e);
                debug!(peer = %self.peer.name, error = %e, "request refused");
                let refusal = match e {
                    TransportError::FrameTooLarge { .. } => Some(code::FRAME_TOO_LARGE),
                    TransportError::Codec { .. } => Some(code::MALFORMED),
                    _ => None,
                };
                if let Some(c) = refusal {
                    let _ = recv.stop(code::varint(c));
                    let _ = send.reset(code::varint(c));
                }
                return;
            }
        };

        let reply = self.shared.service.call(self.peer.clone(), req).await;
        let kind = match reply {
            Reply::One(_) => "unary",
            Reply::Stream(_) => "stream",
        };
        metrics::request(Side::Server, kind);
        let result = match reply {
            Reply::One(resp) => self.write_item(&mut send, resp).await,
            Reply::Stream(mut items) => {
                let mut r = Ok(());
                while let Some(item) = items.next().await {
                    r = self.write_item(&mut send, item).await;
                    if r.is_err() {
                        break;
                    }
                }
                r
            }
        };
        match result {
            Ok(()) => {
                let _ = send.finish();
                // Hold the drain guard until the peer has the whole answer,
                // so a shutdown right after does not cut it off. Bounded by
                // the idle timeout through the connection's lifetime.
                let _ = tokio::time::timeout(config.idle_timeout, send.stopped()).await;
            }
            Err(e) => {
                metrics::error(Side::Server, &e);
                match e {
                    TransportError::FrameTooLarge { .. } | TransportError::Codec { .. } => {
                        warn!(peer = %self.peer.name, error = %e, "response not sendable");
                        let _ = send.reset(code::varint(code::INTERNAL));
                    }
                    _ => debug!(peer = %self.peer.name, error = %e, "response not delivered"),
                }
            }
        }
        metrics::duration(Side::Server, kind, started.elapsed());
    }

    /// Takes the item by value: a `&Resp` held across the write would
    /// require `Resp: Sync`.
    async fn write_item(&self, send: &mut SendStream, item: Resp) -> Result<(), TransportError> {
        let config = &self.shared.config;
        let body = frame::encode_body(&item, config.max_frame)?;
        drop(item);
        let write = frame::write_frame(send, &body, self.peer.addr, Side::Server);
        tokio::time::timeout(config.frame_timeout, write)
            .await
            .unwrap_or(Err(TransportError::Timeout {
                op: "write response",
                after: config.frame_timeout,
            }))
    }
}

async fn read_request<Req: DeserializeOwned>(
    recv: &mut RecvStream,
    max: usize,
    addr: SocketAddr,
) -> Result<Req, TransportError> {
    let body = frame::read_frame(recv, max, addr, Side::Server)
        .await?
        .ok_or_else(|| TransportError::StreamClosed {
            reason: "request stream finished without a frame".into(),
        })?;
    frame::decode_body(&body)
}
