//! A development cluster CA and node certificates (rcgen).
//!
//! One CA signs every node and gateway certificate; each certificate is
//! usable as both TLS server and client certificate (EKU serverAuth +
//! clientAuth), so a storage node presents the same pair when it accepts
//! and when it dials. Subject CN = the name; SANs = the name plus the given
//! DNS names and IP addresses. Keys are ECDSA P-256.
//!
//! Files in a certificate directory: `ca.pem`, `ca.key`, `NAME.pem`, `NAME.key`.
//! This is for development and tests; production clusters bring their own CA.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::TransportError;

/// Common name of the CA made by [`generate_ca`] when none is given.
pub const DEFAULT_CA_NAME: &str = "vdb dev cluster CA";
pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca.key";

const DAY: u64 = 24 * 60 * 60;
/// Validity of the CA and of issued certificates (from one day back, to
/// tolerate clock skew between machines).
const CA_VALIDITY_DAYS: u64 = 10 * 365;
const CERT_VALIDITY_DAYS: u64 = 2 * 365;

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct CertifiedKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for CertifiedKey {
    // Never print the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertifiedKey")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// Paths of a certificate and key written by [`issue_to_dir`].
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Makes a self-signed CA certificate and key.
pub fn generate_ca(common_name: &str) -> Result<CertifiedKey, TransportError> {
    let key = KeyPair::generate().map_err(rc)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, CA_VALIDITY_DAYS)?;
    let cert = params.self_signed(&key).map_err(rc)?;
    Ok(CertifiedKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Issues a certificate for `name` signed by `ca`. `name` becomes the CN and
/// a SAN (an IP SAN when it parses as an address, else a DNS SAN), followed
/// by `dns` and `ips`.
pub fn issue(
    ca: &CertifiedKey,
    name: &str,
    dns: &[String],
    ips: &[IpAddr],
) -> Result<CertifiedKey, TransportError> {
    validate_name(name)?;
    let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(rc)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key).map_err(rc)?;

    let mut sans: Vec<SanType> = Vec::new();
    let mut push = |san: SanType| {
        if !sans.contains(&san) {
            sans.push(san);
        }
    };
    match name.parse::<IpAddr>() {
        Ok(ip) => push(SanType::IpAddress(ip)),
        Err(_) => push(SanType::DnsName(name.try_into().map_err(rc)?)),
    }
    for d in dns {
        push(SanType::DnsName(d.as_str().try_into().map_err(rc)?));
    }
    for ip in ips {
        push(SanType::IpAddress(*ip));
    }

    let key = KeyPair::generate().map_err(rc)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, CERT_VALIDITY_DAYS)?;
    let cert = params.signed_by(&key, &issuer).map_err(rc)?;
    Ok(CertifiedKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// `certs init`: writes `ca.pem` and `ca.key` into `dir` (created if
/// missing). Refuses to overwrite an existing CA unless `force`, because
/// every certificate it signed would stop verifying.
pub fn init_dir(dir: &Path, common_name: &str, force: bool) -> Result<CertFiles, TransportError> {
    fs::create_dir_all(dir).map_err(|e| TransportError::io(dir, e))?;
    let files = CertFiles {
        cert: dir.join(CA_CERT_FILE),
        key: dir.join(CA_KEY_FILE),
    };
    if !force && (files.cert.exists() || files.key.exists()) {
        return Err(TransportError::config(format!(
            "{} already holds a CA; pass --force to replace it",
            dir.display()
        )));
    }
    let ca = generate_ca(common_name)?;
    write_pair(&files, &ca)?;
    Ok(files)
}

/// Reads the CA written by [`init_dir`].
pub fn load_ca(dir: &Path) -> Result<CertifiedKey, TransportError> {
    let read = |p: PathBuf| fs::read_to_string(&p).map_err(|e| TransportError::io(p, e));
    Ok(CertifiedKey {
        cert_pem: read(dir.join(CA_CERT_FILE))?,
        key_pem: read(dir.join(CA_KEY_FILE))?,
    })
}

/// `certs issue`: writes `NAME.pem` and `NAME.key` into `dir`, signed by
/// the CA in the same directory.
pub fn issue_to_dir(
    dir: &Path,
    name: &str,
    dns: &[String],
    ips: &[IpAddr],
) -> Result<CertFiles, TransportError> {
    let ca = load_ca(dir)?;
    let pair = issue(&ca, name, dns, ips)?;
    let files = CertFiles {
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    };
    write_pair(&files, &pair)?;
    Ok(files)
}

/// Names become file names and SANs: ASCII letters, digits, `-`, `.` and
/// `_`, starting with a letter or digit, at most 253 bytes.
fn validate_name(name: &str) -> Result<(), TransportError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if ok {
        Ok(())
    } else {
        Err(TransportError::config(format!(
            "invalid certificate name {name:?}: use letters, digits, '-', '.', '_'"
        )))
    }
}

fn write_pair(files: &CertFiles, pair: &CertifiedKey) -> Result<(), TransportError> {
    fs::write(&files.cert, &pair.cert_pem).map_err(|e| TransportError::io(&files.cert, e))?;
    write_private(&files.key, &pair.key_pem)
}

/// Private keys are written owner-only (0600) on Unix.
fn write_private(path: &Path, contents: &str) -> Result<(), TransportError> {
    use std::io::Write;
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| TransportError::io(path, e))?;
    f.write_all(contents.as_bytes())
        .map_err(|e| TransportError::io(path, e))
}

