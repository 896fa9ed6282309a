//! What a shard's primary shares with its replication streams for one
//! term: the acknowledgements each peer sent, the stop signal, the per-peer
//! wake-ups, and the view of the replica a stream reads from.
//!
//! The replica ([`super::replica`]) owns a [`Leadership`] while it leads;
//! each stream ([`super::replicator`]) gets a [`Stream`]. Both depend on
//! this module and not on each other: the node wires them together.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use protocol::rpc::ShardRef;
use protocol::{Epoch, NodeId, SeqNo, Term};
use tokio::sync::{watch, Notify};

use crate::shard::Shard;

/// Most operations remembered with the time they were applied: past it
/// the oldest are forgotten, and a lag longer than the window they span is
/// understated (it is minutes long by then at any real write rate).
const APPLIED_TIMES_CAP: usize = 65_536;

/// What each peer has durably applied, with a wake-up for waiting writers,
/// and when the operations some peer still lacks were applied here (the
/// replication lag in time).
#[derive(Default)]
pub struct Acks {
    acked: Mutex<HashMap<NodeId, SeqNo>>,
    changed: Notify,
    applied_at: Mutex<VecDeque<(SeqNo, Instant)>>,
}

/// One peer's distance behind the primary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerLag {
    pub peer: NodeId,
    /// How long the oldest operation the peer lacks has waited.
    pub time: Duration,
    pub ops: u64,
}

impl Acks {
    pub fn record(&self, peer: NodeId, applied: SeqNo) {
        let mut g = self.acked.lock();
        let e = g.entry(peer).or_default();
        if applied > *e {
            *e = applied;
            drop(g);
            self.changed.notify_waiters();
        }
    }

    pub fn forget(&self, peer: NodeId) {
        self.acked.lock().remove(&peer);
    }

    pub fn count_at_least(&self, seq: SeqNo, among: &[NodeId]) -> usize {
        let g = self.acked.lock();
        among
            .iter()
            .filter(|p| g.get(p).is_some_and(|a| *a >= seq))
            .count()
    }

    /// The primary applied `seq` at `at` (kept in order of sequence number,
    /// however the concurrent writers finish).
    pub fn applied(&self, seq: SeqNo, at: Instant) {
        let mut times = self.applied_at.lock();
        let at_pos = times.partition_point(|(s, _)| *s < seq);
        if times.get(at_pos).is_some_and(|(s, _)| *s == seq) {
            return;
        }
        times.insert(at_pos, (seq, at));
        if times.len() > APPLIED_TIMES_CAP {
            times.pop_front();
        }
    }

    /// How far each of `peers` is behind `applied` at `now`; forgets the
    /// times of the operations all of them have.
    pub fn lags(&self, peers: &[NodeId], applied: SeqNo, now: Instant) -> Vec<PeerLag> {
        let acked: Vec<(NodeId, SeqNo)> = {
            let g = self.acked.lock();
            peers
                .iter()
                .map(|p| (*p, g.get(p).copied().unwrap_or_default()))
                .collect()
        };
        let mut times = self.applied_at.lock();
        if let Some(all_have) = acked.iter().map(|(_, a)| *a).min() {
            while times.front().is_some_and(|(s, _)| *s <= all_have) {
                times.pop_front();
            }
        }
        acked
            .into_iter()
            .map(|(peer, acked)| {
                let first_missing = times.partition_point(|(s, _)| *s <= acked);
                let time = match times.get(first_missing) {
                    Some((_, at)) if acked < applied => now.saturating_duration_since(*at),
                    _ => Duration::ZERO,
                };
                PeerLag {
                    peer,
                    time,
                    ops: applied.0.saturating_sub(acked.0),
                }
            })
            .collect()
    }

    /// Resolves at the next [`Acks::record`] that raised a peer's mark.
    /// Create it before counting, so a record in between is not missed.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }
}

/// The primary's state for one term.
pub struct Leadership {
    pub term: Term,
    pub peers: Vec<NodeId>,
    pub acks: Arc<Acks>,
    pub stop: watch::Sender<bool>,
    /// Per peer: wakes its replicator to sync again now (`CatchUp`).
    pub kicks: HashMap<NodeId, Arc<Notify>>,
}

