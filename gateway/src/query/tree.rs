//! The body of `POST …/points/query` as Qdrant defines it, as a tree
//! (parsed from JSON by `api::points::query_parse`): each node has its
//! own prefetches (evaluated first), a query (what to score or sort by),
//! a filter, a limit and a score threshold.
//!
//! ```json
//! {"prefetch": [{"query": [0.1, 0.2], "limit": 20},
//!               {"query": {"recommend": {"positive": [7]}}, "filter": {...}}],
//!  "query": {"fusion": "rrf"}, "limit": 10}
//! ```

use protocol::{Filter, PointId, SearchParams};

use super::values::{Direction, OrderValue};

/// Deepest prefetch nesting accepted (each level is a round of reads).
pub const MAX_PREFETCH_DEPTH: usize = 8;
/// Most query nodes (the request and all its prefetches) in one request.
pub const MAX_QUERY_NODES: usize = 64;

/// A vector given inline, or the id of a point whose vector is used.
#[derive(Clone, Debug, PartialEq)]
pub enum VectorInput {
    Dense(Vec<f32>),
    Id(PointId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    AverageVector,
    BestScore,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Fusion {
    Rrf { k: u32, weights: Option<Vec<f32>> },
    Dbsf,
}

/// What a node scores or orders by.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryKind {
    Nearest(VectorInput),
    Recommend {
        positive: Vec<VectorInput>,
        negative: Vec<VectorInput>,
        strategy: Strategy,
    },
    Discover {
        target: VectorInput,
        context: Vec<(VectorInput, VectorInput)>,
    },
    Context(Vec<(VectorInput, VectorInput)>),
    OrderBy {
        key: String,
        direction: Direction,
        start_from: Option<OrderValue>,
    },
    Fusion(Fusion),
    Sample,
}

/// One level of a query: the request itself or one of its prefetches.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryNode {
    pub prefetch: Vec<QueryNode>,
    pub query: Option<QueryKind>,
    pub filter: Option<Filter>,
    pub params: SearchParams,
    pub score_threshold: Option<f32>,
    pub limit: usize,
    /// `lookup_from.collection`: where ids in the query find their vectors.
    pub lookup_from: Option<String>,
}

/// `a AND b`, flattened where that keeps the meaning (at most one side
/// has `should`), so composing levels does not deepen the filter.
pub fn and(a: Option<Filter>, b: Option<Filter>) -> Option<Filter> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(mut a), Some(b)) => {
            if !a.should.is_empty() && !b.should.is_empty() {
                let should = std::mem::take(&mut a.should);
                a.must
                    .push(protocol::filter::Condition::Filter(Box::new(Filter {
                        should,
                        ..Filter::default()
                    })));
            }
            a.must.extend(b.must);
            a.should.extend(b.should);
            a.must_not.extend(b.must_not);
            Some(a)
        }
    }
}

/// A filter of one `has_id` condition, in `must` or `must_not`.
pub fn has_id(ids: Vec<PointId>, exclude: bool) -> Option<Filter> {
    if ids.is_empty() {
        return None;
    }
    let c = protocol::filter::Condition::HasId(protocol::filter::HasIdCondition { has_id: ids });
    Some(if exclude {
        Filter {
            must_not: vec![c],
            ..Filter::default()
        }
    } else {
        Filter {
            must: vec![c],
            ..Filter::default()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn and_keeps_both_should_lists() {
        let f = |v: serde_json::Value| serde_json::from_value::<Filter>(v).unwrap();
        let a = f(json!({"should": [{"has_id": [1]}, {"has_id": [2]}]}));
        let b =
            f(json!({"should": [{"has_id": [2]}, {"has_id": [3]}], "must_not": [{"has_id": [9]}]}));
        let both = and(Some(a), Some(b)).unwrap();
        let id = |n| PointId::Num(n);
        assert!(both.matches(id(2), None));
        assert!(!both.matches(id(1), None));
        assert!(!both.matches(id(3), None));
        assert!(!both.matches(id(9), None));
    }
}
