//! `loadtest ingest`: batched upserts at N concurrent requests, then the
//! wait until every point is counted and a probe search finds the last one.

use std::cell::Cell;
use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::client::{search_body, upsert_body, Client, SearchParams};
use crate::error::{Error, Result};
use crate::stats::{Latencies, LatencySummary};
use crate::vecs::Vecs;

#[derive(Debug, Clone, Serialize)]
pub struct IngestOptions {
    pub batch: usize,
    pub concurrency: usize,
    /// `one`, `majority`, `all`, or the collection default.
    pub consistency: Option<String>,
    /// Point id of row 0.
    pub id_offset: u64,
    /// Attempts per batch for transient failures (503, timeouts).
    pub attempts: usize,
    /// Longest wait for "all searchable" after the last acknowledgement.
    pub searchable_timeout: Duration,
    /// Stop sending new batches after this long.
    pub duration: Duration,
    pub progress: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct IngestOutcome {
    pub vectors: u64,
    pub batches: u64,
    pub failed_batches: u64,
    pub retries: u64,
    pub first_error: Option<String>,
    pub serialise_s: f64,
    pub ack_s: f64,
    pub vectors_per_s: f64,
    pub batch_latency: LatencySummary,
    /// From the last acknowledgement until count == vectors and the probe hit.
    pub searchable_after_ack_s: Option<f64>,
    pub count_seen: Option<u64>,
}

/// Reads `n` JSON lines as payloads (line i → row i).
pub fn read_payloads(path: &Path, n: usize) -> Result<Vec<Value>> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::with_capacity(n);
    for (i, line) in std::io::BufReader::new(file).lines().take(n).enumerate() {
        let line = line.map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let v = serde_json::from_str(&line).map_err(|e| Error::Payload {
            path: path.to_path_buf(),
            line: i + 1,
            reason: e.to_string(),
        })?;
        out.push(v);
    }
    Ok(out)
}

/// Upserts every row of `base` (ids from `id_offset`) and waits until searchable.
pub async fn run(
    client: &Client,
    base: &Vecs<f32>,
    payloads: Option<&[Value]>,
    opts: &IngestOptions,
) -> Result<IngestOutcome> {
    let n = base.len();
    let b = opts.batch.max(1);
    let t = Instant::now();
    let bodies: Vec<(usize, Bytes)> = (0..n.div_ceil(b))
        .map(|j| {
            let rows = j * b..((j + 1) * b).min(n);
            let len = rows.len();
            let body = upsert_body(
                rows.clone().map(|r| opts.id_offset + r as u64),
                rows.clone().map(|r| base.row(r)),
                payloads.and_then(|p| p.get(rows.clone())),
            );
            (len, body)
        })
        .collect();
    let serialise_s = t.elapsed().as_secs_f64();

    let next = Cell::new(0usize);
    let acked = Cell::new(0u64);
    // Highest batch index acknowledged: the probe must use a written row.
    let last_batch = Cell::new(None::<usize>);
    let started = Instant::now();
    let deadline = started + opts.duration;
    let consistency = opts.consistency.as_deref();
    let worker = || async {
        let mut lat = Latencies::new();
        let (mut failed, mut retries, mut first_error) = (0u64, 0u64, None);
        loop {
            let j = next.get();
            if j >= bodies.len() || Instant::now() >= deadline {
                break;
            }
            next.set(j + 1);
            let (len, body) = &bodies[j];
            let mut attempt = 0;
            loop {
                attempt += 1;
                let t = Instant::now();
                match client.upsert(body.clone(), consistency).await {
                    Ok(()) => {
                        lat.record(t.elapsed());
                        acked.set(acked.get() + *len as u64);
                        last_batch.set(last_batch.get().max(Some(j)));
                        break;
                    }
                    Err(e) if e.is_transient() && attempt < opts.attempts => {
                        retries += 1;
                        tokio::time::sleep(Duration::from_millis(50 << attempt.min(6))).await;
                    }
                    Err(e) => {
                        failed += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                        break;
                    }
                }
            }
        }
        (lat, failed, retries, first_error)
    };
    let progress = async {
        if !opts.progress {
            return std::future::pending().await;
        }
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let done = acked.get();
            let secs = started.elapsed().as_secs_f64();
            eprint!(
                "\ringest {done}/{n} vectors ({:.1}%) {:.0} vectors/s   ",
                100.0 * done as f64 / n.max(1) as f64,
                done as f64 / secs.max(1e-9)
            );
        }
    };
    let workers = futures::future::join_all((0..opts.concurrency.max(1)).map(|_| worker()));
    let parts = tokio::select! {
        parts = workers => parts,
        _ = progress => unreachable!("progress never ends"),
    };
    let ack_s = started.elapsed().as_secs_f64();
    if opts.progress {
        eprintln!();
    }
    let mut lat = Latencies::new();
    let (mut failed, mut retries, mut first_error) = (0, 0, None);
    for (l, f, r, e) in parts {
        lat.merge(&l);
        failed += f;
        retries += r;
        if first_error.is_none() {
            first_error = e;
        }
    }
    let vectors = acked.get();

    // Searchable: exact count reaches what we wrote, and the last row of
    // the last acknowledged batch is among its own 10 nearest neighbours.
    let t = Instant::now();
    let mut searchable = None;
    let mut count_seen = None;
    if let Some(j) = last_batch.get() {
        let last = ((j + 1) * b).min(n) - 1;
        let probe = search_body(base.row(last), 10, SearchParams::default());
        let want = opts.id_offset + last as u64;
        while t.elapsed() < opts.searchable_timeout {
            if let Ok(c) = client.count().await {
                count_seen = Some(c);
                if c >= vectors {
                    if let Ok(ids) = client.search(probe.clone()).await {
                        if ids.contains(&want) {
                            searchable = Some(t.elapsed().as_secs_f64());
                            break;
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(IngestOutcome {
        vectors,
        batches: lat.count(),
        failed_batches: failed,
        retries,
        first_error,
        serialise_s,
        ack_s,
        vectors_per_s: vectors as f64 / ack_s.max(1e-9),
        batch_latency: lat.summary(),
        searchable_after_ack_s: searchable,
        count_seen,
    })
}
