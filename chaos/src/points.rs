//! The content of a point is a function of its id, so the history check
//! needs no copy of what was written: a point read back is right exactly
//! when it equals [`vector`] and [`payload`] of its id.
//!
//! Components are multiples of 1/8 in [-6, 6], exact in `f32` and in JSON,
//! and the collections use `Dot` distance (no normalisation), so a correct
//! round trip compares equal bit for bit.

use serde_json::{json, Value};

/// Dimension of every chaos collection.
pub const DIM: usize = 8;

pub fn vector(id: u64) -> Vec<f32> {
    let mixed = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..DIM)
        .map(|d| ((mixed >> (d * 7)) % 97) as f32 / 8.0 - 6.0)
        .collect()
}

pub fn payload(id: u64) -> Value {
    json!({"id": id, "bucket": id % 16})
}

/// One point as the upsert body's `points` entry.
pub fn point_json(id: u64) -> Value {
    json!({"id": id, "vector": vector(id), "payload": payload(id)})
}

/// Whether a read-back point holds the content written for `id`.
pub fn matches(id: u64, vector_read: Option<&[f32]>, payload_read: Option<&Value>) -> bool {
    let want = vector(id);
    let vector_ok = vector_read.is_some_and(|v| {
        v.len() == want.len() && v.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6)
    });
    let payload_ok = payload_read.is_some_and(|p| {
        p.get("id").and_then(Value::as_u64) == Some(id)
            && p.get("bucket").and_then(Value::as_u64) == Some(id % 16)
    });
    vector_ok && payload_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_deterministic_exact_and_checked() {
        assert_eq!(vector(42), vector(42));
        assert_ne!(vector(42), vector(43));
        for x in vector(7) {
            assert!((-6.0..=6.0).contains(&x));
            assert_eq!((x * 8.0).fract(), 0.0);
        }
        let v = vector(5);
        assert!(matches(5, Some(&v), Some(&payload(5))));
        assert!(!matches(6, Some(&v), Some(&payload(5))));
        assert!(!matches(5, None, Some(&payload(5))));
        assert!(!matches(5, Some(&v), None));
        assert!(!matches(5, Some(&v[..4]), Some(&payload(5))));
        let p = point_json(9);
        assert_eq!(p["payload"]["bucket"], 9);
        assert_eq!(p["vector"].as_array().map(Vec::len), Some(DIM));
    }
}
