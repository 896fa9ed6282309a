//! Reads: search, get, scroll, count, snapshots and content checksums.
//! All run under the shared half of the state lock, concurrently with
//! each other.

use protocol::search::MAX_SEARCH_HITS;
use protocol::{
    CountRequest, Distance, Point, PointId, Record, ScoredPoint, ScrollRequest, ScrollResponse,
    SearchRequest, SeqNo, ValidationError,
};
use serde::{Deserialize, Serialize};

use super::state::{Loc, State};
use super::Shard;
use crate::ann::AnnParams;
use crate::error::Result;
use crate::segment::{normalize, sort_best_first, SegmentQuery};

/// About how many points an estimated count tests against its filter.
pub const COUNT_SAMPLE: usize = 4096;

/// A well-mixed 64-bit hash of an id (splitmix64's finaliser), cheap
/// enough to run over every id of a shard.
fn sample_hash(id: &PointId) -> u64 {
    let mut x = match id {
        PointId::Num(n) => *n,
        PointId::Uuid(u) => {
            let (hi, lo) = u.as_u64_pair();
            hi ^ lo.rotate_left(32)
        }
    };
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Every live point of a shard as of one sequence number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardSnapshot {
    pub seq: SeqNo,
    pub points: Vec<SnapshotPoint>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotPoint {
    pub point: Point,
    pub version: u64,
}

impl Shard {
    /// Top `limit` points after `offset`, best first, exactly as many as
    /// match when fewer do.
    pub fn search(&self, req: &SearchRequest) -> Result<Vec<ScoredPoint>> {
        let config = &self.inner.config;
        req.validate(config.dimension)?;
        let mut query = req.vector.clone();
        if config.distance == Distance::Cosine {
            normalize(&mut query);
        }
        let defaults = self.inner.default_params();
        let params = AnnParams {
            ef_search: req.params.hnsw_ef.unwrap_or(defaults.ef_search),
            nprobe: defaults.nprobe,
        };
        let k = req.offset + req.limit;
        let state = self.inner.state.read();
        let q = SegmentQuery {
            vector: &query,
            k,
            filter: req.filter.as_ref(),
            indexes: &state.payload_indexes,
            exact: req.params.exact,
            params,
            distance: config.distance,
        };
        let mut hits: Vec<(f32, (usize, usize))> = Vec::new();
        for (si, seg) in state.segments.iter().enumerate() {
            hits.extend(seg.search(&q)?.into_iter().map(|(s, off)| (s, (si, off))));
        }
        sort_best_first(config.distance, &mut hits);
        let to_score = |raw: f32| match config.distance {
            Distance::Euclid => raw.max(0.0).sqrt(),
            _ => raw,
        };
        Ok(hits
            .into_iter()
            .map(|(raw, loc)| (to_score(raw), loc))
            .filter(|(score, _)| {
                req.score_threshold
                    .is_none_or(|t| config.distance.passes_threshold(*score, t))
            })
            .skip(req.offset)
            .take(req.limit)
            .map(|(score, (si, off))| {
                let seg = &state.segments[si];
                ScoredPoint {
                    id: seg.ids[off],
                    version: seg.versions[off],
                    score,
                    payload: req
                        .with_payload
                        .then(|| seg.payloads[off].clone().unwrap_or_default()),
                    vector: req.with_vector.then(|| seg.vector(off).to_vec()),
                }
            })
            .collect())
    }

    /// The points among `ids` that exist, in the order asked.
    pub fn get(&self, ids: &[PointId], with_payload: bool, with_vector: bool) -> Vec<Record> {
        let state = self.inner.state.read();
        ids.iter()
            .filter_map(|id| {
                state
                    .points
                    .get(id)
                    .map(|loc| record(&state, *id, *loc, with_payload, with_vector))
            })
            .collect()
    }

    /// Points in id order from `offset`, with a cursor to the next page.
    pub fn scroll(&self, req: &ScrollRequest) -> Result<ScrollResponse> {
        if req.limit == 0 || req.limit > MAX_SEARCH_HITS {
            return Err(ValidationError::InvalidRequest {
                reason: format!("limit must be between 1 and {MAX_SEARCH_HITS}"),
            }
            .into());
        }
        if let Some(f) = &req.filter {
            f.validate()?;
        }
        let state = self.inner.state.read();
        let start = match req.offset {
            Some(id) => std::ops::Bound::Included(id),
            None => std::ops::Bound::Unbounded,
        };
        let passes = req.filter.as_ref().map(|f| state.filter_test(f));
        let mut matching = state
            .points
            .range((start, std::ops::Bound::Unbounded))
            .filter(|(id, loc)| passes.as_ref().is_none_or(|p| p(id, loc)));
        let points: Vec<Record> = matching
            .by_ref()
            .take(req.limit)
            .map(|(id, loc)| record(&state, *id, *loc, req.with_payload, req.with_vector))
            .collect();
        let next_page_offset = matching.next().map(|(id, _)| *id);
        Ok(ScrollResponse {
            points,
            next_page_offset,
        })
    }

    /// Number of live points passing the filter (all when none). With
    /// `estimate` and more than [`COUNT_SAMPLE`] points, the filter is
    /// tested on a sample of about that many points only (chosen by a hash
    /// of the id, so that no pattern in the ids biases it) and the count
    /// scaled up; the relative error is then about `1 / sqrt(matches in
    /// the sample)`.
    pub fn count(&self, req: &CountRequest) -> Result<usize> {
        let state = self.inner.state.read();
        let Some(f) = &req.filter else {
            return Ok(state.points.len());
        };
        f.validate()?;
        let total = state.points.len();
        let passes = state.filter_test(f);
        let matches = |(id, loc): &(&PointId, &Loc)| passes(id, loc);
        if !req.estimate || total <= COUNT_SAMPLE {
            return Ok(state.points.iter().filter(matches).count());
        }
        // Each point is in the sample with probability COUNT_SAMPLE / total.
        let cutoff = ((COUNT_SAMPLE as u128) << 64) / total as u128;
        let (mut sampled, mut matched) = (0usize, 0usize);
        for entry in state.points.iter() {
            if u128::from(sample_hash(entry.0)) < cutoff {
                sampled += 1;
                matched += usize::from(matches(&entry));
            }
        }
        Ok(if sampled == 0 {
            0
        } else {
            ((matched as f64) * (total as f64) / (sampled as f64)).round() as usize
        })
    }

    /// Every live point with its version, consistent as of the returned
    /// sequence number (writers wait while it is taken).
    pub fn snapshot(&self) -> ShardSnapshot {
        let _order = self.inner.write_lock.lock();
        let state = self.inner.state.read();
        let points = state
            .points
            .iter()
            .filter_map(|(id, loc)| {
                let seg = state.segment(loc.seg)?;
                let off = loc.off as usize;
                Some(SnapshotPoint {
                    point: Point {
                        id: *id,
                        vector: seg.vector(off).to_vec(),
                        payload: seg.payloads[off].clone(),
                    },
                    version: seg.versions[off],
                })
            })
            .collect();
        ShardSnapshot {
            seq: state.applied,
            points,
        }
    }

    /// Live points and their stored vector bytes: the load the
    /// meta-service's rebalancer evens out (payloads are not counted).
    pub fn load(&self) -> (u64, u64) {
        let points = self.inner.state.read().points.len() as u64;
        let dim = self.config().dimension as u64;
        (points, points * dim * std::mem::size_of::<f32>() as u64)
    }

    /// Order-independent digest of the live content (ids, vectors,
    /// payloads): replicas that applied the same operations agree on it.
    /// Kept up to date on every write, so this is cheap.
    pub fn content_checksum(&self) -> (usize, u64) {
        let state = self.inner.state.read();
        (state.points.len(), state.checksum)
    }

    /// The digest walked over every point (what [`Shard::content_checksum`]
    /// must equal; tests compare the two).
    pub fn recompute_checksum(&self) -> (usize, u64) {
        let state = self.inner.state.read();
        (state.points.len(), state.recompute_checksum())
    }

    /// Applied sequence number, its term, live points and checksum, all
    /// read at one moment.
    pub fn digest(&self) -> ShardDigest {
        let state = self.inner.state.read();
        ShardDigest {
            seq: state.applied,
            last_term: state.last_term,
            points: state.points.len() as u64,
            checksum: state.checksum,
        }
    }

    /// (points, checksum) right after operation `seq`, while it is among
    /// the last [`super::state::DIGEST_RING`] operations.
    pub fn digest_at(&self, seq: SeqNo) -> Option<(u64, u64)> {
        self.inner.state.read().digest_at(seq)
    }

    /// One page of a fuzzy snapshot: live points with ids after `after`,
    /// in id order, at most `max_points` and (beyond the first point) at
    /// most about `max_bytes`; and the id to continue after, `None` at the
    /// end. Each page is consistent; pages taken while writes continue
    /// reflect different moments, which replaying the WAL from the
    /// sequence number read before the first page makes whole (applying
    /// is idempotent over a suffix of the log, see `state.rs`).
    pub fn snapshot_page(
        &self,
        after: Option<PointId>,
        max_points: usize,
        max_bytes: usize,
    ) -> (Vec<SnapshotPoint>, Option<PointId>) {
        let state = self.inner.state.read();
        let range = match after {
            Some(id) => state
                .points
                .range((std::ops::Bound::Excluded(id), std::ops::Bound::Unbounded)),
            None => state.points.range(..),
        };
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut more = false;
        for (id, loc) in range {
            if out.len() >= max_points.max(1) || (!out.is_empty() && bytes >= max_bytes) {
                more = true;
                break;
            }
            let Some(seg) = state.segment(loc.seg) else {
                continue;
            };
            let off = loc.off as usize;
            let p = SnapshotPoint {
                point: Point {
                    id: *id,
                    vector: seg.vector(off).to_vec(),
                    payload: seg.payloads[off].clone(),
                },
                version: seg.versions[off],
            };
            bytes += p.approx_bytes();
            out.push(p);
        }
        let next = if more {
            out.last().map(|p| p.point.id)
        } else {
            None
        };
        (out, next)
    }
}

/// A replica's content summary at one sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardDigest {
    pub seq: SeqNo,
    pub last_term: protocol::Term,
    pub points: u64,
    pub checksum: u64,
}

impl SnapshotPoint {
    /// About what the point weighs on the wire (vector, id, version,
    /// payload as JSON): bounds chunks and paces the throttle.
    pub fn approx_bytes(&self) -> usize {
        let payload = self
            .point
            .payload
            .as_ref()
            .map_or(0, |p| serde_json::to_vec(p).map_or(0, |v| v.len()));
        self.point.vector.len() * 4 + 24 + payload
    }
}

fn record(state: &State, id: PointId, loc: Loc, with_payload: bool, with_vector: bool) -> Record {
    let seg = state.segment(loc.seg);
    let off = loc.off as usize;
    Record {
        id,
        payload: if with_payload {
            Some(
                seg.and_then(|s| s.payloads[off].clone())
                    .unwrap_or_default(),
            )
        } else {
            None
        },
        vector: if with_vector {
            seg.map(|s| s.vector(off).to_vec())
        } else {
            None
        },
    }
}
