//! Typed reads over a whole collection: search (bounded top-k merge),
//! scroll (id-ordered merge with a cursor), count (sum), retrieve by id.
//! The HTTP layer parses into these and renders their answers.

use std::collections::{BTreeMap, HashMap};

use protocol::rpc::{ShardRef, StorageRequest, StorageResponse};
use protocol::{CountRequest, PointId, Record, ScoredPoint, ScrollRequest, SearchRequest, ShardId};

use crate::error::{GatewayError, Result};
use crate::gateway::Gateway;
use crate::merge::{merge_scroll, merge_top_k, ShardPage};
use crate::routing::group_by_shard;
use crate::scatter::ReadConsistency;

/// How a read may be served.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadOptions {
    pub consistency: ReadConsistency,
    /// Answer with the shards that did answer when some cannot.
    pub partial: bool,
}

/// A read's answer and the shards missing from it (only with `partial`).
#[derive(Clone, Debug)]
pub struct Answer<T> {
    pub value: T,
    pub missing_shards: Vec<ShardId>,
}

/// One stage of a search as the gateway runs it (`where the time goes`).
pub(crate) fn record_stage(stage: &'static str, since: std::time::Instant) {
    metrics::histogram!("gateway_search_stage_seconds", "stage" => stage)
        .record(since.elapsed().as_secs_f64());
}

fn unexpected(what: &str, r: StorageResponse) -> GatewayError {
    GatewayError::Internal {
        message: format!("unexpected answer to {what}: {r:?}"),
    }
}

/// A scroll's limit and filter, checked before any shard is asked.
pub(crate) fn check_scroll(request: &ScrollRequest) -> Result<()> {
    if request.limit == 0 || request.limit > protocol::search::MAX_SEARCH_HITS {
        return Err(GatewayError::bad_request(format!(
            "limit must be between 1 and {}",
            protocol::search::MAX_SEARCH_HITS
        )));
    }
    if let Some(f) = &request.filter {
        f.validate()?;
    }
    Ok(())
}

impl Gateway {
    /// Global top `offset + limit`, then the page: every shard is asked
    /// for its own top `offset + limit` (offset 0), so the merge sees
    /// every candidate of the global page.
    pub async fn search(
        &self,
        collection: &str,
        request: SearchRequest,
        opts: ReadOptions,
    ) -> Result<Answer<Vec<ScoredPoint>>> {
        let (map, coll) = self.collection(collection).await?;
        request.validate(coll.config.dimension)?;
        let mut per_shard = request.clone();
        per_shard.offset = 0;
        per_shard.limit = request.offset + request.limit;
        let fanout_started = std::time::Instant::now();
        let g = self
            .fan_out(&map, &coll, opts.consistency, opts.partial, |shard| {
                StorageRequest::Search {
                    shard: ShardRef {
                        collection: collection.to_string(),
                        shard,
                    },
                    epoch: map.epoch,
                    request: per_shard.clone(),
                }
            })
            .await?;
        record_stage("fanout", fanout_started);
        let merge_started = std::time::Instant::now();
        let mut lists = Vec::with_capacity(g.answers.len());
        for (_, r) in g.answers {
            match r {
                StorageResponse::Hits { hits, .. } => lists.push(hits),
                other => return Err(unexpected("search", other)),
            }
        }
        let mut hits = merge_top_k(lists, request.offset + request.limit, coll.config.distance);
        let hits = hits.split_off(request.offset.min(hits.len()));
        record_stage("merge", merge_started);
        Ok(Answer {
            value: hits,
            missing_shards: g.missing.into_iter().map(|(s, _)| s).collect(),
        })
    }

