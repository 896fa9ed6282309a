//! Mutual TLS: only certificates from the cluster CA get through, both ways.

use std::time::Duration;

use crate::support::*;
use transport::{RpcClient, RpcConfig, TlsConfig, TransportError};

/// The refusal may surface as a TLS error (alert seen) or, when the client
/// already considered its handshake complete, as the connection closing
/// with the TLS alert code; both map to `Tls`. Never transient.
fn assert_refused(result: Result<Resp, TransportError>) {
    match result {
        Err(e @ TransportError::Tls { .. }) => assert!(!e.is_transient()),
        other => panic!("expected a TLS refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn client_with_a_certificate_from_another_ca_is_refused() {
    let cluster = Pki::new();
    let rogue = Pki::new();
    let server = start(&cluster.tls(SERVER), RpcConfig::default());
    // Trusts the cluster CA (so it would accept the server) but presents a
    // certificate the cluster never signed.
    let rogue_identity = rogue.tls(CLIENT);
    let rogue_pair = transport::certs::issue(&rogue.ca, CLIENT, &[], &[]).unwrap();
    let tls = TlsConfig::from_pem(
        &cluster.ca_pem(),
        rogue_pair.cert_pem.as_bytes(),
        rogue_pair.key_pem.as_bytes(),
    )
    .unwrap();
    drop(rogue_identity);
    let client = RpcClient::new(&tls, RpcConfig::default()).unwrap();

    assert_refused(echo(&client, server.addr, "let me in").await);
    // Retrying changes nothing; the handler never ran.
    assert_refused(echo(&client, server.addr, "again").await);
    assert_eq!(server.calls(), 0);

    // The server is unharmed.
    let good = client_for(&cluster, CLIENT);
    assert!(echo(&good, server.addr, "ok").await.is_ok());
    assert_eq!(server.calls(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn client_without_a_certificate_is_refused() {
    let cluster = Pki::new();
    let server = start(&cluster.tls(SERVER), RpcConfig::default());
    let tls = TlsConfig::trust_only(&cluster.ca_pem()).unwrap();
    let client = RpcClient::new(&tls, RpcConfig::default()).unwrap();

    assert_refused(echo(&client, server.addr, "anonymous").await);
    assert_eq!(server.calls(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn server_with_a_certificate_from_another_ca_is_refused_by_the_client() {
    let cluster = Pki::new();
    let rogue = Pki::new();
    let server = start(&rogue.tls(SERVER), RpcConfig::default());
    let client = client_for(&cluster, CLIENT);

    assert_refused(echo(&client, server.addr, "hello?").await);
    assert_eq!(server.calls(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn server_name_must_match_the_certificate() {
    let cluster = Pki::new();
    let server = start(&cluster.tls(SERVER), RpcConfig::default());
    let client = client_for(&cluster, CLIENT);

    let wrong: Result<Resp, _> = client
        .call(
            server.addr,
            "node-2",
            &Req::Echo("x".into()),
            Duration::from_secs(5),
        )
        .await;
    assert_refused(wrong);
    // SANs given at issue time work as names too.
    let by_dns: Resp = client
        .call(
            server.addr,
            "localhost",
            &Req::Echo("x".into()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert!(matches!(by_dns, Resp::Echo { .. }));
    server.shutdown().await;
}

fn client_for(pki: &Pki, name: &str) -> RpcClient {
    RpcClient::new(&pki.tls(name), RpcConfig::default()).unwrap()
}
