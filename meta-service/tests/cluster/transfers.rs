use std::time::Duration;

use protocol::cluster::{
    ClusterCommand, CommandError, MigrationPhase, NodeInfo, RebalanceSettings, TransferKind,
    TransferOutcome, Verification,
};
use protocol::{NodeId, SeqNo};

use crate::util::{Cluster, SERIAL};
use crate::{collection_config, register_nodes};

/// A real member: creation spreads shards one per node, `POST
/// /v1/rebalance` starts transfers onto a joined node within the
/// concurrency cap, a switch is refused before verification, completed and
/// failed transfers are counted, and a bad setting is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_route_starts_transfers_and_the_map_counts_them() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(1, &["--node-dead-after-ms", "3600000"]);
    cluster
        .wait_leader(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("member did not lead\n{}", cluster.log_tails()));
    let client = cluster.client();
    let off = ClusterCommand::UpdateConfig {
        key: RebalanceSettings::KEY_ENABLED.into(),
        value: "false".into(),
    };
    client
        .submit(&off)
        .await
        .expect("automatic rebalancing off");
    // No storage node reports any data here: every shard weighs the same
    // and tiny, below the default floor of an imbalance worth a copy.
    let no_floor = ClusterCommand::UpdateConfig {
        key: RebalanceSettings::KEY_MIN_IMBALANCE_BYTES.into(),
        value: "0".into(),
    };
    client.submit(&no_floor).await.expect("no floor");
    let bad = ClusterCommand::UpdateConfig {
        key: RebalanceSettings::KEY_THROTTLE.into(),
        value: "fast".into(),
    };
    let err = client.submit(&bad).await.expect_err("bad setting");
    assert!(
        matches!(err.refusal(), Some(CommandError::Invalid { .. })),
        "{err}"
    );

    register_nodes(&client, 3).await;
    client
        .create_collection("docs", collection_config(6, 2))
        .await
        .expect("create");
    let map = client
        .cluster_map(meta_client::MetaReadConsistency::Linearizable)
        .await
        .expect("map")
        .map;
    for n in 1..=3 {
        assert_eq!(map.shards_on(NodeId(n)).len(), 4, "{:?}", map.collections);
    }

    let ack = client.rebalance().await.expect("rebalance");
    assert!(ack.plan.moves.is_empty(), "balanced: {ack:?}");
    let node = NodeInfo::new(NodeId(4), "127.0.0.1:20004");
    client.register_node(&node).await.expect("register node 4");
    let ack = client.rebalance().await.expect("rebalance");
    assert_eq!(ack.plan.moves.len(), 2, "capped at 2: {ack:?}");
    assert!(ack
        .plan
        .moves
        .iter()
        .all(|m| m.to == NodeId(4) && m.kind == TransferKind::Move));
    let again = client.rebalance().await.expect("rebalance");
    assert!(again.plan.moves.is_empty(), "both slots taken: {again:?}");

    let (first, second) = (&ack.plan.moves[0], &ack.plan.moves[1]);
    let verified = Verification {
        seq: SeqNo(10),
        points: 10,
        checksum: 99,
    };
    let complete = ClusterCommand::CompleteMigration {
        collection: first.collection.clone(),
        shard: first.shard,
        to: first.to,
        verified,
        at_ms: 5,
    };
    let err = client
        .submit(&complete)
        .await
        .expect_err("not verified yet");
    assert!(
        matches!(err.refusal(), Some(CommandError::TransferNotReady { .. })),
        "{err}"
    );
    let report = ClusterCommand::UpdateMigration {
        collection: first.collection.clone(),
        shard: first.shard,
        to: first.to,
        phase: MigrationPhase::Verify,
        points_copied: 10,
        points_total: 10,
        bytes_copied: 320,
        bytes_total: 320,
        at_ms: 4,
    };
    client.submit(&report).await.expect("progress");
    client.submit(&complete).await.expect("switch");
    let abort = ClusterCommand::AbortMigration {
        collection: second.collection.clone(),
        shard: second.shard,
        reason: "operator".into(),
        at_ms: 6,
    };
    client.submit(&abort).await.expect("abort");

    let map = client
        .cluster_map(meta_client::MetaReadConsistency::Linearizable)
        .await
        .expect("map")
        .map;
    assert_eq!((map.transfers.completed, map.transfers.failed), (1, 1));
    assert_eq!(
        map.transfers.recent[1].outcome,
        TransferOutcome::Failed {
            reason: "operator".into()
        }
    );
    let moved = map.shard(&first.collection, first.shard).expect("shard");
    assert!(moved.holds(NodeId(4)) && !moved.holds(first.from));
    assert_eq!(moved.replicas.len(), 2);
    assert!(map.shards_on(NodeId(4)).len() == 1);

    let zero = ClusterCommand::SetReplicationFactor {
        collection: "docs".into(),
        replication_factor: 0,
    };
    let err = client.submit(&zero).await.expect_err("rf 0");
    assert!(
        matches!(err.refusal(), Some(CommandError::Invalid { .. })),
        "{err}"
    );

    let addr = cluster.members[0].addr.clone();
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body");
    assert!(text.contains("meta_transfers_completed"), "{text}");
}
