//! Answer shapes as qdrant-client's models expect them.

use protocol::{Payload, PointId, Record, ScoredPoint};
use serde::Serialize;
use serde_json::{json, Value};

use super::points::PayloadSelector;
use super::shapes::{ExtendedPointId, Payload as DocPayload};

#[derive(Serialize, utoipa::ToSchema)]
pub struct ScoredOut {
    #[schema(value_type = ExtendedPointId)]
    pub id: PointId,
    pub version: u64,
    pub score: f32,
    #[schema(value_type = Option<DocPayload>)]
    pub payload: Option<Payload>,
    pub vector: Option<Vec<f32>>,
    pub shard_key: Option<Value>,
    pub order_value: Option<Value>,
}

pub fn scored_out(p: ScoredPoint, sel: &PayloadSelector, with_vector: bool) -> ScoredOut {
    ScoredOut {
        id: p.id,
        version: p.version,
        score: p.score,
        payload: sel.apply(p.payload),
        vector: if with_vector { p.vector } else { None },
        shard_key: None,
        order_value: None,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RecordOut {
    #[schema(value_type = ExtendedPointId)]
    pub id: PointId,
    #[schema(value_type = Option<DocPayload>)]
    pub payload: Option<Payload>,
    pub vector: Option<Vec<f32>>,
    pub shard_key: Option<Value>,
    pub order_value: Option<Value>,
}

pub fn record_out(r: Record, sel: &PayloadSelector, with_vector: bool) -> RecordOut {
    RecordOut {
        id: r.id,
        payload: sel.apply(r.payload),
        vector: if with_vector { r.vector } else { None },
        shard_key: None,
        order_value: None,
    }
}

pub fn update_result(seq: u64, wait: bool) -> Value {
    json!({"operation_id": seq, "status": if wait { "completed" } else { "acknowledged" }})
}
