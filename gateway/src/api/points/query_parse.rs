//! Parsing `POST …/points/query` bodies (and prefetches) into the
//! [`crate::query::tree`] the gateway evaluates; every refusal names the
//! field and what is accepted.

use serde::Deserialize;
use serde_json::Value;

use crate::api::models::{check_vector_magnitude, parse, parse_filter, ParamsIn};
use crate::error::{GatewayError, Result};
use crate::query::tree::{
    Fusion, QueryKind, QueryNode, Strategy, VectorInput, MAX_PREFETCH_DEPTH, MAX_QUERY_NODES,
};
use crate::query::values::{Direction, OrderValue};

/// The fields a query node and a prefetch share; the request's own
/// (`offset`, `with_payload`, ...) are read by the route.
#[derive(Deserialize)]
pub struct NodeIn {
    pub prefetch: Option<Value>,
    pub query: Option<Value>,
    pub using: Option<Value>,
    pub filter: Option<Value>,
    pub params: Option<ParamsIn>,
    pub score_threshold: Option<f32>,
    pub limit: Option<usize>,
    pub lookup_from: Option<Value>,
}

/// Parses a node (and its prefetches), `depth` levels below the request;
/// `count` counts the nodes so far.
pub fn parse_node(
    n: NodeIn,
    default_limit: usize,
    depth: usize,
    count: &mut usize,
) -> Result<QueryNode> {
    *count += 1;
    if *count > MAX_QUERY_NODES {
        return Err(GatewayError::bad_request(format!(
            "a query may hold at most {MAX_QUERY_NODES} prefetches in all"
        )));
    }
    if n.using.as_ref().is_some_and(|u| !u.is_null()) {
        return Err(GatewayError::bad_request(
            "`using`: named vectors are not supported (collections have one unnamed vector)",
        ));
    }
    let limit = n.limit.unwrap_or(default_limit);
    if limit == 0 || limit > protocol::search::MAX_SEARCH_HITS {
        return Err(GatewayError::bad_request(format!(
            "limit must be between 1 and {}",
            protocol::search::MAX_SEARCH_HITS
        )));
    }
    let prefetch = match n.prefetch {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => {
            if depth >= MAX_PREFETCH_DEPTH {
                return Err(GatewayError::bad_request(format!(
                    "prefetch nested deeper than {MAX_PREFETCH_DEPTH} levels"
                )));
            }
            let list = match v {
                Value::Array(items) => items,
                one => vec![one],
            };
            list.into_iter()
                .map(|p| {
                    let n: NodeIn = parse(p, "prefetch")?;
                    parse_node(n, 10, depth + 1, count)
                })
                .collect::<Result<Vec<_>>>()?
        }
    };
    let query = match n.query {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_query(v)?),
    };
    if matches!(query, Some(QueryKind::Fusion(_))) && prefetch.is_empty() {
        return Err(GatewayError::bad_request(
            "fusion needs `prefetch`: it fuses the prefetches' results",
        ));
    }
    if let Some(QueryKind::Fusion(Fusion::Rrf {
        weights: Some(w), ..
    })) = &query
    {
        if w.len() != prefetch.len() {
            return Err(GatewayError::bad_request(format!(
                "rrf `weights` has {} entries for {} prefetches",
                w.len(),
                prefetch.len()
            )));
        }
    }
    let lookup_from = match n.lookup_from {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_lookup(v)?),
    };
    Ok(QueryNode {
        prefetch,
        query,
        filter: parse_filter(n.filter)?,
        params: n.params.unwrap_or_default().into_params(),
        score_threshold: n.score_threshold,
        limit,
        lookup_from,
    })
}

fn parse_lookup(v: Value) -> Result<String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Lookup {
        collection: String,
        vector: Option<String>,
    }
    let l: Lookup = parse(v, "lookup_from")?;
    if l.vector.is_some() {
        return Err(GatewayError::bad_request(
            "`lookup_from.vector`: named vectors are not supported",
        ));
    }
    Ok(l.collection)
}

/// A `VectorInput`: a dense vector or a point id.
pub fn parse_vector_input(v: Value) -> Result<VectorInput> {
    match v {
        Value::Array(items) => {
            if items.iter().any(Value::is_array) {
                return Err(GatewayError::bad_request(
                    "multivectors are not supported: use one dense vector",
                ));
            }
            let vector: Vec<f32> = parse(Value::Array(items), "vector")?;
            check_vector_magnitude(&vector)?;
            Ok(VectorInput::Dense(vector))
        }
        Value::Number(_) | Value::String(_) => Ok(VectorInput::Id(parse(v, "point id")?)),
        Value::Object(m) if m.contains_key("indices") => Err(GatewayError::bad_request(
            "sparse vectors are not supported",
        )),
        _ => Err(GatewayError::bad_request(
            "a vector input must be a list of numbers or a point id (documents, images and \
             inference objects are not supported)",
        )),
    }
}

