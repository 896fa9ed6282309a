//! Scores of the queries that are not "nearest to one vector": recommend
//! with `best_score`, discover and context, as Qdrant defines them. They
//! use the *core* similarity (dot product, cosine on normalised vectors,
//! or the negated squared Euclidean distance) so that bigger is always
//! better, and squash it with Qdrant's fast sigmoid.

use protocol::Distance;

/// `f32::EPSILON`, as Qdrant's context score subtracts it.
const EPSILON: f32 = f32::EPSILON;

/// A query scoring each candidate vector (bigger is better).
#[derive(Clone, Debug, PartialEq)]
pub enum Scorer {
    /// `recommend` with `best_score`: the best positive similarity
    /// (sigmoid-scaled) if it beats the best negative one, else minus the
    /// sigmoid of the best negative.
    BestScore {
        positive: Vec<Vec<f32>>,
        negative: Vec<Vec<f32>>,
    },
    /// `discover`: how many context pairs the point sides with positively,
    /// minus those it sides with negatively, plus the scaled similarity to
    /// the target.
    Discover {
        target: Vec<f32>,
        pairs: Vec<(Vec<f32>, Vec<f32>)>,
    },
    /// `context`: for each pair, 0 if the point is closer to the positive,
    /// else a negative penalty growing with the difference.
    Context { pairs: Vec<(Vec<f32>, Vec<f32>)> },
}

/// `x / (1 + |x|)`, in (-1, 1).
pub fn fast_sigmoid(x: f32) -> f32 {
    if !x.is_finite() {
        return x;
    }
    x / (1.0 + x.abs())
}

/// `fast_sigmoid` mapped onto (0, 1).
pub fn scaled_fast_sigmoid(x: f32) -> f32 {
    0.5 * (fast_sigmoid(x) + 1.0)
}

/// Normalises for cosine (a zero vector stays zero), as stored vectors are.
pub fn prepare(distance: Distance, mut v: Vec<f32>) -> Vec<f32> {
    if distance == Distance::Cosine {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
    }
    v
}

/// Qdrant's internal similarity, bigger is better. `a` and `b` are
/// already [`prepare`]d.
pub fn core_similarity(distance: Distance, a: &[f32], b: &[f32]) -> f32 {
    match distance {
        Distance::Cosine | Distance::Dot => a.iter().zip(b).map(|(x, y)| x * y).sum(),
        Distance::Euclid => -a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>(),
    }
}

impl Scorer {
    /// The examples, normalised for cosine.
    pub fn prepared(self, distance: Distance) -> Scorer {
        let p = |v: Vec<f32>| prepare(distance, v);
        let pairs =
            |ps: Vec<(Vec<f32>, Vec<f32>)>| ps.into_iter().map(|(a, b)| (p(a), p(b))).collect();
        match self {
            Scorer::BestScore { positive, negative } => Scorer::BestScore {
                positive: positive.into_iter().map(p).collect(),
                negative: negative.into_iter().map(p).collect(),
            },
            Scorer::Discover { target, pairs: ps } => Scorer::Discover {
                target: p(target),
                pairs: pairs(ps),
            },
            Scorer::Context { pairs: ps } => Scorer::Context { pairs: pairs(ps) },
        }
    }

    /// Every example vector (to check dimensions).
    pub fn vectors(&self) -> Vec<&Vec<f32>> {
        match self {
            Scorer::BestScore { positive, negative } => positive.iter().chain(negative).collect(),
            Scorer::Discover { target, pairs } => std::iter::once(target)
                .chain(pairs.iter().flat_map(|(a, b)| [a, b]))
                .collect(),
            Scorer::Context { pairs } => pairs.iter().flat_map(|(a, b)| [a, b]).collect(),
        }
    }

