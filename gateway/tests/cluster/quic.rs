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
    // One node's server stops: searches go to the other replicas.
    let _ = c.quic_stop[&2].send(true);
    for qi in 0..10u64 {
        let q = vector(90_000 + qi, DIM);
        let hits = c
            .ok(
                Method::POST,
                "/collections/q/points/search",
                Some(json!({"vector": q, "limit": 5})),
            )
            .await;
        assert_eq!(ids_of(&hits), brute_force(&all, &q, 5, |_| true));
    }
    c.shutdown().await;
}
