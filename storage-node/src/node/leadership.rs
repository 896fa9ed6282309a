//! What a shard's primary shares with its replication streams for one
//! term: the acknowledgements each peer sent, the stop signal, the per-peer
//! wake-ups, and the view of the replica a stream reads from.
//!
//! The replica ([`super::replica`]) owns a [`Leadership`] while it leads;
//! each stream ([`super::replicator`]) gets a [`Stream`]. Both depend on
//! this module and not on each other: the node wires them together.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use protocol::rpc::ShardRef;
use protocol::{Epoch, NodeId, SeqNo, Term};
use tokio::sync::{watch, Notify};

use crate::shard::Shard;

/// What each peer has durably applied, with a wake-up for waiting writers.
#[derive(Default)]
pub struct Acks {
    acked: Mutex<HashMap<NodeId, SeqNo>>,
    changed: Notify,
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