fn parse_pairs(v: Value) -> Result<Vec<(VectorInput, VectorInput)>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Pair {
        positive: Value,
        negative: Value,
    }
    let list = match v {
        Value::Null => Vec::new(),
        Value::Array(items) => items,
        one => vec![one],
    };
    list.into_iter()
        .map(|p| {
            let p: Pair = parse(p, "context pair")?;
            Ok((
                parse_vector_input(p.positive)?,
                parse_vector_input(p.negative)?,
            ))
        })
        .collect()
}

fn list_of_inputs(v: Option<Value>) -> Result<Vec<VectorInput>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.into_iter().map(parse_vector_input).collect(),
        Some(_) => Err(GatewayError::bad_request(
            "recommend `positive` / `negative` must be lists",
        )),
    }
}

/// `query`: a vector input (nearest), or one of Qdrant's query objects.
pub fn parse_query(v: Value) -> Result<QueryKind> {
    let Value::Object(m) = v else {
        return Ok(QueryKind::Nearest(parse_vector_input(v)?));
    };
    if m.len() != 1 || m.contains_key("indices") {
        // A sparse vector `{indices, values}` lands here too.
        return Err(match m.contains_key("indices") {
            true => GatewayError::bad_request("sparse vectors are not supported"),
            false => GatewayError::bad_request(
                "query object must have exactly one of nearest, recommend, discover, context, \
                 order_by, fusion, rrf, sample",
            ),
        });
    }
    let (kind, inner) = m
        .into_iter()
        .next()
        .ok_or_else(|| GatewayError::bad_request("empty query"))?;
    match kind.as_str() {
        "nearest" => Ok(QueryKind::Nearest(parse_vector_input(inner)?)),
        "recommend" => {
            let Value::Object(mut r) = inner else {
                return Err(GatewayError::bad_request("`recommend` must be an object"));
            };
            let strategy = match r.remove("strategy") {
                None | Some(Value::Null) => Strategy::AverageVector,
                Some(Value::String(s)) if s == "average_vector" => Strategy::AverageVector,
                Some(Value::String(s)) if s == "best_score" => Strategy::BestScore,
                Some(other) => {
                    return Err(GatewayError::bad_request(format!(
                        "recommend strategy {other}: use \"average_vector\" or \"best_score\""
                    )))
                }
            };
            let positive = list_of_inputs(r.remove("positive"))?;
            let negative = list_of_inputs(r.remove("negative"))?;
            if let Some(k) = r.keys().next() {
                return Err(GatewayError::bad_request(format!(
                    "unknown field `{k}` in recommend"
                )));
            }
            match strategy {
                Strategy::AverageVector if positive.is_empty() => Err(GatewayError::bad_request(
                    "recommend with average_vector needs at least one positive example",
                )),
                Strategy::BestScore if positive.is_empty() && negative.is_empty() => Err(
                    GatewayError::bad_request("recommend needs positive or negative examples"),
                ),
                _ => Ok(QueryKind::Recommend {
                    positive,
                    negative,
                    strategy,
                }),
            }
        }
        "discover" => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Discover {
                target: Value,
                #[serde(default)]
                context: Value,
            }
            let d: Discover = parse(inner, "discover")?;
            Ok(QueryKind::Discover {
                target: parse_vector_input(d.target)?,
                context: parse_pairs(d.context)?,
            })
        }
        "context" => {
            let pairs = parse_pairs(inner)?;
            if pairs.is_empty() {
                return Err(GatewayError::bad_request(
                    "`context` needs at least one pair",
                ));
            }
            Ok(QueryKind::Context(pairs))
        }
        "order_by" => parse_order_by(inner),
        "fusion" => match inner.as_str() {
            Some("rrf") => Ok(QueryKind::Fusion(Fusion::Rrf {
                k: crate::query::fusion::DEFAULT_RRF_K,
                weights: None,
            })),
            Some("dbsf") => Ok(QueryKind::Fusion(Fusion::Dbsf)),
            _ => Err(GatewayError::bad_request(
                "fusion must be \"rrf\" or \"dbsf\"",
            )),
        },
        "rrf" => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Rrf {
                k: Option<u32>,
                weights: Option<Vec<f32>>,
            }
            let r: Rrf = parse(inner, "rrf")?;
            Ok(QueryKind::Fusion(Fusion::Rrf {
                k: r.k.unwrap_or(crate::query::fusion::DEFAULT_RRF_K),
                weights: r.weights,
            }))
        }
        "sample" => match inner.as_str() {
            Some("random") => Ok(QueryKind::Sample),
            _ => Err(GatewayError::bad_request("sample must be \"random\"")),
        },
        "formula" | "mmr" | "relevance_feedback" => Err(GatewayError::NotImplemented {
            feature: "formula, MMR and relevance-feedback queries",
        }),
        other => Err(GatewayError::bad_request(format!(
            "unknown query `{other}`: use nearest, recommend, discover, context, order_by, \
             fusion, rrf or sample"
        ))),
    }
}

