//! Filtered-search benchmark on one shard (synthetic data, one HNSW
//! segment): q/s and recall@10 against the exact filtered answer, for no
//! filter, a selective filter (0.5 %) and a broad one (40 %), without and
//! with payload indexes on the filtered keys. Ignored by default; run in
//! release:
//!
//! ```sh
//! BENCH_POINTS=100000 nice -n 19 cargo test --release --workspace --locked -j 1 \
//!   --test integration -- --ignored filtered_search_benchmark --nocapture
//! ```

use std::time::Instant;

use protocol::{
    Distance, Filter, PayloadIndexSpec, PayloadIndexes, PayloadSchemaType, Point, PointId,
    SearchRequest,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;

use super::{open, payload, random_vector};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
#[ignore = "a benchmark: run in release with --ignored"]
fn filtered_search_benchmark() {
    let (n, dim, queries) = (
        env("BENCH_POINTS", 20_000),
        env("BENCH_DIM", 64),
        env("BENCH_QUERIES", 200),
    );
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), dim, Distance::Cosine, n);
    let mut rng = StdRng::seed_from_u64(5);
    let points: Vec<Point> = (0..n as u64)
        .map(|i| Point {
            id: PointId::Num(i),
            vector: random_vector(&mut rng, dim),
            payload: Some(payload(json!({"sel": i % 200, "broad": i % 5 < 2}))),
        })
        .collect();
    for chunk in points.chunks(1000) {
        shard
            .apply(protocol::Operation::Upsert {
                points: chunk.to_vec(),
            })
            .unwrap();
    }
    let built = Instant::now();
    shard.optimize().unwrap();
    println!(
        "{n} points, {dim}-d, HNSW built in {:.1} s",
        built.elapsed().as_secs_f64()
    );
    let qs: Vec<Vec<f32>> = (0..queries).map(|_| random_vector(&mut rng, dim)).collect();
    let filters: [(&str, Option<Filter>); 3] = [
        ("none", None),
        (
            "selective 0.5 %",
            Some(
                serde_json::from_value(json!({"must": [{"key": "sel", "match": {"value": 7}}]}))
                    .unwrap(),
            ),
        ),
        (
            "broad 40 %",
            Some(
                serde_json::from_value(
                    json!({"must": [{"key": "broad", "match": {"value": true}}]}),
                )
                .unwrap(),
            ),
        ),
    ];
    let indexes: PayloadIndexes = [
        ("sel", PayloadSchemaType::Integer),
        ("broad", PayloadSchemaType::Bool),
    ]
    .into_iter()
    .map(|(k, t)| {
        (
            k.to_string(),
            PayloadIndexSpec {
                data_type: t,
                params: None,
            },
        )
    })
    .collect();
    println!("| filter | payload index | q/s | recall@10 |");
    println!("|---|---|---:|---:|");
    for (indexed, specs) in [(false, PayloadIndexes::new()), (true, indexes)] {
        shard.set_payload_indexes(&specs);
        for (name, f) in &filters {
            if indexed && f.is_none() {
                continue;
            }
            let request = |q: &Vec<f32>, exact: bool| {
                let mut r = SearchRequest::new(q.clone(), 10);
                r.filter = f.clone();
                r.params.exact = exact;
                r
            };
            let truth: Vec<Vec<PointId>> = qs
                .iter()
                .map(|q| {
                    shard
                        .search(&request(q, true))
                        .unwrap()
                        .iter()
                        .map(|h| h.id)
                        .collect()
                })
                .collect();
            let t = Instant::now();
            let got: Vec<Vec<PointId>> = qs
                .iter()
                .map(|q| {
                    shard
                        .search(&request(q, false))
                        .unwrap()
                        .iter()
                        .map(|h| h.id)
                        .collect()
                })
                .collect();
            let qps = qs.len() as f64 / t.elapsed().as_secs_f64();
            let found: usize = got
                .iter()
                .zip(&truth)
                .map(|(g, t)| g.iter().filter(|id| t.contains(id)).count())
                .sum();
            let total: usize = truth.iter().map(Vec::len).sum();
            assert!(
                got.iter().zip(&truth).all(|(g, t)| g.len() == t.len()),
                "{name}: short answers"
            );
            println!(
                "| {name} | {} | {qps:.0} | {:.3} |",
                if indexed { "yes" } else { "no" },
                found as f64 / total as f64
            );
        }
    }
}
