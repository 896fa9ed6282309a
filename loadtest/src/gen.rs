//! `loadtest gen`: clustered Gaussian vectors and their exact ground truth.
//!
//! `clusters` centres ~ N(0, 1); each point is a centre plus N(0, σ²) noise,
//! σ drawn per cluster in [0.1, 0.4]; queries come from the same mixture on
//! an independent stream. Deterministic for a given seed. Ground truth is a
//! brute-force scan (FAISS `Flat`), exact by construction.

use std::path::Path;

use faiss::{Index, MetricType};
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::vecs::{write_fvecs, write_ivecs, Vecs};

#[derive(Debug, Clone, Serialize)]
pub struct GenOptions {
    pub n: usize,
    pub nq: usize,
    pub dim: usize,
    pub clusters: usize,
    pub k: usize,
    pub seed: u64,
    /// L2-normalise every vector (for `Cosine` collections).
    pub normalise: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct GenOutcome {
    pub base: String,
    pub queries: String,
    pub groundtruth: String,
    pub generate_s: f64,
    pub groundtruth_s: f64,
}

/// One standard normal sample (Box–Muller).
fn normal(rng: &mut impl Rng) -> f32 {
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

fn sample(
    rng: &mut impl Rng,
    n: usize,
    dim: usize,
    centres: &[f32],
    sigmas: &[f32],
    normalise: bool,
) -> Vecs<f32> {
    let mut data = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.random_range(0..sigmas.len());
        let start = data.len();
        for d in 0..dim {
            data.push(centres[c * dim + d] + sigmas[c] * normal(rng));
        }
        if normalise {
            let row = &mut data[start..];
            let norm = row
                .iter()
                .map(|x| x * x)
                .sum::<f32>()
                .sqrt()
                .max(f32::MIN_POSITIVE);
            row.iter_mut().for_each(|x| *x /= norm);
        }
    }
    Vecs { dim, data }
}

/// Exact top-k of every query by brute force: inner product when the
/// vectors are normalised (== cosine), else L2.
pub fn ground_truth(
    base: &Vecs<f32>,
    queries: &Vecs<f32>,
    k: usize,
    ip: bool,
) -> Result<Vecs<i32>> {
    let metric = if ip {
        MetricType::InnerProduct
    } else {
        MetricType::L2
    };
    let fe = |e: faiss::error::Error| Error::Faiss(e.to_string());
    let mut index = faiss::index_factory(base.dim as u32, "Flat", metric).map_err(fe)?;
    index.add(&base.data).map_err(fe)?;
    let r = index.search(&queries.data, k).map_err(fe)?;
    let data = r
        .labels
        .iter()
        .map(|l| l.get().map_or(-1, |v| v as i32))
        .collect();
    Ok(Vecs { dim: k, data })
}

pub fn run(out_dir: &Path, opts: &GenOptions) -> Result<GenOutcome> {
    if opts.dim == 0 || opts.clusters == 0 || opts.n == 0 || opts.k == 0 {
        return Err(Error::Invalid(
            "n, dim, clusters and k must be positive".into(),
        ));
    }
    std::fs::create_dir_all(out_dir).map_err(|source| Error::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let t = std::time::Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
    let centres: Vec<f32> = (0..opts.clusters * opts.dim)
        .map(|_| normal(&mut rng))
        .collect();
    let sigmas: Vec<f32> = (0..opts.clusters)
        .map(|_| rng.random_range(0.1..0.4))
        .collect();
    let base = sample(
        &mut rng,
        opts.n,
        opts.dim,
        &centres,
        &sigmas,
        opts.normalise,
    );
    let mut qrng = rand::rngs::StdRng::seed_from_u64(opts.seed ^ 0x0005_eed0_f9e7);
    let queries = sample(
        &mut qrng,
        opts.nq,
        opts.dim,
        &centres,
        &sigmas,
        opts.normalise,
    );
    let generate_s = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let gt = ground_truth(&base, &queries, opts.k.min(opts.n), opts.normalise)?;
    let groundtruth_s = t.elapsed().as_secs_f64();
    let paths = [
        out_dir.join("base.fvecs"),
        out_dir.join("queries.fvecs"),
        out_dir.join("groundtruth.ivecs"),
    ];
    write_fvecs(&paths[0], &base)?;
    write_fvecs(&paths[1], &queries)?;
    write_ivecs(&paths[2], &gt)?;
    let s = |i: usize| paths[i].display().to_string();
    Ok(GenOutcome {
        base: s(0),
        queries: s(1),
        groundtruth: s(2),
        generate_s,
        groundtruth_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_truth_is_exact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = GenOptions {
            n: 500,
            nq: 20,
            dim: 8,
            clusters: 5,
            k: 5,
            seed: 7,
            normalise: false,
        };
        let out = run(dir.path(), &opts).expect("gen");
        let base = crate::vecs::read_fvecs(Path::new(&out.base), None).expect("base");
        let qs = crate::vecs::read_fvecs(Path::new(&out.queries), None).expect("queries");
        let gt = crate::vecs::read_ivecs(Path::new(&out.groundtruth), None).expect("gt");
        assert_eq!((base.len(), qs.len(), gt.len(), gt.dim), (500, 20, 20, 5));
        // Check the first neighbour of each query against a plain scan.
        for (qi, q) in qs.rows().enumerate() {
            let d = |r: &[f32]| r.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum::<f32>();
            let best = base
                .rows()
                .enumerate()
                .min_by(|a, b| d(a.1).total_cmp(&d(b.1)))
                .map(|(i, _)| i as i32);
            assert_eq!(Some(gt.row(qi)[0]), best, "query {qi}");
        }
    }
}
