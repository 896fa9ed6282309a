//! The in-memory state of a shard and how an operation changes it.
//!
//! Applying is deterministic and idempotent over a suffix of the log: on
//! open, the WAL is replayed from the oldest point not in a persisted
//! segment, over segment states that may already include some of those
//! operations. Every operation sets its effect rather than adding to it
//! (upsert replaces wherever the point lives, delete removes, payload
//! changes are last-writer-wins per key), so applying it again yields the
//! same state.
//!
//! The state also keeps an order-independent digest of its live content
//! (a wrapping sum of one hash per point), updated on every change, and a
//! small ring of (seq → points, digest) of the last operations: a transfer
//! compares source and target at one sequence number without walking
//! either shard.

use std::collections::{BTreeMap, HashMap, VecDeque};

use protocol::{
    CollectionConfig, Distance, Operation, Payload, PayloadIndexes, PointId, SeqNo,
    SequencedOperation, Term,
};

use crate::error::Result;
use crate::segment::{normalize, Bitmap, Segment, SegmentState};

/// Operations whose (points, digest) the ring keeps.
pub const DIGEST_RING: usize = 4096;

/// The digest of one live point: the first 8 bytes of SHA-256 over its id,
/// its stored vector and its JSON payload. Replicas that applied the same
/// operations hold the same points, hence the same sum.
pub fn point_hash(id: &PointId, vector: &[f32], payload: Option<&Payload>) -> u64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(id.hash_bytes());
    for x in vector {
        h.update(x.to_le_bytes());
    }
    if let Some(p) = payload {
        h.update(serde_json::to_vec(p).unwrap_or_default());
    }
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    pub seg: u64,
    pub off: u32,
}

pub struct State {
    /// Sealed first, then frozen, the growing segment last.
    pub segments: Vec<Segment>,
    /// Where each live point is.
    pub points: BTreeMap<PointId, Loc>,
    pub applied: SeqNo,
    /// Term of the operation at `applied`.
    pub last_term: Term,
    pub next_segment_id: u64,
    /// Wrapping sum of [`point_hash`] over the live points.
    pub checksum: u64,
    /// (seq, live points, checksum) after each of the last operations.
    pub recent: VecDeque<(SeqNo, u64, u64)>,
    /// The collection's declared payload indexes, as of the last cluster
    /// map this replica saw.
    pub payload_indexes: PayloadIndexes,
}

impl State {
    /// A state over loaded segments, its digest computed once.
    pub fn new(
        segments: Vec<Segment>,
        points: BTreeMap<PointId, Loc>,
        applied: SeqNo,
        last_term: Term,
        next_segment_id: u64,
    ) -> Self {
        let mut state = State {
            segments,
            points,
            applied,
            last_term,
            next_segment_id,
            checksum: 0,
            recent: VecDeque::new(),
            payload_indexes: PayloadIndexes::new(),
        };
        state.checksum = state.recompute_checksum();
        state
    }

    /// The digest walked from scratch (on open, and in tests against the
    /// incremental one).
    pub fn recompute_checksum(&self) -> u64 {
        self.points.iter().fold(0u64, |sum, (id, loc)| {
            sum.wrapping_add(self.hash_at(id, *loc))
        })
    }

    fn hash_at(&self, id: &PointId, loc: Loc) -> u64 {
        match self.segment(loc.seg) {
            Some(seg) => {
                let off = loc.off as usize;
                point_hash(id, seg.vector(off), seg.payloads[off].as_ref())
            }
            None => 0,
        }
    }

    /// The (points, checksum) the ring holds for `seq`.
    pub fn digest_at(&self, seq: SeqNo) -> Option<(u64, u64)> {
        if seq == self.applied {
            return Some((self.points.len() as u64, self.checksum));
        }
        self.recent
            .iter()
            .rev()
            .find(|(s, _, _)| *s == seq)
            .map(|(_, p, c)| (*p, *c))
    }

    fn remove_point(&mut self, id: &PointId) {
        if let Some(old) = self.points.remove(id) {
            let h = self.hash_at(id, old);
            self.checksum = self.checksum.wrapping_sub(h);
            self.tombstone(old);
        }
    }

    pub fn segment(&self, id: u64) -> Option<&Segment> {
        self.segments.iter().find(|s| s.id == id)
    }

    pub fn segment_mut(&mut self, id: u64) -> Option<&mut Segment> {
        self.segments.iter_mut().find(|s| s.id == id)
    }

    pub fn growing_mut(&mut self) -> &mut Segment {
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }

    /// Ends the growing segment (it waits to be indexed) and starts a new
    /// one for operations after `last`, the operation that filled it. (Not
    /// `applied`: during replay that is the checkpoint's sequence number,
    /// ahead of the operation being replayed.)
    pub fn freeze_growing(&mut self, distance: Distance, last: SeqNo) -> Result<()> {
        let dim = self.growing_mut().dim;
        if self.growing_mut().is_empty() {
            return Ok(());
        }
        self.growing_mut().state = SegmentState::Frozen;
        let id = self.next_segment_id;
        self.next_segment_id += 1;
        self.segments
            .push(Segment::new_growing(id, dim, distance, last)?);
        Ok(())
    }

