//! Search bodies (query bodies: `crate::query::tree`).

use protocol::{Filter, SearchParams};
use serde::Deserialize;
use serde_json::Value;

use super::parse_filter;
use super::points::{parse_vector, parse_with_vector, PayloadSelector};
use crate::error::{GatewayError, Result};

#[derive(Deserialize, Default)]
pub struct ParamsIn {
    pub hnsw_ef: Option<usize>,
    #[serde(default)]
    pub exact: Option<bool>,
}

impl ParamsIn {
    pub fn into_params(self) -> SearchParams {
        SearchParams {
            hnsw_ef: self.hnsw_ef,
            exact: self.exact.unwrap_or(false),
        }
    }
}

/// The fields of a search body.
#[derive(Deserialize)]
pub struct SearchIn {
    pub vector: Option<Value>,
    pub filter: Option<Value>,
    pub params: Option<ParamsIn>,
    pub limit: Option<usize>,
    pub top: Option<usize>,
    pub offset: Option<usize>,
    pub with_payload: Option<Value>,
    pub with_vector: Option<Value>,
    pub score_threshold: Option<f32>,
}

/// What a search-like request asks for, before the vector is known.
pub struct SearchSpec {
    pub filter: Option<Filter>,
    pub params: SearchParams,
    pub limit: usize,
    pub offset: usize,
    pub with_payload: PayloadSelector,
    pub with_vector: bool,
    pub score_threshold: Option<f32>,
}

impl SearchIn {
    pub fn spec(&mut self, default_limit: usize) -> Result<SearchSpec> {
        Ok(SearchSpec {
            filter: parse_filter(self.filter.take())?,
            params: self.params.take().unwrap_or_default().into_params(),
            limit: self.limit.or(self.top).unwrap_or(default_limit),
            offset: self.offset.unwrap_or(0),
            with_payload: PayloadSelector::parse(self.with_payload.take(), false)?,
            with_vector: parse_with_vector(self.with_vector.take(), false)?,
            score_threshold: self.score_threshold,
        })
    }

    pub fn take_vector(&mut self) -> Result<Vec<f32>> {
        match self.vector.take() {
            Some(v) => parse_vector(v),
            None => Err(GatewayError::bad_request("missing `vector`")),
        }
    }
}
