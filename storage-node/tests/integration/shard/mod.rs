//! Shard engine tests against real FAISS indexes and a real disk.

mod background;
mod filter_bench;
mod model;
mod ops;
mod payload_index;
mod status;
mod validation;

use protocol::{CollectionConfig, Distance, Operation, Payload, Point, PointId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use storage_node::{Shard, ShardOptions, SyncMode, WalOptions};

pub fn config(dim: usize, distance: Distance) -> CollectionConfig {
    let mut c = CollectionConfig::new(dim, distance);
    c.hnsw.m = 16;
    c.hnsw.ef_construct = 64;
    c
}

/// Options with a small segment size and no background thread, so tests
/// decide when indexing happens.
pub fn options(max_segment_points: usize) -> ShardOptions {
    ShardOptions {
        wal: WalOptions {
            sync: SyncMode::Always,
            max_file_bytes: 64 << 10,
        },
        max_segment_points,
        background: false,
        ..ShardOptions::default()
    }
}

pub fn open(
    dir: &std::path::Path,
    dim: usize,
    distance: Distance,
    max_segment_points: usize,
) -> Shard {
    Shard::open(dir, config(dim, distance), options(max_segment_points)).unwrap()
}

pub fn random_vector(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

pub fn payload(v: serde_json::Value) -> Payload {
    v.as_object().cloned().unwrap()
}

/// Upserts `n` random points with ids `first..first+n` and payload
/// `{"n": id, "group": id % 10}`.
pub fn fill(shard: &Shard, rng: &mut StdRng, first: u64, n: u64, dim: usize) {
    let points: Vec<Point> = (first..first + n)
        .map(|i| Point {
            id: PointId::Num(i),
            vector: random_vector(rng, dim),
            payload: Some(payload(serde_json::json!({"n": i, "group": i % 10}))),
        })
        .collect();
    for chunk in points.chunks(500) {
        shard
            .apply(Operation::Upsert {
                points: chunk.to_vec(),
            })
            .unwrap();
    }
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}
