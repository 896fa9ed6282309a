//! Read requests a shard serves (search, scroll, count) and their answers.

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::filter::Filter;
use crate::ids::PointId;
use crate::point::{validate_vector, Payload, Record};

/// Most hits one search may ask for (`offset + limit`).
pub const MAX_SEARCH_HITS: usize = 10_000;

/// Most searches in one batch request (`search/batch`, `query/batch`):
/// each fans out to every shard, so a batch multiplies the work of one
/// request by its length.
pub const MAX_BATCH_SEARCHES: usize = 1_000;

/// Refuses a batch of more than [`MAX_BATCH_SEARCHES`] searches.
pub fn validate_batch_searches(len: usize) -> Result<(), ValidationError> {
    if len > MAX_BATCH_SEARCHES {
        return Err(ValidationError::TooMany {
            what: "searches in one batch",
            got: len,
            limit: MAX_BATCH_SEARCHES,
        });
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchParams {
    /// HNSW candidate list size for this query (collection default if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hnsw_ef: Option<usize>,
    /// Exhaustive search: exact results, no ANN index.
    #[serde(default)]
    pub exact: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchRequest {
    pub vector: Vec<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub params: SearchParams,
    pub limit: usize,
    #[serde(default)]
    pub offset: usize,
    #[serde(default)]
    pub with_payload: bool,
    #[serde(default)]
    pub with_vector: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_threshold: Option<f32>,
}

impl SearchRequest {
    pub fn new(vector: Vec<f32>, limit: usize) -> Self {
        Self {
            vector,
            filter: None,
            params: SearchParams::default(),
            limit,
            offset: 0,
            with_payload: false,
            with_vector: false,
            score_threshold: None,
        }
    }

    pub fn validate(&self, dimension: usize) -> Result<(), ValidationError> {
        validate_vector(&self.vector, dimension)?;
        if self.limit == 0 {
            return Err(ValidationError::InvalidRequest {
                reason: "limit must be positive".into(),
            });
        }
        if self.offset.saturating_add(self.limit) > MAX_SEARCH_HITS {
            return Err(ValidationError::InvalidRequest {
                reason: format!("offset + limit must not exceed {MAX_SEARCH_HITS}"),
            });
        }
        if self.params.hnsw_ef == Some(0) {
            return Err(ValidationError::InvalidRequest {
                reason: "hnsw_ef must be positive".into(),
            });
        }
        if self.score_threshold.is_some_and(|t| !t.is_finite()) {
            return Err(ValidationError::InvalidRequest {
                reason: "score_threshold must be a finite number".into(),
            });
        }
        match &self.filter {
            Some(f) => f.validate(),
            None => Ok(()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoredPoint {
    pub id: PointId,
    /// Sequence number of the operation that last wrote this point.
    pub version: u64,
    pub score: f32,
    #[serde(default)]
    pub payload: Option<Payload>,
    #[serde(default)]
    pub vector: Option<Vec<f32>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScrollRequest {
    /// First id to return (inclusive); the start when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<PointId>,
    pub limit: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub with_payload: bool,
    #[serde(default)]
    pub with_vector: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScrollResponse {
    pub points: Vec<Record>,
    /// Pass as `offset` to get the next page; `None` at the end.
    pub next_page_offset: Option<PointId>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CountRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// Qdrant's `exact: false`: a filtered count may be estimated from a
    /// sample of the shard's points instead of testing every one (an
    /// unfiltered count is always exact: it costs nothing).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimate: bool,
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn batches_of_searches_are_limited() {
        assert!(validate_batch_searches(MAX_BATCH_SEARCHES).is_ok());
        let err = validate_batch_searches(MAX_BATCH_SEARCHES + 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "1001 searches in one batch exceed the limit of 1000"
        );
    }
}
