//! Shutdown drains in-flight requests; a restarted server is reconnected to.

use std::time::Duration;

use crate::support::*;
use transport::RpcConfig;

#[tokio::test]
async fn client_reconnects_to_a_server_restarted_on_the_same_port() {
    let pki = Pki::new();
    let server_tls = pki.tls(SERVER);
    let server = start(&server_tls, RpcConfig::default());
    let addr = server.addr;
    let client = client(&pki.tls(CLIENT));
    assert!(echo(&client, addr, "first life").await.is_ok());
    server.shutdown().await;

    // The port is free once `run` returned; allow a few tries for the OS.
    let mut restarted = None;
    for _ in 0..50 {
        match start_on(addr, &server_tls, RpcConfig::default()) {
            Ok(s) => {
                restarted = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let server = restarted.expect("could not rebind the port within 5 s");
    let resp = echo(&client, addr, "second life").await.unwrap();
    assert!(matches!(resp, Resp::Echo { text, .. } if text == "second life"));
    assert_eq!(server.calls(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_answers_in_flight_requests_first() {
    let pki = Pki::new();
    let mut server = start(&pki.tls(SERVER), RpcConfig::default());
    let config = RpcConfig {
        connect_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let client = transport::RpcClient::new(&pki.tls(CLIENT), config).unwrap();
    assert!(echo(&client, server.addr, "warm up").await.is_ok());

    let addr = server.addr;
    let slow = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .call::<Req, Resp>(addr, SERVER, &Req::Sleep { millis: 500 }, TIMEOUT)
                .await
        }
    });
    // Let the request reach the handler, then stop the server.
    for _ in 0..100 {
        if server.calls() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.calls(), 2);
    let _ = server.stop_signal().send(());
    assert_eq!(slow.await.unwrap().unwrap(), Resp::Slept);
    server.join().await.unwrap();

    // After shutdown nothing answers.
    let err = echo(&client, addr, "anyone?").await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

/// A server that dies without closing its connections (SIGKILL, power
/// loss) and comes back on the same port: its stateless resets carry a key
/// derived from its certificate key, so the client's stale connection
/// fails at once instead of at the request timeout, and the next call
/// reconnects.
#[tokio::test]
async fn client_recovers_from_a_server_killed_without_closing() {
    let pki = Pki::new();
    let server_tls = pki.tls(SERVER);
    let client = client(&pki.tls(CLIENT));

    // The first life runs on its own runtime; shutting that runtime down
    // drops every task and the socket without a CONNECTION_CLOSE.
    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let first = {
        let _in_doomed = doomed.enter();
        start(&server_tls, RpcConfig::default())
    };
    let addr = first.addr;
    assert!(echo(&client, addr, "first life").await.is_ok());
    doomed.shutdown_background();
    drop(first);

    let mut restarted = None;
    for _ in 0..50 {
        match start_on(addr, &server_tls, RpcConfig::default()) {
            Ok(s) => {
                restarted = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let server = restarted.expect("could not rebind the port within 5 s");

    let started = std::time::Instant::now();
    let stale = echo(&client, addr, "on the stale connection").await;
    let elapsed = started.elapsed();
    match &stale {
        Ok(_) => {}
        Err(e) => assert!(e.is_transient(), "{e:?}"),
    }
    assert!(
        elapsed < Duration::from_secs(2),
        "stale connection noticed after {elapsed:?}"
    );
    let resp = echo(&client, addr, "second life").await.unwrap();
    assert!(matches!(resp, Resp::Echo { text, .. } if text == "second life"));
    server.shutdown().await;
}