/// `order_by`: a key, or `{key, direction, start_from}`.
pub fn parse_order_by(v: Value) -> Result<QueryKind> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct OrderBy {
        key: String,
        direction: Option<String>,
        start_from: Option<Value>,
    }
    let o = match v {
        Value::String(key) => OrderBy {
            key,
            direction: None,
            start_from: None,
        },
        other => parse(other, "order_by")?,
    };
    let direction = match o.direction.as_deref() {
        None | Some("asc") => Direction::Asc,
        Some("desc") => Direction::Desc,
        Some(d) => {
            return Err(GatewayError::bad_request(format!(
                "order_by direction {d:?}: use \"asc\" or \"desc\""
            )))
        }
    };
    let start_from = match o.start_from {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            OrderValue::of(&v)
                .ok_or_else(|| GatewayError::bad_request("order_by start_from must be a number"))?,
        ),
    };
    if o.key.is_empty() {
        return Err(GatewayError::bad_request("order_by key is empty"));
    }
    Ok(QueryKind::OrderBy {
        key: o.key,
        direction,
        start_from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::tree::MAX_PREFETCH_DEPTH;
    use protocol::PointId;
    use serde_json::json;

    fn node(v: Value) -> Result<QueryNode> {
        let n: NodeIn = parse(v, "query")?;
        parse_node(n, 10, 0, &mut 0)
    }

    #[test]
    fn parses_qdrants_shapes() {
        let n = node(json!({
            "prefetch": [{"query": [1.0, 2.0], "limit": 5},
                         {"query": {"recommend": {"positive": [1], "negative": [[0.0, 1.0]], "strategy": "best_score"}},
                          "prefetch": {"query": {"nearest": 3}}}],
            "query": {"fusion": "dbsf"}, "limit": 3
        }))
        .unwrap();
        assert_eq!(n.limit, 3);
        assert_eq!(n.query, Some(QueryKind::Fusion(Fusion::Dbsf)));
        assert_eq!(n.prefetch[0].limit, 5);
        assert_eq!(n.prefetch[1].prefetch.len(), 1);
        assert_eq!(
            n.prefetch[1].prefetch[0].query,
            Some(QueryKind::Nearest(VectorInput::Id(PointId::Num(3))))
        );
        let o = node(
            json!({"query": {"order_by": {"key": "n", "direction": "desc", "start_from": 4}}}),
        )
        .unwrap();
        assert!(matches!(
            o.query,
            Some(QueryKind::OrderBy {
                direction: Direction::Desc,
                ..
            })
        ));
        let d = node(json!({"query": {"discover": {"target": 1, "context": {"positive": 2, "negative": 3}}}}))
            .unwrap();
        assert!(
            matches!(d.query, Some(QueryKind::Discover { ref context, .. }) if context.len() == 1)
        );
    }

    #[test]
    fn refuses_what_it_cannot_do_by_name() {
        let err = |v: Value| match node(v) {
            Err(e) => e.to_string(),
            Ok(n) => panic!("accepted {n:?}"),
        };
        assert!(err(json!({"query": {"fusion": "rrf"}})).contains("prefetch"));
        assert!(err(json!({"query": {"indices": [1], "values": [1.0]}})).contains("sparse"));
        assert!(err(json!({"query": [1.0], "using": "image"})).contains("named vectors"));
        assert!(err(json!({"query": {"recommend": {"negative": [1]}}})).contains("positive"));
        assert!(err(json!({"query": {"sample": "first"}})).contains("random"));
        let mut deep = json!({"query": [1.0]});
        for _ in 0..=MAX_PREFETCH_DEPTH {
            deep = json!({"prefetch": deep});
        }
        assert!(err(deep).contains("deeper"));
    }
}
