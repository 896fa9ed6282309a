//! Engine vs plain FAISS on the shared MiniLM data set, in one run.
//!
//! `cargo bench -p storage-node --bench engine_vs_faiss`
//!
//! Builds the shard engine (WAL, segments, optimize into one HNSW segment)
//! and a plain `IndexHNSWFlat` with the same M / efConstruction, then runs
//! the same queries one at a time on one thread through both, at several
//! efSearch values, and again after deleting 1% of the points from the
//! engine (tombstones honoured through an ID selector). Prints a markdown
//! table and writes `target/bench-engine.json`.
//!
//! Env: `DATASET_DIR` (default `../shared/datasets/debian-minilm-384`),
//! `EF_LIST` (default `64,128`), `HNSW_M` (32), `HNSW_EF_CONSTRUCT` (200).

use std::path::{Path, PathBuf};
use std::time::Instant;

use faiss::index::autotune::ParameterSpace;
use faiss::{Index, MetricType};
use protocol::{CollectionConfig, Distance, Operation, Point, PointId, SearchRequest};
use storage_node::ann::set_faiss_threads;
use storage_node::{BuildBudget, Shard, ShardOptions, SyncMode, WalOptions};

fn read_vecs(path: &Path) -> (usize, Vec<[u8; 4]>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let dim = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let mut out = Vec::new();
    for row in bytes.chunks_exact(4 * (dim + 1)) {
        out.extend(row[4..].chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]));
    }
    (dim, out)
}

fn fvecs(path: &Path) -> (usize, Vec<f32>) {
    let (d, raw) = read_vecs(path);
    (d, raw.into_iter().map(f32::from_le_bytes).collect())
}

fn ivecs(path: &Path) -> (usize, Vec<i32>) {
    let (d, raw) = read_vecs(path);
    (d, raw.into_iter().map(i32::from_le_bytes).collect())
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Run {
    qps: f64,
    recall: f64,
}

/// Runs every query once through `search`, returning q/s and recall@10
/// against `truth` (best-first ids per query, deleted ids already removed).
fn run(
    queries: &[f32],
    dim: usize,
    truth: &[Vec<u64>],
    mut search: impl FnMut(&[f32]) -> Vec<u64>,
) -> Run {
    let nq = queries.len() / dim;
    let mut found = 0usize;
    let started = Instant::now();
    let mut results = Vec::with_capacity(nq);
    for q in queries.chunks_exact(dim) {
        results.push(search(q));
    }
    let secs = started.elapsed().as_secs_f64();
    for (ids, gt) in results.iter().zip(truth) {
        let top: Vec<u64> = gt.iter().take(10).copied().collect();
        found += ids.iter().filter(|id| top.contains(id)).count();
    }
    Run {
        qps: nq as f64 / secs,
        recall: found as f64 / (nq * 10) as f64,
    }
}

/// Ids of the engine's top 10 for `q` at `ef`.
fn engine_search(shard: &Shard, ef: usize) -> impl FnMut(&[f32]) -> Vec<u64> + '_ {
    move |q: &[f32]| {
        let mut req = SearchRequest::new(q.to_vec(), 10);
        req.params.hnsw_ef = Some(ef);
        let hits = shard.search(&req).expect("search");
        hits.iter()
            .map(|h| match h.id {
                PointId::Num(n) => n,
                PointId::Uuid(_) => u64::MAX,
            })
            .collect()
    }
}

