//! What the leader has heard from storage nodes: when each was last seen and
//! how far each of its replicas got. Soft state, kept only by the leader and
//! never replicated: it changes every second and is worthless after a few.
//!
//! The heartbeat handler (`network::api`) records into it through
//! [`crate::app::App`]; the controller reads a copy. It has its own module
//! so that neither of them imports the other.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use protocol::cluster::Heartbeat;
use protocol::{NodeId, SeqNo, ShardId, Term};

/// What the leader has heard from storage nodes.
#[derive(Clone, Debug, Default)]
pub struct Liveness {
    /// When this member became leader (ms since the Unix epoch); a node not
    /// heard from since counts as heard from at this time.
    pub leader_since_ms: u64,
    pub nodes: HashMap<NodeId, NodeReport>,
}

#[derive(Clone, Debug, Default)]
pub struct NodeReport {
    pub last_seen_ms: u64,
    /// Per shard: (term followed, highest sequence number applied).
    pub applied: HashMap<(String, ShardId), (Term, SeqNo)>,
    /// Per shard: (live points, stored bytes).
    pub load: HashMap<(String, ShardId), (u64, u64)>,
    /// Shards whose replica here reported a poisoned WAL (refusing writes).
    pub poisoned: std::collections::HashSet<(String, ShardId)>,
}

impl Liveness {
    pub fn record(&mut self, hb: &Heartbeat, now_ms: u64) {
        let report = self.nodes.entry(hb.node).or_default();
        report.last_seen_ms = now_ms;
        report.applied = hb
            .replicas
            .iter()
            .map(|r| ((r.collection.clone(), r.shard), (r.term, r.applied)))
            .collect();
        report.load = hb
            .replicas
            .iter()
            .map(|r| ((r.collection.clone(), r.shard), (r.points, r.bytes)))
            .collect();
        report.poisoned = hb
            .replicas
            .iter()
            .filter(|r| r.poisoned)
            .map(|r| (r.collection.clone(), r.shard))
            .collect();
    }

    /// Whether `node`'s replica of the shard last reported a poisoned WAL.
    pub(crate) fn poisoned(&self, node: NodeId, collection: &str, shard: ShardId) -> bool {
        self.nodes
            .get(&node)
            .is_some_and(|r| r.poisoned.contains(&(collection.to_string(), shard)))
    }

    /// Forget everything and start the clocks now (on becoming leader).
    pub fn reset(&mut self, now_ms: u64) {
        self.leader_since_ms = now_ms;
        self.nodes.clear();
    }

    pub(crate) fn last_seen(&self, node: NodeId) -> u64 {
        self.nodes.get(&node).map_or(self.leader_since_ms, |r| {
            r.last_seen_ms.max(self.leader_since_ms)
        })
    }

    /// Heard from since becoming leader (not just assumed alive).
    pub(crate) fn heard_since(&self, node: NodeId, since_ms: u64) -> bool {
        self.nodes
            .get(&node)
            .is_some_and(|r| r.last_seen_ms > since_ms)
    }

    /// (points, bytes) of `node`'s replica of the shard, as last reported.
    pub(crate) fn load(
        &self,
        node: NodeId,
        collection: &str,
        shard: ShardId,
    ) -> Option<(u64, u64)> {
        self.nodes
            .get(&node)?
            .load
            .get(&(collection.to_string(), shard))
            .copied()
    }

    pub(crate) fn applied(
        &self,
        node: NodeId,
        collection: &str,
        shard: ShardId,
    ) -> Option<(Term, SeqNo)> {
        self.nodes
            .get(&node)?
            .applied
            .get(&(collection.to_string(), shard))
            .copied()
    }
}

/// The wall clock heartbeats and the controller's grace periods are
/// measured with (ms since the Unix epoch).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
