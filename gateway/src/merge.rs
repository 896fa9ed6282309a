//! Pure merging of per-shard answers: the bounded top-k merge of search
//! hits and the id-ordered merge of scroll pages.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use protocol::{Distance, PointId, Record, ScoredPoint};

/// Total order "a ranks before b": better score first, then lower id (so
/// equal scores give one deterministic order on every gateway).
pub fn rank(distance: Distance, a: &ScoredPoint, b: &ScoredPoint) -> Ordering {
    let by_score = if distance.higher_is_better() {
        b.score.total_cmp(&a.score)
    } else {
        a.score.total_cmp(&b.score)
    };
    by_score.then_with(|| a.id.cmp(&b.id))
}

/// Heap entry ordered so that the heap's top is the *worst* kept hit.
struct Worst {
    hit: ScoredPoint,
    distance: Distance,
}

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        rank(self.distance, &self.hit, &other.hit)
    }
}

/// The best `k` hits of all `lists`, best first, in `O(n log k)` memory
/// bounded by `k`. Inputs need not be sorted; a point id appearing in more
/// than one list (it should not, shards are disjoint) is kept once, with
/// its best score.
pub fn merge_top_k(lists: Vec<Vec<ScoredPoint>>, k: usize, distance: Distance) -> Vec<ScoredPoint> {
    if k == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<Worst> = BinaryHeap::with_capacity(k + 1);
    for hit in lists.into_iter().flatten() {
        if heap.len() == k {
            let Some(worst) = heap.peek() else { break };
            if rank(distance, &hit, &worst.hit) != Ordering::Less {
                continue;
            }
        }
        heap.push(Worst { hit, distance });
        if heap.len() > k {
            heap.pop();
        }
    }
    let mut out: Vec<ScoredPoint> = heap.into_sorted_vec().into_iter().map(|w| w.hit).collect();
    let mut seen = std::collections::HashSet::new();
    out.retain(|h| seen.insert(h.id));
    out
}

/// One shard's scroll page.
#[derive(Clone, Debug, Default)]
pub struct ShardPage {
    pub points: Vec<Record>,
    pub next_page_offset: Option<PointId>,
}

/// Merges per-shard scroll pages (each in id order, each from the same
/// start id and with the same `limit`) into one page of at most `limit`
/// points in id order, and the cursor of the next page: the smallest id
/// not returned, among the points left over here and each shard's own
/// next offset.
pub fn merge_scroll(pages: Vec<ShardPage>, limit: usize) -> (Vec<Record>, Option<PointId>) {
    let shard_next = pages.iter().filter_map(|p| p.next_page_offset).min();
    let mut points: Vec<Record> = pages.into_iter().flat_map(|p| p.points).collect();
    points.sort_by_key(|r| r.id);
    points.dedup_by(|a, b| a.id == b.id);
    let leftover = points.get(limit).map(|r| r.id);
    points.truncate(limit);
    let next = match (leftover, shard_next) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    (points, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hit(id: u64, score: f32) -> ScoredPoint {
        ScoredPoint {
            id: PointId::Num(id),
            version: 0,
            score,
            payload: None,
            vector: None,
        }
    }

    fn rec(id: u64) -> Record {
        Record {
            id: PointId::Num(id),
            payload: None,
            vector: None,
        }
    }

    #[test]
    fn merges_both_orders() {
        let lists = vec![
            vec![hit(1, 0.9), hit(2, 0.5)],
            vec![hit(3, 0.95), hit(4, 0.1)],
            vec![],
        ];
        let top = merge_top_k(lists.clone(), 3, Distance::Cosine);
        let ids: Vec<_> = top.iter().map(|h| h.id).collect();
        assert_eq!(ids, vec![PointId::Num(3), PointId::Num(1), PointId::Num(2)]);
        let top = merge_top_k(lists, 2, Distance::Euclid);
        let ids: Vec<_> = top.iter().map(|h| h.id).collect();
        assert_eq!(ids, vec![PointId::Num(4), PointId::Num(2)]);
        assert!(merge_top_k(vec![vec![hit(1, 1.0)]], 0, Distance::Dot).is_empty());
    }

    #[test]
    fn scroll_cursor_is_the_smallest_unreturned_id() {
        // Shard A has 1,4,7,10..., shard B 2,3,5...; limit 3 from the start.
        let a = ShardPage {
            points: vec![rec(1), rec(4), rec(7)],
            next_page_offset: Some(PointId::Num(10)),
        };
        let b = ShardPage {
            points: vec![rec(2), rec(3), rec(5)],
            next_page_offset: Some(PointId::Num(6)),
        };
        let (points, next) = merge_scroll(vec![a, b], 3);
        let ids: Vec<_> = points.iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![PointId::Num(1), PointId::Num(2), PointId::Num(3)]);
        assert_eq!(next, Some(PointId::Num(4)));
        let end = ShardPage {
            points: vec![rec(8)],
            next_page_offset: None,
        };
        let (points, next) = merge_scroll(vec![end, ShardPage::default()], 3);
        assert_eq!(points.len(), 1);
        assert_eq!(next, None);
    }

    fn arb_lists() -> impl Strategy<Value = Vec<Vec<(u8, i16)>>> {
        prop::collection::vec(
            prop::collection::vec((any::<u8>(), any::<i16>()), 0..30),
            0..6,
        )
    }

    /// Unique ids across lists (shards are disjoint), scores in the list.
    fn build(lists: &[Vec<(u8, i16)>], distance: Distance) -> Vec<Vec<ScoredPoint>> {
        let mut seen = std::collections::HashSet::new();
        lists
            .iter()
            .enumerate()
            .map(|(s, l)| {
                let mut v: Vec<ScoredPoint> = l
                    .iter()
                    .filter(|(id, _)| seen.insert((*id as u64) * 10 + s as u64))
                    .map(|(id, sc)| hit((*id as u64) * 10 + s as u64, *sc as f32 / 7.0))
                    .collect();
                v.sort_by(|a, b| rank(distance, a, b));
                v
            })
            .collect()
    }

    proptest! {
        #[test]
        fn merge_equals_global_sort(lists in arb_lists(), k in 0usize..40, higher in any::<bool>()) {
            let distance = if higher { Distance::Dot } else { Distance::Euclid };
            let lists = build(&lists, distance);
            let mut all: Vec<ScoredPoint> = lists.iter().flatten().cloned().collect();
            all.sort_by(|a, b| rank(distance, a, b));
            all.truncate(k);
            prop_assert_eq!(merge_top_k(lists, k, distance), all);
        }

        #[test]
        fn scroll_merge_equals_global_order(
            ids in prop::collection::btree_set(0u64..500, 0..120),
            shards in 1usize..5,
            limit in 1usize..30,
        ) {
            // Split ids over shards; each shard answers a page from the start.
            let per: Vec<Vec<u64>> = (0..shards)
                .map(|s| ids.iter().copied().filter(|i| (*i as usize) % shards == s).collect())
                .collect();
            let pages = per.iter().map(|v| ShardPage {
                points: v.iter().take(limit).map(|i| rec(*i)).collect(),
                next_page_offset: v.get(limit).map(|i| PointId::Num(*i)),
            }).collect();
            let (points, next) = merge_scroll(pages, limit);
            let want: Vec<u64> = ids.iter().copied().take(limit).collect();
            let got: Vec<u64> = points.iter().map(|r| match r.id { PointId::Num(n) => n, _ => 0 }).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(next, ids.iter().nth(limit).map(|i| PointId::Num(*i)));
        }
    }
}
