//! The shared in-process cluster (`testsuite::TestCluster`) and the data
//! helpers these tests check answers with.

use serde_json::Value;
pub use testsuite::{Options, TestCluster};

/// Clusters are heavy (FAISS, fsync): one at a time.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Deterministic pseudo-random vectors (no RNG crate state to thread around).
pub fn vector(i: u64, dim: usize) -> Vec<f32> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(12345);
    (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x % 20_000) as f32 / 10_000.0) - 1.0
        })
        .collect()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// Exact top-k ids by cosine among `points` passing `keep`.
pub fn brute_force(
    points: &[(u64, Vec<f32>)],
    q: &[f32],
    k: usize,
    keep: impl Fn(u64) -> bool,
) -> Vec<u64> {
    let mut scored: Vec<(f32, u64)> = points
        .iter()
        .filter(|(id, _)| keep(*id))
        .map(|(id, v)| (cosine(v, q), *id))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|(_, id)| id).collect()
}

pub fn ids_of(hits: &Value) -> Vec<u64> {
    hits.as_array()
        .map(|a| a.iter().filter_map(|h| h["id"].as_u64()).collect())
        .unwrap_or_default()
}

pub const DIM: usize = 8;

/// Creates `name` (3 shards, RF 2, cosine) and upserts `n` points with
/// payloads `{"group": i % 3, "n": i}`; returns the points.
pub async fn seed(c: &TestCluster, name: &str, n: u64) -> Vec<(u64, Vec<f32>)> {
    let created = c
        .ok(
            reqwest::Method::PUT,
            &format!("/collections/{name}"),
            Some(serde_json::json!({
                "vectors": {"size": DIM, "distance": "Cosine"},
                "shard_number": 3, "replication_factor": 2,
            })),
        )
        .await;
    assert_eq!(created, Value::Bool(true));
    let points: Vec<(u64, Vec<f32>)> = (0..n).map(|i| (i, vector(i, DIM))).collect();
    for chunk in points.chunks(100) {
        let body: Vec<Value> = chunk
            .iter()
            .map(|(i, v)| serde_json::json!({"id": i, "vector": v, "payload": {"group": i % 3, "n": i}}))
            .collect();
        c.ok(
            reqwest::Method::PUT,
            &format!("/collections/{name}/points?wait=true"),
            Some(serde_json::json!({"points": body})),
        )
        .await;
    }
    points
}
