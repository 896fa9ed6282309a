//! The write operations a shard applies. Every operation a shard accepts is
//! given a sequence number and logged before it is acknowledged; replicas
//! apply the same operations in the same order.

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::filter::Filter;
use crate::ids::{PointId, SeqNo, Term};
use crate::point::{validate_batch_len, validate_payload, Payload, Point};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    /// Insert or replace points (same id replaces).
    Upsert {
        points: Vec<Point>,
    },
    Delete {
        ids: Vec<PointId>,
    },
    /// Resolved into `Delete` by the shard that orders it, so the log holds
    /// exactly which points went.
    DeleteByFilter {
        filter: Filter,
    },
    /// Merge keys into the payloads of existing points.
    SetPayload {
        ids: Vec<PointId>,
        payload: Payload,
    },
    /// Replace the payloads of existing points.
    OverwritePayload {
        ids: Vec<PointId>,
        payload: Payload,
    },
    DeletePayloadKeys {
        ids: Vec<PointId>,
        keys: Vec<String>,
    },
    ClearPayload {
        ids: Vec<PointId>,
    },
}

impl Operation {
    /// Checks everything that can be checked without the shard's state.
    pub fn validate(&self, dimension: usize) -> Result<(), ValidationError> {
        match self {
            Operation::Upsert { points } => {
                validate_batch_len(points.len())?;
                points.iter().try_for_each(|p| p.validate(dimension))
            }
            Operation::Delete { ids } | Operation::ClearPayload { ids } => {
                validate_batch_len(ids.len())
            }
            Operation::DeleteByFilter { filter } => filter.validate(),
            Operation::SetPayload { ids, payload }
            | Operation::OverwritePayload { ids, payload } => {
                validate_batch_len(ids.len())?;
                validate_payload(payload)
            }
            Operation::DeletePayloadKeys { ids, .. } => validate_batch_len(ids.len()),
        }
    }
}

/// An operation with its place in the shard's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SequencedOperation {
    pub seq: SeqNo,
    pub term: Term,
    pub op: Operation,
}
