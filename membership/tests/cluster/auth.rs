//! Authenticated gossip over real UDP: nodes with the cluster key
//! converge; a node with another key or none, a forged datagram and a
//! replayed one are dropped, counted, and change nothing.

use std::net::SocketAddr;
use std::time::Duration;

use membership::{DropReason, GossipAuth, GossipTransport};

use crate::helpers::*;

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Waits until `cond` holds, at most `CONVERGE`.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + CONVERGE;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_replayed_gossip_is_dropped_while_the_cluster_converges() {
    init_tracing();
    let auth = GossipAuth::from_ca_der(b"the cluster CA certificate", "test-cluster");
    let authed = GossipTransport::AuthenticatedUdp(auth.clone());
    let a = join(1, 1, any_port(), &[], storage_node(1), &authed).await;
    let seeds = [a.gossip_addr()];
    let b = join(2, 1, any_port(), &seeds, storage_node(2), &authed).await;
    let c = join(3, 1, any_port(), &seeds, storage_node(3), &authed).await;
    for node in [&a, &b, &c] {
        wait_live(node, &[1, 2, 3]).await;
    }
    assert_eq!(auth.dropped(DropReason::BadMac), 0);
    assert_eq!(auth.dropped(DropReason::Replay), 0);

    // Nodes keyed by another CA, and unauthenticated chitchat, seeded with
    // a: every datagram they send is dropped, and they never join.
    let foreign = GossipTransport::AuthenticatedUdp(GossipAuth::from_ca_der(
        b"another CA certificate",
        "test-cluster",
    ));
    let intruder = join(8, 1, any_port(), &seeds, storage_node(8), &foreign).await;
    let plain = join(
        9,
        1,
        any_port(),
        &seeds,
        storage_node(9),
        &GossipTransport::Udp,
    )
    .await;
    eventually("forged datagrams counted", || {
        auth.dropped(DropReason::BadMac) >= 3 && auth.dropped(DropReason::Malformed) >= 3
    })
    .await;
    assert_eq!(ids(&a.live_members()), [1, 2, 3]);
    assert_eq!(
        ids(&intruder.live_members()),
        [8],
        "the intruder learnt nothing"
    );
    assert_eq!(ids(&plain.live_members()), [9]);

    // Replay: a tap that b gossips to (as a seed) captures one of b's
    // genuine datagrams; sent to a twice, the second copy at least is
    // refused as a replay (the first too if b's window moved 64 past it).
    let tap = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tapped = join(
        4,
        1,
        any_port(),
        &[tap.local_addr().unwrap()],
        storage_node(4),
        &authed,
    )
    .await;
    let mut buf = vec![0u8; 65_536];
    let (len, _) = tokio::time::timeout(CONVERGE, tap.recv_from(&mut buf))
        .await
        .expect("the tap heard from node 4")
        .unwrap();
    let replays_before = auth.dropped(DropReason::Replay);
    for _ in 0..2 {
        tap.send_to(&buf[..len], a.gossip_addr()).await.unwrap();
    }
    eventually("replay counted", || {
        auth.dropped(DropReason::Replay) > replays_before
    })
    .await;

    // The same datagram with one byte changed is a forgery.
    let forged_before = auth.dropped(DropReason::BadMac);
    buf[len / 2] ^= 0x55;
    tap.send_to(&buf[..len], a.gossip_addr()).await.unwrap();
    eventually("tampered datagram counted", || {
        auth.dropped(DropReason::BadMac) > forged_before
    })
    .await;

    // Through all this the keyed cluster kept converging, and no node of
    // another key or none got in. (Node 4 holds the key; a may learn of it
    // from the replayed datagram's first, genuine copy.)
    for node in [&a, &b, &c] {
        let seen = node
            .wait_for(CONVERGE, |members| {
                let ids = ids(members);
                [1, 2, 3].iter().all(|id| ids.contains(id))
            })
            .await
            .expect("1, 2, 3 live");
        assert!(
            !ids(&seen).contains(&8) && !ids(&seen).contains(&9),
            "{seen:?}"
        );
    }
    for node in [&a, &b, &c, &intruder, &plain, &tapped] {
        node.shutdown().await;
    }
}
