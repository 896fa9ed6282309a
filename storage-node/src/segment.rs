//! A segment: a batch of points with their vectors, payloads, versions and
//! an index over them. Points are addressed by offset; a deleted or
//! replaced point stays in place as a tombstone (its bit in `alive` is
//! clear) until compaction rewrites the segment.
//!
//! ```text
//!   Growing ──(full)──▶ Frozen ──(ANN built in background)──▶ Sealed
//!   appends,             no appends, still                     HNSW / IVF,
//!   flat index           searched exactly                      persisted
//! ```

use protocol::{Distance, Filter, Payload, PayloadIndexes, PointId, SeqNo};

use crate::ann::{AnnIndex, AnnKind, AnnParams};
pub use crate::bitmap::Bitmap;
use crate::error::Result;
use crate::payload_index::PayloadIndexCache;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentState {
    Growing,
    Frozen,
    Sealed,
}

pub struct Segment {
    pub id: u64,
    pub dim: usize,
    pub state: SegmentState,
    /// Points of this segment were inserted by operations after this one.
    pub created_after: SeqNo,
    pub ids: Vec<PointId>,
    pub versions: Vec<u64>,
    pub vectors: Vec<f32>,
    pub payloads: Vec<Option<Payload>>,
    pub alive: Bitmap,
    pub index: AnnIndex,
    /// Built on the first filtered read (see [`crate::payload_index`]).
    pub payload_index: PayloadIndexCache,
}

/// Below this many candidates a filtered search scans them exactly: a
/// graph walk through a sparse filter is both slower and less accurate.
const EXACT_SCAN_MAX: usize = 5_000;

/// How one segment is searched.
#[derive(Clone, Copy, Debug)]
pub struct SegmentQuery<'a> {
    pub vector: &'a [f32],
    pub k: usize,
    pub filter: Option<&'a Filter>,
    /// The collection's declared payload indexes (narrow `filter`).
    pub indexes: &'a PayloadIndexes,
    pub exact: bool,
    pub params: AnnParams,
    pub distance: Distance,
}

