//! Happy paths: unary, concurrent, streamed.

use futures::future::join_all;
use futures::StreamExt;

use crate::support::*;
use transport::RpcConfig;

#[tokio::test]
async fn round_trip_carries_the_peer_identity() {
    let pki = Pki::new();
    let server = start(&pki.tls(SERVER), RpcConfig::default());
    let client = client(&pki.tls(CLIENT));

    let resp = echo(&client, server.addr, "hello").await.unwrap();
    assert_eq!(
        resp,
        Resp::Echo {
            text: "hello".into(),
            peer: CLIENT.into()
        }
    );
    // A clone shares the cached connection.
    let again = echo(&client.clone(), server.addr, "again").await.unwrap();
    assert!(matches!(again, Resp::Echo { text, .. } if text == "again"));
    assert_eq!(server.calls(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn many_concurrent_requests_on_one_connection() {
    let pki = Pki::new();
    // Fewer stream credits than requests: the rest queue in open_bi.
    let config = RpcConfig {
        max_concurrent_streams: 16,
        ..Default::default()
    };
    let server = start(&pki.tls(SERVER), config);
    let client = client(&pki.tls(CLIENT));

    let calls = (0..200).map(|i| {
        let client = client.clone();
        let addr = server.addr;
        async move {
            let req = if i % 2 == 0 {
                Req::Echo(format!("m{i}"))
            } else {
                Req::Sleep { millis: 5 }
            };
            (
                i,
                client.call::<Req, Resp>(addr, SERVER, &req, TIMEOUT).await,
            )
        }
    });
    for (i, result) in join_all(calls).await {
        let resp = result.unwrap();
        if i % 2 == 0 {
            assert_eq!(
                resp,
                Resp::Echo {
                    text: format!("m{i}"),
                    peer: CLIENT.into()
                }
            );
        } else {
            assert_eq!(resp, Resp::Slept);
        }
    }
    assert_eq!(server.calls(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn streamed_response_arrives_in_order_then_ends() {
    let pki = Pki::new();
    let server = start(&pki.tls(SERVER), RpcConfig::default());
    let client = client(&pki.tls(CLIENT));

    let stream = client
        .call_stream::<Req, Resp>(server.addr, SERVER, &Req::Chunks(500), TIMEOUT)
        .await
        .unwrap();
    let items = stream.collect_all().await.unwrap();
    assert_eq!(items, (0..500).map(Resp::Chunk).collect::<Vec<_>>());

    // Empty stream, through the futures::Stream adapter.
    let stream = client
        .call_stream::<Req, Resp>(server.addr, SERVER, &Req::Chunks(0), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(stream.into_stream().count().await, 0);

    // Dropping a stream half way leaves the connection usable.
    let mut stream = client
        .call_stream::<Req, Resp>(server.addr, SERVER, &Req::Chunks(100_000), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap(), Resp::Chunk(0));
    drop(stream);
    assert!(echo(&client, server.addr, "after").await.is_ok());
    server.shutdown().await;
}

#[tokio::test]
async fn large_frame_within_the_limit() {
    let pki = Pki::new();
    let server = start(&pki.tls(SERVER), RpcConfig::default());
    let client = client(&pki.tls(CLIENT));
    // 8 MiB each way.
    let text = "v".repeat(8 * 1024 * 1024);
    let resp: Resp = client
        .call(server.addr, SERVER, &Req::Echo(text.clone()), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        resp,
        Resp::Echo {
            text,
            peer: CLIENT.into()
        }
    );
    server.shutdown().await;
}

#[tokio::test]
async fn service_fn_with_other_message_types() {
    let pki = Pki::new();
    let server = transport::RpcServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        &pki.tls(SERVER),
        RpcConfig::default(),
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    let service = transport::service_fn(
        |peer: transport::PeerIdentity, words: Vec<String>| async move {
            transport::Reply::One(format!("{} words from {}", words.len(), peer.name))
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(service, async move {
        let _ = stopped.await;
    }));

    let client = client(&pki.tls(CLIENT));
    let answer: String = client
        .call(
            addr,
            SERVER,
            &vec!["a".to_string(), "b".to_string()],
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(answer, format!("2 words from {CLIENT}"));

    let _ = stop.send(());
    tokio::time::timeout(std::time::Duration::from_secs(15), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
