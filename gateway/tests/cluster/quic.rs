//! The gateway's QUIC + mTLS shard client against storage nodes served by
//! the `transport` RPC server.

use reqwest::Method;
use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gateway_over_quic() {
    let _serial = SERIAL.lock().await;
    let c = TestCluster::start(Options {
        quic: true,
        ..Options::default()
    })
    .await;
    let all = seed(&c, "q", 150).await;
    assert_eq!(
        c.ok(Method::POST, "/collections/q/points/count", Some(json!({})))
            .await["count"],
        150
    );
    for qi in 0..5u64 {
        let q = vector(80_000 + qi, DIM);
        let hits = c
            .ok(
                Method::POST,
                "/collections/q/points/search",
                Some(json!({"vector": q, "limit": 5})),
            )
            .await;
        assert_eq!(ids_of(&hits), brute_force(&all, &q, 5, |_| true));
    }
    // One node's QUIC server stops in the middle of concurrent search
    // streams: every search still answers, correctly.
    let c = std::sync::Arc::new(c);
    let all = std::sync::Arc::new(all);
    let mut workers = Vec::new();
    for w in 0..4u64 {
        let c = c.clone();
        let all = all.clone();
        workers.push(tokio::spawn(async move {
            for i in 0..25u64 {
                let q = vector(90_000 + w * 100 + i, DIM);
                let (s, v) = c
                    .post(
                        "/collections/q/points/search",
                        json!({"vector": q, "limit": 5}),
                    )
                    .await;
                assert_eq!(s, 200, "worker {w} search {i}: {v}");
                assert_eq!(ids_of(&v["result"]), brute_force(&all, &q, 5, |_| true));
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let _ = c.quic_stop[&2].send(true);
    for w in workers {
        w.await.expect("worker");
    }
    let c = std::sync::Arc::into_inner(c).expect("sole owner");
    c.shutdown().await;
}
