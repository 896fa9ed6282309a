//! [`ClusterChange`] events: the members task logs them, and tests follow
//! them through a [`ChangeStream`] (feature `testsuite`; no service
//! consumes membership events today).
//!
//! Why a `watch` channel of member snapshots and not a `broadcast` of
//! events: the background task publishes the whole live-member map after
//! every gossip change, and each stream diffs the snapshot it last saw
//! against the newest one. A slow subscriber therefore never loses an event
//! (a `broadcast` receiver that lags drops them and its view of the cluster
//! is wrong from then on); it only sees intermediate states coalesced, e.g.
//! two seq updates as one `Update`. Every stream starts with an `Add` per
//! member already live, so "list then subscribe" races do not exist.

use std::collections::BTreeMap;
use std::sync::Arc;

use protocol::NodeId;

use crate::member::Member;

/// Live members keyed by node id, as published by the background task.
pub(crate) type Snapshot = Arc<BTreeMap<NodeId, Member>>;

/// A change in the set of live members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterChange {
    /// A node became live: it joined, restarted (new generation, after a
    /// `Remove` of the old one), or came back after being declared dead.
    Add(Member),
    /// A live node changed its key-values (e.g. a replica's applied seq).
    Update(Member),
    /// A node is gone: declared dead, left gracefully, or replaced by a new
    /// generation. Carries the member as last seen.
    Remove(Member),
}

/// The events that turn `prev` into `next`: removals first, so a restarted
/// node's `Remove` (old generation) precedes its `Add` (new generation).
pub(crate) fn diff(
    prev: &BTreeMap<NodeId, Member>,
    next: &BTreeMap<NodeId, Member>,
) -> Vec<ClusterChange> {
    let mut changes = Vec::new();
    for (id, old) in prev {
        match next.get(id) {
            Some(new) if new.generation == old.generation => {}
            _ => changes.push(ClusterChange::Remove(old.clone())),
        }
    }
    for (id, new) in next {
        match prev.get(id) {
            Some(old) if old.generation == new.generation => {
                if old != new {
                    changes.push(ClusterChange::Update(new.clone()));
                }
            }
            _ => changes.push(ClusterChange::Add(new.clone())),
        }
    }
    changes
}

/// Membership changes, in order, for one subscriber.
/// Ends (`None`) when the [`Membership`](crate::Membership) shuts down.
#[cfg(any(test, feature = "testsuite"))]
pub struct ChangeStream {
    rx: tokio::sync::watch::Receiver<Snapshot>,
    seen: Snapshot,
    pending: std::collections::VecDeque<ClusterChange>,
}

#[cfg(any(test, feature = "testsuite"))]
impl ChangeStream {
    pub(crate) fn new(mut rx: tokio::sync::watch::Receiver<Snapshot>) -> Self {
        // Snapshot now, not at the first `recv`: a change between subscribe
        // and the first `recv` must show up as an event.
        let seen = rx.borrow_and_update().clone();
        let pending = seen.values().cloned().map(ClusterChange::Add).collect();
        ChangeStream { rx, seen, pending }
    }

    /// The next change; `None` once membership has shut down.
    pub async fn recv(&mut self) -> Option<ClusterChange> {
        loop {
            if let Some(change) = self.pending.pop_front() {
                return Some(change);
            }
            self.rx.changed().await.ok()?;
            let next = self.rx.borrow_and_update().clone();
            self.pending.extend(diff(&self.seen, &next));
            self.seen = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use protocol::{SeqNo, ShardId};
    use tokio::sync::watch;

    use super::*;

    fn member(id: u64, generation: u64, seq: u64) -> Member {
        Member {
            node_id: NodeId(id),
            generation,
            gossip_addr: "127.0.0.1:1".parse().unwrap(),
            rpc_addr: "127.0.0.1:2".parse().unwrap(),
            http_addr: None,
            replicas: [(("c".to_string(), ShardId(0)), SeqNo(seq))].into(),
        }
    }

    fn map(members: Vec<Member>) -> BTreeMap<NodeId, Member> {
        members.into_iter().map(|m| (m.node_id, m)).collect()
    }

    #[test]
    fn diff_add_update_remove_restart() {
        let a1 = member(1, 1, 0);
        let b1 = member(2, 1, 0);
        let a1_seq = member(1, 1, 5);
        let b2 = member(2, 2, 0);
        assert_eq!(
            diff(&map(vec![]), &map(vec![a1.clone()])),
            vec![ClusterChange::Add(a1.clone())]
        );
        assert_eq!(
            diff(
                &map(vec![a1.clone(), b1.clone()]),
                &map(vec![a1_seq.clone(), b2.clone()])
            ),
            vec![
                ClusterChange::Remove(b1.clone()),
                ClusterChange::Update(a1_seq.clone()),
                ClusterChange::Add(b2.clone()),
            ]
        );
        assert_eq!(
            diff(&map(vec![a1.clone()]), &map(vec![])),
            vec![ClusterChange::Remove(a1.clone())]
        );
        assert!(diff(&map(vec![a1.clone()]), &map(vec![a1])).is_empty());
    }

    #[tokio::test]
    async fn stream_starts_with_current_members_and_coalesces() {
        let (tx, rx) = watch::channel(Arc::new(map(vec![member(1, 1, 0)])));
        let mut stream = ChangeStream::new(rx);
        assert_eq!(
            stream.recv().await,
            Some(ClusterChange::Add(member(1, 1, 0)))
        );
        // Two updates before the subscriber looks: one coalesced Update.
        tx.send_replace(Arc::new(map(vec![member(1, 1, 1)])));
        tx.send_replace(Arc::new(map(vec![member(1, 1, 2)])));
        assert_eq!(
            stream.recv().await,
            Some(ClusterChange::Update(member(1, 1, 2)))
        );
        drop(tx);
        assert_eq!(stream.recv().await, None);
    }
}
