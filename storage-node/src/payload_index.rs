//! Payload indexes of one segment: for each declared key, postings from
//! the values found there to the offsets holding them.
//!
//! An index only narrows: [`SegmentPayloadIndex::candidates`] returns a
//! superset of the offsets a filter can match (or `None` when no index
//! answers any of its conditions), and the caller still tests the whole
//! filter on each candidate. So a filtered read gives exactly what a scan
//! gives, whatever the index holds; postings are only ever added (a payload
//! changed in place adds its new values, the old ones stay until the
//! segment is rewritten), which keeps the superset true without removals.
//!
//! Built lazily per segment on the first filtered read after the declared
//! set changes ([`PayloadIndexCache`]), from the payloads in memory: a new
//! replica or a restart needs nothing on disk.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use protocol::filter::{
    parse_datetime, point_of, tokenize, values_at, Condition, FieldCondition, Filter, Match,
    MatchValue, RangeInterface,
};
use protocol::{Payload, PayloadIndexes, PayloadSchemaType};
use serde_json::Value;

use crate::bitmap::Bitmap;

/// Postings: value → offsets, in insertion order (possibly repeated).
type Postings<K> = BTreeMap<K, Vec<u32>>;

#[derive(Debug, Default)]
enum FieldIndex {
    /// Keyword and uuid (lowercased) strings.
    Strings(HashMap<String, Vec<u32>>),
    /// Integer and float: every number by its `f64` value (what a range
    /// tests), and the exact integers (what `match` tests).
    Numbers {
        all: Postings<OrdF64>,
        ints: Postings<i64>,
    },
    Bools([Vec<u32>; 2]),
    /// Datetime strings, in microseconds.
    Times(Postings<i64>),
    /// Geo points by latitude: every geo condition bounds the latitude.
    Geo(Postings<OrdF64>),
    /// Words of strings (see `protocol::filter::tokenize`).
    Words(HashMap<String, Vec<u32>>),
    #[default]
    Empty,
}

/// An `f64` with a total order (by `total_cmp`), for `BTreeMap` keys.
#[derive(Clone, Copy, Debug)]
struct OrdF64(f64);

impl OrdF64 {
    /// `-0.0` and `0.0` compare equal as numbers, so they share a key.
    fn key(x: f64) -> Self {
        OrdF64(if x == 0.0 { 0.0 } else { x })
    }
}

impl PartialEq for OrdF64 {
    fn eq(&self, o: &Self) -> bool {
        self.0.total_cmp(&o.0).is_eq()
    }
}
impl Eq for OrdF64 {}
impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for OrdF64 {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0)
    }
}

pub struct SegmentPayloadIndex {
    specs: PayloadIndexes,
    fields: BTreeMap<String, (PayloadSchemaType, FieldIndex)>,
    len: usize,
}

impl SegmentPayloadIndex {
    pub fn build(specs: &PayloadIndexes, payloads: &[Option<Payload>]) -> Self {
        let mut idx = Self {
            specs: specs.clone(),
            fields: specs
                .iter()
                .map(|(k, s)| (k.clone(), (s.data_type, empty(s.data_type))))
                .collect(),
            len: 0,
        };
        for (off, p) in payloads.iter().enumerate() {
            idx.add(off, p.as_ref());
        }
        idx
    }

    /// Records the values of the payload now at `off` (a new point, or a
    /// payload changed in place).
    pub fn add(&mut self, off: usize, payload: Option<&Payload>) {
        self.len = self.len.max(off + 1);
        let o = off as u32;
        for (key, (_, index)) in self.fields.iter_mut() {
            for v in values_at(payload, key, true) {
                index.add(o, v);
            }
        }
    }

    /// Offsets that hold a value `key`'s index took (for `payload_schema`'s
    /// `points`), among `alive`.
    pub fn points_with_values(&self, key: &str, alive: &Bitmap) -> u64 {
        let Some((_, index)) = self.fields.get(key) else {
            return 0;
        };
        let mut seen = Bitmap::with_len(alive.len(), false);
        index.for_each_posting(|o| {
            if alive.get(o as usize) {
                seen.set(o as usize, true);
            }
        });
        seen.count_ones() as u64
    }

    /// A superset of the offsets that can pass `filter`, or `None` when no
    /// index narrows it.
    pub fn candidates(&self, filter: &Filter) -> Option<Bitmap> {
        let mut out: Option<Bitmap> = None;
        let mut narrow = |b: Bitmap| {
            out = Some(match out.take() {
                Some(a) => a.and(&b),
                None => b,
            })
        };
        for c in &filter.must {
            if let Some(b) = self.condition(c) {
                narrow(b);
            }
        }
        if !filter.should.is_empty() {
            // Only when every alternative is narrowed.
            let all: Option<Vec<Bitmap>> =
                filter.should.iter().map(|c| self.condition(c)).collect();
            if let Some(bs) = all {
                narrow(bs.into_iter().fold(self.none(), |a, b| a.or(&b)));
            }
        }
        out
    }

