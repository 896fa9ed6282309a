//! Pure logic over payload values: reading a key path, `order_by` (sort
//! and merge by a payload number), facet counts and group-by assembly,
//! as Qdrant (and `qdrant-client`'s local mode) define them.

use std::collections::{BTreeMap, HashMap, HashSet};

use protocol::{Payload, PointId};
use serde_json::{Number, Value};

/// The values a dotted key selects (`a.b`; `a[].b` and `a[0].b` read
/// array elements); an array at the end of the path gives its elements.
/// Empty when the key is absent.
pub fn values_by_key<'a>(payload: &'a Payload, key: &str) -> Vec<&'a Value> {
    let mut current: Vec<&Value> = Vec::new();
    let mut parts = key.split('.');
    let Some(first) = parts.next() else {
        return current;
    };
    let (name, index) = split_index(first);
    if let Some(v) = payload.get(name) {
        current.extend(apply_index(v, index));
    }
    for part in parts {
        let (name, index) = split_index(part);
        let mut next = Vec::new();
        for v in current {
            let objects: Vec<&Value> = match v {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            for o in objects {
                if let Some(inner) = o.get(name) {
                    next.extend(apply_index(inner, index));
                }
            }
        }
        current = next;
    }
    current
        .into_iter()
        .flat_map(|v| match v {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        })
        .collect()
}

/// `name[]` → all elements, `name[3]` → one, `name` → the value.
fn split_index(part: &str) -> (&str, Option<Option<usize>>) {
    match part.find('[') {
        Some(i) if part.ends_with(']') => {
            let inner = &part[i + 1..part.len() - 1];
            (&part[..i], Some(inner.parse().ok()))
        }
        _ => (part, None),
    }
}

fn apply_index(v: &Value, index: Option<Option<usize>>) -> Vec<&Value> {
    match (index, v) {
        (None, v) => vec![v],
        (Some(None), Value::Array(items)) => items.iter().collect(),
        (Some(Some(i)), Value::Array(items)) => items.get(i).into_iter().collect(),
        (Some(_), _) => Vec::new(),
    }
}

/// An `order_by` value: a payload number (booleans and strings do not
/// order). Kept as the JSON number for the answer's `order_value`.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderValue(pub Number);

impl OrderValue {
    pub fn of(v: &Value) -> Option<OrderValue> {
        match v {
            Value::Number(n) => Some(OrderValue(n.clone())),
            _ => None,
        }
    }

    fn as_f64(&self) -> f64 {
        self.0.as_f64().unwrap_or(f64::NAN)
    }

    /// Integers compare exactly (an `i64` does not fit an `f64`).
    pub fn order(&self, other: &OrderValue) -> std::cmp::Ordering {
        match (self.0.as_i64(), other.0.as_i64()) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self.as_f64().total_cmp(&other.as_f64()),
        }
    }
}

/// `order_by`'s direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

/// One entry of an `order_by` answer: a point repeated once per distinct
/// value it holds under the key, as in Qdrant.
#[derive(Clone, Debug, PartialEq)]
pub struct Ordered {
    pub value: OrderValue,
    pub id: PointId,
}

/// Each point's `(value, id)` entries, sorted by value in `direction`
/// (ties by id ascending), from `start_from` on (inclusive), at most
/// `limit`. The input may come in any order and from any number of shards:
/// the result is the one a single collection gives.
pub fn order_by(
    points: impl IntoIterator<Item = (PointId, Vec<OrderValue>)>,
    direction: Direction,
    start_from: Option<&OrderValue>,
    limit: usize,
) -> Vec<Ordered> {
    let mut all: Vec<Ordered> = Vec::new();
    for (id, values) in points {
        let mut seen: Vec<OrderValue> = Vec::new();
        for value in values {
            if seen.iter().any(|s| s.order(&value).is_eq()) {
                continue;
            }
            let keep = match (start_from, direction) {
                (None, _) => true,
                (Some(s), Direction::Asc) => value.order(s).is_ge(),
                (Some(s), Direction::Desc) => value.order(s).is_le(),
            };
            if keep {
                seen.push(value.clone());
                all.push(Ordered { value, id });
            }
        }
    }
    all.sort_by(|a, b| {
        let by_value = a.value.order(&b.value);
        let by_value = match direction {
            Direction::Asc => by_value,
            Direction::Desc => by_value.reverse(),
        };
        by_value.then_with(|| a.id.cmp(&b.id))
    });
    all.truncate(limit);
    all
}