    /// One page of points in id order across all shards.
    pub async fn scroll(
        &self,
        collection: &str,
        request: ScrollRequest,
        opts: ReadOptions,
    ) -> Result<Answer<(Vec<Record>, Option<PointId>)>> {
        let (map, coll) = self.collection(collection).await?;
        check_scroll(&request)?;
        let g = self
            .fan_out(&map, &coll, opts.consistency, opts.partial, |shard| {
                StorageRequest::Scroll {
                    shard: ShardRef {
                        collection: collection.to_string(),
                        shard,
                    },
                    epoch: map.epoch,
                    request: request.clone(),
                }
            })
            .await?;
        let mut pages = Vec::with_capacity(g.answers.len());
        for (_, r) in g.answers {
            match r {
                StorageResponse::Scrolled { page, .. } => pages.push(ShardPage {
                    points: page.points,
                    next_page_offset: page.next_page_offset,
                }),
                other => return Err(unexpected("scroll", other)),
            }
        }
        Ok(Answer {
            value: merge_scroll(pages, request.limit),
            missing_shards: g.missing.into_iter().map(|(s, _)| s).collect(),
        })
    }

    /// Points passing the filter, summed over shards (exact).
    pub async fn count(
        &self,
        collection: &str,
        request: CountRequest,
        opts: ReadOptions,
    ) -> Result<Answer<u64>> {
        let (map, coll) = self.collection(collection).await?;
        if let Some(f) = &request.filter {
            f.validate()?;
        }
        let g = self
            .fan_out(&map, &coll, opts.consistency, opts.partial, |shard| {
                StorageRequest::Count {
                    shard: ShardRef {
                        collection: collection.to_string(),
                        shard,
                    },
                    epoch: map.epoch,
                    request: request.clone(),
                }
            })
            .await?;
        let mut total = 0;
        for (_, r) in g.answers {
            match r {
                StorageResponse::Counted { count, .. } => total += count,
                other => return Err(unexpected("count", other)),
            }
        }
        Ok(Answer {
            value: total,
            missing_shards: g.missing.into_iter().map(|(s, _)| s).collect(),
        })
    }

    /// The points among `ids` that exist, in the order asked (each id
    /// once). Only the shards holding the ids are asked.
    pub async fn retrieve(
        &self,
        collection: &str,
        ids: Vec<PointId>,
        with_payload: bool,
        with_vector: bool,
        consistency: ReadConsistency,
    ) -> Result<Vec<Record>> {
        let (map, coll) = self.collection(collection).await?;
        protocol::point::validate_batch_len(ids.len())?;
        let groups: BTreeMap<ShardId, Vec<PointId>> =
            group_by_shard(collection, coll.config.shard_number, ids.clone(), |i| *i);
        let reqs = groups
            .into_iter()
            .map(|(shard, ids)| {
                (
                    shard,
                    StorageRequest::Get {
                        shard: ShardRef {
                            collection: collection.to_string(),
                            shard,
                        },
                        epoch: map.epoch,
                        ids,
                        with_payload,
                        with_vector,
                    },
                )
            })
            .collect();
        let answers = self.read_shards(&map, &coll, reqs, consistency).await?;
        let mut found: HashMap<PointId, Record> = HashMap::new();
        for r in answers {
            match r {
                StorageResponse::Records { records, .. } => {
                    found.extend(records.into_iter().map(|r| (r.id, r)))
                }
                other => return Err(unexpected("get", other)),
            }
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// Every id passing `filter` (for filter-selected payload writes),
    /// bounded by `limit` ids.
    pub async fn ids_matching(
        &self,
        collection: &str,
        filter: protocol::Filter,
        limit: usize,
    ) -> Result<Vec<PointId>> {
        let mut ids = Vec::new();
        let mut offset = None;
        // Bounded: each page returns at least one id or ends the loop.
        loop {
            let page = self
                .scroll(
                    collection,
                    ScrollRequest {
                        offset,
                        limit: 1000,
                        filter: Some(filter.clone()),
                        with_payload: false,
                        with_vector: false,
                    },
                    ReadOptions::default(),
                )
                .await?;
            let (points, next) = page.value;
            ids.extend(points.into_iter().map(|r| r.id));
            if ids.len() > limit {
                return Err(GatewayError::bad_request(format!(
                    "filter selects more than {limit} points; narrow it or list ids"
                )));
            }
            match next {
                Some(n) => offset = Some(n),
                None => return Ok(ids),
            }
        }
    }
}