fn main() {
    let dataset = std::env::var("DATASET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/datasets/debian-minilm-384")
        });
    let ef_list: Vec<usize> = std::env::var("EF_LIST")
        .unwrap_or_else(|_| "64,128".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let m = env_usize("HNSW_M", 32);
    let ef_construct = env_usize("HNSW_EF_CONSTRUCT", 200);
    let (dim, base) = fvecs(&dataset.join("base.fvecs"));
    let (_, queries) = fvecs(&dataset.join("queries.fvecs"));
    let (k_gt, gt) = ivecs(&dataset.join("groundtruth.ivecs"));
    let n = base.len() / dim;
    let truth: Vec<Vec<u64>> = gt
        .chunks_exact(k_gt)
        .map(|r| r.iter().map(|&i| i as u64).collect())
        .collect();
    eprintln!(
        "data set: {} base x {dim}, {} queries, HNSW M={m} efConstruction={ef_construct}",
        n,
        queries.len() / dim
    );

    // Both builds use both cores; every search runs on one thread.
    set_faiss_threads(2);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = CollectionConfig::new(dim, Distance::Cosine);
    config.hnsw.m = m;
    config.hnsw.ef_construct = ef_construct;
    let options = ShardOptions {
        wal: WalOptions {
            sync: SyncMode::Always,
            ..WalOptions::default()
        },
        background: false,
        // One build at a time with both threads, as the pin above.
        build_budget: BuildBudget::new(1, 2),
        ..ShardOptions::default()
    };
    let shard = Shard::open(dir.path(), config, options).expect("open shard");
    let t = Instant::now();
    for (b, chunk) in base.chunks(dim * 1000).enumerate() {
        let points = chunk
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, v)| Point {
                id: PointId::Num((b * 1000 + i) as u64),
                vector: v.to_vec(),
                payload: None,
            })
            .collect();
        shard.apply(Operation::Upsert { points }).expect("upsert");
    }
    let ingest_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    shard.optimize().expect("optimize");
    let engine_build_secs = t.elapsed().as_secs_f64();
    eprintln!("engine: ingest {ingest_secs:.1} s (fsync per 1000-point batch), optimize into one HNSW segment {engine_build_secs:.1} s");

    let t = Instant::now();
    let mut plain = faiss::index_factory(
        dim as u32,
        format!("HNSW{m},Flat"),
        MetricType::InnerProduct,
    )
    .expect("factory");
    let ps = ParameterSpace::new().expect("parameter space");
    ps.set_index_parameter(&plain, "efConstruction", ef_construct as f64)
        .expect("efConstruction");
    plain.add(&base).expect("add");
    let plain_build_secs = t.elapsed().as_secs_f64();
    eprintln!("plain FAISS: build {plain_build_secs:.1} s");
    set_faiss_threads(1);

    let mut rows = Vec::new();
    for &ef in &ef_list {
        ps.set_index_parameter(&plain, "efSearch", ef as f64)
            .expect("efSearch");
        // Alternate twice and keep each side's best, to damp a noisy machine.
        let mut best_engine = Run {
            qps: 0.0,
            recall: 0.0,
        };
        let mut best_plain = Run {
            qps: 0.0,
            recall: 0.0,
        };
        for _ in 0..2 {
            let e = run(&queries, dim, &truth, engine_search(&shard, ef));
            let p = run(&queries, dim, &truth, |q| {
                let r = plain.search(q, 10).expect("search");
                r.labels.iter().filter_map(|l| l.get()).collect()
            });
            if e.qps > best_engine.qps {
                best_engine = e;
            }
            if p.qps > best_plain.qps {
                best_plain = p;
            }
        }
        rows.push(("none", ef, best_engine, best_plain));
    }

    // Delete 1% of the points (every 100th id) and search again: tombstones
    // are filtered inside the HNSW walk; truth skips the deleted ids.
    let deleted: Vec<PointId> = (0..n as u64).step_by(100).map(PointId::Num).collect();
    for chunk in deleted.chunks(1000) {
        shard
            .apply(Operation::Delete {
                ids: chunk.to_vec(),
            })
            .expect("delete");
    }
    let truth_after: Vec<Vec<u64>> = truth
        .iter()
        .map(|r| r.iter().copied().filter(|i| i % 100 != 0).collect())
        .collect();
    for &ef in &ef_list {
        let e = run(&queries, dim, &truth_after, engine_search(&shard, ef));
        rows.push((
            "1%",
            ef,
            e,
            Run {
                qps: f64::NAN,
                recall: f64::NAN,
            },
        ));
    }

    println!();
    println!("| deleted | hnsw_ef | engine q/s | engine recall@10 | plain FAISS q/s | plain recall@10 | engine / FAISS |");
    println!("|---|---|---|---|---|---|---|");
    let mut json_rows = Vec::new();
    for (del, ef, e, p) in &rows {
        let ratio = e.qps / p.qps;
        let fmt = |x: f64, d: usize| {
            if x.is_nan() {
                "—".to_string()
            } else {
                format!("{x:.d$}")
            }
        };
        println!(
            "| {del} | {ef} | {:.0} | {:.4} | {} | {} | {} |",
            e.qps,
            e.recall,
            fmt(p.qps, 0),
            fmt(p.recall, 4),
            fmt(ratio, 3)
        );
        json_rows.push(serde_json::json!({
            "deleted": del, "hnsw_ef": ef, "engine_qps": e.qps, "engine_recall_at_10": e.recall,
            "faiss_qps": if p.qps.is_nan() { None } else { Some(p.qps) },
            "faiss_recall_at_10": if p.recall.is_nan() { None } else { Some(p.recall) },
        }));
    }
    let report = serde_json::json!({
        "bench": "engine_vs_faiss", "dataset": dataset.display().to_string(), "points": n, "dim": dim,
        "hnsw_m": m, "ef_construct": ef_construct, "search_threads": 1,
        "ingest_secs": ingest_secs, "engine_build_secs": engine_build_secs, "faiss_build_secs": plain_build_secs,
        "rows": json_rows,
    });
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-engine.json");
    if let Err(e) = std::fs::write(&out, serde_json::to_vec_pretty(&report).unwrap_or_default()) {
        eprintln!("could not write {}: {e}", out.display());
    }
}