    fn none(&self) -> Bitmap {
        Bitmap::with_len(self.len, false)
    }

    fn condition(&self, c: &Condition) -> Option<Bitmap> {
        match c {
            Condition::Field(f) => self.field(f),
            Condition::Filter(f) => self.candidates(f),
            _ => None,
        }
    }

    fn field(&self, f: &FieldCondition) -> Option<Bitmap> {
        let (_, index) = self.fields.get(&f.key)?;
        let mut out = self.none();
        let mut hit = |offs: &[u32]| offs.iter().for_each(|o| out.set(*o as usize, true));
        let answered = index.lookup(f, &mut hit);
        answered.then_some(out)
    }
}

fn empty(t: PayloadSchemaType) -> FieldIndex {
    match t {
        PayloadSchemaType::Keyword | PayloadSchemaType::Uuid => FieldIndex::Strings(HashMap::new()),
        PayloadSchemaType::Integer | PayloadSchemaType::Float => FieldIndex::Numbers {
            all: BTreeMap::new(),
            ints: BTreeMap::new(),
        },
        PayloadSchemaType::Bool => FieldIndex::Bools([Vec::new(), Vec::new()]),
        PayloadSchemaType::Datetime => FieldIndex::Times(BTreeMap::new()),
        PayloadSchemaType::Geo => FieldIndex::Geo(BTreeMap::new()),
        PayloadSchemaType::Text => FieldIndex::Words(HashMap::new()),
    }
}

/// Degrees of latitude a distance in meters spans at most (one more
/// millionth of a degree for rounding).
fn lat_span_deg(meters: f64) -> f64 {
    (meters / 6_371_008.8).to_degrees() + 1e-6
}

impl FieldIndex {
    fn add(&mut self, o: u32, v: &Value) {
        match (self, v) {
            (FieldIndex::Strings(m), Value::String(s)) => {
                m.entry(s.to_lowercase()).or_default().push(o)
            }
            (FieldIndex::Numbers { all, ints }, Value::Number(n)) => {
                if let Some(x) = n.as_f64() {
                    all.entry(OrdF64::key(x)).or_default().push(o);
                }
                if let Some(i) = n.as_i64() {
                    ints.entry(i).or_default().push(o);
                }
            }
            (FieldIndex::Bools(b), Value::Bool(x)) => b[usize::from(*x)].push(o),
            (FieldIndex::Times(m), Value::String(s)) => {
                if let Some(t) = parse_datetime(s) {
                    m.entry(t).or_default().push(o);
                }
            }
            (FieldIndex::Geo(m), v) => {
                if let Some(p) = point_of(v) {
                    m.entry(OrdF64::key(p.lat)).or_default().push(o);
                }
            }
            (FieldIndex::Words(m), Value::String(s)) => {
                for w in tokenize(s) {
                    m.entry(w).or_default().push(o);
                }
            }
            _ => {}
        }
    }

    fn for_each_posting(&self, mut f: impl FnMut(u32)) {
        let mut each = |offs: &Vec<u32>| offs.iter().for_each(|o| f(*o));
        match self {
            FieldIndex::Strings(m) | FieldIndex::Words(m) => m.values().for_each(&mut each),
            FieldIndex::Numbers { all, .. } | FieldIndex::Geo(all) => {
                all.values().for_each(&mut each)
            }
            FieldIndex::Times(m) => m.values().for_each(&mut each),
            FieldIndex::Bools(b) => b.iter().for_each(&mut each),
            FieldIndex::Empty => {}
        }
    }

