//! [`MetaTls`]: the cluster CA and the certificate a process presents to
//! the meta-service (mutual TLS over HTTPS), loaded from a certificate
//! directory laid out by the `certs` tool (`ca.pem`, `NAME.pem`,
//! `NAME.key`). The meta-service builds its server side from the same type,
//! so both ends read certificates alike.
//!
//! The client checks the member's certificate against the CA and the name
//! it dialled (a DNS or IP SAN: `certs issue --name meta-1 --dns meta1`);
//! the member reads the client's role from its certificate's name
//! (`protocol::roles`). rustls with the ring provider, as `transport`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The CA file in a certificate directory.
pub const CA_FILE: &str = "ca.pem";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {reason}")]
    Pem { what: String, reason: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Trust anchors and (usually) the certificate this process presents.
pub struct MetaTls {
    roots: Arc<RootCertStore>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

impl Clone for MetaTls {
    fn clone(&self) -> Self {
        MetaTls {
            roots: self.roots.clone(),
            identity: self
                .identity
                .as_ref()
                .map(|(chain, key)| (chain.clone(), key.clone_key())),
        }
    }
}

impl std::fmt::Debug for MetaTls {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaTls")
            .field("roots", &self.roots.len())
            .field("has_identity", &self.identity.is_some())
            .finish()
    }
}

impl MetaTls {
    /// From a certificate directory: `ca.pem`, `NAME.pem`, `NAME.key`.
    pub fn from_dir(dir: &Path, name: &str) -> Result<Self, TlsError> {
        let read = |file: String| {
            let path = dir.join(file);
            std::fs::read(&path).map_err(|source| TlsError::Read { path, source })
        };
        Self::from_pem(
            &read(CA_FILE.to_string())?,
            &read(format!("{name}.pem"))?,
            &read(format!("{name}.key"))?,
        )
    }

    /// From PEM text: CA certificate(s), this process's chain (leaf first)
    /// and its private key.
    pub fn from_pem(ca_pem: &[u8], cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem("certificate", e))?;
        if chain.is_empty() {
            return Err(pem("certificate", "no certificate in the PEM"));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| pem("private key", e))?;
        Ok(MetaTls {
            roots: roots(ca_pem)?,
            identity: Some((chain, key)),
        })
    }

    /// Trusts the CA and presents no certificate: what a client without a
    /// role looks like (tests of the refusal; `/health` probes).
    pub fn trust_only(ca_pem: &[u8]) -> Result<Self, TlsError> {
        Ok(MetaTls {
            roots: roots(ca_pem)?,
            identity: None,
        })
    }

    pub fn roots(&self) -> Arc<RootCertStore> {
        self.roots.clone()
    }

    /// The certificate chain and key this process presents, if any.
    pub fn identity(&self) -> Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        self.identity
            .as_ref()
            .map(|(chain, key)| (chain.clone(), key.clone_key()))
    }

    /// The rustls client side: verify the server against the CA, present
    /// our certificate.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, TlsError> {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.roots.clone());
        Ok(match self.identity() {
            Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
            None => builder.with_no_client_auth(),
        })
    }
}

/// The ring provider (the workspace's only one; see transport's `tls`).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca_pem: &[u8]) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.map_err(|e| pem("CA certificate", e))?)?;
    }
    if roots.is_empty() {
        return Err(pem("CA certificate", "no certificate in the PEM"));
    }
    Ok(Arc::new(roots))
}

fn pem(what: &str, reason: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        what: what.to_string(),
        reason: reason.to_string(),
    }
}
