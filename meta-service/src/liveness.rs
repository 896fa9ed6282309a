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

/// Bounds of the adaptive dead-node grace (see [`Liveness::dead_after`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeadAfter {
    /// The grace of a node whose heartbeats arrive like clockwork.
    pub min_ms: u64,
    /// The grace of a node with no history yet, and the most any node gets.
    pub max_ms: u64,
}

impl DeadAfter {
    /// A fixed grace (no adaptation).
    pub const fn fixed(ms: u64) -> Self {
        Self {
            min_ms: ms,
            max_ms: ms,
        }
    }
}

/// A node's grace is this many times the longest recent gap between two of
/// its heartbeats: a node whose beats arrive every 100 ms is dead after a
/// few hundred milliseconds of silence, one whose beats a starved CPU
/// delays gets a grace that covers those delays. (Four was measured too:
/// no false dead mark either, but graces of 1.2–1.6 s on the chaos
/// cluster, whose beats arrive with gaps of up to 300–400 ms.)
const GRACE_PER_GAP: f64 = 3.0;
/// How fast an old long gap stops counting: its weight halves every this
/// many milliseconds, so a node that was slow a minute ago and is regular
/// now is judged by now, while a burst of slowness is remembered across
/// the pauses between bursts.
const GAP_HALF_LIFE_MS: f64 = 30_000.0;
/// Gaps observed before the grace adapts at all (until then: the maximum).
const GAPS_BEFORE_ADAPTING: u32 = 8;
/// How long after a lease's grant the leader still counts it as running,
/// beyond its length. The node counts its lease from when it *sent* the
/// heartbeat, before the grant, so the lease ends on its clock before it
/// ends here; this margin covers only timer granularity and clock-rate
/// drift (parts per million over a few seconds).
const LEASE_MARGIN_MS: u64 = 100;
/// A heartbeat arriving this long after a node's presence connection
/// closed proves the node alive: the connection broke for another reason
/// (a beat sent before a kill arrives within milliseconds of the close).
const PRESENCE_SETTLE_MS: u64 = 250;

#[derive(Clone, Debug, Default)]
pub struct NodeReport {
    pub last_seen_ms: u64,
    /// The hearing clock at that heartbeat.
    pub last_heard_ms: u64,
    /// The longest gap between two heartbeats (on the hearing clock),
    /// decayed with age (see [`GAP_HALF_LIFE_MS`]).
    gap_max_ms: f64,
    /// Gaps seen by this leader.
    gaps_seen: u32,
    /// The latest gap, as counted into `gap_max_ms`.
    last_gap_ms: f64,
    /// The longest recent time from one heartbeat's arrival to the grant
    /// of the next one's lease (its gap plus the quorum round before the
    /// grant), decayed like `gap_max_ms`: a lease shorter than that lapses
    /// between two grants, and the node refuses writes meanwhile.
    renew_max_ms: f64,
    /// Wall time after which every lease granted to the node has run out
    /// (see [`LEASE_MARGIN_MS`]).
    leases_over_ms: u64,
    /// When the node's presence connection to this leader closed without
    /// the leader ending it: its process most likely died (the kernel
    /// closes a dead process's connections). Cleared when the node opens
    /// a new one or a heartbeat shows it alive. See `network::presence`.
    presence_lost_ms: Option<u64>,
    /// Per shard: (term followed, highest sequence number applied).
    pub applied: HashMap<(String, ShardId), (Term, SeqNo)>,
    /// Per shard: (live points, stored bytes).
    pub load: HashMap<(String, ShardId), (u64, u64)>,
    /// Shards whose replica here reported a poisoned WAL (refusing writes).
    pub poisoned: std::collections::HashSet<(String, ShardId)>,
    /// Per shard this node is primary of: its replication lag in ms.
    pub lag_ms: HashMap<(String, ShardId), u64>,
    /// Shard reads it served in the minute before the heartbeat.
    pub reads_last_minute: u64,
}

