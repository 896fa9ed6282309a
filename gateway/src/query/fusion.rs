//! Fusion of ranked lists, as Qdrant defines it (and `qdrant-client`'s
//! local mode computes it): reciprocal rank fusion (RRF) and
//! distribution-based score fusion (DBSF). The inputs are the *merged*
//! prefetch lists (every shard's candidates already merged into one
//! global list each), so the fused answer is the one an unsharded
//! collection gives.

use std::collections::HashMap;

use protocol::PointId;

/// Qdrant's default RRF constant `k`.
pub const DEFAULT_RRF_K: u32 = 2;

/// One ranked list: ids with their scores, best first.
pub type Ranked = Vec<(PointId, f32)>;

/// Sorts fused scores best first (ties by id, so every gateway agrees)
/// and keeps `limit`.
fn best_first(scores: HashMap<PointId, f32>, limit: usize) -> Ranked {
    let mut out: Ranked = scores.into_iter().collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out.truncate(limit);
    out
}

/// RRF: each list adds `1 / ((rank + 1) / weight + k - 1)` (rank from 0)
/// to the points it holds; a weight of 0 or less adds nothing.
pub fn rrf(lists: &[Ranked], k: u32, weights: Option<&[f32]>, limit: usize) -> Ranked {
    let mut scores: HashMap<PointId, f32> = HashMap::new();
    for (li, list) in lists.iter().enumerate() {
        let weight = weights.and_then(|w| w.get(li).copied()).unwrap_or(1.0);
        for (rank, (id, _)) in list.iter().enumerate() {
            let add = if weight <= 0.0 {
                0.0
            } else {
                1.0 / ((rank as f32 + 1.0) / weight + k as f32 - 1.0)
            };
            *scores.entry(*id).or_insert(0.0) += add;
        }
    }
    best_first(scores, limit)
}

/// DBSF: each list's scores are mapped from `[mean - 3σ, mean + 3σ]`
/// (sample standard deviation) onto `[0, 1]` and summed per point; a list
/// of one point, or of equal scores, gives each point 0.5.
pub fn dbsf(lists: &[Ranked], limit: usize) -> Ranked {
    let mut scores: HashMap<PointId, f32> = HashMap::new();
    for list in lists.iter().filter(|l| !l.is_empty()) {
        for (id, s) in normalize(list) {
            *scores.entry(id).or_insert(0.0) += s;
        }
    }
    best_first(scores, limit)
}