fn set_validity(params: &mut CertificateParams, days: u64) -> Result<(), TransportError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    params.not_before = asn1_time(now.saturating_sub(DAY))?.to_datetime();
    params.not_after = asn1_time(now + days * DAY)?.to_datetime();
    Ok(())
}

// rcgen wants `time::OffsetDateTime`; x509-parser's `ASN1Time` converts a
// Unix timestamp into one, which spares a direct dependency on `time`.
fn asn1_time(unix_secs: u64) -> Result<x509_parser::time::ASN1Time, TransportError> {
    let secs = i64::try_from(unix_secs).map_err(TransportError::config)?;
    x509_parser::time::ASN1Time::from_timestamp(secs).map_err(TransportError::config)
}

fn rc(e: rcgen::Error) -> TransportError {
    TransportError::config(format!("certificate generation: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    use x509_parser::extensions::GeneralName;

    #[test]
    fn issued_certificate_names_and_usages() {
        let ca = generate_ca(DEFAULT_CA_NAME).unwrap();
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let pair = issue(&ca, "node-1", &["node-1.svc".into()], &[ip]).unwrap();
        let der = CertificateDer::from_pem_slice(pair.cert_pem.as_bytes()).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();

        assert_eq!(crate::tls::cert_name(&der).as_deref(), Some("node-1"));
        let ca_der = CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).unwrap();
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        assert_eq!(cert.issuer(), ca_cert.subject());
        assert!(ca_cert.is_ca() && !cert.is_ca());

        let san = cert.subject_alternative_name().unwrap().unwrap();
        let names: Vec<String> = san
            .value
            .general_names
            .iter()
            .map(|n| match n {
                GeneralName::DNSName(d) => d.to_string(),
                GeneralName::IPAddress(b) => format!("ip:{b:?}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(names, ["node-1", "node-1.svc", "ip:[10, 0, 0, 5]"]);

        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        assert!(cert.validity().is_valid());
    }

    #[test]
    fn names_that_would_escape_the_directory_are_refused() {
        let ca = generate_ca(DEFAULT_CA_NAME).unwrap();
        for bad in ["", "../x", "a/b", "-lead", "sp ace"] {
            assert!(issue(&ca, bad, &[], &[]).is_err(), "{bad:?}");
        }
        assert!(issue(&ca, "127.0.0.1", &[], &[]).is_ok());
    }

    #[test]
    fn init_refuses_to_overwrite_a_ca() {
        let dir = tempfile::tempdir().unwrap();
        init_dir(dir.path(), DEFAULT_CA_NAME, false).unwrap();
        let first = load_ca(dir.path()).unwrap();
        assert!(init_dir(dir.path(), DEFAULT_CA_NAME, false).is_err());
        init_dir(dir.path(), DEFAULT_CA_NAME, true).unwrap();
        assert_ne!(load_ca(dir.path()).unwrap().cert_pem, first.cert_pem);
        issue_to_dir(dir.path(), "gw", &[], &[]).unwrap();
        assert!(dir.path().join("gw.pem").exists() && dir.path().join("gw.key").exists());
    }
}
