//! `PUT /collections/{name}` bodies → `CollectionConfig`.

use protocol::{CollectionConfig, Distance, WriteConsistency};
use serde::Deserialize;
use serde_json::Value;

use super::{parse, strip_nulls};
use crate::error::{GatewayError, Result};

#[derive(Deserialize)]
struct VectorParams {
    size: usize,
    distance: String,
}

#[derive(Deserialize, Default)]
struct HnswIn {
    m: Option<usize>,
    ef_construct: Option<usize>,
}

#[derive(Deserialize)]
struct CreateCollectionIn {
    vectors: Option<Value>,
    shard_number: Option<u32>,
    replication_factor: Option<u32>,
    write_consistency_factor: Option<u32>,
    hnsw_config: Option<HnswIn>,
}

pub fn parse_distance(s: &str) -> Result<Distance> {
    match s {
        "Cosine" | "cosine" => Ok(Distance::Cosine),
        "Dot" | "dot" => Ok(Distance::Dot),
        "Euclid" | "euclid" => Ok(Distance::Euclid),
        other => Err(GatewayError::bad_request(format!(
            "unsupported distance {other:?}: use Cosine, Dot or Euclid"
        ))),
    }
}

pub fn distance_name(d: Distance) -> &'static str {
    match d {
        Distance::Cosine => "Cosine",
        Distance::Dot => "Dot",
        Distance::Euclid => "Euclid",
    }
}

/// Qdrant's `write_consistency_factor` (replicas that must apply) onto our
/// levels: 1 → one, ≥ RF → all, in between → majority.
pub fn write_consistency_from_factor(factor: Option<u32>, rf: u32) -> WriteConsistency {
    match factor {
        None => WriteConsistency::Majority,
        Some(f) if rf <= 1 || f >= rf => WriteConsistency::All,
        Some(f) if f <= 1 => WriteConsistency::One,
        Some(_) => WriteConsistency::Majority,
    }
}

pub fn write_consistency_factor(c: WriteConsistency, rf: u32) -> u32 {
    c.required_acks(rf as usize) as u32
}

/// `PUT /collections/{name}` body → config.
pub fn parse_create_collection(body: Value) -> Result<CollectionConfig> {
    let mut body = body;
    strip_nulls(&mut body);
    let c: CreateCollectionIn = parse(body, "collection config")?;
    let vectors = c.vectors.ok_or_else(|| {
        GatewayError::bad_request("missing `vectors`: {\"size\": N, \"distance\": \"Cosine\"}")
    })?;
    let params: VectorParams =
        match vectors {
            Value::Object(ref m) if m.contains_key("size") => parse(vectors, "vectors")?,
            Value::Object(m) if m.len() == 1 => {
                let (_, v) = m
                    .into_iter()
                    .next()
                    .ok_or_else(|| GatewayError::bad_request("empty `vectors`"))?;
                parse(v, "vectors")?
            }
            _ => return Err(GatewayError::bad_request(
                "`vectors` must be {\"size\": N, \"distance\": ...} (one unnamed vector per point)",
            )),
        };
    let mut config = CollectionConfig::new(params.size, parse_distance(&params.distance)?);
    config.shard_number = c.shard_number.unwrap_or(1);
    config.replication_factor = c.replication_factor.unwrap_or(1);
    config.write_consistency =
        write_consistency_from_factor(c.write_consistency_factor, config.replication_factor);
    let hnsw = c.hnsw_config.unwrap_or_default();
    if let Some(m) = hnsw.m {
        config.hnsw.m = m;
    }
    if let Some(ef) = hnsw.ef_construct {
        config.hnsw.ef_construct = ef;
    }
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn create_collection_shapes() {
        let c = parse_create_collection(json!({
            "vectors": {"size": 4, "distance": "Cosine"},
            "shard_number": 3, "replication_factor": 2, "write_consistency_factor": 1,
            "hnsw_config": {"m": 8, "ef_construct": 50},
            "on_disk_payload": null, "optimizers_config": null
        }))
        .unwrap();
        assert_eq!(c.dimension, 4);
        assert_eq!(c.distance, Distance::Cosine);
        assert_eq!((c.shard_number, c.replication_factor), (3, 2));
        assert_eq!(c.write_consistency, WriteConsistency::One);
        assert_eq!((c.hnsw.m, c.hnsw.ef_construct), (8, 50));
        let named =
            parse_create_collection(json!({"vectors": {"": {"size": 2, "distance": "Dot"}}}))
                .unwrap();
        assert_eq!(named.dimension, 2);
        for bad in [
            json!({}),
            json!({"vectors": {"size": 0, "distance": "Cosine"}}),
            json!({"vectors": {"size": 4, "distance": "Manhattan"}}),
            json!({"vectors": {"size": "x", "distance": "Dot"}}),
            json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 0}),
            json!([1, 2]),
        ] {
            assert!(parse_create_collection(bad.clone()).is_err(), "{bad}");
        }
    }
}
