//! Mutual TLS for QUIC: both ends present a certificate signed by the
//! cluster CA and check the other's against it.
//!
//! - server: `WebPkiClientVerifier` over the CA, so a client without a
//!   certificate, or with one from another CA, fails the handshake and never
//!   reaches a handler;
//! - client: the standard WebPKI server verifier over the same CA (the
//!   server name given to `call` must be a SAN of the server's certificate)
//!   and its own certificate for client auth.
//!
//! TLS 1.3 only (QUIC requires it), ring provider, ALPN [`ALPN`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::certs::CA_CERT_FILE;
use crate::config::RpcConfig;
use crate::TransportError;

/// Application protocol negotiated on every connection.
pub const ALPN: &[u8] = b"vdb/1";

/// Who is on the other end of a connection, as proven by its certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerIdentity {
    /// The certificate's subject CN, or its first DNS SAN when it has no CN.
    pub name: String,
    pub addr: SocketAddr,
}

/// Trust anchors and the certificate a node presents.
pub struct TlsConfig {
    roots: Arc<RootCertStore>,
    identity: Option<Identity>,
}

struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for TlsConfig {
    fn clone(&self) -> Self {
        TlsConfig {
            roots: self.roots.clone(),
            identity: self.identity.as_ref().map(|i| Identity {
                chain: i.chain.clone(),
                key: i.key.clone_key(),
            }),
        }
    }
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("roots", &self.roots.len())
            .field("name", &self.name())
            .finish()
    }
}

impl TlsConfig {
    /// From PEM text: the CA certificate(s), this node's certificate chain
    /// (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(
        ca_pem: &[u8],
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Self, TransportError> {
        let roots = roots_from_pem(ca_pem)?;
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TransportError::config(format!("certificate PEM: {e}")))?;
        if chain.is_empty() {
            return Err(TransportError::config(
                "certificate PEM holds no certificate",
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| TransportError::config(format!("private key PEM: {e}")))?;
        Ok(TlsConfig {
            roots,
            identity: Some(Identity { chain, key }),
        })
    }

    /// From PEM files.
    pub fn from_files(ca: &Path, cert: &Path, key: &Path) -> Result<Self, TransportError> {
        Self::from_pem(&read(ca)?, &read(cert)?, &read(key)?)
    }

    /// From a directory laid out by `certs`: `ca.pem`, `NAME.pem`, `NAME.key`.
    pub fn from_dir(dir: &Path, name: &str) -> Result<Self, TransportError> {
        Self::from_files(
            &dir.join(CA_CERT_FILE),
            &dir.join(format!("{name}.pem")),
            &dir.join(format!("{name}.key")),
        )
    }

    /// Trusts the CA but presents no certificate. Servers of this crate
    /// refuse such clients; this exists for tooling and for testing exactly
    /// that refusal.
    pub fn trust_only(ca_pem: &[u8]) -> Result<Self, TransportError> {
        Ok(TlsConfig {
            roots: roots_from_pem(ca_pem)?,
            identity: None,
        })
    }

    /// The name in this node's own certificate (CN, else first DNS SAN).
    pub fn name(&self) -> Option<String> {
        self.identity
            .as_ref()
            .and_then(|i| i.chain.first())
            .and_then(|leaf| cert_name(leaf))
    }

    /// Endpoint settings that survive a restart. QUIC stateless resets are
    /// keyed by this node's private key, and so is the check that an
    /// unknown connection id is one of ours: a node killed and restarted on
    /// the same port answers packets of its old connections with a reset
    /// its peers accept, so they reconnect at once instead of waiting for
    /// the idle timeout. quinn's random defaults when there is no key.
    pub(crate) fn endpoint_config(&self) -> quinn::EndpointConfig {
        use ring::hmac;
        let Some(identity) = self.identity.as_ref() else {
            return quinn::EndpointConfig::default();
        };
        let master = hmac::Key::new(hmac::HMAC_SHA256, identity.key.secret_der());
        let reset = hmac::sign(&master, b"vdb/1 quic stateless reset");
        let cid = hmac::sign(&master, b"vdb/1 quic connection id");
        let mut cid_key = [0u8; 8];
        cid_key.copy_from_slice(&cid.as_ref()[..8]);
        let cid_key = u64::from_le_bytes(cid_key);

        let mut config =
            quinn::EndpointConfig::new(Arc::new(hmac::Key::new(hmac::HMAC_SHA256, reset.as_ref())));
        config.cid_generator(move || {
            Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
        });
        config
    }

    pub(crate) fn quinn_server(
        &self,
        cfg: &RpcConfig,
    ) -> Result<quinn::ServerConfig, TransportError> {
        let identity = self
            .identity
            .as_ref()
            .ok_or_else(|| TransportError::config("a server needs a certificate and key"))?;
        let provider = provider();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider.clone())
                .build()
                .map_err(|e| TransportError::config(format!("client verifier: {e}")))?;
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_config)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(identity.chain.clone(), identity.key.clone_key())
            .map_err(tls_config)?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let quic = QuicServerConfig::try_from(tls).map_err(TransportError::config)?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(quic));
        server.transport_config(cfg.quinn_transport(true)?);
        Ok(server)
    }

    pub(crate) fn quinn_client(
        &self,
        cfg: &RpcConfig,
    ) -> Result<quinn::ClientConfig, TransportError> {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_config)?
            .with_root_certificates(self.roots.clone());
        let mut tls = match &self.identity {
            Some(i) => builder
                .with_client_auth_cert(i.chain.clone(), i.key.clone_key())
                .map_err(tls_config)?,
            None => builder.with_no_client_auth(),
        };
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let quic = QuicClientConfig::try_from(tls).map_err(TransportError::config)?;
        let mut client = quinn::ClientConfig::new(Arc::new(quic));
        client.transport_config(cfg.quinn_transport(false)?);
        Ok(client)
    }
}

/// The identity a connection's peer proved during the handshake.
pub(crate) fn peer_identity(conn: &quinn::Connection) -> Option<PeerIdentity> {
    let certs = conn
        .peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()?;
    let name = cert_name(certs.first()?)?;
    Some(PeerIdentity {
        name,
        addr: conn.remote_address(),
    })
}

/// A certificate's subject CN, or its first DNS SAN when it has no CN.
pub fn cert_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    if let Some(cn) = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
    {
        return Some(cn.to_string());
    }
    let san = cert.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|n| match n {
        x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
        _ => None,
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots_from_pem(ca_pem: &[u8]) -> Result<Arc<RootCertStore>, TransportError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| TransportError::config(format!("CA PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| TransportError::config(format!("CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(TransportError::config("CA PEM holds no certificate"));
    }
    Ok(Arc::new(roots))
}

fn read(path: &Path) -> Result<Vec<u8>, TransportError> {
    std::fs::read(path).map_err(|e| TransportError::io(path, e))
}

fn tls_config(e: rustls::Error) -> TransportError {
    TransportError::config(format!("TLS: {e}"))
}
