//! `loadtest mixed`: searches and upserts together, each at its own target
//! rate (open loop: a request leaves on every tick whether or not earlier
//! ones answered, up to an in-flight cap; ticks that find the cap full are
//! counted as `dropped`, so an overloaded server shows up as a shortfall
//! instead of silently slowing the client).
//!
//! Upserts rewrite existing rows of `base` with their own ids and vectors,
//! so the data set, and therefore recall, stays the same during the run.

use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;

use crate::client::{search_body, upsert_body, Client, SearchParams};
use crate::error::Result;
use crate::stats::{Latencies, LatencySummary, Recall};
use crate::vecs::Vecs;

#[derive(Debug, Clone, Serialize)]
pub struct MixedOptions {
    pub search_rate: f64,
    pub upsert_rate: f64,
    /// Points per upsert request.
    pub batch: usize,
    pub k: usize,
    pub params: SearchParams,
    pub duration: Duration,
    /// In-flight cap per stream.
    pub max_in_flight: usize,
    pub consistency: Option<String>,
    pub id_offset: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamOutcome {
    pub target_rate: f64,
    pub sent: u64,
    pub ok: u64,
    pub errors: u64,
    pub dropped: u64,
    pub achieved_rate: f64,
    pub latency: LatencySummary,
    pub first_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MixedOutcome {
    pub elapsed_s: f64,
    pub search: StreamOutcome,
    pub upsert: StreamOutcome,
    pub recall: Option<f64>,
}

/// Drives one open-loop stream: `op(i)` answers with `Ok(Some(ids))` for a
/// search, `Ok(None)` for a write.
async fn stream<F, Fut>(
    rate: f64,
    opts: &MixedOptions,
    mut op: F,
    mut on_ok: impl FnMut(u64, Vec<u64>),
) -> StreamOutcome
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<u64>>>,
{
    let mut out = StreamOutcome {
        target_rate: rate,
        ..StreamOutcome::default()
    };
    if rate <= 0.0 {
        return out;
    }
    let mut lat = Latencies::new();
    let started = Instant::now();
    let deadline = started + opts.duration;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut inflight = FuturesUnordered::new();
    let mut i = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick(), if Instant::now() < deadline => {
                if inflight.len() < opts.max_in_flight.max(1) {
                    let fut = op(i);
                    let t = Instant::now();
                    inflight.push(async move { (i, t, fut.await) });
                    out.sent += 1;
                    i += 1;
                } else {
                    out.dropped += 1;
                }
            }
            Some((j, t, res)) = inflight.next() => match res {
                Ok(ids) => {
                    lat.record(t.elapsed());
                    out.ok += 1;
                    on_ok(j, ids);
                }
                Err(e) => {
                    out.errors += 1;
                    out.first_error.get_or_insert_with(|| e.to_string());
                }
            },
            else => break,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    out.achieved_rate = out.ok as f64 / secs.max(1e-9);
    out.latency = lat.summary();
    out
}

pub async fn run(
    client: &Client,
    base: &Vecs<f32>,
    queries: &Vecs<f32>,
    truth: Option<&Vecs<i32>>,
    opts: &MixedOptions,
) -> Result<MixedOutcome> {
    let nq = queries.len().max(1);
    let search_bodies: Vec<_> = queries
        .rows()
        .map(|q| search_body(q, opts.k, opts.params))
        .collect();
    let b = opts.batch.max(1);
    let n = base.len();
    let upsert_bodies: Vec<_> = (0..n.div_ceil(b))
        .map(|j| {
            let rows = j * b..((j + 1) * b).min(n);
            upsert_body(
                rows.clone().map(|r| opts.id_offset + r as u64),
                rows.map(|r| base.row(r)),
                None,
            )
        })
        .collect();
    let mut recall = Recall::new(opts.k);
    let started = Instant::now();
    let consistency = opts.consistency.as_deref();
    let searches = stream(
        if search_bodies.is_empty() {
            0.0
        } else {
            opts.search_rate
        },
        opts,
        |i| client.search(search_bodies[i as usize % nq].clone()),
        |i, ids| {
            let q = i as usize % nq;
            if let Some(gt) = truth.filter(|gt| q < gt.len()) {
                recall.add(&ids, gt.row(q));
            }
        },
    );
    let upserts = stream(
        if upsert_bodies.is_empty() {
            0.0
        } else {
            opts.upsert_rate
        },
        opts,
        |i| {
            let body = upsert_bodies[i as usize % upsert_bodies.len()].clone();
            async move { client.upsert(body, consistency).await.map(|()| Vec::new()) }
        },
        |_, _| {},
    );
    let (search, upsert) = tokio::join!(searches, upserts);
    Ok(MixedOutcome {
        elapsed_s: started.elapsed().as_secs_f64(),
        search,
        upsert,
        recall: recall.value(),
    })
}
