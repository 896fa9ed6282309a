//! Evaluating a query tree over a sharded collection. Each node is
//! answered from *global* reads, so the answer is the one an unsharded
//! collection gives:
//!
//! - nearest (and recommend `average_vector`, which is nearest to one
//!   computed vector) is the gateway's scatter-gather search, merged top-k;
//! - a prefetch is a whole node evaluated first; fusion (RRF, DBSF) runs on
//!   the merged prefetch lists, never per shard; any other query over
//!   prefetches re-scores their union (a `has_id` filter on the read);
//! - recommend `best_score`, discover and context score every point the
//!   filter passes, `order_by` sorts them by a payload number and `sample`
//!   picks among them: the gateway reads them shard by shard (scroll) and
//!   scores, sorts or picks once over all, at most [`MAX_SCAN_POINTS`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use protocol::{Distance, Filter, Payload, PointId, Record, ScrollRequest, SearchRequest, ShardId};
use rand::seq::SliceRandom;
use serde_json::Value;

use super::fusion::{dbsf, rrf, Ranked};
use super::resolve::{collect_ids, resolve, Resolved};
use super::tree::{and, has_id, Fusion, QueryNode};
use super::values::{order_by, values_by_key, OrderValue};
use crate::error::{GatewayError, Result};
use crate::gateway::Gateway;
use crate::reads::ReadOptions;

/// Most points a scoring, ordering or sampling query may read through the
/// gateway (a larger filtered set is refused with a 400 naming this).
pub const MAX_SCAN_POINTS: usize = 100_000;

/// One hit of a query node: Qdrant's score, the payload number an
/// `order_by` sorted on, and the payload and vector when the read that
/// found it brought them.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub id: PointId,
    pub score: f32,
    pub order_value: Option<Value>,
    pub version: u64,
    pub payload: Option<Payload>,
    pub vector: Option<Vec<f32>>,
}

impl Hit {
    fn new(id: PointId, score: f32) -> Hit {
        Hit {
            id,
            score,
            order_value: None,
            version: 0,
            payload: None,
            vector: None,
        }
    }

    fn of_record(r: Record, score: f32, fetch: Fetch) -> Hit {
        Hit {
            payload: if fetch.payload { r.payload } else { None },
            vector: if fetch.vector { r.vector } else { None },
            ..Hit::new(r.id, score)
        }
    }
}

/// What the reads of a node should bring along (only the request's own
/// level asks; prefetches need ids and scores).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fetch {
    pub payload: bool,
    pub vector: bool,
}

/// A query's evaluation: the collection, how to read, and the shards
/// that did not answer (with `partial`).
pub struct Eval<'a> {
    pub gw: &'a Gateway,
    pub collection: &'a str,
    pub opts: ReadOptions,
    pub missing: BTreeSet<ShardId>,
    /// The collections a scoped API key may read (`None`: any): a
    /// `lookup_from` elsewhere is refused with a 403.
    pub readable: Option<Arc<BTreeSet<String>>>,
}

impl<'a> Eval<'a> {
    pub fn new(gw: &'a Gateway, collection: &'a str, opts: ReadOptions) -> Self {
        Eval {
            gw,
            collection,
            opts,
            missing: BTreeSet::new(),
            readable: None,
        }
    }

    /// The collection `name` (or the alias) stands for, if the caller's
    /// key may read it.
    pub async fn readable(&self, name: &str) -> Result<String> {
        let target = self
            .gw
            .alias_target(name)
            .await
            .unwrap_or_else(|| name.to_string());
        if self.readable.as_ref().is_none_or(|r| r.contains(&target)) {
            Ok(target)
        } else {
            Err(GatewayError::Forbidden {
                message: format!("the API key's scope does not include collection `{target}`"),
            })
        }
    }

