//! Anti-entropy from the gossiped version vectors.
//!
//! The primary streams operations to its replicas, but it only learns that
//! a replica fell behind when a send fails or the replica answers `Behind`.
//! A replica that restarted from an older disk, lost its data, or missed a
//! stream while the primary was idle would otherwise wait for the next
//! write. So every replica compares its applied sequence number with what
//! the shard's primary gossips; when it is behind and has not moved for a
//! while, it asks the primary to catch it up (`CatchUp`), and the primary
//! syncs it again at once (WAL delta, or a snapshot if the WAL no longer
//! reaches back).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::rpc::{ShardRef, StorageRequest, StorageResponse};
use protocol::SeqNo;
use tokio::sync::watch;

use super::peers::QuicPeers;
use crate::node::{Node, Peers};

/// How often replicas compare themselves with the gossiped vector.
const CHECK_EVERY: Duration = Duration::from_millis(1000);
/// How long a replica may stay behind without progress before it asks.
const STALL_AFTER: Duration = Duration::from_secs(2);

pub async fn run(
    node: Arc<Node>,
    membership: membership::Membership,
    peers: Arc<QuicPeers>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tracker = StallTracker::new(STALL_AFTER);
    while !lifecycle::sleep_or_stop(&mut stop, CHECK_EVERY).await {
        let map = node.map();
        let me = node.id();
        let mut held = Vec::new();
        for r in node.replicas() {
            let shard_ref = r.shard_ref.clone();
            held.push(shard_ref.clone());
            let mut versions = membership.shard_versions(&shard_ref.collection, shard_ref.shard);
            let own = r.shard().applied_seq();
            versions.observe(me, own);
            metrics::gauge!("storage_replica_behind_ops", "collection" => shard_ref.collection.clone(), "shard" => shard_ref.shard.to_string())
                .set(versions.lag(me).unwrap_or(0) as f64);
            let Some(primary) = map
                .shard(&shard_ref.collection, shard_ref.shard)
                .and_then(|s| s.primary)
                .filter(|p| *p != me && !r.is_leading())
            else {
                tracker.forget(&shard_ref);
                continue;
            };
            let Some(primary_seq) = versions.get(primary) else {
                continue;
            };
            if !tracker.should_ask(&shard_ref, own, primary_seq, Instant::now()) {
                continue;
            }
            tracing::info!(shard = ?shard_ref, %own, %primary_seq, %primary, "replica behind without progress; asking the primary to catch it up");
            let request = StorageRequest::CatchUp {
                shard: shard_ref.clone(),
                replica: me,
                applied: own,
            };
            match peers.call(primary, request).await {
                Ok(StorageResponse::CatchingUp { restarted, .. }) => {
                    tracing::debug!(shard = ?shard_ref, restarted, "catch-up requested");
                }
                Ok(other) => tracing::debug!(shard = ?shard_ref, ?other, "catch-up refused"),
                Err(e) => {
                    tracing::debug!(shard = ?shard_ref, error = %e, "catch-up request failed")
                }
            }
        }
        tracker.retain(&held);
    }
}

/// Decides when a replica that is behind its primary should ask for a
/// catch-up: only when it has made no progress for `stall_after` (a replica
/// receiving a stream is merely a gossip round behind), and then at most
/// once per `stall_after`.
struct StallTracker {
    stall_after: Duration,
    shards: HashMap<ShardRef, Progress>,
}

struct Progress {
    applied: SeqNo,
    /// When `applied` last changed.
    since: Instant,
    last_asked: Option<Instant>,
}

impl StallTracker {
    fn new(stall_after: Duration) -> Self {
        Self {
            stall_after,
            shards: HashMap::new(),
        }
    }

    fn should_ask(&mut self, shard: &ShardRef, own: SeqNo, primary: SeqNo, now: Instant) -> bool {
        let p = self.shards.entry(shard.clone()).or_insert(Progress {
            applied: own,
            since: now,
            last_asked: None,
        });
        if p.applied != own {
            p.applied = own;
            p.since = now;
        }
        let stalled = now.duration_since(p.since) >= self.stall_after;
        let quiet = p
            .last_asked
            .is_none_or(|t| now.duration_since(t) >= self.stall_after);
        if primary > own && stalled && quiet {
            p.last_asked = Some(now);
            return true;
        }
        false
    }

    fn forget(&mut self, shard: &ShardRef) {
        self.shards.remove(shard);
    }

    fn retain(&mut self, held: &[ShardRef]) {
        self.shards.retain(|s, _| held.contains(s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::ShardId;

    const STALL: Duration = Duration::from_secs(2);

    fn shard() -> ShardRef {
        ShardRef {
            collection: "c".into(),
            shard: ShardId(0),
        }
    }

    #[test]
    fn a_replica_in_step_never_asks() {
        let mut t = StallTracker::new(STALL);
        let t0 = Instant::now();
        for i in 0..10 {
            let now = t0 + Duration::from_secs(i);
            assert!(!t.should_ask(&shard(), SeqNo(5), SeqNo(5), now));
        }
    }

    #[test]
    fn a_progressing_replica_does_not_ask_even_when_behind() {
        let mut t = StallTracker::new(STALL);
        let t0 = Instant::now();
        for i in 0..10 {
            let now = t0 + Duration::from_secs(i);
            assert!(!t.should_ask(&shard(), SeqNo(i), SeqNo(i + 100), now));
        }
    }

    #[test]
    fn a_stalled_replica_asks_once_per_period() {
        let mut t = StallTracker::new(STALL);
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        assert!(!t.should_ask(&shard(), SeqNo(3), SeqNo(9), at(0)));
        assert!(!t.should_ask(&shard(), SeqNo(3), SeqNo(9), at(1000)));
        assert!(t.should_ask(&shard(), SeqNo(3), SeqNo(9), at(2000)));
        assert!(!t.should_ask(&shard(), SeqNo(3), SeqNo(9), at(3000)));
        assert!(t.should_ask(&shard(), SeqNo(3), SeqNo(9), at(4000)));
        // Progress resets the clock.
        assert!(!t.should_ask(&shard(), SeqNo(4), SeqNo(9), at(5000)));
        assert!(!t.should_ask(&shard(), SeqNo(4), SeqNo(9), at(6500)));
    }

    #[test]
    fn a_forgotten_shard_starts_over() {
        let mut t = StallTracker::new(STALL);
        let t0 = Instant::now();
        assert!(!t.should_ask(&shard(), SeqNo(1), SeqNo(2), t0));
        t.retain(&[]);
        assert!(!t.should_ask(&shard(), SeqNo(1), SeqNo(2), t0 + STALL));
        assert!(t.should_ask(&shard(), SeqNo(1), SeqNo(2), t0 + STALL * 2));
    }
}
