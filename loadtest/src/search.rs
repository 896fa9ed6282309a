//! `loadtest search`: closed-loop search load at a fixed concurrency.
//!
//! `concurrency` workers share one request counter; each sends its next
//! request as soon as the previous one answers. All bodies are serialised
//! before the clock starts, and the whole client runs on one thread (the
//! caller's current-thread runtime), so it takes at most one core away from
//! the cluster it measures.

use std::cell::Cell;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;

use crate::breakdown::{scrape_all, stages, Stage};
use crate::client::{batch_body, search_body, Client, SearchParams};
use crate::error::Result;
use crate::stats::{process_cpu_s, Latencies, LatencySummary, Recall};
use crate::vecs::Vecs;

#[derive(Debug, Clone, Serialize)]
pub struct SearchOptions {
    pub k: usize,
    pub concurrency: usize,
    /// Queries per request (1 = `points/search`, more = `search/batch`).
    pub batch: usize,
    /// Stop after this many queries (cycling through the query file) ...
    pub queries: usize,
    /// ... or after this long, whichever comes first.
    pub duration: Duration,
    /// Requests sent (and not measured) before the clock starts.
    pub warmup: usize,
    pub params: SearchParams,
    /// `/metrics` URLs (gateway, storage nodes) scraped around the measured
    /// part for the per-stage breakdown; empty: no breakdown.
    pub metrics_urls: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchOutcome {
    pub requests: u64,
    pub queries: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed_s: f64,
    pub qps: f64,
    /// Per request (so per query when `batch` is 1).
    pub latency: LatencySummary,
    pub recall: Option<f64>,
    pub recall_queries: u64,
    /// CPU the load generator itself used during the measured part, in
    /// cores (CPU seconds / wall seconds).
    pub client_cpu_cores: Option<f64>,
    /// Where the time goes, per stage (with `metrics_urls`).
    pub stages: Vec<Stage>,
}

/// Request bodies: body `j` holds queries `j*batch .. j*batch+batch` (mod n).
pub fn bodies(queries: &Vecs<f32>, opts: &SearchOptions) -> Vec<(Vec<usize>, Bytes)> {
    let n = queries.len();
    let b = opts.batch.max(1);
    let count = n.div_ceil(b).max(1);
    (0..count)
        .map(|j| {
            let idx: Vec<usize> = (0..b).map(|i| (j * b + i) % n).collect();
            let body = if b == 1 {
                search_body(queries.row(idx[0]), opts.k, opts.params)
            } else {
                batch_body(idx.iter().map(|&i| queries.row(i)), opts.k, opts.params)
            };
            (idx, body)
        })
        .collect()
}

/// Runs the load; `truth` (best-first ids per query) gives recall.
pub async fn run(
    client: &Client,
    queries: &Vecs<f32>,
    truth: Option<&Vecs<i32>>,
    opts: &SearchOptions,
) -> Result<SearchOutcome> {
    let bodies = bodies(queries, opts);
    let b = opts.batch.max(1);
    let max_requests = opts.queries.div_ceil(b).max(1);

    // Warm-up: connections opened, caches touched, nothing recorded.
    let warm = Cell::new(0usize);
    let warm_worker = || async {
        loop {
            let j = warm.get();
            if j >= opts.warmup {
                return;
            }
            warm.set(j + 1);
            let (_, body) = &bodies[j % bodies.len()];
            let _ = send(client, body.clone(), b).await;
        }
    };
    futures::future::join_all((0..opts.concurrency.max(1)).map(|_| warm_worker())).await;

    let scrape = || async {
        if opts.metrics_urls.is_empty() {
            Ok(None)
        } else {
            scrape_all(client, &opts.metrics_urls).await.map(Some)
        }
    };
    let metrics_before = scrape().await?;
    let next = Cell::new(0usize);
    let cpu_before = process_cpu_s();
    let started = Instant::now();
    let deadline = started + opts.duration;
    let worker = || async {
        let mut lat = Latencies::new();
        let mut recall = Recall::new(opts.k);
        let mut errors = 0u64;
        let mut first_error = None;
        loop {
            let j = next.get();
            if j >= max_requests || Instant::now() >= deadline {
                break;
            }
            next.set(j + 1);
            let (idx, body) = &bodies[j % bodies.len()];
            let t = Instant::now();
            match send(client, body.clone(), b).await {
                Ok(results) => {
                    lat.record(t.elapsed());
                    if let Some(gt) = truth {
                        for (&q, got) in idx.iter().zip(&results) {
                            if q < gt.len() {
                                recall.add(got, gt.row(q));
                            }
                        }
                    }
                }
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        (lat, recall, errors, first_error)
    };
    let parts = futures::future::join_all((0..opts.concurrency.max(1)).map(|_| worker())).await;
    let elapsed = started.elapsed().as_secs_f64();
    let client_cpu_cores = cpu_before
        .zip(process_cpu_s())
        .map(|(a, b)| (b - a) / elapsed.max(1e-9));
    let metrics_after = scrape().await?;

    let mut lat = Latencies::new();
    let mut recall = Recall::new(opts.k);
    let mut errors = 0;
    let mut first_error = None;
    for (l, r, e, f) in parts {
        lat.merge(&l);
        recall.merge(&r);
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    let requests = lat.count();
    let done_queries = requests * b as u64;
    Ok(SearchOutcome {
        requests,
        queries: done_queries,
        errors,
        first_error,
        elapsed_s: elapsed,
        qps: if elapsed > 0.0 {
            done_queries as f64 / elapsed
        } else {
            0.0
        },
        latency: lat.summary(),
        recall: recall.value(),
        recall_queries: recall.queries,
        client_cpu_cores,
        stages: match (&metrics_before, &metrics_after) {
            (Some(b), Some(a)) => stages(b, a, requests),
            _ => Vec::new(),
        },
    })
}

async fn send(client: &Client, body: Bytes, batch: usize) -> Result<Vec<Vec<u64>>> {
    if batch == 1 {
        client.search(body).await.map(|r| vec![r])
    } else {
        client.search_batch(body).await
    }
}