/// A facet value: Qdrant counts strings, integers and booleans.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FacetValue {
    Bool(bool),
    Int(i64),
    Str(String),
}

impl FacetValue {
    fn of(v: &Value) -> Option<FacetValue> {
        match v {
            Value::Bool(b) => Some(FacetValue::Bool(*b)),
            Value::Number(n) => n.as_i64().map(FacetValue::Int),
            Value::String(s) => Some(FacetValue::Str(s.clone())),
            _ => None,
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            FacetValue::Bool(b) => Value::Bool(*b),
            FacetValue::Int(i) => Value::from(*i),
            FacetValue::Str(s) => Value::String(s.clone()),
        }
    }
}

/// Adds one point's values under `key` to `counts` (each distinct value
/// of a point once). Counts from several shards add up, since shards hold
/// disjoint points.
pub fn count_facet(counts: &mut HashMap<FacetValue, u64>, payload: &Payload, key: &str) {
    let distinct: HashSet<FacetValue> = values_by_key(payload, key)
        .into_iter()
        .filter_map(FacetValue::of)
        .collect();
    for v in distinct {
        *counts.entry(v).or_insert(0) += 1;
    }
}

/// The `limit` most frequent values, by count descending then value.
pub fn top_facets(counts: HashMap<FacetValue, u64>, limit: usize) -> Vec<(FacetValue, u64)> {
    let mut hits: Vec<(FacetValue, u64)> = counts.into_iter().collect();
    hits.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    hits.truncate(limit);
    hits
}

/// A group id: a string or integer payload value (Qdrant's `GroupId`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupId {
    Int(i64),
    Str(String),
}

impl GroupId {
    pub fn to_json(&self) -> Value {
        match self {
            GroupId::Int(i) => Value::from(*i),
            GroupId::Str(s) => Value::String(s.clone()),
        }
    }
}

