//! The dialing side: [`RpcClient`] sends requests over cached QUIC
//! connections, one bidirectional stream per request.
//!
//! One connection per `(addr, server name)` is kept and shared by every
//! clone of the client; concurrent requests multiplex over it as streams.
//! A connection that closed (peer restart, idle timeout) is replaced on the
//! next call; a request whose stream could not even be opened on a cached
//! connection is retried once on a fresh one, which is safe because
//! nothing was sent.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::Stream;
use parking_lot::Mutex;
use quinn::{RecvStream, SendStream};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::debug;

use crate::error::{from_connection_error, TransportError};
use crate::frame;
use crate::metrics::{self, Side};
use crate::{RpcConfig, TlsConfig};

/// Cheap to clone; clones share the endpoint and the connection cache.
#[derive(Clone)]
pub struct RpcClient {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: quinn::Endpoint,
    config: RpcConfig,
    slots: Mutex<HashMap<(SocketAddr, String), Arc<Slot>>>,
}

/// The cached connection to one server. `conn` is read on every call
/// (a short, never-held-across-await lock, hence parking_lot); `dialing`
/// makes concurrent first calls share one handshake.
#[derive(Default)]
struct Slot {
    conn: Mutex<Option<quinn::Connection>>,
    dialing: tokio::sync::Mutex<()>,
}

impl Slot {
    fn live(&self) -> Option<quinn::Connection> {
        self.conn
            .lock()
            .as_ref()
            .filter(|c| c.close_reason().is_none())
            .cloned()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.endpoint
            .close(quinn::VarInt::from_u32(0), b"client dropped");
    }
}