fn normalize(list: &[(PointId, f32)]) -> Ranked {
    if list.len() == 1 {
        return vec![(list[0].0, 0.5)];
    }
    let n = list.len() as f64;
    let mean = list.iter().map(|(_, s)| *s as f64).sum::<f64>() / n;
    let variance = list
        .iter()
        .map(|(_, s)| (*s as f64 - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0);
    if variance == 0.0 {
        return list.iter().map(|(id, _)| (*id, 0.5)).collect();
    }
    let std = variance.sqrt();
    let (low, high) = (mean - 3.0 * std, mean + 3.0 * std);
    list.iter()
        .map(|(id, s)| (*id, ((*s as f64 - low) / (high - low)) as f32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(r: &Ranked) -> Vec<u64> {
        r.iter()
            .map(|(id, _)| match id {
                PointId::Num(n) => *n,
                PointId::Uuid(_) => u64::MAX,
            })
            .collect()
    }

    fn list(v: &[(u64, f32)]) -> Ranked {
        v.iter().map(|(i, s)| (PointId::Num(*i), *s)).collect()
    }

    #[test]
    fn rrf_matches_qdrants_formula() {
        // List A ranks 1, 2, 3; list B ranks 3, 1. With k = 2:
        // 1: 1/2 + 1/3, 3: 1/4 + 1/2, 2: 1/3.
        let a = list(&[(1, 0.9), (2, 0.8), (3, 0.7)]);
        let b = list(&[(3, 5.0), (1, 4.0)]);
        let fused = rrf(&[a, b], DEFAULT_RRF_K, None, 10);
        assert_eq!(ids(&fused), vec![1, 3, 2]);
        assert!((fused[0].1 - (0.5 + 1.0 / 3.0)).abs() < 1e-6);
        assert!((fused[1].1 - 0.75).abs() < 1e-6);
        assert!((fused[2].1 - 1.0 / 3.0).abs() < 1e-6);
        // A weight of 0 removes a list's contribution.
        let a = list(&[(1, 0.9)]);
        let b = list(&[(2, 0.9)]);
        let fused = rrf(&[a, b], 2, Some(&[0.0, 1.0]), 10);
        assert_eq!(fused[0], (PointId::Num(2), 0.5));
        assert_eq!(fused[1], (PointId::Num(1), 0.0));
    }

    #[test]
    fn dbsf_normalises_each_list() {
        // Scores 1, 2, 3: mean 2, sample σ 1, range [-1, 5].
        let a = list(&[(3, 3.0), (2, 2.0), (1, 1.0)]);
        let b = list(&[(1, 7.0)]);
        let fused = dbsf(&[a, b], 10);
        let got: HashMap<_, _> = fused.into_iter().collect();
        assert!((got[&PointId::Num(3)] - 4.0 / 6.0).abs() < 1e-6);
        assert!((got[&PointId::Num(2)] - 0.5).abs() < 1e-6);
        assert!((got[&PointId::Num(1)] - (2.0 / 6.0 + 0.5)).abs() < 1e-6);
        let same = list(&[(1, 2.0), (2, 2.0)]);
        assert!(dbsf(&[same], 10).iter().all(|(_, s)| *s == 0.5));
    }

    fn arb_lists() -> impl Strategy<Value = Vec<Vec<(u8, i16)>>> {
        prop::collection::vec(prop::collection::vec((0u8..40, any::<i16>()), 0..20), 0..4)
    }

    fn dedup(lists: Vec<Vec<(u8, i16)>>) -> Vec<Ranked> {
        lists
            .into_iter()
            .map(|l| {
                let mut seen = std::collections::HashSet::new();
                let mut r: Ranked = l
                    .into_iter()
                    .filter(|(id, _)| seen.insert(*id))
                    .map(|(id, s)| (PointId::Num(id as u64), s as f32))
                    .collect();
                r.sort_by(|a, b| b.1.total_cmp(&a.1));
                r
            })
            .collect()
    }

    proptest! {
        /// Every point of any list is fused once, scores are sorted, and
        /// the limit cuts the sorted list (a prefix of the unlimited one).
        #[test]
        fn fusion_is_a_sorted_union(lists in arb_lists(), limit in 0usize..50) {
            let lists = dedup(lists);
            let union: std::collections::BTreeSet<PointId> =
                lists.iter().flatten().map(|(id, _)| *id).collect();
            for fused_all in [rrf(&lists, 2, None, usize::MAX), dbsf(&lists, usize::MAX)] {
                let got: std::collections::BTreeSet<PointId> =
                    fused_all.iter().map(|(id, _)| *id).collect();
                prop_assert_eq!(&got, &union);
                prop_assert!(fused_all.windows(2).all(|w| w[0].1 >= w[1].1));
            }
            let limited = rrf(&lists, 2, None, limit);
            let full = rrf(&lists, 2, None, usize::MAX);
            prop_assert_eq!(&limited[..], &full[..limit.min(full.len())]);
        }

        /// RRF depends on ranks only: scaling every score changes nothing.
        #[test]
        fn rrf_ignores_score_scale(lists in arb_lists()) {
            let lists = dedup(lists);
            let scaled: Vec<Ranked> = lists
                .iter()
                .map(|l| l.iter().map(|(id, s)| (*id, s * 3.0 + 1.0)).collect())
                .collect();
            prop_assert_eq!(rrf(&lists, 2, None, 100), rrf(&scaled, 2, None, 100));
        }
    }
}
