//! The `certs` binary writes files the library loads.

use std::process::Command;

use rustls_pki_types::pem::PemObject;
use transport::{tls::cert_name, TlsConfig};

#[test]
fn init_then_issue_makes_a_loadable_identity() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_certs");
    let d = dir.path().to_str().unwrap();

    let init = Command::new(bin)
        .args(["init", "--dir", d])
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    assert!(dir.path().join("ca.pem").exists() && dir.path().join("ca.key").exists());

    // A second init would orphan every issued certificate: refused.
    let again = Command::new(bin)
        .args(["init", "--dir", d])
        .output()
        .unwrap();
    assert!(!again.status.success());

    let issue = Command::new(bin)
        .args([
            "issue",
            "--dir",
            d,
            "--name",
            "node-7",
            "--dns",
            "node-7.svc",
            "--ip",
            "10.1.2.3",
        ])
        .output()
        .unwrap();
    assert!(issue.status.success(), "{issue:?}");

    let tls = TlsConfig::from_dir(dir.path(), "node-7").unwrap();
    assert_eq!(tls.name().as_deref(), Some("node-7"));

    let pem = std::fs::read(dir.path().join("node-7.pem")).unwrap();
    let der = rustls_pki_types::CertificateDer::from_pem_slice(&pem).unwrap();
    assert_eq!(cert_name(&der).as_deref(), Some("node-7"));

    let bad = Command::new(bin)
        .args(["issue", "--dir", d, "--name", "../escape"])
        .output()
        .unwrap();
    assert!(!bad.status.success());

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("node-7.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "private key readable by others: {mode:o}");
    }
}