    /// The score of one (prepared) stored vector.
    pub fn score(&self, distance: Distance, v: &[f32]) -> f32 {
        let sim = |e: &Vec<f32>| core_similarity(distance, e, v);
        let best = |es: &[Vec<f32>]| es.iter().map(sim).fold(f32::NEG_INFINITY, f32::max);
        match self {
            Scorer::BestScore { positive, negative } => {
                let (pos, neg) = (best(positive), best(negative));
                if pos > neg {
                    scaled_fast_sigmoid(pos)
                } else {
                    -scaled_fast_sigmoid(neg)
                }
            }
            Scorer::Discover { target, pairs } => {
                let rank: i32 = pairs
                    .iter()
                    .map(|(p, n)| match sim(p).partial_cmp(&sim(n)) {
                        Some(std::cmp::Ordering::Greater) => 1,
                        Some(std::cmp::Ordering::Equal) => 0,
                        _ => -1,
                    })
                    .sum();
                rank as f32 + scaled_fast_sigmoid(sim(target))
            }
            Scorer::Context { pairs } => pairs
                .iter()
                .map(|(p, n)| fast_sigmoid((sim(p) - sim(n) - EPSILON).min(0.0)))
                .sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn best_score_prefers_the_positive_side() {
        let s = Scorer::BestScore {
            positive: vec![vec![1.0, 0.0]],
            negative: vec![vec![0.0, 1.0]],
        };
        let near_pos = s.score(Distance::Dot, &[2.0, 0.0]);
        let near_neg = s.score(Distance::Dot, &[0.0, 2.0]);
        assert!((near_pos - scaled_fast_sigmoid(2.0)).abs() < 1e-6);
        assert!((near_neg + scaled_fast_sigmoid(2.0)).abs() < 1e-6);
        // Only negatives: every score is negative.
        let only_neg = Scorer::BestScore {
            positive: vec![],
            negative: vec![vec![1.0, 0.0]],
        };
        assert!(only_neg.score(Distance::Euclid, &[5.0, 5.0]) < 0.0);
    }

    #[test]
    fn discover_counts_pairs_then_target() {
        let s = Scorer::Discover {
            target: vec![0.0, 0.0],
            pairs: vec![
                (vec![1.0, 0.0], vec![-1.0, 0.0]),
                (vec![0.0, 1.0], vec![0.0, -1.0]),
            ],
        };
        // (1, 1) sides with both positives: rank 2, then the target term.
        let v = [1.0, 1.0];
        let want = 2.0 + scaled_fast_sigmoid(-2.0);
        assert!((s.score(Distance::Euclid, &v) - want).abs() < 1e-6);
        let c = Scorer::Context {
            pairs: vec![(vec![1.0, 0.0], vec![-1.0, 0.0])],
        };
        assert!(c.score(Distance::Euclid, &[1.0, 0.0]).abs() < 1e-6);
        assert!(c.score(Distance::Euclid, &[-1.0, 0.0]) < -0.5);
    }

    proptest! {
        /// Context scores are never positive, and zero exactly when the
        /// point is closer to every positive than to its negative.
        #[test]
        fn context_is_a_penalty(
            v in prop::collection::vec(-5.0f32..5.0, 3),
            p in prop::collection::vec(-5.0f32..5.0, 3),
            n in prop::collection::vec(-5.0f32..5.0, 3),
        ) {
            let c = Scorer::Context { pairs: vec![(p.clone(), n.clone())] };
            let s = c.score(Distance::Dot, &v);
            prop_assert!(s <= 0.0);
            let margin = core_similarity(Distance::Dot, &p, &v) - core_similarity(Distance::Dot, &n, &v);
            if margin > 1e-3 {
                prop_assert!(s.abs() < 1e-6);
            }
        }

        /// Best-score answers lie in (-1, 1), positive iff the best
        /// positive beats the best negative.
        #[test]
        fn best_score_sign(
            v in prop::collection::vec(-5.0f32..5.0, 3),
            p in prop::collection::vec(-5.0f32..5.0, 3),
            n in prop::collection::vec(-5.0f32..5.0, 3),
        ) {
            let s = Scorer::BestScore { positive: vec![p.clone()], negative: vec![n.clone()] }
                .score(Distance::Euclid, &v);
            prop_assert!(s > -1.0 && s < 1.0);
            let pos = core_similarity(Distance::Euclid, &p, &v);
            let neg = core_similarity(Distance::Euclid, &n, &v);
            prop_assert_eq!(s > 0.0, pos > neg);
        }
    }
}