impl Liveness {
    /// Records a heartbeat; returns the gap since the node's previous one
    /// on the hearing clock (none for the first this leader hears).
    /// `bounds` are those of the grace (see [`Liveness::dead_after`]).
    pub fn record(&mut self, hb: &Heartbeat, now_ms: u64, bounds: DeadAfter) -> Option<u64> {
        let heard = self.hearing_clock(now_ms);
        let grace = self.dead_after(hb.node, bounds) as f64;
        self.hearing_ms = heard;
        self.last_arrival_ms = self.last_arrival_ms.max(now_ms);
        let leader_since_ms = self.leader_since_ms;
        let report = self.nodes.entry(hb.node).or_default();
        let mut seen_gap = None;
        if report.last_seen_ms >= leader_since_ms && report.last_seen_ms > 0 {
            seen_gap = Some(heard.saturating_sub(report.last_heard_ms));
            let gap = heard.saturating_sub(report.last_heard_ms) as f64;
            let age = now_ms.saturating_sub(report.last_seen_ms) as f64;
            let decay = 0.5f64.powf(age / GAP_HALF_LIFE_MS);
            let decayed = report.gap_max_ms * decay;
            report.renew_max_ms *= decay;
            // A gap past the grace was an outage (the node died or hung),
            // not the jitter the grace is for: it counts as the grace, or
            // one twelve-second hang would lengthen the grace for minutes.
            let gap = if report.gaps_seen >= GAPS_BEFORE_ADAPTING {
                gap.min(grace)
            } else {
                gap
            };
            report.gap_max_ms = decayed.max(gap);
            report.last_gap_ms = gap;
            report.gaps_seen = report.gaps_seen.saturating_add(1);
        }
        if report
            .presence_lost_ms
            .is_some_and(|lost| now_ms > lost + PRESENCE_SETTLE_MS)
        {
            report.presence_lost_ms = None;
        }
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
        report.lag_ms = hb
            .replicas
            .iter()
            .filter_map(|r| Some(((r.collection.clone(), r.shard), r.lag_ms?)))
            .collect();
        report.reads_last_minute = hb.reads_last_minute;
        seen_gap
    }

    /// How long `node` may stay silent (on the hearing clock) before it is
    /// dead: [`GRACE_PER_GAP`] times the longest recent gap between its
    /// heartbeats, and at least twice the longest recent renewal time (so
    /// that its lease, half the grace, lasts from one grant to the next);
    /// within `bounds`; the maximum until enough gaps were seen.
    pub fn dead_after(&self, node: NodeId, bounds: DeadAfter) -> u64 {
        let Some(report) = self.nodes.get(&node) else {
            return bounds.max_ms;
        };
        if report.gaps_seen < GAPS_BEFORE_ADAPTING {
            return bounds.max_ms;
        }
        let adapted = (report.gap_max_ms * GRACE_PER_GAP).max(report.renew_max_ms * 2.0) as u64;
        adapted.clamp(bounds.min_ms, bounds.max_ms.max(bounds.min_ms))
    }

    /// The write lease granted with an acknowledged heartbeat: half the
    /// node's current grace. Recorded, so that the node is never declared
    /// dead while a lease it holds may still run (the grace can shrink
    /// between two grants; see [`Liveness::leases_over`]). A node whose
    /// process died (its presence connection closed) is declared dead as
    /// soon as its leases are over, without waiting out the grace.
    pub fn grant_lease(&mut self, node: NodeId, bounds: DeadAfter, now_ms: u64) -> u64 {
        if let Some(report) = self.nodes.get_mut(&node) {
            let granting_took = now_ms.saturating_sub(report.last_seen_ms) as f64;
            let renewal = (report.last_gap_ms + granting_took).min(bounds.max_ms as f64);
            report.renew_max_ms = report.renew_max_ms.max(renewal);
        }
        let lease = self.dead_after(node, bounds) / 2;
        if let Some(report) = self.nodes.get_mut(&node) {
            report.leases_over_ms = report.leases_over_ms.max(now_ms + lease + LEASE_MARGIN_MS);
        }
        lease
    }

    /// Whether every lease granted to `node` has run out, margin included.
    pub(crate) fn leases_over(&self, node: NodeId, now_ms: u64) -> bool {
        self.nodes
            .get(&node)
            .is_none_or(|r| now_ms > r.leases_over_ms)
    }

    /// `node` holds a presence connection to this leader (again).
    pub(crate) fn presence_opened(&mut self, node: NodeId) {
        if let Some(report) = self.nodes.get_mut(&node) {
            report.presence_lost_ms = None;
        }
    }

    /// `node`'s presence connection closed at `now_ms` without the leader
    /// ending it.
    pub(crate) fn presence_lost(&mut self, node: NodeId, now_ms: u64) {
        self.nodes.entry(node).or_default().presence_lost_ms = Some(now_ms);
    }

