//! A request body as the point routes (and collection creation) parse and
//! check it, without HTTP and without a cluster: the entry point of the
//! fuzz target `json_models` (`fuzz/`). Every step is the function the
//! route's handler calls; only the cluster round trip is left out (a query
//! by point id stops at the id).

use std::collections::BTreeMap;

use protocol::cluster::CollectionInfo;
use protocol::{
    CollectionConfig, CountRequest, Filter, Payload, Point, PointId, ScrollRequest, SearchRequest,
};

use super::query::parse_query_body;
use super::read::{parse_count, parse_scroll, parse_search, parse_searches, search_request};
use super::write::Write;
use super::{batch, read_opts};
use crate::api::json_body;
use crate::api::models::{self, Selector};
use crate::error::Result;
use crate::reads::check_scroll;

/// What the query tree holds that the cluster would be sent: each node's
/// filter, the ids whose vectors it looks up, its inline nearest vectors.
fn accept_query_node(
    node: &crate::query::QueryNode,
    dimension: usize,
    out: &mut Accepted,
) -> Result<()> {
    use crate::query::tree::{QueryKind, VectorInput};
    if let Some(f) = &node.filter {
        out.filters.push(f.clone());
    }
    match &node.query {
        Some(QueryKind::Nearest(VectorInput::Dense(v))) => {
            let mut request = SearchRequest::new(v.clone(), node.limit);
            request.filter = node.filter.clone();
            request.validate(dimension)?;
            out.searches.push(request);
        }
        Some(QueryKind::Nearest(VectorInput::Id(id))) => out.ids.push(*id),
        _ => {}
    }
    node.prefetch
        .iter()
        .try_for_each(|p| accept_query_node(p, dimension, out))
}

/// The routes whose bodies [`parse_body`] knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Upsert,
    Delete,
    SetPayload,
    OverwritePayload,
    DeletePayload,
    ClearPayload,
    Batch,
    Search,
    SearchBatch,
    Query,
    QueryBatch,
    Scroll,
    Count,
    CreateCollection,
}

impl Route {
    pub const ALL: [Route; 14] = [
        Route::Upsert,
        Route::Delete,
        Route::SetPayload,
        Route::OverwritePayload,
        Route::DeletePayload,
        Route::ClearPayload,
        Route::Batch,
        Route::Search,
        Route::SearchBatch,
        Route::Query,
        Route::QueryBatch,
        Route::Scroll,
        Route::Count,
        Route::CreateCollection,
    ];
}

/// The `protocol` values an accepted body became: what the gateway would
/// send to storage nodes or the meta-service.
#[derive(Debug, Default)]
pub struct Accepted {
    pub points: Vec<Point>,
    pub ids: Vec<PointId>,
    pub filters: Vec<Filter>,
    pub payloads: Vec<Payload>,
    pub keys: Vec<String>,
    pub searches: Vec<SearchRequest>,
    pub scroll: Option<ScrollRequest>,
    pub count: Option<CountRequest>,
    pub collection: Option<CollectionConfig>,
}

impl Accepted {
    fn selector(&mut self, s: Selector) {
        match s {
            Selector::Ids(ids) => self.ids.extend(ids),
            Selector::Filter(f) => self.filters.push(f),
        }
    }

    fn write(&mut self, w: Write) {
        match w {
            Write::Upsert(points) => self.points.extend(points),
            Write::Delete(s) | Write::ClearPayload(s) => self.selector(s),
            Write::Payload {
                payload, selector, ..
            } => {
                self.payloads.push(payload);
                self.selector(selector);
            }
            Write::DeletePayload { keys, selector } => {
                self.keys.extend(keys);
                self.selector(selector);
            }
        }
    }
}

/// Parses `body` as `route` does for the collection `coll` (no query
/// string): `Ok` with what the route would go on to send, or the 4xx the
/// route would answer.
pub fn parse_body(route: Route, body: &[u8], coll: &CollectionInfo) -> Result<Accepted> {
    let v = json_body(body)?;
    let dimension = coll.config.dimension;
    let mut out = Accepted::default();
    let no_query = BTreeMap::new();
    match route {
        Route::Upsert => out.write(Write::upsert(v, coll)?),
        Route::Delete => out.write(Write::delete(v)?),
        Route::SetPayload => out.write(Write::payload(v, false)?),
        Route::OverwritePayload => out.write(Write::payload(v, true)?),
        Route::DeletePayload => out.write(Write::delete_payload(v)?),
        Route::ClearPayload => out.write(Write::clear_payload(v)?),
        Route::Batch => {
            for w in batch::parse_batch(v, coll)? {
                out.write(w);
            }
        }
        Route::Search | Route::SearchBatch => {
            read_opts(&no_query, Some(&v))?;
            let bodies = match route {
                Route::Search => vec![v],
                _ => parse_searches(v)?,
            };
            for b in bodies {
                let (vector, spec) = parse_search(b)?;
                let request = search_request(vector, &spec);
                // What `Gateway::search` checks before fanning out.
                request.validate(dimension)?;
                out.searches.push(request);
            }
        }
        Route::Query | Route::QueryBatch => {
            read_opts(&no_query, Some(&v))?;
            let bodies = match route {
                Route::Query => vec![v],
                _ => parse_searches(v)?,
            };
            for b in bodies {
                let q = parse_query_body(super::object(b)?, 10)?;
                accept_query_node(&q.node, dimension, &mut out)?;
            }
        }
        Route::Scroll => {
            read_opts(&no_query, Some(&v))?;
            let (request, _) = parse_scroll(v)?;
            check_scroll(&request)?;
            out.scroll = Some(request);
        }
        Route::Count => {
            read_opts(&no_query, Some(&v))?;
            let request = parse_count(v)?;
            out.count = Some(request);
        }
        Route::CreateCollection => out.collection = Some(models::parse_create_collection(v)?),
    }
    Ok(out)
}
