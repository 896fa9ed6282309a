//! Bad frames and slow handlers: typed errors, and the server stays up.

use std::time::{Duration, Instant};

use crate::support::*;
use transport::{Refusal, RpcClient, RpcConfig, TransportError};

#[tokio::test]
async fn oversized_request_is_refused_and_the_server_keeps_serving() {
    let pki = Pki::new();
    let small = RpcConfig {
        max_frame: 1024,
        ..Default::default()
    };
    let server = start(&pki.tls(SERVER), small.clone());
    let client = client(&pki.tls(CLIENT)); // default 64 MiB limit: it sends

    for _ in 0..3 {
        let err = client
            .call::<Req, Resp>(
                server.addr,
                SERVER,
                &Req::Blob("b".repeat(100_000)),
                TIMEOUT,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                TransportError::Refused {
                    reason: Refusal::FrameTooLarge
                }
            ),
            "{err:?}"
        );
        assert!(!err.is_transient());
        let resp = echo(&client, server.addr, "still there").await.unwrap();
        assert!(matches!(resp, Resp::Echo { .. }));
    }
    assert_eq!(server.calls(), 3, "only the echoes reached the handler");

    // A client with the small limit refuses before sending anything.
    let strict = RpcClient::new(&pki.tls("gateway-2"), small).unwrap();
    let err = strict
        .call::<Req, Resp>(
            server.addr,
            SERVER,
            &Req::Blob("b".repeat(100_000)),
            TIMEOUT,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::FrameTooLarge { max: 1024, .. }),
        "{err:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_response_is_a_typed_error_on_the_client() {
    let pki = Pki::new();
    let server = start(&pki.tls(SERVER), RpcConfig::default());
    let small = RpcConfig {
        max_frame: 64,
        ..Default::default()
    };
    let client = RpcClient::new(&pki.tls(CLIENT), small).unwrap();
    let err = client
        .call::<Req, Resp>(server.addr, SERVER, &Req::Echo("x".repeat(500)), TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::FrameTooLarge { max: 64, .. }),
        "{err:?}"
    );
    assert!(echo(&client, server.addr, "short").await.is_ok());
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_request_is_refused_and_the_server_keeps_serving() {
    let pki = Pki::new();
    let server = start(&pki.tls(SERVER), RpcConfig::default());
    let client = client(&pki.tls(CLIENT));

    // Valid msgpack, but not a `Req`.
    let err = client
        .call::<_, Resp>(server.addr, SERVER, &vec!["not", "a", "request"], TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::Refused {
                reason: Refusal::Malformed
            }
        ),
        "{err:?}"
    );
    assert!(echo(&client, server.addr, "fine").await.is_ok());
    assert_eq!(server.calls(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn request_timeout_fires_on_a_slow_handler() {
    let pki = Pki::new();
    // Shutdown waits for the sleeping handler at most this long.
    let config = RpcConfig {
        drain_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let server = start(&pki.tls(SERVER), config);
    let client = client(&pki.tls(CLIENT));
    assert!(echo(&client, server.addr, "warm up").await.is_ok());

    let started = Instant::now();
    let err = client
        .call::<Req, Resp>(
            server.addr,
            SERVER,
            &Req::Sleep { millis: 10_000 },
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, TransportError::Timeout { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(
        elapsed < Duration::from_secs(2),
        "timed out after {elapsed:?}"
    );

    // The next call is answered (on a fresh connection: a timeout drops the cached one).
    assert!(echo(&client, server.addr, "after").await.is_ok());
    let stopping = Instant::now();
    server.shutdown().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "drain not bounded"
    );
}

#[tokio::test]
async fn connect_to_a_dead_address_fails_fast_and_transient() {
    let pki = Pki::new();
    let config = RpcConfig {
        connect_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let client = RpcClient::new(&pki.tls(CLIENT), config).unwrap();
    // A port that nothing listens on: bind one, note it, release it.
    let addr = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let started = Instant::now();
    let err = echo(&client, addr, "anyone?").await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(
        matches!(
            err,
            TransportError::Connect { .. } | TransportError::Timeout { .. }
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn an_invalid_server_name_is_a_permanent_error() {
    let pki = Pki::new();
    let client = client(&pki.tls(CLIENT));
    let addr = "127.0.0.1:9".parse().unwrap();
    let err = client
        .call::<Req, Resp>(addr, "not a host name!", &Req::Echo("x".into()), TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Config { .. }), "{err:?}");
    assert!(!err.is_transient());
}
