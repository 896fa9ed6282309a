//! `loadtest baseline`: the same queries on a plain in-process FAISS
//! `HNSW{m},Flat` index, one query per call from `concurrency` OS threads,
//! so a report can put the cluster beside raw FAISS measured in the same run.
//!
//! FAISS's Rust `Index::search` takes `&mut self`, but a built HNSW index is
//! read-only during search (FAISS documents concurrent `search` calls as
//! safe), so the threads call the C API on one shared pointer; see
//! [`Shared`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use faiss::index::autotune::ParameterSpace;
use faiss::{Index, MetricType};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::stats::{Latencies, LatencySummary, Recall};
use crate::vecs::Vecs;

#[derive(Debug, Clone, Serialize)]
pub struct BaselineOptions {
    pub m: usize,
    pub ef_construct: usize,
    /// efSearch values to measure (one result each).
    pub ef_search: Vec<usize>,
    /// OpenMP threads for the build.
    pub threads: usize,
    /// Searching threads, one query per call each; one run per value.
    pub concurrency: Vec<usize>,
    pub k: usize,
    pub queries: usize,
    pub duration: Duration,
    /// `Cosine`, `Dot` or `Euclid`.
    pub distance: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BaselineRun {
    pub ef_search: usize,
    pub concurrency: usize,
    pub queries: u64,
    pub elapsed_s: f64,
    pub qps: f64,
    pub latency: LatencySummary,
    pub recall: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BaselineOutcome {
    pub vectors: usize,
    pub build_s: f64,
    pub runs: Vec<BaselineRun>,
}

/// Sets the OpenMP thread count of the calling thread (and of the threads
/// that inherit its settings). Each OS thread has its own setting.
pub fn set_omp_threads(n: usize) {
    extern "C" {
        fn omp_set_num_threads(n: std::os::raw::c_int);
    }
    // SAFETY: plain setter of the OpenMP runtime FAISS links against.
    unsafe { omp_set_num_threads(n.max(1) as std::os::raw::c_int) }
}

/// A built index searched from several threads at once.
///
/// SAFETY contract: nothing mutates the index (add, parameter changes,
/// drop) while a `Shared` is in use; `run` guarantees it by creating the
/// `Shared` inside a thread scope after `efSearch` is set.
struct Shared(*mut faiss_sys::FaissIndex);
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    fn search(
        &self,
        q: &[f32],
        k: usize,
        dist: &mut [f32],
        labels: &mut [faiss_sys::idx_t],
    ) -> Result<()> {
        // SAFETY: the pointer is a live index (see the type's contract); the
        // buffers hold one query of the index's dimension and k results.
        let rc = unsafe {
            faiss_sys::faiss_Index_search(
                self.0,
                1,
                q.as_ptr(),
                k as faiss_sys::idx_t,
                dist.as_mut_ptr(),
                labels.as_mut_ptr(),
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(Error::Faiss(format!("faiss_Index_search returned {rc}")))
        }
    }
}

fn normalise(v: &mut [f32], dim: usize) {
    for row in v.chunks_exact_mut(dim) {
        let n = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        if n > 0.0 {
            row.iter_mut().for_each(|x| *x /= n);
        }
    }
}

fn faiss_err(e: faiss::error::Error) -> Error {
    Error::Faiss(e.to_string())
}

/// Builds the index and measures every `ef_search` value in turn.
pub fn run(
    base: &Vecs<f32>,
    queries: &Vecs<f32>,
    truth: Option<&Vecs<i32>>,
    opts: &BaselineOptions,
) -> Result<BaselineOutcome> {
    if base.dim != queries.dim {
        return Err(Error::Invalid(format!(
            "base has dimension {}, queries {}",
            base.dim, queries.dim
        )));
    }
    let dim = base.dim;
    let (metric, cosine) = match opts.distance.as_str() {
        "Cosine" => (MetricType::InnerProduct, true),
        "Dot" => (MetricType::InnerProduct, false),
        "Euclid" => (MetricType::L2, false),
        other => return Err(Error::Invalid(format!("unknown distance {other}"))),
    };
    let mut data = base.data.clone();
    let mut qs = queries.data.clone();
    if cosine {
        normalise(&mut data, dim);
        normalise(&mut qs, dim);
    }
    set_omp_threads(opts.threads);
    let t = Instant::now();
    let mut index = faiss::index_factory(dim as u32, format!("HNSW{},Flat", opts.m), metric)
        .map_err(faiss_err)?;
    let ps = ParameterSpace::new().map_err(faiss_err)?;
    ps.set_index_parameter(&index, "efConstruction", opts.ef_construct as f64)
        .map_err(faiss_err)?;
    index.add(&data).map_err(faiss_err)?;
    let build_s = t.elapsed().as_secs_f64();
    drop(data);

    let nq = queries.len();
    let mut runs = Vec::new();
    let cases = opts
        .ef_search
        .iter()
        .flat_map(|&ef| opts.concurrency.iter().map(move |&c| (ef, c)));
    for (ef, conc) in cases {
        ps.set_index_parameter(&index, "efSearch", ef as f64)
            .map_err(faiss_err)?;
        let shared = Shared(index.inner_ptr());
        let next = AtomicUsize::new(0);
        let total = opts.queries.max(1);
        let started = Instant::now();
        let deadline = started + opts.duration;
        let parts: Vec<Result<(Latencies, Recall)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..conc.max(1))
                .map(|_| {
                    s.spawn(|| {
                        set_omp_threads(1);
                        let mut lat = Latencies::new();
                        let mut recall = Recall::new(opts.k);
                        let mut dist = vec![0f32; opts.k];
                        let mut labels = vec![0 as faiss_sys::idx_t; opts.k];
                        loop {
                            let j = next.fetch_add(1, Ordering::Relaxed);
                            if j >= total || Instant::now() >= deadline {
                                break;
                            }
                            let qi = j % nq;
                            let t = Instant::now();
                            shared.search(
                                &qs[qi * dim..(qi + 1) * dim],
                                opts.k,
                                &mut dist,
                                &mut labels,
                            )?;
                            lat.record(t.elapsed());
                            if let Some(gt) = truth.filter(|gt| qi < gt.len()) {
                                let got: Vec<u64> = labels
                                    .iter()
                                    .filter(|&&l| l >= 0)
                                    .map(|&l| l as u64)
                                    .collect();
                                recall.add(&got, gt.row(qi));
                            }
                        }
                        Ok((lat, recall))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Faiss("search thread panicked".into())))
                })
                .collect()
        });
        let elapsed = started.elapsed().as_secs_f64();
        let mut lat = Latencies::new();
        let mut recall = Recall::new(opts.k);
        for p in parts {
            let (l, r) = p?;
            lat.merge(&l);
            recall.merge(&r);
        }
        runs.push(BaselineRun {
            ef_search: ef,
            concurrency: conc,
            queries: lat.count(),
            elapsed_s: elapsed,
            qps: lat.count() as f64 / elapsed.max(1e-9),
            latency: lat.summary(),
            recall: recall.value(),
        });
    }
    Ok(BaselineOutcome {
        vectors: base.len(),
        build_s,
        runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_finds_exact_neighbours_on_a_tiny_set() {
        // 200 points on a line-ish spread; queries are base points.
        let dim = 4;
        let data: Vec<f32> = (0..200)
            .flat_map(|i| {
                let x = i as f32;
                [x.sin(), x.cos(), (x * 0.37).sin(), (x * 0.11).cos()]
            })
            .collect();
        let base = Vecs { dim, data };
        let queries = Vecs {
            dim,
            data: base.data[..dim * 20].to_vec(),
        };
        let truth = Vecs {
            dim: 1,
            data: (0..20).collect(),
        };
        let opts = BaselineOptions {
            m: 16,
            ef_construct: 64,
            ef_search: vec![64],
            threads: 1,
            concurrency: vec![1, 2],
            k: 1,
            queries: 100,
            duration: Duration::from_secs(10),
            distance: "Euclid".into(),
        };
        let out = run(&base, &queries, Some(&truth), &opts).expect("run");
        assert_eq!(out.runs.len(), 2);
        for r in &out.runs {
            assert_eq!(r.queries, 100);
            assert_eq!(r.recall, Some(1.0));
        }
    }
}
