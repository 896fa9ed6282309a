//! Keeping in step with the meta-service: register, heartbeat (renewing
//! the write lease), follow the cluster map; and publishing the version
//! vector through gossip.

use std::sync::Arc;
use std::time::{Duration, Instant};

use meta_client::{MetaClient, MetaReadConsistency};
use protocol::cluster::{CommandError, Heartbeat, NodeInfo, ReplicaReport};
use protocol::rpc::ShardRef;
use protocol::Epoch;
use tokio::sync::{watch, Notify};

use super::peers::QuicPeers;
use crate::node::{Node, PeerLag};

/// Registers this node, retrying while the failure is transient (no
/// meta member reachable yet, an election) until the node is told to stop;
/// a permanent one (a refusal, no member configured) fails start-up.
pub async fn register(
    meta: &MetaClient,
    info: &NodeInfo,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut delay = Duration::from_millis(200);
    loop {
        match meta.register_node(info).await {
            Ok(epoch) => {
                tracing::info!(%epoch, "registered with the meta-service");
                return Ok(());
            }
            Err(e) if *stop.borrow() => anyhow::bail!("stopped before registering: {e}"),
            Err(e) if !e.is_transient() => {
                anyhow::bail!("the meta-service refused the registration: {e}")
            }
            Err(e) => {
                tracing::warn!(error = %e, "meta-service registration failed; retrying");
                lifecycle::sleep_or_stop(&mut stop, delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// How long a heartbeat waits for its answer: a later one is worth
/// nothing for the lease.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(1);

/// Sends a heartbeat every `every`, each on its own task, without waiting
/// for the previous answer: one slow answer (a busy leader, a lost packet
/// and its timeout) no longer delays the next beat, so the meta-service
/// hears from a live node every `every` however long each answer takes,
/// and the lease is renewed from the latest acknowledged beat.
pub async fn heartbeat_loop(
    node: Arc<Node>,
    meta: MetaClient,
    info: NodeInfo,
    every: Duration,
    map_stale: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let meta = meta
        .with_timeout(HEARTBEAT_TIMEOUT)
        .with_retry_for(Duration::ZERO);
    // Beats in flight at most: a beat due while this many are unanswered
    // is skipped. As many as fit in one timeout, so a slow answer never
    // costs a beat: a skipped beat is a gap the meta-service sees, and
    // gaps lengthen this node's dead-node grace. (The meta-service shares
    // one quorum round among the beats waiting, so many cost little.)
    let limit = (HEARTBEAT_TIMEOUT.as_millis() / every.as_millis().max(1)).max(2) as usize;
    let in_flight = Arc::new(tokio::sync::Semaphore::new(limit));
    let registering = Arc::new(tokio::sync::Mutex::new(()));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !*stop.borrow() {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        if node.is_removed() {
            // Removed by an operator: beats would only re-register it.
            continue;
        }
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            metrics::counter!("storage_heartbeats_skipped_total").increment(1);
            continue;
        };
        let hb = heartbeat(&node);
        let (node2, meta2, info2, map_stale2, registering2) = (
            node.clone(),
            meta.clone(),
            info.clone(),
            map_stale.clone(),
            registering.clone(),
        );
        tokio::spawn(async move {
            let _permit = permit;
            beat(&node2, &meta2, &info2, &map_stale2, &registering2, hb).await;
        });
        let poisoned = node.poisoned().len();
        metrics::gauge!("storage_poisoned_replicas").set(poisoned as f64);
        if poisoned > 0 {
            node.reopen_poisoned().await;
        }
    }
}

fn heartbeat(node: &Node) -> Heartbeat {
    Heartbeat {
        node: node.id(),
        epoch: node.map().epoch,
        replicas: node
            .replicas()
            .iter()
            .map(|r| {
                let s = r.shard();
                let (points, bytes) = s.load();
                ReplicaReport {
                    collection: r.shard_ref.collection.clone(),
                    shard: r.shard_ref.shard,
                    applied: s.applied_seq(),
                    term: s.last_term(),
                    points,
                    bytes,
                    poisoned: s.is_poisoned(),
                    lag_ms: r.replication_lags().map(|lags| {
                        record_lags(&r.shard_ref, &lags);
                        lags.iter()
                            .map(|l| l.time.as_millis() as u64)
                            .max()
                            .unwrap_or(0)
                    }),
                }
            })
            .collect(),
        reads_last_minute: node.reads_last_minute(),
    }
}

/// Each heartbeat refreshes the primary's lag gauges, so a peer that
/// stopped answering shows a growing lag rather than its last ack's.
fn record_lags(shard: &ShardRef, lags: &[PeerLag]) {
    for l in lags {
        let labels = [
            ("collection", shard.collection.clone()),
            ("shard", shard.shard.to_string()),
            ("peer", l.peer.to_string()),
        ];
        metrics::gauge!("storage_replication_lag_seconds", &labels).set(l.time.as_secs_f64());
        metrics::gauge!("storage_replication_lag_ops", &labels).set(l.ops as f64);
    }
}

/// Sends one heartbeat and acts on the answer.
async fn beat(
    node: &Node,
    meta: &MetaClient,
    info: &NodeInfo,
    map_stale: &Notify,
    registering: &tokio::sync::Mutex<()>,
    hb: Heartbeat,
) {
    let sent = Instant::now();
    match meta.heartbeat(&hb).await {
        Ok(ack) => {
            node.lease()
                .renew_for(sent, Duration::from_millis(ack.lease_ms));
            if ack.epoch > node.map().epoch {
                // The watch may hang on a member that was cut off; the
                // leader that took this heartbeat knows a newer map.
                map_stale.notify_one();
            }
            metrics::gauge!("storage_lease_remaining_seconds")
                .set(node.lease().remaining().as_secs_f64());
        }
        Err(e) if matches!(e.refusal(), Some(CommandError::NodeNotFound { .. })) => {
            // The map was rebuilt without us (e.g. a fresh meta-service).
            // One registration at a time, not one per beat in flight.
            let Ok(_one) = registering.try_lock() else {
                return;
            };
            tracing::warn!("meta-service does not know this node; registering again");
            match meta.register_node(info).await {
                Ok(_) => {}
                Err(e) if matches!(e.refusal(), Some(CommandError::NodeRemoved { .. })) => {
                    tracing::error!(error = %e, "an operator removed this node: it stops heartbeating and holds no shard; stop it");
                    node.mark_removed();
                }
                Err(e) => tracing::warn!(error = %e, "re-registration failed"),
            }
        }
        Err(e) => {
            metrics::counter!("storage_heartbeat_failures_total").increment(1);
            tracing::debug!(error = %e, lease_left_ms = node.lease().remaining().as_millis() as u64, "heartbeat failed");
        }
    }
}

/// Follows the cluster map by long-polling the meta-service; fetches it at
/// once (through the leader) when a heartbeat ack shows a newer epoch.
pub async fn map_loop(
    node: Arc<Node>,
    meta: MetaClient,
    peers: Arc<QuicPeers>,
    map_stale: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    // Short per-request timeouts: a member cut off from the others holds a
    // long poll silently; the client then moves on to the next member.
    let meta = meta.with_timeout(Duration::from_secs(2));
    let mut epoch = Epoch(0);
    while !*stop.borrow() {
        let fetched = tokio::select! {
            r = meta.watch(epoch, Duration::from_secs(10)) => r,
            _ = map_stale.notified() => {
                metrics::counter!("storage_map_refetches_total").increment(1);
                meta.cluster_map(MetaReadConsistency::Linearizable).await.map(Some)
            }
            _ = stop.changed() => return,
        };
        match fetched {
            Ok(Some(view)) if view.map.epoch > epoch => {
                epoch = view.map.epoch;
                peers.update(&view.map).await;
                node.apply_map(view.map).await;
                metrics::gauge!("storage_map_epoch").set(epoch.0 as f64);
            }
            Ok(_) => {}
            Err(e) if e.is_transient() => {
                tracing::debug!(error = %e, "map watch failed; retrying");
                lifecycle::sleep_or_stop(&mut stop, Duration::from_millis(200)).await;
            }
            // Nothing to gain from asking again soon; the node still needs
            // the map, so it keeps asking, slowly.
            Err(e) => {
                tracing::warn!(error = %e, "map watch failed permanently; retrying slowly");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// Publishes every replica's applied sequence number through gossip
/// (leaving gossip is the owner's job, after this task ended).
pub async fn publish_versions(
    node: Arc<Node>,
    membership: membership::Membership,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        for r in node.replicas() {
            let seq = r.shard().applied_seq();
            if let Err(e) = membership
                .set_replica_seq(&r.shard_ref.collection, r.shard_ref.shard, seq)
                .await
            {
                tracing::debug!(error = %e, "cannot publish replica version");
            }
        }
        lifecycle::sleep_or_stop(&mut stop, Duration::from_millis(500)).await;
    }
}
