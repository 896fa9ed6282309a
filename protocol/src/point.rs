//! Points and payloads, and the checks every write passes before it is
//! logged.

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::ids::PointId;

/// A JSON object attached to a point.
pub type Payload = serde_json::Map<String, serde_json::Value>;

/// Largest payload accepted for one point, in bytes of JSON.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// Largest number of points in one write.
pub const MAX_BATCH_POINTS: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub id: PointId,
    pub vector: Vec<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
}

/// A point as returned by get / scroll: payload and vector only when asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: PointId,
    #[serde(default)]
    pub payload: Option<Payload>,
    #[serde(default)]
    pub vector: Option<Vec<f32>>,
}

/// Refuses vectors of the wrong dimension and NaN / infinite components.
pub fn validate_vector(vector: &[f32], dimension: usize) -> Result<(), ValidationError> {
    if vector.len() != dimension {
        return Err(ValidationError::WrongDimension {
            expected: dimension,
            got: vector.len(),
        });
    }
    if let Some(index) = vector.iter().position(|x| !x.is_finite()) {
        return Err(ValidationError::NonFiniteComponent { index });
    }
    Ok(())
}

pub fn validate_payload(payload: &Payload) -> Result<(), ValidationError> {
    let size = serde_json::to_vec(payload)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_PAYLOAD_BYTES {
        return Err(ValidationError::PayloadTooLarge {
            got: size,
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    Ok(())
}

/// Turns an arbitrary JSON value into a payload, refusing non-objects.
pub fn payload_from_value(value: serde_json::Value) -> Result<Payload, ValidationError> {
    match value {
        serde_json::Value::Object(map) => Ok(map),
        _ => Err(ValidationError::PayloadNotObject),
    }
}

pub fn validate_batch_len(len: usize) -> Result<(), ValidationError> {
    if len > MAX_BATCH_POINTS {
        return Err(ValidationError::BatchTooLarge {
            got: len,
            limit: MAX_BATCH_POINTS,
        });
    }
    Ok(())
}

impl Point {
    pub fn validate(&self, dimension: usize) -> Result<(), ValidationError> {
        validate_vector(&self.vector, dimension)?;
        if let Some(p) = &self.payload {
            validate_payload(p)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_vectors() {
        assert!(validate_vector(&[1.0, 2.0], 2).is_ok());
        assert_eq!(
            validate_vector(&[1.0], 2),
            Err(ValidationError::WrongDimension {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            validate_vector(&[1.0, f32::NAN], 2),
            Err(ValidationError::NonFiniteComponent { index: 1 })
        );
        assert!(validate_vector(&[f32::INFINITY, 0.0], 2).is_err());
    }

    #[test]
    fn refuses_bad_payloads() {
        assert_eq!(
            payload_from_value(serde_json::json!([1, 2])),
            Err(ValidationError::PayloadNotObject)
        );
        let mut big = Payload::new();
        big.insert(
            "k".into(),
            serde_json::Value::String("x".repeat(MAX_PAYLOAD_BYTES)),
        );
        assert!(matches!(
            validate_payload(&big),
            Err(ValidationError::PayloadTooLarge { .. })
        ));
        assert!(validate_batch_len(MAX_BATCH_POINTS + 1).is_err());
    }
}