impl Leadership {
    /// A new term's state and one [`Stream`] per peer (to be started).
    pub fn start(term: Term, peers: &[NodeId]) -> (Leadership, Vec<Stream>) {
        let (stop, stop_rx) = watch::channel(false);
        let acks = Arc::new(Acks::default());
        let mut kicks = HashMap::new();
        let mut streams = Vec::new();
        for peer in peers {
            let kick = Arc::new(Notify::new());
            kicks.insert(*peer, kick.clone());
            streams.push(Stream {
                peer: *peer,
                term,
                acks: acks.clone(),
                kick,
                stop: stop_rx.clone(),
            });
        }
        let leadership = Leadership {
            term,
            peers: peers.to_vec(),
            acks,
            stop,
            kicks,
        };
        (leadership, streams)
    }
}

/// One primary → peer stream under one term.
pub struct Stream {
    pub peer: NodeId,
    pub term: Term,
    /// What every peer acknowledged (shared by the term's streams).
    pub acks: Arc<Acks>,
    /// Notified when the peer asks to catch up (`CatchUp`).
    pub kick: Arc<Notify>,
    /// Becomes true when the term's leadership ends.
    pub stop: watch::Receiver<bool>,
}

/// The replica as a stream sees it.
pub trait StreamSource: Send + Sync + 'static {
    fn shard_ref(&self) -> &ShardRef;
    /// The epoch that created the collection (peers of another incarnation
    /// hold incomparable histories).
    fn incarnation(&self) -> Epoch;
    fn shard(&self) -> Arc<Shard>;
    /// Changes after every local write.
    fn applied_watch(&self) -> watch::Receiver<SeqNo>;
    /// A peer reported a newer term: this replica is no longer primary.
    fn observe_term(&self, term: Term);
    /// The gate the primary's writes pass while they are applied; a
    /// transfer's switch holds it exclusively (writes wait).
    fn write_gate(&self) -> Arc<tokio::sync::RwLock<()>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A silent peer's lag grows with the wait of the first operation it
    /// lacks (not of the newest), and drops to zero once it has everything.
    #[test]
    fn lag_is_the_wait_of_the_oldest_missing_operation() {
        let acks = Acks::default();
        let t0 = Instant::now();
        let (a, b) = (NodeId(2), NodeId(3));
        for seq in 1..=10u64 {
            acks.applied(SeqNo(seq), t0 + Duration::from_millis(seq * 100));
        }
        acks.record(a, SeqNo(10));
        acks.record(b, SeqNo(4));
        let now = t0 + Duration::from_millis(2_000);
        let lags = acks.lags(&[a, b], SeqNo(10), now);
        assert_eq!(
            lags[0],
            PeerLag {
                peer: a,
                time: Duration::ZERO,
                ops: 0
            }
        );
        // Operation 5, applied at 500 ms, has waited 1.5 s.
        assert_eq!(
            lags[1],
            PeerLag {
                peer: b,
                time: Duration::from_millis(1_500),
                ops: 6
            }
        );
        // What both have is forgotten; what b lacks is not.
        assert_eq!(acks.applied_at.lock().len(), 6);
        let later = now + Duration::from_millis(1_000);
        assert_eq!(
            acks.lags(&[a, b], SeqNo(10), later)[1].time,
            Duration::from_millis(2_500)
        );
        acks.record(b, SeqNo(10));
        assert_eq!(acks.lags(&[a, b], SeqNo(10), later)[1].time, Duration::ZERO);
        assert!(acks.applied_at.lock().is_empty());
    }

    /// A peer never heard from lacks everything; writers finishing out of
    /// order still leave the times in sequence order.
    #[test]
    fn a_peer_never_heard_from_lags_from_the_first_operation() {
        let acks = Acks::default();
        let t0 = Instant::now();
        acks.applied(SeqNo(2), t0 + Duration::from_millis(20));
        acks.applied(SeqNo(1), t0 + Duration::from_millis(10));
        let lags = acks.lags(&[NodeId(9)], SeqNo(2), t0 + Duration::from_millis(110));
        assert_eq!(lags[0].time, Duration::from_millis(100));
        assert_eq!(lags[0].ops, 2);
    }
}