    /// Calls `hit` with every posting list that can hold a match of `f`;
    /// `false` when this index cannot answer `f` (then nothing is known).
    fn lookup(&self, f: &FieldCondition, hit: &mut dyn FnMut(&[u32])) -> bool {
        let values = |m: &Match| -> Option<Vec<MatchValue>> {
            match m {
                Match::Value { value } => Some(vec![value.clone()]),
                Match::Any { any } => Some(any.clone()),
                _ => None,
            }
        };
        match self {
            FieldIndex::Strings(m) => {
                let Some(vs) = f.r#match.as_ref().and_then(values) else {
                    return false;
                };
                let mut keys = Vec::new();
                for v in vs {
                    let MatchValue::Keyword(s) = v else {
                        return false;
                    };
                    keys.push(s.to_lowercase());
                }
                keys.iter().filter_map(|k| m.get(k)).for_each(|p| hit(p));
                true
            }
            FieldIndex::Numbers { all, ints } => {
                if let Some(RangeInterface::Float(r)) = &f.range {
                    let lo =
                        r.gt.into_iter()
                            .chain(r.gte)
                            .fold(f64::NEG_INFINITY, f64::max);
                    let hi = r.lt.into_iter().chain(r.lte).fold(f64::INFINITY, f64::min);
                    if lo <= hi {
                        let range = (
                            Bound::Included(OrdF64::key(lo)),
                            Bound::Included(OrdF64::key(hi)),
                        );
                        all.range(range).for_each(|(_, p)| hit(p));
                    }
                    return true;
                }
                let Some(vs) = f.r#match.as_ref().and_then(values) else {
                    return false;
                };
                let mut keys = Vec::new();
                for v in vs {
                    let MatchValue::Integer(i) = v else {
                        return false;
                    };
                    keys.push(i);
                }
                keys.iter().filter_map(|k| ints.get(k)).for_each(|p| hit(p));
                true
            }
            FieldIndex::Bools(b) => {
                let Some(vs) = f.r#match.as_ref().and_then(values) else {
                    return false;
                };
                let mut keys = Vec::new();
                for v in vs {
                    let MatchValue::Bool(x) = v else { return false };
                    keys.push(x);
                }
                keys.iter().for_each(|x| hit(&b[usize::from(*x)]));
                true
            }
            FieldIndex::Times(m) => {
                let Some(RangeInterface::DateTime(r)) = &f.range else {
                    return false;
                };
                let lo = [&r.gt, &r.gte]
                    .into_iter()
                    .flatten()
                    .map(|b| b.micros())
                    .max();
                let hi = [&r.lt, &r.lte]
                    .into_iter()
                    .flatten()
                    .map(|b| b.micros())
                    .min();
                let (lo, hi) = (lo.unwrap_or(i64::MIN), hi.unwrap_or(i64::MAX));
                if lo <= hi {
                    m.range(lo..=hi).for_each(|(_, p)| hit(p));
                }
                true
            }
            FieldIndex::Geo(m) => {
                let band = if let Some(r) = &f.geo_radius {
                    let span = lat_span_deg(r.radius);
                    (r.center.lat - span, r.center.lat + span)
                } else if let Some(b) = &f.geo_bounding_box {
                    (b.bottom_right.lat, b.top_left.lat)
                } else if let Some(p) = &f.geo_polygon {
                    let lats = p.exterior.points.iter().map(|p| p.lat);
                    let lo = lats.clone().fold(f64::INFINITY, f64::min);
                    (lo, lats.fold(f64::NEG_INFINITY, f64::max))
                } else {
                    return false;
                };
                if band.0 <= band.1 {
                    let range = (
                        Bound::Included(OrdF64::key(band.0)),
                        Bound::Included(OrdF64::key(band.1)),
                    );
                    m.range(range).for_each(|(_, p)| hit(p));
                }
                true
            }
            FieldIndex::Words(m) => {
                let (query, all) = match &f.r#match {
                    Some(Match::Text { text }) => (text, true),
                    Some(Match::Phrase { phrase }) => (phrase, true),
                    Some(Match::TextAny { text_any }) => (text_any, false),
                    _ => return false,
                };
                let words = tokenize(query);
                if all {
                    // The rarest word's postings: a superset of the intersection.
                    let rarest = words
                        .iter()
                        .map(|w| m.get(w).map_or(&[][..], Vec::as_slice))
                        .min_by_key(|p| p.len());
                    if let Some(p) = rarest {
                        hit(p);
                    }
                } else {
                    words.iter().filter_map(|w| m.get(w)).for_each(|p| hit(p));
                }
                true
            }
            FieldIndex::Empty => false,
        }
    }
}

/// A segment's payload index, built on first use for the declared set it
/// is asked with and rebuilt when that set changes.
#[derive(Default)]
pub struct PayloadIndexCache(parking_lot::Mutex<Option<Arc<SegmentPayloadIndex>>>);

impl PayloadIndexCache {
    /// The index for `specs` over `payloads`; `None` when nothing is
    /// declared.
    pub fn get(
        &self,
        specs: &PayloadIndexes,
        payloads: &[Option<Payload>],
    ) -> Option<Arc<SegmentPayloadIndex>> {
        if specs.is_empty() {
            return None;
        }
        let mut slot = self.0.lock();
        match &*slot {
            Some(idx) if idx.specs == *specs => Some(idx.clone()),
            _ => {
                let idx = Arc::new(SegmentPayloadIndex::build(specs, payloads));
                *slot = Some(idx.clone());
                Some(idx)
            }
        }
    }

    /// Keeps a built index up to date with the payload now at `off`.
    /// Writers hold the shard's state exclusively, so no reader shares the
    /// index; if one somehow does, the index is dropped and rebuilt later.
    pub fn note(&mut self, off: usize, payload: Option<&Payload>) {
        let slot = self.0.get_mut();
        if let Some(arc) = slot {
            match Arc::get_mut(arc) {
                Some(idx) => idx.add(off, payload),
                None => *slot = None,
            }
        }
    }
}
