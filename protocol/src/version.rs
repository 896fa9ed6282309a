//! Version vectors: what every replica of one shard has applied.
//!
//! A shard has a single ordered history (the primary assigns sequence
//! numbers), so a replica's state is summed up by one number, the highest
//! sequence number it applied. The version vector of a shard maps each node
//! holding a replica to that number. Storage nodes gossip their entries;
//! a replica that sees a peer ahead of itself knows it is behind and by how
//! much, and failover picks the most up-to-date in-sync replica.
//!
//! Entries are observations, not a CRDT: a replica rebuilt from a snapshot
//! after its history diverged may report a *lower* number than before, so
//! [`VersionVector::observe`] takes the newest report as it is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{NodeId, SeqNo};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionVector {
    applied: BTreeMap<NodeId, SeqNo>,
}

impl VersionVector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `node`'s latest report, replacing any earlier one.
    pub fn observe(&mut self, node: NodeId, applied: SeqNo) {
        self.applied.insert(node, applied);
    }

    /// What `node` reported, if it reported anything.
    pub fn get(&self, node: NodeId) -> Option<SeqNo> {
        self.applied.get(&node).copied()
    }

    pub fn len(&self) -> usize {
        self.applied.len()
    }

    pub fn is_empty(&self) -> bool {
        self.applied.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (NodeId, SeqNo)> + '_ {
        self.applied.iter().map(|(n, s)| (*n, *s))
    }

    /// The most advanced replica (lowest node id on a tie, so every
    /// reader of the same vector picks the same one).
    pub fn most_advanced(&self) -> Option<(NodeId, SeqNo)> {
        self.applied
            .iter()
            .map(|(n, s)| (*n, *s))
            .fold(None, |best, (n, s)| match best {
                Some((_, bs)) if bs >= s => best,
                _ => Some((n, s)),
            })
    }

    /// How many operations `node` misses compared to the most advanced
    /// replica; `None` when `node` reported nothing.
    pub fn lag(&self, node: NodeId) -> Option<u64> {
        let own = self.get(node)?;
        let top = self.most_advanced().map_or(own, |(_, s)| s);
        Some(top.0.saturating_sub(own.0))
    }
}

impl FromIterator<(NodeId, SeqNo)> for VersionVector {
    fn from_iter<I: IntoIterator<Item = (NodeId, SeqNo)>>(iter: I) -> Self {
        let mut vv = Self::new();
        for (n, s) in iter {
            vv.observe(n, s);
        }
        vv
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vv(entries: &[(u64, u64)]) -> VersionVector {
        entries
            .iter()
            .map(|(n, s)| (NodeId(*n), SeqNo(*s)))
            .collect()
    }

    #[test]
    fn empty_vector_has_no_leader() {
        let v = VersionVector::new();
        assert_eq!(v.most_advanced(), None);
        assert_eq!(v.lag(NodeId(1)), None);
        assert!(v.is_empty());
    }

    #[test]
    fn lag_is_measured_against_the_most_advanced_replica() {
        let v = vv(&[(1, 100), (2, 90), (3, 100)]);
        assert_eq!(v.most_advanced(), Some((NodeId(1), SeqNo(100))));
        assert_eq!(v.lag(NodeId(2)), Some(10));
        assert_eq!(v.lag(NodeId(3)), Some(0));
        assert_eq!(v.lag(NodeId(4)), None);
    }

    #[test]
    fn a_newer_report_replaces_an_older_one_even_when_lower() {
        // A diverged replica rebuilt from a snapshot goes back in sequence.
        let mut v = vv(&[(1, 50), (2, 60)]);
        v.observe(NodeId(2), SeqNo(40));
        assert_eq!(v.get(NodeId(2)), Some(SeqNo(40)));
        assert_eq!(v.most_advanced(), Some((NodeId(1), SeqNo(50))));
        assert_eq!(v.lag(NodeId(2)), Some(10));
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn round_trips_through_the_codec() {
        let v = vv(&[(1, 3), (7, 9)]);
        let bytes = crate::codec::encode(&v).expect("encode");
        let back: VersionVector = crate::codec::decode(&bytes).expect("decode");
        assert_eq!(back, v);
    }

    proptest! {
        #[test]
        fn lag_is_against_the_most_advanced(entries in proptest::collection::btree_map(0u64..16, 0u64..1000, 0..10)) {
            let v: VersionVector = entries.iter().map(|(n, s)| (NodeId(*n), SeqNo(*s))).collect();
            let top = entries.values().copied().max();
            if let Some((leader, seq)) = v.most_advanced() {
                prop_assert_eq!(Some(seq.0), top);
                prop_assert_eq!(v.lag(leader), Some(0));
                // The tie-break is the lowest node id among the most advanced.
                let first_top = entries.iter().find(|(_, s)| Some(**s) == top).map(|(n, _)| *n);
                prop_assert_eq!(Some(leader.0), first_top);
            }
            for (n, s) in &entries {
                let lag = top.unwrap_or(0) - s;
                prop_assert_eq!(v.lag(NodeId(*n)), Some(lag));
            }
            prop_assert_eq!(v.len(), entries.len());
        }
    }
}
