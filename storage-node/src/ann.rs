//! The FAISS boundary: every `unsafe` call into FAISS lives in this module.
//!
//! [`AnnIndex`] wraps one FAISS index whose labels are segment offsets
//! (`0..n`). Searches take `&self` and may run concurrently (FAISS const
//! search is thread-safe for Flat, HNSW and IVF); an optional bitmap over
//! offsets restricts the search (tombstones, payload filters) through
//! `IDSelectorBitmap`.

use std::ffi::CStr;
use std::path::Path;
use std::ptr;

use faiss::index::IndexImpl;
use faiss::{Index, MetricType};
use faiss_sys::*;
use parking_lot::RwLock;
use protocol::{Distance, ValidationError};

use crate::error::{Result, ShardError};

/// What a segment's index is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnnKind {
    /// Exhaustive (the growing segment).
    Flat,
    Hnsw {
        m: usize,
        ef_construct: usize,
    },
    Ivf {
        nlist: usize,
    },
}

pub struct AnnIndex {
    inner: IndexImpl,
    kind: AnnKind,
    /// The index's current `efSearch` (HNSW) — FAISS keeps it on the index,
    /// not per query, so a query wanting another value changes it under the
    /// write half of this lock.
    ef_search: RwLock<usize>,
}

/// Query-time knobs.
#[derive(Clone, Copy, Debug)]
pub struct AnnParams {
    pub ef_search: usize,
    pub nprobe: usize,
}

/// How long one uninterruptible chunk of an index build should take: what
/// a shutdown may wait for a build to notice it.
pub const BUILD_CHUNK_TIME: std::time::Duration = std::time::Duration::from_millis(250);
const BUILD_FIRST_CHUNK: usize = 256;

/// The next chunk size, from the last one and how long it took (HNSW
/// insertion slows down as the graph grows, so this adapts all along).
fn next_chunk(last: usize, took: std::time::Duration) -> usize {
    let per_point = took.as_secs_f64() / last.max(1) as f64;
    if per_point <= 0.0 {
        return (last * 2).clamp(64, 1 << 20);
    }
    let fitting = (BUILD_CHUNK_TIME.as_secs_f64() / per_point) as usize;
    fitting.clamp(64, (last * 4).max(64)).min(1 << 20)
}

pub fn metric(distance: Distance) -> MetricType {
    match distance {
        Distance::Cosine | Distance::Dot => MetricType::InnerProduct,
        Distance::Euclid => MetricType::L2,
    }
}

fn last_error(context: &str) -> ShardError {
    // SAFETY: FAISS returns a thread-local NUL-terminated string or null.
    let message = unsafe {
        let p = faiss_get_last_error();
        if p.is_null() {
            "unknown error".to_string()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    };
    ShardError::faiss(context, message)
}

fn check(code: std::os::raw::c_int, context: &str) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(last_error(context))
    }
}

impl AnnIndex {
    /// An empty exhaustive index, for the growing segment.
    pub fn flat(dim: usize, distance: Distance) -> Result<Self> {
        let inner = faiss::index_factory(dim as u32, "Flat", metric(distance))
            .map_err(|e| ShardError::faiss("create flat index", e))?;
        Ok(Self {
            inner,
            kind: AnnKind::Flat,
            ef_search: RwLock::new(0),
        })
    }

    /// Builds an ANN index over `vectors` (row `i` gets label `i`). IVF
    /// trains on the vectors themselves; `nlist` shrinks for small segments
    /// so every list has enough points to train on.
    pub fn build(
        kind: AnnKind,
        dim: usize,
        distance: Distance,
        vectors: &[f32],
        ef_search: usize,
    ) -> Result<Self> {
        Self::build_until(kind, dim, distance, vectors, ef_search, &|| false)?
            .ok_or(ShardError::Closing)
    }

