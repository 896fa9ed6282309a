//! The in-memory state of a shard and how an operation changes it.
//!
//! Applying is deterministic and idempotent over a suffix of the log: on
//! open, the WAL is replayed from the oldest point not in a persisted
//! segment, over segment states that may already include some of those
//! operations. Every operation sets its effect rather than adding to it
//! (upsert replaces wherever the point lives, delete removes, payload
//! changes are last-writer-wins per key), so applying it again yields the
//! same state.

use std::collections::BTreeMap;

use protocol::{
    CollectionConfig, Distance, Operation, Payload, PointId, SeqNo, SequencedOperation, Term,
};

use crate::error::Result;
use crate::segment::{normalize, Segment, SegmentState};

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
}

impl State {
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
            if let Some(seg) = self.segment_mut(loc.seg) {
                f(&mut seg.payloads[loc.off as usize]);
                seg.versions[loc.off as usize] = version.0;
            }
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
                    if let Some(old) = self.points.remove(&p.id) {
                        self.tombstone(old);
                    }
                    let growing = self.growing_mut();
                    let seg = growing.id;
                    let off = growing.push(p.id, &vector, p.payload.clone(), seq)?;
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
                    if let Some(old) = self.points.remove(id) {
                        self.tombstone(old);
                    }
                }
            }
            Operation::DeleteByFilter { filter } => {
                // Only reached if an unresolved operation was logged by an
                // older version; resolving here is still deterministic.
                let ids = self.matching_ids(filter);
                for id in ids {
                    if let Some(old) = self.points.remove(&id) {
                        self.tombstone(old);
                    }
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
        }
        Ok(())
    }

    pub fn matching_ids(&self, filter: &protocol::Filter) -> Vec<PointId> {
        self.points
            .iter()
            .filter(|(id, loc)| {
                self.segment(loc.seg)
                    .is_some_and(|s| filter.matches(**id, s.payloads[loc.off as usize].as_ref()))
            })
            .map(|(id, _)| *id)
            .collect()
    }
}
