//! The recording client: write and search loops that put every request
//! they make into a [`History`]. Every loop is bounded by a count and by a
//! time, and stops early when its `stop` signal flips.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{with_retry, Gateway, RetryPolicy};
use crate::history::{History, Outcome, SearchRecord, WriteRecord};
use crate::points;

/// Which ids a load writes (e.g. only those of some shards).
pub type IdFilter = Arc<dyn Fn(u64) -> bool + Send + Sync>;

/// Upserts of the ids `first_id .. first_id + count` (those `filter`
/// keeps), each id once.
#[derive(Clone)]
pub struct WriteLoad {
    pub gateway: Gateway,
    pub collection: String,
    pub first_id: u64,
    pub count: u64,
    /// Points per request.
    pub batch: u64,
    /// Requests in flight.
    pub concurrency: usize,
    pub consistency: &'static str,
    pub max_time: Duration,
    pub retry: RetryPolicy,
    /// Pause of each worker between its requests (rate limit).
    pub pause: Duration,
    pub filter: Option<IdFilter>,
}

/// The next `batch` ids from `next` below `end` that `filter` keeps.
fn take_ids(next: &AtomicU64, end: u64, batch: u64, filter: Option<&IdFilter>) -> Vec<u64> {
    let mut ids = Vec::new();
    while (ids.len() as u64) < batch.max(1) {
        let id = next.fetch_add(1, Ordering::SeqCst);
        if id >= end {
            break;
        }
        if filter.is_none_or(|f| f(id)) {
            ids.push(id);
        }
    }
    ids
}

/// Runs `load` in the background; the handle ends when every worker has.
pub fn spawn_writes(
    load: WriteLoad,
    history: Arc<History>,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let next = Arc::new(AtomicU64::new(load.first_id));
    let end = load.first_id + load.count;
    let (concurrency, max_time, pause) = (load.concurrency, load.max_time, load.pause);
    let load = Arc::new(load);
    spawn_workers(concurrency, max_time, pause, stop, move || {
        let (load, history, next) = (load.clone(), history.clone(), next.clone());
        async move {
            let ids = take_ids(&next, end, load.batch, load.filter.as_ref());
            if ids.is_empty() {
                return false;
            }
            let started = history.now();
            let (r, attempts) = with_retry(&load.retry, || {
                load.gateway
                    .upsert(&load.collection, &ids, load.consistency)
            })
            .await;
            history.record_write(WriteRecord {
                ids,
                via: load.gateway.name.clone(),
                outcome: if r.is_ok() {
                    Outcome::Acknowledged
                } else {
                    Outcome::Unknown
                },
                attempts,
                error: r.err().map(|e| e.to_string()),
                started,
                finished: history.now(),
            });
            true
        }
    })
}

/// `concurrency` workers, each running `step` until it returns false, the
/// time is up or `stop` flips, pausing `pause` between steps; the handle
/// ends when every worker has.
fn spawn_workers<S, F>(
    concurrency: usize,
    max_time: Duration,
    pause: Duration,
    stop: watch::Receiver<bool>,
    step: S,
) -> JoinHandle<()>
where
    S: Fn() -> F + Clone + Send + 'static,
    F: Future<Output = bool> + Send + 'static,
{
    let deadline = Instant::now() + max_time;
    let workers: Vec<JoinHandle<()>> = (0..concurrency.max(1))
        .map(|_| {
            let (step, stop) = (step.clone(), stop.clone());
            tokio::spawn(async move {
                while !*stop.borrow() && Instant::now() < deadline {
                    if !step().await {
                        break;
                    }
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
            })
        })
        .collect();
    tokio::spawn(async move {
        for w in workers {
            let _ = w.await;
        }
    })
}

/// Searches with random query vectors near the written points.
#[derive(Clone)]
pub struct SearchLoad {
    pub gateway: Gateway,
    pub collection: String,
    /// Upper bound of searches over all workers.
    pub count: u64,
    pub concurrency: usize,
    pub max_time: Duration,
    pub retry: RetryPolicy,
    pub pause: Duration,
    /// Query vectors are those of ids below this.
    pub id_range: u64,
}

pub fn spawn_searches(
    load: SearchLoad,
    history: Arc<History>,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let issued = Arc::new(AtomicU64::new(0));
    let (concurrency, max_time, pause) = (load.concurrency, load.max_time, load.pause);
    let load = Arc::new(load);
    spawn_workers(concurrency, max_time, pause, stop, move || {
        let (load, history, issued) = (load.clone(), history.clone(), issued.clone());
        async move {
            if issued.fetch_add(1, Ordering::SeqCst) >= load.count {
                return false;
            }
            let id = rand::rng().random_range(0..load.id_range.max(1));
            let query = points::vector(id);
            let started = history.now();
            let (r, attempts) = with_retry(&load.retry, || {
                load.gateway.search(&load.collection, &query, 10)
            })
            .await;
            history.record_search(SearchRecord {
                via: load.gateway.name.clone(),
                ok: r.is_ok(),
                attempts,
                error: r.err().map(|e| e.to_string()),
                started,
                finished: history.now(),
            });
            true
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_taken_once_in_order_and_filtered() {
        let next = AtomicU64::new(10);
        assert_eq!(take_ids(&next, 15, 3, None), vec![10, 11, 12]);
        assert_eq!(take_ids(&next, 15, 3, None), vec![13, 14]);
        assert!(take_ids(&next, 15, 3, None).is_empty());
        let even: IdFilter = Arc::new(|id| id % 2 == 0);
        let next = AtomicU64::new(0);
        assert_eq!(take_ids(&next, 100, 3, Some(&even)), vec![0, 2, 4]);
        assert_eq!(take_ids(&next, 7, 3, Some(&even)), vec![6]);
    }
}