    /// The node's hits: `limit` of them after skipping `offset`, under
    /// the filter `outer` handed down from the levels above.
    pub async fn node(
        &mut self,
        node: &QueryNode,
        outer: Option<Filter>,
        limit: usize,
        offset: usize,
        fetch: Fetch,
    ) -> Result<Vec<Hit>> {
        let (query, mentioned) = self.resolve(node).await?;
        // Ids used as examples are not answers (Qdrant leaves them out).
        let filter = and(and(outer, node.filter.clone()), has_id(mentioned, true));
        if node.prefetch.is_empty() {
            return self
                .base(query.as_ref(), filter, node, limit, offset, fetch)
                .await;
        }
        let mut sources: Vec<Vec<Hit>> = Vec::with_capacity(node.prefetch.len());
        for p in &node.prefetch {
            let hits = Box::pin(self.node(p, filter.clone(), p.limit, 0, Fetch::default())).await?;
            sources.push(hits);
        }
        if let Some(Resolved::Fusion(f)) = &query {
            let ranked: Vec<Ranked> = sources
                .iter()
                .map(|s| s.iter().map(|h| (h.id, h.score)).collect())
                .collect();
            let fused = match f {
                Fusion::Rrf { k, weights } => rrf(&ranked, *k, weights.as_deref(), limit + offset),
                Fusion::Dbsf => dbsf(&ranked, limit + offset),
            };
            return Ok(fused
                .into_iter()
                .filter(|(_, s)| node.score_threshold.is_none_or(|t| *s >= t))
                .skip(offset)
                .map(|(id, score)| Hit::new(id, score))
                .collect());
        }
        let union: BTreeSet<PointId> = sources.iter().flatten().map(|h| h.id).collect();
        if union.is_empty() {
            return Ok(Vec::new());
        }
        let filter = and(filter, has_id(union.into_iter().collect(), false));
        self.base(query.as_ref(), filter, node, limit, offset, fetch)
            .await
    }

    /// A node without prefetches (or re-scoring their union).
    async fn base(
        &mut self,
        query: Option<&Resolved>,
        filter: Option<Filter>,
        node: &QueryNode,
        limit: usize,
        offset: usize,
        fetch: Fetch,
    ) -> Result<Vec<Hit>> {
        let distance = self.distance().await?;
        let Some(query) = query else {
            // No query: points in id order, score 1 (as Qdrant answers).
            let records = self
                .scan(filter, fetch.payload, fetch.vector, Some(limit + offset))
                .await?;
            return Ok(records
                .into_iter()
                .skip(offset)
                .map(|r| Hit::of_record(r, 1.0, fetch))
                .collect());
        };
        match query {
            Resolved::Nearest(vector) => {
                self.search(vector.clone(), filter, node, limit, offset, fetch)
                    .await
            }
            Resolved::Score(scorer) => {
                let scorer = scorer.clone().prepared(distance);
                let records = self.scan(filter, fetch.payload, true, None).await?;
                let mut scored: Vec<Hit> = records
                    .into_iter()
                    .filter_map(|r| {
                        let score = scorer.score(distance, r.vector.as_deref()?);
                        Some(Hit::of_record(r, score, fetch))
                    })
                    .filter(|h| node.score_threshold.is_none_or(|t| h.score >= t))
                    .collect();
                scored.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
                Ok(scored.into_iter().skip(offset).take(limit).collect())
            }
            Resolved::OrderBy {
                key,
                direction,
                start_from,
            } => {
                let records = self.scan(filter, true, false, None).await?;
                let points = records.iter().map(|r| {
                    let values = r
                        .payload
                        .as_ref()
                        .map(|p| {
                            values_by_key(p, key)
                                .into_iter()
                                .filter_map(OrderValue::of)
                                .collect()
                        })
                        .unwrap_or_default();
                    (r.id, values)
                });
                let ordered = order_by(points, *direction, start_from.as_ref(), limit + offset);
                Ok(ordered
                    .into_iter()
                    .skip(offset)
                    .map(|o| Hit {
                        order_value: Some(Value::Number(o.value.0)),
                        ..Hit::new(o.id, 1.0)
                    })
                    .collect())
            }
            Resolved::Sample => {
                let mut ids: Vec<PointId> = self
                    .scan(filter, false, false, None)
                    .await?
                    .into_iter()
                    .map(|r| r.id)
                    .collect();
                ids.shuffle(&mut rand::rng());
                Ok(ids
                    .into_iter()
                    .take(limit)
                    .map(|id| Hit::new(id, 1.0))
                    .collect())
            }
            Resolved::Fusion(_) => Err(GatewayError::bad_request(
                "fusion needs `prefetch`: it fuses the prefetches' results",
            )),
        }
    }

    async fn distance(&self) -> Result<Distance> {
        let (_, coll) = self.gw.collection(self.collection).await?;
        Ok(coll.config.distance)
    }