    fn tombstone(&mut self, loc: Loc) {
        if let Some(seg) = self.segment_mut(loc.seg) {
            seg.alive.set(loc.off as usize, false);
        }
    }

    fn with_payload(&mut self, id: &PointId, version: SeqNo, f: impl FnOnce(&mut Option<Payload>)) {
        if let Some(loc) = self.points.get(id).copied() {
            let before = self.hash_at(id, loc);
            if let Some(seg) = self.segment_mut(loc.seg) {
                let off = loc.off as usize;
                f(&mut seg.payloads[off]);
                seg.versions[off] = version.0;
                seg.payload_index.note(off, seg.payloads[off].as_ref());
            }
            let after = self.hash_at(id, loc);
            self.checksum = self.checksum.wrapping_sub(before).wrapping_add(after);
        }
    }

    /// Applies one (already validated and resolved) operation.
    pub fn apply(&mut self, config: &CollectionConfig, sop: &SequencedOperation) -> Result<()> {
        let seq = sop.seq;
        match &sop.op {
            Operation::Upsert { points } => {
                for p in points {
                    let mut vector = p.vector.clone();
                    if config.distance == Distance::Cosine {
                        normalize(&mut vector);
                    }
                    self.remove_point(&p.id);
                    let growing = self.growing_mut();
                    let seg = growing.id;
                    let off = growing.push(p.id, &vector, p.payload.clone(), seq)?;
                    let h = point_hash(&p.id, &vector, p.payload.as_ref());
                    self.checksum = self.checksum.wrapping_add(h);
                    self.points.insert(
                        p.id,
                        Loc {
                            seg,
                            off: off as u32,
                        },
                    );
                }
            }
            Operation::Delete { ids } => {
                for id in ids {
                    self.remove_point(id);
                }
            }
            Operation::DeleteByFilter { filter } => {
                // Only reached if an unresolved operation was logged by an
                // older version; resolving here is still deterministic.
                let ids = self.matching_ids(filter);
                for id in ids {
                    self.remove_point(&id);
                }
            }
            Operation::SetPayload { ids, payload } => {
                for id in ids {
                    self.with_payload(id, seq, |p| {
                        let target = p.get_or_insert_with(Payload::new);
                        for (k, v) in payload {
                            target.insert(k.clone(), v.clone());
                        }
                    });
                }
            }
            Operation::OverwritePayload { ids, payload } => {
                for id in ids {
                    self.with_payload(id, seq, |p| *p = Some(payload.clone()));
                }
            }
            Operation::DeletePayloadKeys { ids, keys } => {
                for id in ids {
                    self.with_payload(id, seq, |p| {
                        if let Some(p) = p {
                            keys.iter().for_each(|k| {
                                p.remove(k);
                            });
                        }
                    });
                }
            }
            Operation::ClearPayload { ids } => {
                for id in ids {
                    self.with_payload(id, seq, |p| *p = None);
                }
            }
        }
        if seq >= self.applied {
            self.applied = seq;
            self.last_term = sop.term;
            if self.recent.len() >= DIGEST_RING {
                self.recent.pop_front();
            }
            self.recent
                .push_back((seq, self.points.len() as u64, self.checksum));
        }
        Ok(())
    }

    pub fn matching_ids(&self, filter: &protocol::Filter) -> Vec<PointId> {
        let passes = self.filter_test(filter);
        self.points
            .iter()
            .filter(|(id, loc)| passes(id, loc))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether the live point `id` at `loc` passes `filter`: first, once
    /// per segment, the candidates the payload indexes leave, then the
    /// filter itself on those (the same answer as the filter alone).
    pub fn filter_test<'a>(
        &'a self,
        filter: &'a protocol::Filter,
    ) -> impl Fn(&PointId, &Loc) -> bool + 'a {
        let candidates: HashMap<u64, Bitmap> = self
            .segments
            .iter()
            .filter_map(|s| {
                let idx = s.payload_index.get(&self.payload_indexes, &s.payloads)?;
                Some((s.id, idx.candidates(filter)?))
            })
            .collect();
        move |id, loc| {
            let off = loc.off as usize;
            if candidates.get(&loc.seg).is_some_and(|c| !c.get(off)) {
                return false;
            }
            self.segment(loc.seg)
                .is_some_and(|s| filter.matches(*id, s.payloads[off].as_ref()))
        }
    }

    /// Per declared index: live points with a value it indexes.
    pub fn payload_index_points(&self) -> BTreeMap<String, u64> {
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for key in self.payload_indexes.keys() {
            out.insert(key.clone(), 0);
        }
        for s in &self.segments {
            let Some(idx) = s.payload_index.get(&self.payload_indexes, &s.payloads) else {
                continue;
            };
            for (key, n) in out.iter_mut() {
                *n += idx.points_with_values(key, &s.alive);
            }
        }
        out
    }
}
