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
    /// The leader's *hearing clock*: time that passed while heartbeats
    /// (from any node) kept arriving. A gap between two arrivals counts
    /// only up to `hearing_gap_cap_ms`: longer, and nobody was heard —
    /// the leader itself stalled (a starved CPU, a slow quorum behind the
    /// heartbeat handler), which says nothing about the nodes. `None`
    /// counts wall time.
    pub hearing_gap_cap_ms: Option<u64>,
    hearing_ms: u64,
    last_arrival_ms: u64,
}

#[derive(Clone, Debug, Default)]
pub struct NodeReport {
    pub last_seen_ms: u64,
    /// The hearing clock at that heartbeat.
    pub last_heard_ms: u64,
    /// Per shard: (term followed, highest sequence number applied).
    pub applied: HashMap<(String, ShardId), (Term, SeqNo)>,
    /// Per shard: (live points, stored bytes).
    pub load: HashMap<(String, ShardId), (u64, u64)>,
    /// Shards whose replica here reported a poisoned WAL (refusing writes).
    pub poisoned: std::collections::HashSet<(String, ShardId)>,
}

impl Liveness {
    pub fn record(&mut self, hb: &Heartbeat, now_ms: u64) {
        let heard = self.hearing_clock(now_ms);
        self.hearing_ms = heard;
        self.last_arrival_ms = self.last_arrival_ms.max(now_ms);
        let report = self.nodes.entry(hb.node).or_default();
        report.last_seen_ms = now_ms;
        report.last_heard_ms = heard;
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
        self.hearing_ms = 0;
        self.last_arrival_ms = now_ms;
    }

    /// The hearing clock at `now_ms` (see [`Liveness::hearing_gap_cap_ms`]).
    fn hearing_clock(&self, now_ms: u64) -> u64 {
        let start = self.last_arrival_ms.max(self.leader_since_ms);
        let gap = now_ms.saturating_sub(start);
        self.hearing_ms + self.hearing_gap_cap_ms.map_or(gap, |cap| gap.min(cap))
    }

    /// How long `node` has been silent on the hearing clock: while other
    /// heartbeats kept arriving.
    pub(crate) fn silent_while_others_heard(&self, node: NodeId, now_ms: u64) -> u64 {
        let since = self.nodes.get(&node).map_or(0, |r| r.last_heard_ms);
        self.hearing_clock(now_ms).saturating_sub(since)
    }

    pub(crate) fn last_seen(&self, node: NodeId) -> u64 {
        self.nodes.get(&node).map_or(self.leader_since_ms, |r| {
            r.last_seen_ms.max(self.leader_since_ms)
        })
    }

    /// Whether this leader has heard from `node` at all (a heartbeat at or
    /// after it took over).
    pub(crate) fn heard_as_leader(&self, node: NodeId) -> bool {
        self.nodes
            .get(&node)
            .is_some_and(|r| r.last_seen_ms >= self.leader_since_ms)
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