/// The groups a point joins: its distinct values under `key`, in payload
/// order. A point holding any value that cannot be a group id (a float, a
/// bool, an object) joins none, as in Qdrant.
pub fn group_ids(payload: &Payload, key: &str) -> Vec<GroupId> {
    let mut out: Vec<GroupId> = Vec::new();
    for v in values_by_key(payload, key) {
        let id = match v {
            Value::String(s) => GroupId::Str(s.clone()),
            Value::Number(n) => match n.as_i64() {
                Some(i) => GroupId::Int(i),
                None => return Vec::new(),
            },
            _ => return Vec::new(),
        };
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// Groups built from hits taken best first.
#[derive(Clone, Debug, PartialEq)]
pub struct Grouped {
    /// Groups in order of their best hit; each holds hit indices.
    pub groups: Vec<(GroupId, Vec<usize>)>,
    /// Whether more hits could still change the answer: fewer than
    /// `limit` groups, or one of the first `limit` not full.
    pub incomplete: bool,
}

/// Assigns `hits` (best first: each hit's group ids) to groups in order
/// of first appearance, at most `group_size` hits each, and keeps the
/// first `limit` groups. With `limit` groups all full, later hits cannot
/// change them, so a prefix of the ranked list suffices.
pub fn assemble_groups(hits: &[Vec<GroupId>], limit: usize, group_size: usize) -> Grouped {
    let mut order: Vec<GroupId> = Vec::new();
    let mut members: BTreeMap<GroupId, Vec<usize>> = BTreeMap::new();
    for (i, ids) in hits.iter().enumerate() {
        for g in ids {
            let m = members.entry(g.clone()).or_insert_with(|| {
                order.push(g.clone());
                Vec::new()
            });
            if m.len() < group_size {
                m.push(i);
            }
        }
    }
    order.truncate(limit);
    let groups: Vec<(GroupId, Vec<usize>)> = order
        .into_iter()
        .map(|g| {
            let m = members.remove(&g).unwrap_or_default();
            (g, m)
        })
        .collect();
    let incomplete = groups.len() < limit || groups.iter().any(|(_, m)| m.len() < group_size);
    Grouped { groups, incomplete }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn payload(v: Value) -> Payload {
        match v {
            Value::Object(m) => m,
            _ => Payload::new(),
        }
    }

    #[test]
    fn key_paths() {
        let p = payload(json!({"a": {"b": [1, 2]}, "c": [{"d": "x"}, {"d": "y"}], "e": 5}));
        assert_eq!(values_by_key(&p, "a.b"), vec![&json!(1), &json!(2)]);
        assert_eq!(values_by_key(&p, "c[].d"), vec![&json!("x"), &json!("y")]);
        assert_eq!(values_by_key(&p, "c[1].d"), vec![&json!("y")]);
        assert_eq!(values_by_key(&p, "c.d"), vec![&json!("x"), &json!("y")]);
        assert_eq!(values_by_key(&p, "e"), vec![&json!(5)]);
        assert!(values_by_key(&p, "missing").is_empty());
    }

    #[test]
    fn groups_and_facets() {
        let p = payload(json!({"g": [1, "a", 1]}));
        assert_eq!(
            group_ids(&p, "g"),
            vec![GroupId::Int(1), GroupId::Str("a".into())]
        );
        assert!(group_ids(&payload(json!({"g": [1, true]})), "g").is_empty());
        assert!(group_ids(&payload(json!({"g": 1.5})), "g").is_empty());
        let mut counts = HashMap::new();
        count_facet(&mut counts, &payload(json!({"k": ["x", "x", "y"]})), "k");
        count_facet(&mut counts, &payload(json!({"k": "y"})), "k");
        let top = top_facets(counts, 10);
        assert_eq!(
            top,
            vec![
                (FacetValue::Str("y".into()), 2),
                (FacetValue::Str("x".into()), 1)
            ]
        );
    }

    #[test]
    fn grouping_stops_when_full() {
        let g = |i: i64| vec![GroupId::Int(i)];
        let hits = vec![g(1), g(2), g(1), g(3), g(2), g(1)];
        let out = assemble_groups(&hits, 2, 2);
        assert_eq!(
            out.groups,
            vec![(GroupId::Int(1), vec![0, 2]), (GroupId::Int(2), vec![1, 4])]
        );
        assert!(!out.incomplete);
        assert!(assemble_groups(&hits[..3], 2, 2).incomplete);
    }

    fn arb_points() -> impl Strategy<Value = Vec<(u64, Vec<i64>)>> {
        prop::collection::btree_map(0u64..200, prop::collection::vec(-20i64..20, 0..3), 0..60)
            .prop_map(|m| m.into_iter().collect())
    }

    proptest! {
        /// Ordering the points of several shards and merging their
        /// ordered runs equals ordering them all at once.
        #[test]
        fn order_by_merge_equals_global_order(
            points in arb_points(),
            shards in 1usize..4,
            limit in 1usize..40,
            desc in any::<bool>(),
            start in prop::option::of(-20i64..20),
        ) {
            let dir = if desc { Direction::Desc } else { Direction::Asc };
            let start = start.map(|s| OrderValue(s.into()));
            let as_input = |ps: &[(u64, Vec<i64>)]| -> Vec<(PointId, Vec<OrderValue>)> {
                ps.iter()
                    .map(|(id, vs)| (PointId::Num(*id), vs.iter().map(|v| OrderValue((*v).into())).collect()))
                    .collect()
            };
            let global = order_by(as_input(&points), dir, start.as_ref(), limit);
            let mut runs = Vec::new();
            for s in 0..shards {
                let mine: Vec<_> = points.iter().filter(|(id, _)| (*id as usize) % shards == s).cloned().collect();
                runs.extend(order_by(as_input(&mine), dir, start.as_ref(), limit));
            }
            let merged = order_by(
                runs.into_iter().map(|o| (o.id, vec![o.value])),
                dir,
                start.as_ref(),
                limit,
            );
            prop_assert_eq!(&merged, &global);
            // Sorted in the asked direction, and from `start_from` on.
            for w in global.windows(2) {
                let c = w[0].value.order(&w[1].value);
                let sorted = if desc { c.is_ge() } else { c.is_le() };
                prop_assert!(sorted);
            }
        }

        /// Groups from a prefix that is complete equal groups from all hits.
        #[test]
        fn a_complete_prefix_gives_the_final_groups(
            hits in prop::collection::vec(prop::collection::vec(0i64..8, 1..3), 0..80),
            limit in 1usize..5,
            size in 1usize..4,
            cut in 0usize..80,
        ) {
            let hits: Vec<Vec<GroupId>> = hits
                .into_iter()
                .map(|v| {
                    let mut out: Vec<GroupId> = Vec::new();
                    for g in v.into_iter().map(GroupId::Int) {
                        if !out.contains(&g) { out.push(g); }
                    }
                    out
                })
                .collect();
            let all = assemble_groups(&hits, limit, size);
            let prefix = assemble_groups(&hits[..cut.min(hits.len())], limit, size);
            if !prefix.incomplete {
                prop_assert_eq!(prefix.groups, all.groups);
            }
        }
    }
}
