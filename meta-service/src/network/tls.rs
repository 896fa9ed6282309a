//! The meta member's HTTPS listener: mutual TLS with the cluster CA.
//!
//! The server asks every client for a certificate and verifies any it
//! gets against the CA (a certificate of another CA fails the handshake);
//! a client may also present none, because `/health` and `/metrics` stay
//! readable for probes and Prometheus. Everything else is refused without
//! one by `authz` (401). Each connection's proven certificate name and
//! role travel to the handlers as [`Peer`] (axum's `ConnectInfo`).
//!
//! Handshakes run in their own tasks, bounded in time and number (the
//! gateway's REST TLS listener does the same), so a client that connects
//! and sends nothing cannot hold up the accept loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use meta_client::MetaTls;
use protocol::roles::Role;
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::network::authz::{Caller, Peer};

/// Longest a client may take to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once.
const MAX_HANDSHAKES: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum ServerTlsError {
    #[error("the meta member's TLS config has no certificate of its own")]
    NoIdentity,
    #[error("client certificate verifier: {0}")]
    Verifier(String),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The rustls server side: our certificate; clients verified against the
/// CA when they present one.
pub fn server_config(tls: &MetaTls) -> Result<Arc<rustls::ServerConfig>, ServerTlsError> {
    let provider = meta_client::tls::provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(tls.roots(), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| ServerTlsError::Verifier(e.to_string()))?;
    let (chain, key) = tls.identity().ok_or(ServerTlsError::NoIdentity)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    // axum serves HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Who the client of a finished handshake is.
fn caller_of(stream: &TlsStream<TcpStream>) -> Caller {
    let Some(leaf) = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
    else {
        return Caller::Anonymous;
    };
    // The chain verified against the CA during the handshake; an
    // unreadable name only means no role.
    let name = cert_name(leaf).unwrap_or_default();
    Caller::Certified {
        role: Role::from_cert_name(&name),
        name,
    }
}

/// A certificate's subject CN (what `certs issue --name` writes).
fn cert_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

/// TLS connections accepted on a TCP listener, for `axum::serve`.
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, Peer)>,
}

impl TlsListener {
    /// Starts accepting on `tcp`; the accept task ends when this listener
    /// is dropped.
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx));
        Ok(TlsListener { local, ready })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, Peer)>,
) {
    let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (stream, addr) = tokio::select! {
            _ = tx.closed() => return,
            accepted = tcp.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather
                    // than spin.
                    tracing::warn!(error = %e, "accepting a meta connection failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let peer = Peer {
                        addr,
                        caller: caller_of(&tls),
                    };
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => {
                    metrics::counter!("meta_tls_handshakes_failed_total").increment(1);
                    tracing::debug!(%addr, error = %e, "meta TLS handshake failed");
                }
                Err(_) => tracing::debug!(%addr, "meta TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept task holds the sender until this listener is
            // dropped, so the channel never closes while we wait.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(Peer {
            addr: self.local,
            caller: Caller::Anonymous,
        })
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// Without TLS every caller is [`Caller::Insecure`].
impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        Peer {
            addr: *stream.remote_addr(),
            caller: Caller::Insecure,
        }
    }
}