impl Segment {
    pub fn new_growing(
        id: u64,
        dim: usize,
        distance: Distance,
        created_after: SeqNo,
    ) -> Result<Self> {
        Ok(Self {
            id,
            dim,
            state: SegmentState::Growing,
            created_after,
            ids: Vec::new(),
            versions: Vec::new(),
            vectors: Vec::new(),
            payloads: Vec::new(),
            alive: Bitmap::default(),
            index: AnnIndex::flat(dim, distance)?,
            payload_index: PayloadIndexCache::default(),
        })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn live(&self) -> usize {
        self.alive.count_ones()
    }

    pub fn vector(&self, offset: usize) -> &[f32] {
        &self.vectors[offset * self.dim..(offset + 1) * self.dim]
    }

    /// Appends a point (growing segments only); returns its offset.
    pub fn push(
        &mut self,
        id: PointId,
        vector: &[f32],
        payload: Option<Payload>,
        version: SeqNo,
    ) -> Result<usize> {
        self.index.add(vector)?;
        self.ids.push(id);
        self.versions.push(version.0);
        self.vectors.extend_from_slice(vector);
        let off = self.ids.len() - 1;
        self.payload_index.note(off, payload.as_ref());
        self.payloads.push(payload);
        self.alive.push(true);
        Ok(off)
    }

    /// Offsets of live points that pass `filter`. With payload indexes
    /// declared, only the offsets they leave are tested (the same answer,
    /// see [`crate::payload_index`]).
    pub fn matching(&self, filter: &Filter, indexes: &PayloadIndexes) -> Bitmap {
        let candidates = self
            .payload_index
            .get(indexes, &self.payloads)
            .and_then(|idx| idx.candidates(filter));
        let mut out = Bitmap::with_len(self.len(), false);
        let test = |i: usize| filter.matches(self.ids[i], self.payloads[i].as_ref());
        match candidates {
            Some(c) => {
                for i in c.iter_ones().filter(|&i| self.alive.get(i)) {
                    out.set(i, test(i));
                }
            }
            None => {
                for i in self.alive.iter_ones() {
                    out.set(i, test(i));
                }
            }
        }
        out
    }

    /// Top-`k` (raw FAISS score, offset), best first. Never returns fewer
    /// than `min(k, candidates)` hits: when the ANN index comes back short
    /// (a restrictive filter, many tombstones) the candidates are scanned
    /// exactly instead.
    pub fn search(&self, q: &SegmentQuery<'_>) -> Result<Vec<(f32, usize)>> {
        let filtered;
        let allowed: Option<&Bitmap> = match q.filter {
            Some(f) => {
                filtered = self.matching(f, q.indexes);
                Some(&filtered)
            }
            None if self.live() < self.len() => Some(&self.alive),
            None => None,
        };
        let candidates = allowed.map_or(self.len(), Bitmap::count_ones);
        if candidates == 0 {
            return Ok(Vec::new());
        }
        let want = q.k.min(candidates);
        let is_flat = self.index.kind() == AnnKind::Flat;
        let sparse =
            q.filter.is_some() && (candidates <= EXACT_SCAN_MAX || candidates * 10 < self.len());
        if !is_flat && (q.exact || sparse) {
            return Ok(self.scan(q, allowed));
        }
        let hits = self
            .index
            .search(q.vector, q.k, allowed.map(Bitmap::as_bytes), q.params)?;
        if hits.len() >= want {
            return Ok(hits);
        }
        tracing::debug!(
            segment = self.id,
            got = hits.len(),
            want,
            "ANN search came back short; scanning exactly"
        );
        Ok(self.scan(q, allowed))
    }

    /// Exact search over the allowed offsets (all when `None`).
    fn scan(&self, q: &SegmentQuery<'_>, allowed: Option<&Bitmap>) -> Vec<(f32, usize)> {
        let score = |i: usize| raw_score(q.distance, q.vector, self.vector(i));
        let mut all: Vec<(f32, usize)> = match allowed {
            Some(b) => b.iter_ones().map(|i| (score(i), i)).collect(),
            None => (0..self.len()).map(|i| (score(i), i)).collect(),
        };
        sort_best_first(q.distance, &mut all);
        all.truncate(q.k);
        all
    }
}

/// The score FAISS would give: inner product, or squared L2 distance.
pub fn raw_score(distance: Distance, a: &[f32], b: &[f32]) -> f32 {
    match distance {
        Distance::Cosine | Distance::Dot => a.iter().zip(b).map(|(x, y)| x * y).sum(),
        Distance::Euclid => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum(),
    }
}

/// Sorts raw scores best first (higher inner product, lower L2); ties by offset.
pub fn sort_best_first<T: Ord + Copy>(distance: Distance, hits: &mut [(f32, T)]) {
    let higher = distance.higher_is_better();
    hits.sort_by(|a, b| {
        let ord = a.0.total_cmp(&b.0);
        let ord = if higher { ord.reverse() } else { ord };
        ord.then(a.1.cmp(&b.1))
    });
}

/// Normalises in place for cosine; zero vectors stay zero.
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn bitmap_matches_a_vec_of_bools(ops in proptest::collection::vec((0usize..100, any::<bool>()), 0..200), init in 0usize..100) {
            let mut b = Bitmap::with_len(init, true);
            let mut model = vec![true; init];
            for (i, v) in ops {
                if i >= model.len() {
                    b.push(v);
                    model.push(v);
                } else {
                    b.set(i, v);
                    model[i] = v;
                }
            }
            prop_assert_eq!(b.count_ones(), model.iter().filter(|x| **x).count());
            for (i, v) in model.iter().enumerate() {
                prop_assert_eq!(b.get(i), *v);
            }
            let again = Bitmap::from_bytes(b.as_bytes().to_vec(), b.len()).unwrap();
            prop_assert_eq!(again, b);
        }
    }
}
