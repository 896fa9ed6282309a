//! Shared fixtures: a PKI in a temp dir, a test service and a server handle.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use transport::certs::{self, CertifiedKey};
use transport::{
    PeerIdentity, Reply, RpcClient, RpcConfig, RpcServer, Service, TlsConfig, TransportError,
};

pub const TIMEOUT: Duration = Duration::from_secs(5);
pub const SERVER: &str = "node-1";
pub const CLIENT: &str = "gateway-1";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Req {
    Echo(String),
    Sleep {
        millis: u64,
    },
    /// A payload of any size; a `String` because serde sends `Vec<u8>` as
    /// an array of integers, slow to encode in debug builds.
    Blob(String),
    Chunks(u32),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Resp {
    Echo { text: String, peer: String },
    Slept,
    Size(usize),
    Chunk(u32),
}

/// A CA and its directory; certificates issued from it are valid for each other.
pub struct Pki {
    pub dir: TempDir,
    pub ca: CertifiedKey,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        certs::init_dir(dir.path(), "test CA", false).unwrap();
        let ca = certs::load_ca(dir.path()).unwrap();
        Pki { dir, ca }
    }

    /// A node identity signed by this CA (written to the dir and loaded back).
    pub fn tls(&self, name: &str) -> TlsConfig {
        certs::issue_to_dir(
            self.dir.path(),
            name,
            &["localhost".into()],
            &["127.0.0.1".parse().unwrap()],
        )
        .unwrap();
        TlsConfig::from_dir(self.dir.path(), name).unwrap()
    }

    pub fn ca_pem(&self) -> Vec<u8> {
        self.ca.cert_pem.clone().into_bytes()
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub calls: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), TransportError>>,
}

impl TestServer {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Triggers shutdown and waits for `run` to return.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), &mut self.task)
            .await
            .expect("server did not stop within 15 s")
            .unwrap()
            .unwrap();
    }

    pub fn stop_signal(&mut self) -> oneshot::Sender<()> {
        self.stop.take().unwrap()
    }

    pub async fn join(self) -> Result<(), TransportError> {
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("server did not stop within 15 s")
            .unwrap()
    }
}

pub fn start(tls: &TlsConfig, config: RpcConfig) -> TestServer {
    start_on("127.0.0.1:0".parse().unwrap(), tls, config).unwrap()
}

pub fn start_on(
    addr: SocketAddr,
    tls: &TlsConfig,
    config: RpcConfig,
) -> Result<TestServer, TransportError> {
    let server = RpcServer::bind(addr, tls, config)?;
    let addr = server.local_addr()?;
    let calls = Arc::new(AtomicUsize::new(0));
    let service = TestService {
        calls: calls.clone(),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(service, async move {
        let _ = stopped.await;
    }));
    Ok(TestServer {
        addr,
        calls,
        stop: Some(stop),
        task,
    })
}

/// The way a node implements its service: a struct and an `async fn`.
struct TestService {
    calls: Arc<AtomicUsize>,
}

impl Service<Req, Resp> for TestService {
    async fn call(&self, peer: PeerIdentity, req: Req) -> Reply<Resp> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match req {
            Req::Echo(text) => Reply::One(Resp::Echo {
                text,
                peer: peer.name,
            }),
            Req::Sleep { millis } => {
                tokio::time::sleep(Duration::from_millis(millis)).await;
                Reply::One(Resp::Slept)
            }
            Req::Blob(b) => Reply::One(Resp::Size(b.len())),
            Req::Chunks(n) => Reply::stream(futures::stream::iter((0..n).map(Resp::Chunk))),
        }
    }
}

pub fn client(tls: &TlsConfig) -> RpcClient {
    RpcClient::new(tls, RpcConfig::default()).unwrap()
}

pub async fn echo(
    client: &RpcClient,
    addr: SocketAddr,
    text: &str,
) -> Result<Resp, TransportError> {
    client
        .call(addr, SERVER, &Req::Echo(text.into()), TIMEOUT)
        .await
}