impl RpcClient {
    /// Binds a UDP socket on `config.client_bind`. Must be called inside a
    /// Tokio runtime.
    pub fn new(tls: &TlsConfig, config: RpcConfig) -> Result<Self, TransportError> {
        let client_config = tls.quinn_client(&config)?;
        let addr = config.client_bind;
        let mut endpoint = quinn::Endpoint::client(addr)
            .map_err(|source| TransportError::Bind { addr, source })?;
        endpoint.set_default_client_config(client_config);
        Ok(RpcClient {
            inner: Arc::new(Inner {
                endpoint,
                config,
                slots: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn config(&self) -> &RpcConfig {
        &self.inner.config
    }

    /// Sends `req` to the server at `addr`, whose certificate must name
    /// `server_name`, and waits for one response frame. `timeout` bounds
    /// the whole call, connecting included.
    pub async fn call<Req, Resp>(
        &self,
        addr: SocketAddr,
        server_name: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, TransportError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let started = Instant::now();
        metrics::request(Side::Client, "unary");
        let result = async {
            let body = frame::encode_body(req, self.inner.config.max_frame)?;
            let attempt = async {
                let (_send, mut recv) = self.send_request(addr, server_name, &body).await?;
                let frame =
                    frame::read_frame(&mut recv, self.inner.config.max_frame, addr, Side::Client)
                        .await?
                        .ok_or_else(|| TransportError::StreamClosed {
                            reason: "response stream finished without a frame".into(),
                        })?;
                frame::decode_body(&frame)
            };
            with_timeout(timeout, "request", attempt).await
        }
        .await;
        self.finish(addr, server_name, "unary", started, &result);
        result
    }

    /// Sends `req` and returns the server's frames as they arrive (a
    /// [`crate::Reply::Stream`] on the other side). `timeout` bounds sending
    /// the request and then each wait for the next frame, not the whole
    /// transfer, so long snapshots are fine as long as they keep moving.
    pub async fn call_stream<Req, Item>(
        &self,
        addr: SocketAddr,
        server_name: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<ResponseStream<Item>, TransportError>
    where
        Req: Serialize,
        Item: DeserializeOwned,
    {
        let started = Instant::now();
        metrics::request(Side::Client, "stream");
        let result = async {
            let body = frame::encode_body(req, self.inner.config.max_frame)?;
            let (_send, recv) = with_timeout(
                timeout,
                "request",
                self.send_request(addr, server_name, &body),
            )
            .await?;
            Ok(ResponseStream {
                recv,
                addr,
                max_frame: self.inner.config.max_frame,
                timeout,
                finished: false,
                _item: PhantomData,
            })
        }
        .await;
        self.finish(addr, server_name, "stream", started, &result);
        result
    }

    /// Closes every cached connection (in-flight calls fail with
    /// `ConnectionLost`); later calls reconnect.
    pub fn close_all(&self) {
        let slots: Vec<_> = self.inner.slots.lock().drain().map(|(_, s)| s).collect();
        for slot in slots {
            if let Some(c) = slot.conn.lock().take() {
                c.close(quinn::VarInt::from_u32(0), b"client closing");
            }
        }
    }

    /// Opens a stream, writes the request frame and finishes the sending side.
    async fn send_request(
        &self,
        addr: SocketAddr,
        server_name: &str,
        body: &[u8],
    ) -> Result<(SendStream, RecvStream), TransportError> {
        let (mut send, recv) = self.open(addr, server_name).await?;
        frame::write_frame(&mut send, body, addr, Side::Client).await?;
        send.finish().map_err(|e| TransportError::StreamClosed {
            reason: e.to_string(),
        })?;
        Ok((send, recv))
    }

    async fn open(
        &self,
        addr: SocketAddr,
        server_name: &str,
    ) -> Result<(SendStream, RecvStream), TransportError> {
        let slot = self.slot(addr, server_name);
        let (conn, fresh) = self.connection(&slot, addr, server_name).await?;
        match conn.open_bi().await {
            Ok(streams) => Ok(streams),
            Err(e) if !fresh => {
                debug!(%addr, server_name, error = %e, "cached connection is gone; reconnecting");
                forget(&slot, &conn);
                let (conn, _) = self.connection(&slot, addr, server_name).await?;
                conn.open_bi()
                    .await
                    .map_err(|e| from_connection_error(addr, e))
            }
            Err(e) => Err(from_connection_error(addr, e)),
        }
    }

    fn slot(&self, addr: SocketAddr, server_name: &str) -> Arc<Slot> {
        self.inner
            .slots
            .lock()
            .entry((addr, server_name.to_string()))
            .or_default()
            .clone()
    }

    /// The cached live connection, or a new one (`true` when new).
    async fn connection(
        &self,
        slot: &Slot,
        addr: SocketAddr,
        server_name: &str,
    ) -> Result<(quinn::Connection, bool), TransportError> {
        if let Some(c) = slot.live() {
            return Ok((c, false));
        }
        let _dialing = slot.dialing.lock().await;
        if let Some(c) = slot.live() {
            return Ok((c, false));
        }
        let conn = self.connect(addr, server_name).await?;
        *slot.conn.lock() = Some(conn.clone());
        Ok((conn, true))
    }

    async fn connect(
        &self,
        addr: SocketAddr,
        server_name: &str,
    ) -> Result<quinn::Connection, TransportError> {
        let connect_error = |reason: String| TransportError::Connect {
            addr,
            server_name: server_name.to_string(),
            reason,
        };
        let connecting = self
            .inner
            .endpoint
            .connect(addr, server_name)
            .map_err(|e| match e {
                // Retrying cannot fix these.
                quinn::ConnectError::InvalidServerName(_)
                | quinn::ConnectError::InvalidRemoteAddress(_)
                | quinn::ConnectError::NoDefaultClientConfig
                | quinn::ConnectError::UnsupportedVersion => TransportError::config(e),
                quinn::ConnectError::EndpointStopping | quinn::ConnectError::CidsExhausted => {
                    connect_error(e.to_string())
                }
            })?;
        let limit = self.inner.config.connect_timeout;
        let conn = match tokio::time::timeout(limit, connecting).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                return Err(match from_connection_error(addr, e) {
                    TransportError::ConnectionLost { reason } => connect_error(reason),
                    other => other,
                })
            }
            Err(_) => return Err(connect_error(format!("no handshake within {limit:?}"))),
        };
        metrics::connection(Side::Client);
        debug!(%addr, server_name, "connected");
        Ok(conn)
    }

    /// Records metrics and drops the cached connection after failures that
    /// say it is unusable: it closed, the handshake was refused, or a
    /// request timed out (a peer that died without closing, e.g. killed and
    /// restarted on the same port, is otherwise noticed only at the idle
    /// timeout). In-flight calls on a dropped connection finish normally.
    fn finish<T>(
        &self,
        addr: SocketAddr,
        server_name: &str,
        kind: &'static str,
        started: Instant,
        result: &Result<T, TransportError>,
    ) {
        metrics::duration(Side::Client, kind, started.elapsed());
        let Err(e) = result else { return };
        metrics::error(Side::Client, e);
        if matches!(
            e,
            TransportError::ConnectionLost { .. }
                | TransportError::Tls { .. }
                | TransportError::Timeout { .. }
        ) {
            let key = (addr, server_name.to_string());
            if let Some(slot) = self.inner.slots.lock().get(&key) {
                slot.conn.lock().take();
            }
        }
    }
}

fn forget(slot: &Slot, conn: &quinn::Connection) {
    let mut cached = slot.conn.lock();
    if cached
        .as_ref()
        .is_some_and(|c| c.stable_id() == conn.stable_id())
    {
        *cached = None;
    }
}

async fn with_timeout<T>(
    after: Duration,
    op: &'static str,
    fut: impl std::future::Future<Output = Result<T, TransportError>>,
) -> Result<T, TransportError> {
    tokio::time::timeout(after, fut)
        .await
        .unwrap_or(Err(TransportError::Timeout { op, after }))
}

/// The frames of a streamed response, in order. Dropping it before the end
/// tells the server to stop sending.
pub struct ResponseStream<Item> {
    recv: RecvStream,
    addr: SocketAddr,
    max_frame: usize,
    timeout: Duration,
    finished: bool,
    _item: PhantomData<fn() -> Item>,
}

impl<Item: DeserializeOwned> ResponseStream<Item> {
    /// The next item; `None` after the server finished the stream or after
    /// the first error (which is returned once).
    pub async fn next(&mut self) -> Option<Result<Item, TransportError>> {
        if self.finished {
            return None;
        }
        let read = frame::read_frame(&mut self.recv, self.max_frame, self.addr, Side::Client);
        let result = match tokio::time::timeout(self.timeout, read).await {
            Ok(Ok(Some(body))) => frame::decode_body(&body).map(Some),
            Ok(Ok(None)) => Ok(None),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(TransportError::Timeout {
                op: "stream frame",
                after: self.timeout,
            }),
        };
        match result {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => {
                self.finished = true;
                None
            }
            Err(e) => {
                self.finished = true;
                metrics::error(Side::Client, &e);
                Some(Err(e))
            }
        }
    }

    /// Reads every remaining item, failing on the first error.
    pub async fn collect_all(mut self) -> Result<Vec<Item>, TransportError> {
        let mut items = Vec::new();
        while let Some(item) = self.next().await {
            items.push(item?);
        }
        Ok(items)
    }

    /// As a `futures::Stream`.
    pub fn into_stream(self) -> impl Stream<Item = Result<Item, TransportError>> + Send
    where
        Item: Send,
    {
        futures::stream::unfold(
            self,
            |mut s| async move { s.next().await.map(|item| (item, s)) },
        )
    }
}