    async fn search(
        &mut self,
        vector: Vec<f32>,
        filter: Option<Filter>,
        node: &QueryNode,
        limit: usize,
        offset: usize,
        fetch: Fetch,
    ) -> Result<Vec<Hit>> {
        let request = SearchRequest {
            vector,
            filter,
            params: node.params,
            limit,
            offset,
            with_payload: fetch.payload,
            with_vector: fetch.vector,
            score_threshold: node.score_threshold,
        };
        let a = self.gw.search(self.collection, request, self.opts).await?;
        self.missing.extend(a.missing_shards);
        Ok(a.value
            .into_iter()
            .map(|h| Hit {
                version: h.version,
                payload: h.payload,
                vector: h.vector,
                ..Hit::new(h.id, h.score)
            })
            .collect())
    }

    /// Every point passing `filter`, in id order, read a page at a time
    /// (each page a global scroll over all shards); at most `limit`, and
    /// refused past [`MAX_SCAN_POINTS`] when unlimited.
    pub async fn scan(
        &mut self,
        filter: Option<Filter>,
        with_payload: bool,
        with_vector: bool,
        limit: Option<usize>,
    ) -> Result<Vec<Record>> {
        let page = protocol::search::MAX_SEARCH_HITS;
        let mut out: Vec<Record> = Vec::new();
        let mut offset = None;
        // Bounded: each round adds a page or ends, and the total is capped.
        loop {
            let want = limit.map_or(page, |l| (l - out.len()).clamp(1, page));
            let request = ScrollRequest {
                offset,
                limit: want,
                filter: filter.clone(),
                with_payload,
                with_vector,
            };
            let a = self.gw.scroll(self.collection, request, self.opts).await?;
            self.missing.extend(a.missing_shards);
            let (points, next) = a.value;
            out.extend(points);
            if limit.is_some_and(|l| out.len() >= l) {
                out.truncate(limit.unwrap_or(out.len()));
                return Ok(out);
            }
            if out.len() > MAX_SCAN_POINTS {
                return Err(GatewayError::bad_request(format!(
                    "this query reads every point its filter passes, and more than \
                     {MAX_SCAN_POINTS} do: narrow the filter"
                )));
            }
            match next {
                Some(n) => offset = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// Fills in the payloads and vectors `fetch` asks for that the reads
    /// behind `hits` did not bring (fused, re-scored or sampled hits).
    pub async fn complete(&self, hits: &mut [Hit], fetch: Fetch) -> Result<()> {
        let lacks = |h: &Hit| {
            (fetch.payload && h.payload.is_none()) || (fetch.vector && h.vector.is_none())
        };
        let mut need: Vec<PointId> = hits.iter().filter(|h| lacks(h)).map(|h| h.id).collect();
        need.dedup();
        if need.is_empty() {
            return Ok(());
        }
        let records = self
            .gw
            .retrieve(
                self.collection,
                need,
                fetch.payload,
                fetch.vector,
                self.opts.consistency,
            )
            .await?;
        let by_id: HashMap<PointId, Record> = records.into_iter().map(|r| (r.id, r)).collect();
        for h in hits.iter_mut().filter(|h| lacks(h)) {
            if let Some(r) = by_id.get(&h.id) {
                if fetch.payload {
                    h.payload = Some(r.payload.clone().unwrap_or_default());
                }
                if fetch.vector {
                    h.vector = r.vector.clone();
                }
            }
        }
        Ok(())
    }

    /// The node's query with point ids replaced by their vectors (read
    /// here or in `lookup_from`), and the ids that came from this
    /// collection (left out of the answers, as in Qdrant).
    async fn resolve(&self, node: &QueryNode) -> Result<(Option<Resolved>, Vec<PointId>)> {
        let Some(q) = &node.query else {
            return Ok((None, Vec::new()));
        };
        let (_, coll) = self.gw.collection(self.collection).await?;
        let lookup = match &node.lookup_from {
            Some(name) => self.readable(name).await?,
            None => self.collection.to_string(),
        };
        let mut ids: Vec<PointId> = Vec::new();
        collect_ids(q, &mut ids);
        let vectors = self.vectors_of(&lookup, &ids).await?;
        let resolved = resolve(q, &vectors, coll.config.dimension)?;
        let same = lookup == self.collection;
        Ok((Some(resolved), if same { ids } else { Vec::new() }))
    }

    /// Vectors of `ids` in `collection` (as stored: normalised for cosine).
    async fn vectors_of(
        &self,
        collection: &str,
        ids: &[PointId],
    ) -> Result<HashMap<PointId, Vec<f32>>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let records = self
            .gw
            .retrieve(collection, ids.to_vec(), false, true, self.opts.consistency)
            .await?;
        Ok(records
            .into_iter()
            .filter_map(|r| r.vector.map(|v| (r.id, v)))
            .collect())
    }
}
