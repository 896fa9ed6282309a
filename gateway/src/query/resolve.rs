//! A query node's inputs made concrete: point ids (here or in the
//! `lookup_from` collection) replaced by their stored vectors, recommend
//! `average_vector` reduced to one vector, and the ids that must not be
//! answers (examples taken from this collection, as in Qdrant).

use std::collections::HashMap;

use protocol::PointId;

use super::scoring::Scorer;
use super::tree::{Fusion, QueryKind, Strategy, VectorInput};
use super::values::OrderValue;
use crate::error::{GatewayError, Result};

/// `q` with its ids replaced by `vectors` (each id's stored vector),
/// every vector checked against the collection's `dimension`.
pub fn resolve(
    q: &QueryKind,
    vectors: &HashMap<PointId, Vec<f32>>,
    dimension: usize,
) -> Result<Resolved> {
    let v = |input: &VectorInput| -> Result<Vec<f32>> {
        let vector = match input {
            VectorInput::Dense(v) => v.clone(),
            VectorInput::Id(id) => vectors
                .get(id)
                .cloned()
                .ok_or_else(|| GatewayError::PointNotFound { id: id.to_string() })?,
        };
        protocol::point::validate_vector(&vector, dimension)?;
        Ok(vector)
    };
    let pairs = |ps: &[(VectorInput, VectorInput)]| -> Result<Vec<(Vec<f32>, Vec<f32>)>> {
        ps.iter().map(|(a, b)| Ok((v(a)?, v(b)?))).collect()
    };
    let resolved = match q {
        QueryKind::Nearest(input) => Resolved::Nearest(v(input)?),
        QueryKind::Recommend {
            positive,
            negative,
            strategy,
        } => {
            let positive = positive.iter().map(&v).collect::<Result<Vec<_>>>()?;
            let negative = negative.iter().map(&v).collect::<Result<Vec<_>>>()?;
            match strategy {
                Strategy::AverageVector => {
                    Resolved::Nearest(average_vector(&positive, &negative, dimension))
                }
                Strategy::BestScore => Resolved::Score(Scorer::BestScore { positive, negative }),
            }
        }
        QueryKind::Discover { target, context } => Resolved::Score(Scorer::Discover {
            target: v(target)?,
            pairs: pairs(context)?,
        }),
        QueryKind::Context(ps) => Resolved::Score(Scorer::Context { pairs: pairs(ps)? }),
        QueryKind::OrderBy {
            key,
            direction,
            start_from,
        } => Resolved::OrderBy {
            key: key.clone(),
            direction: *direction,
            start_from: start_from.clone(),
        },
        QueryKind::Fusion(f) => Resolved::Fusion(f.clone()),
        QueryKind::Sample => Resolved::Sample,
    };
    Ok(resolved)
}

/// A query with its ids turned into vectors.
#[derive(Clone, Debug)]
pub enum Resolved {
    Nearest(Vec<f32>),
    Score(Scorer),
    OrderBy {
        key: String,
        direction: super::values::Direction,
        start_from: Option<OrderValue>,
    },
    Fusion(Fusion),
    Sample,
}

/// The point ids `q` names, each once.
pub fn collect_ids(q: &QueryKind, out: &mut Vec<PointId>) {
    let mut push = |i: &VectorInput| {
        if let VectorInput::Id(id) = i {
            if !out.contains(id) {
                out.push(*id);
            }
        }
    };
    match q {
        QueryKind::Nearest(i) => push(i),
        QueryKind::Recommend {
            positive, negative, ..
        } => positive.iter().chain(negative).for_each(push),
        QueryKind::Discover { target, context } => {
            push(target);
            context.iter().for_each(|(a, b)| {
                push(a);
                push(b)
            });
        }
        QueryKind::Context(ps) => ps.iter().for_each(|(a, b)| {
            push(a);
            push(b)
        }),
        QueryKind::OrderBy { .. } | QueryKind::Fusion(_) | QueryKind::Sample => {}
    }
}

/// Qdrant's `average_vector`: `avg(positive) + (avg(positive) -
/// avg(negative))`, or `avg(positive)` without negatives.
pub fn average_vector(positive: &[Vec<f32>], negative: &[Vec<f32>], dimension: usize) -> Vec<f32> {
    let avg = |vs: &[Vec<f32>]| -> Vec<f32> {
        let mut sum = vec![0.0f32; dimension];
        for v in vs {
            sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
        }
        let n = vs.len().max(1) as f32;
        sum.into_iter().map(|s| s / n).collect()
    };
    let p = avg(positive);
    if negative.is_empty() {
        return p;
    }
    let n = avg(negative);
    p.iter().zip(&n).map(|(p, n)| p + p - n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_vector_is_qdrants() {
        let pos = vec![vec![1.0, 0.0], vec![3.0, 2.0]];
        let neg = vec![vec![0.0, 4.0]];
        assert_eq!(average_vector(&pos, &[], 2), vec![2.0, 1.0]);
        assert_eq!(average_vector(&pos, &neg, 2), vec![4.0, -2.0]);
    }
}