    /// When `node`'s process looks to have gone: its presence connection
    /// closed then, and nothing since showed it alive.
    pub(crate) fn gone_since(&self, node: NodeId) -> Option<u64> {
        self.nodes.get(&node)?.presence_lost_ms
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

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: DeadAfter = DeadAfter {
        min_ms: 600,
        max_ms: 5_000,
    };
    const NODE: NodeId = NodeId(1);

    fn beat(live: &mut Liveness, at: u64) {
        let hb = Heartbeat {
            node: NODE,
            epoch: Default::default(),
            replicas: vec![],
            reads_last_minute: 0,
        };
        live.record(&hb, at, BOUNDS);
    }

    /// Beats at `at`, `at + every`, ... up to `until`; returns the time after.
    fn beats(live: &mut Liveness, at: u64, every: u64, until: u64) -> u64 {
        let mut t = at;
        while t <= until {
            beat(live, t);
            t += every;
        }
        t
    }

    #[test]
    fn a_node_without_history_gets_the_longest_grace() {
        let mut live = Liveness::default();
        assert_eq!(live.dead_after(NODE, BOUNDS), 5_000);
        beats(&mut live, 1_000, 100, 1_700);
        assert_eq!(
            live.dead_after(NODE, BOUNDS),
            5_000,
            "7 gaps are not enough"
        );
        beat(&mut live, 1_800);
        assert_eq!(live.dead_after(NODE, BOUNDS), 600);
    }

    #[test]
    fn the_grace_follows_the_longest_recent_gap_and_forgets_it_slowly() {
        let mut live = Liveness::default();
        let t = beats(&mut live, 1_000, 100, 3_000);
        assert_eq!(
            live.dead_after(NODE, BOUNDS),
            600,
            "regular beats: the floor"
        );
        // A starved CPU delays one beat by 350 ms: three times the gap.
        beat(&mut live, t + 350);
        assert_eq!(live.dead_after(NODE, BOUNDS), 1_350);
        // Regular again: 30 s later the 450 ms gap weighs half.
        let t = beats(&mut live, t + 450, 100, t + 350 + 30_000);
        let grace = live.dead_after(NODE, BOUNDS);
        assert!((650..=700).contains(&grace), "{grace}");
        // Two minutes on it is forgotten.
        beats(&mut live, t, 100, t + 90_000);
        assert_eq!(live.dead_after(NODE, BOUNDS), 600);
    }

    #[test]
    fn an_outage_counts_as_the_grace_it_outlasted_not_its_length() {
        let mut live = Liveness::default();
        let t = beats(&mut live, 1_000, 100, 3_000);
        // Hung for 12 s, then back: as if the gap had been the 600 ms grace
        // it outlasted (three times that), not 12 s (the 5 s cap for minutes).
        beat(&mut live, t + 12_000);
        assert_eq!(live.dead_after(NODE, BOUNDS), 1_800);
    }

    #[test]
    fn the_lease_is_half_the_grace_and_is_over_only_after_its_length_and_margin() {
        let mut live = Liveness::default();
        beat(&mut live, 1_000);
        // No history: the longest grace, and its half as the lease.
        assert_eq!(live.grant_lease(NODE, BOUNDS, 1_000), 2_500);
        assert!(!live.leases_over(NODE, 3_600));
        assert!(live.leases_over(NODE, 3_601));
        // With a regular history the grant shrinks, but the long lease
        // granted before still counts (its ack may be the last one the
        // node got).
        let t = beats(&mut live, 1_100, 100, 2_000);
        assert_eq!(live.grant_lease(NODE, BOUNDS, t), 300);
        assert!(!live.leases_over(NODE, 3_600));
        assert!(live.leases_over(NODE, 3_601));
    }

    #[test]
    fn a_lost_presence_holds_until_the_node_is_heard_after_it_or_reconnects() {
        let mut live = Liveness::default();
        let t = beats(&mut live, 1_000, 100, 2_000);
        live.presence_lost(NODE, t);
        assert_eq!(live.gone_since(NODE), Some(t));
        // A beat sent before the close and arriving just after it.
        beat(&mut live, t + 20);
        assert_eq!(
            live.gone_since(NODE),
            Some(t),
            "a beat in flight at the close proves nothing"
        );
        beat(&mut live, t + 300);
        assert_eq!(
            live.gone_since(NODE),
            None,
            "alive after all: the connection broke"
        );
        live.presence_lost(NODE, t + 400);
        live.presence_opened(NODE);
        assert_eq!(live.gone_since(NODE), None, "a new presence connection");
    }

    #[test]
    fn a_slow_grant_lengthens_the_grace_so_the_lease_outlasts_it() {
        let mut live = Liveness::default();
        let t = beats(&mut live, 1_000, 100, 3_000);
        assert_eq!(live.grant_lease(NODE, BOUNDS, t - 100), 300);
        // Beats still arrive every 100 ms, but the quorum round before the
        // grant takes 400 ms: a 300 ms lease would lapse before the next
        // grant. Now the lease covers a gap plus the round.
        beat(&mut live, t);
        assert_eq!(live.grant_lease(NODE, BOUNDS, t + 400), 500);
        assert_eq!(live.dead_after(NODE, BOUNDS), 1_000);
    }

    #[test]
    fn silence_of_the_leader_itself_is_not_a_gap() {
        let mut live = Liveness {
            hearing_gap_cap_ms: Some(300),
            ..Liveness::default()
        };
        let t = beats(&mut live, 1_000, 100, 3_000);
        // Nobody was heard for 2 s (the leader stalled): counts as 300 ms.
        beat(&mut live, t + 2_000);
        assert_eq!(live.dead_after(NODE, BOUNDS), 900);
    }
}
