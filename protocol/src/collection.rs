//! Collection configuration, in Qdrant's vocabulary where one exists.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::payload_index::PayloadIndexes;

/// Largest vector dimension accepted (Qdrant's limit is 65,536).
pub const MAX_DIMENSION: usize = 65_536;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Distance {
    /// Cosine similarity; vectors are normalised on write, then compared by dot product.
    Cosine,
    /// Dot product (higher is closer).
    Dot,
    /// Euclidean distance (lower is closer).
    Euclid,
}

impl Distance {
    /// Whether a larger score means a closer point.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Distance::Euclid)
    }

    /// Whether `a` ranks before `b` under this distance.
    pub fn is_better(self, a: f32, b: f32) -> bool {
        if self.higher_is_better() {
            a > b
        } else {
            a < b
        }
    }

    /// Whether `score` passes a Qdrant-style `score_threshold`.
    pub fn passes_threshold(self, score: f32, threshold: f32) -> bool {
        if self.higher_is_better() {
            score >= threshold
        } else {
            score <= threshold
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswConfig {
    /// Edges per node in the graph (FAISS `M`).
    pub m: usize,
    /// Candidate list size while building (FAISS `efConstruction`).
    pub ef_construct: usize,
    /// Default candidate list size while searching (FAISS `efSearch`).
    #[serde(default = "default_ef_search")]
    pub ef_search: usize,
}

fn default_ef_search() -> usize {
    64
}

impl Default for HnswConfig {
    fn default() -> Self {
        Self {
            m: 32,
            ef_construct: 200,
            ef_search: default_ef_search(),
        }
    }
}

/// The ANN index a sealed segment is built into.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexKind {
    #[default]
    Hnsw,
    /// Inverted lists with `nlist` centroids, probing `nprobe` at search time.
    Ivf { nlist: usize, nprobe: usize },
}

/// How many replicas must durably apply a write before it is acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteConsistency {
    One,
    #[default]
    Majority,
    All,
}

impl WriteConsistency {
    /// Number of replica acknowledgements (the primary included) needed
    /// among `replicas` replicas.
    pub fn required_acks(self, replicas: usize) -> usize {
        match self {
            WriteConsistency::One => 1.min(replicas),
            WriteConsistency::Majority => replicas / 2 + 1,
            WriteConsistency::All => replicas,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CollectionConfig {
    /// Vector dimension.
    pub dimension: usize,
    pub distance: Distance,
    #[serde(default)]
    pub hnsw: HnswConfig,
    #[serde(default)]
    pub index: IndexKind,
    #[serde(default = "one")]
    pub shard_number: u32,
    #[serde(default = "one")]
    pub replication_factor: u32,
    #[serde(default)]
    pub write_consistency: WriteConsistency,
    /// Payload indexes every replica builds (`PUT /collections/{name}/index`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub payload_indexes: PayloadIndexes,
}

fn one() -> u32 {
    1
}

impl CollectionConfig {
    pub fn new(dimension: usize, distance: Distance) -> Self {
        Self {
            dimension,
            distance,
            hnsw: HnswConfig::default(),
            index: IndexKind::default(),
            shard_number: 1,
            replication_factor: 1,
            write_consistency: WriteConsistency::default(),
            payload_indexes: PayloadIndexes::new(),
        }
    }

    pub fn validate(&self) -> Result<(), ValidationError> {
        let bad = |reason: &str| {
            Err(ValidationError::InvalidConfig {
                reason: reason.to_string(),
            })
        };
        if self.dimension == 0 || self.dimension > MAX_DIMENSION {
            return bad("dimension must be between 1 and 65536");
        }
        if self.hnsw.m < 2 || self.hnsw.m > 512 {
            return bad("hnsw m must be between 2 and 512");
        }
        if self.hnsw.ef_construct == 0 || self.hnsw.ef_search == 0 {
            return bad("hnsw ef_construct and ef_search must be positive");
        }
        if let IndexKind::Ivf { nlist, nprobe } = self.index {
            if nlist == 0 || nprobe == 0 || nprobe > nlist {
                return bad("ivf needs 0 < nprobe <= nlist");
            }
        }
        if self.shard_number == 0 || self.shard_number > 1024 {
            return bad("shard_number must be between 1 and 1024");
        }
        if self.replication_factor == 0 || self.replication_factor > 16 {
            return bad("replication_factor must be between 1 and 16");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_acks() {
        assert_eq!(WriteConsistency::Majority.required_acks(3), 2);
        assert_eq!(WriteConsistency::Majority.required_acks(1), 1);
        assert_eq!(WriteConsistency::Majority.required_acks(4), 3);
        assert_eq!(WriteConsistency::All.required_acks(3), 3);
        assert_eq!(WriteConsistency::One.required_acks(3), 1);
    }

    #[test]
    fn config_validation() {
        assert!(CollectionConfig::new(384, Distance::Cosine)
            .validate()
            .is_ok());
        assert!(CollectionConfig::new(0, Distance::Cosine)
            .validate()
            .is_err());
        let mut c = CollectionConfig::new(8, Distance::Dot);
        c.index = IndexKind::Ivf {
            nlist: 4,
            nprobe: 8,
        };
        assert!(c.validate().is_err());
        c.index = IndexKind::Ivf {
            nlist: 16,
            nprobe: 4,
        };
        assert!(c.validate().is_ok());
    }

    #[test]
    fn distance_order() {
        assert!(Distance::Cosine.is_better(0.9, 0.1));
        assert!(Distance::Euclid.is_better(0.1, 0.9));
        assert!(Distance::Euclid.passes_threshold(0.5, 1.0));
        assert!(!Distance::Dot.passes_threshold(0.5, 1.0));
    }
}