    /// [`AnnIndex::build`] that gives up (`Ok(None)`) once `stop()` says so.
    /// One FAISS `add` of a large segment runs for tens of seconds and cannot
    /// be interrupted, so points go in chunks sized to take about
    /// [`BUILD_CHUNK_TIME`] each, with a check between chunks. HNSW inserts
    /// point by point anyway: the graph is the one a single call builds.
    pub fn build_until(
        kind: AnnKind,
        dim: usize,
        distance: Distance,
        vectors: &[f32],
        ef_search: usize,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<Self>> {
        let dim = dim.max(1);
        let n = vectors.len() / dim;
        let (description, kind) = match kind {
            AnnKind::Flat => ("Flat".to_string(), kind),
            AnnKind::Hnsw { m, .. } => (format!("HNSW{m},Flat"), kind),
            AnnKind::Ivf { nlist } => {
                let nlist = nlist.min((n / 39).max(1));
                (format!("IVF{nlist},Flat"), AnnKind::Ivf { nlist })
            }
        };
        let mut inner = faiss::index_factory(dim as u32, &description, metric(distance))
            .map_err(|e| ShardError::faiss(format!("create {description}"), e))?;
        let ps = faiss::index::autotune::ParameterSpace::new()
            .map_err(|e| ShardError::faiss("parameter space", e))?;
        if let AnnKind::Hnsw { ef_construct, .. } = kind {
            ps.set_index_parameter(&inner, "efConstruction", ef_construct as f64)
                .map_err(|e| ShardError::faiss("set efConstruction", e))?;
        }
        if !inner.is_trained() && n > 0 {
            inner
                .train(vectors)
                .map_err(|e| ShardError::faiss("train", e))?;
        }
        let mut chunk = BUILD_FIRST_CHUNK;
        let mut added = 0;
        while added < n {
            if stop() {
                return Ok(None);
            }
            let take = chunk.min(n - added);
            let started = std::time::Instant::now();
            inner
                .add(&vectors[added * dim..(added + take) * dim])
                .map_err(|e| ShardError::faiss("add vectors", e))?;
            added += take;
            chunk = next_chunk(take, started.elapsed());
        }
        let index = Self {
            inner,
            kind,
            ef_search: RwLock::new(0),
        };
        index.set_ef(ef_search)?;
        Ok(Some(index))
    }

    pub fn kind(&self) -> AnnKind {
        self.kind
    }

    pub fn len(&self) -> usize {
        self.inner.ntotal() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends vectors (flat index only; labels continue from `len()`).
    pub fn add(&mut self, vectors: &[f32]) -> Result<()> {
        self.inner
            .add(vectors)
            .map_err(|e| ShardError::faiss("add vectors", e))
    }

    fn set_ef(&self, ef: usize) -> Result<()> {
        if matches!(self.kind, AnnKind::Hnsw { .. }) {
            let ps = faiss::index::autotune::ParameterSpace::new()
                .map_err(|e| ShardError::faiss("parameter space", e))?;
            ps.set_index_parameter(&self.inner, "efSearch", ef as f64)
                .map_err(|e| ShardError::faiss("set efSearch", e))?;
            *self.ef_search.write() = ef;
        }
        Ok(())
    }

    /// Top-`k` labels and raw FAISS distances (inner product, or squared L2),
    /// best first, restricted to offsets set in `allowed` when given.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        allowed: Option<&[u8]>,
        params: AnnParams,
    ) -> Result<Vec<(f32, usize)>> {
        // FAISS reads `d` floats from the query pointer whatever its length:
        // a shorter slice would be read out of bounds, so this safe function
        // checks it rather than trust its callers.
        let dim = self.inner.d() as usize;
        if query.len() != dim {
            return Err(ValidationError::WrongDimension {
                expected: dim,
                got: query.len(),
            }
            .into());
        }
        if k == 0 || self.is_empty() {
            return Ok(Vec::new());
        }
        if matches!(self.kind, AnnKind::Hnsw { .. }) {
            let current = self.ef_search.read();
            if *current == params.ef_search {
                return self.search_raw(query, k, allowed, params);
            }
            drop(current);
            let mut current = self.ef_search.write();
            if *current != params.ef_search {
                let ps = faiss::index::autotune::ParameterSpace::new()
                    .map_err(|e| ShardError::faiss("parameter space", e))?;
                ps.set_index_parameter(&self.inner, "efSearch", params.ef_search as f64)
                    .map_err(|e| ShardError::faiss("set efSearch", e))?;
                *current = params.ef_search;
            }
            return self.search_raw(query, k, allowed, params);
        }
        self.search_raw(query, k, allowed, params)
    }

    fn search_raw(
        &self,
        query: &[f32],
        k: usize,
        allowed: Option<&[u8]>,
        params: AnnParams,
    ) -> Result<Vec<(f32, usize)>> {
        let mut distances = vec![0f32; k];
        let mut labels = vec![-1 as idx_t; k];
        let index = self.inner.inner_ptr();
        let is_ivf = matches!(self.kind, AnnKind::Ivf { .. });
        // SAFETY: the buffers hold k results for one query of the index's
        // dimension (checked in `search`, the only caller); the selector and parameters are
        // freed before return, and the bitmap outlives the call.
        unsafe {
            let mut selector: *mut FaissIDSelector = ptr::null_mut();
            if let Some(bitmap) = allowed {
                let mut sel: *mut FaissIDSelectorBitmap = ptr::null_mut();
                check(
                    faiss_IDSelectorBitmap_new(&mut sel, bitmap.len(), bitmap.as_ptr()),
                    "create selector",
                )?;
                selector = sel as *mut FaissIDSelector;
            }
            // One parameter object carries the selector (and nprobe for IVF).
            let mut p: *mut FaissSearchParameters = ptr::null_mut();
            let made = if is_ivf {
                let mut ivf: *mut FaissSearchParametersIVF = ptr::null_mut();
                let made =
                    faiss_SearchParametersIVF_new_with(&mut ivf, selector, params.nprobe.max(1), 0);
                p = ivf as *mut FaissSearchParameters;
                made
            } else if !selector.is_null() {
                faiss_SearchParameters_new(&mut p, selector)
            } else {
                0
            };
            let code = if made != 0 {
                made
            } else if p.is_null() {
                faiss_Index_search(
                    index,
                    1,
                    query.as_ptr(),
                    k as idx_t,
                    distances.as_mut_ptr(),
                    labels.as_mut_ptr(),
                )
            } else {
                faiss_Index_search_with_params(
                    index,
                    1,
                    query.as_ptr(),
                    k as idx_t,
                    p,
                    distances.as_mut_ptr(),
                    labels.as_mut_ptr(),
                )
            };
            if !p.is_null() {
                // The IVF parameters derive from SearchParameters (virtual
                // destructor), so one free covers both.
                faiss_SearchParameters_free(p);
            }
            if !selector.is_null() {
                faiss_IDSelector_free(selector);
            }
            check(code, "search")?;
        }
        Ok(distances
            .into_iter()
            .zip(labels)
            .filter(|(_, l)| *l >= 0)
            .map(|(d, l)| (d, l as usize))
            .collect())
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let p = path
            .to_str()
            .ok_or_else(|| ShardError::Corrupt(format!("non-UTF-8 path {}", path.display())))?;
        faiss::write_index(&self.inner, p).map_err(|e| ShardError::faiss(format!("write {p}"), e))
    }

    pub fn read(path: &Path, kind: AnnKind, ef_search: usize) -> Result<Self> {
        let p = path
            .to_str()
            .ok_or_else(|| ShardError::Corrupt(format!("non-UTF-8 path {}", path.display())))?;
        let inner = faiss::read_index(p).map_err(|e| ShardError::faiss(format!("read {p}"), e))?;
        let index = Self {
            inner,
            kind,
            ef_search: RwLock::new(0),
        };
        index.set_ef(ef_search)?;
        Ok(index)
    }
}

/// Limits the OpenMP threads FAISS uses for calls made from the calling
/// thread from now on (libgomp keeps this setting per thread once set):
/// benchmarks pin it to compare like with like, and each shard's optimizer
/// thread caps its index builds at the node's build budget's share.
pub fn set_faiss_threads(n: usize) {
    let n = n.clamp(1, std::os::raw::c_int::MAX as usize);
    extern "C" {
        fn omp_set_num_threads(n: std::os::raw::c_int);
    }
    // SAFETY: plain setter of the OpenMP runtime FAISS links against.
    unsafe { omp_set_num_threads(n as std::os::raw::c_int) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: AnnParams = AnnParams {
        ef_search: 16,
        nprobe: 1,
    };

    /// Issue 14, defect 7: a query shorter than the index's dimension was
    /// handed to FAISS, which read past its end; now it is refused.
    #[test]
    fn a_query_of_the_wrong_length_is_refused_not_read_out_of_bounds() {
        let vectors: Vec<f32> = (0..64 * 8).map(|i| (i % 17) as f32).collect();
        let kinds = [
            AnnKind::Flat,
            AnnKind::Hnsw {
                m: 8,
                ef_construct: 16,
            },
        ];
        for kind in kinds {
            let index = AnnIndex::build(kind, 8, Distance::Euclid, &vectors, 16).expect("build");
            for len in [0, 1, 7, 9, 64] {
                let query = vec![0.5f32; len];
                let err = index
                    .search(&query, 4, None, PARAMS)
                    .expect_err("a query of the wrong length must be refused");
                assert!(
                    matches!(
                        err,
                        ShardError::Invalid(ValidationError::WrongDimension { expected: 8, got })
                            if got == len
                    ),
                    "{kind:?} len {len}: {err}"
                );
            }
            let hits = index
                .search(&[0.5f32; 8], 4, None, PARAMS)
                .expect("a query of the right length");
            assert_eq!(hits.len(), 4, "{kind:?}");
        }
    }
}
