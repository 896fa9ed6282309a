//! The node's index-build budget: at most N index builds and merges run at
//! once across every shard replica of a storage node, the rest wait.
//!
//! Each replica has its own optimizer thread, so after a bulk ingest every
//! replica of the node would build its graphs at the same moment; on a
//! small machine they then fight over the same cores and all finish late
//! (the issue measured ~100 s with nine replicas building at once against
//! 58 s for Qdrant). FAISS also spreads one HNSW build over all cores with
//! OpenMP, so a budget alone would still oversubscribe the machine when
//! N > 1: each build's OpenMP team is capped at `cores / N` threads
//! ([`BuildBudget::threads_per_build`]).
//!
//! A std `Mutex` + `Condvar`, not a Tokio semaphore: the optimizer runs on
//! plain threads and a waiter must also notice its shard closing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// How often a waiting build checks whether its shard is closing.
const CANCEL_CHECK: Duration = Duration::from_millis(100);

/// Builds at once when nothing is configured: half the cores, at least one.
/// Every build gets two or more OpenMP threads (HNSW insertion runs in
/// parallel within one build), and with several shards per node half the
/// cores stay free for searches and replication while graphs are built.
pub fn default_builds(cores: usize) -> usize {
    (cores / 2).max(1)
}

/// The cores this process may use (1 when unknown).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[derive(Default)]
struct Counts {
    running: usize,
    waiting: usize,
}

pub struct BuildBudget {
    limit: usize,
    threads_per_build: usize,
    counts: Mutex<Counts>,
    freed: Condvar,
}

impl std::fmt::Debug for BuildBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = self.counts.lock();
        f.debug_struct("BuildBudget")
            .field("limit", &self.limit)
            .field("threads_per_build", &self.threads_per_build)
            .field("running", &c.running)
            .field("waiting", &c.waiting)
            .finish()
    }
}

impl BuildBudget {
    /// At most `limit` builds at once (0 counts as 1) on a machine of
    /// `cores` cores.
    pub fn new(limit: usize, cores: usize) -> Arc<BuildBudget> {
        let limit = limit.max(1);
        let budget = BuildBudget {
            limit,
            threads_per_build: (cores / limit).max(1),
            counts: Mutex::new(Counts::default()),
            freed: Condvar::new(),
        };
        Arc::new(budget)
    }

    /// The default budget for this machine ([`default_builds`]).
    pub fn for_this_machine() -> Arc<BuildBudget> {
        let cores = available_cores();
        BuildBudget::new(default_builds(cores), cores)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// OpenMP threads one build may use: the builds allowed at once
    /// together use the machine's cores, no more.
    pub fn threads_per_build(&self) -> usize {
        self.threads_per_build
    }

    pub fn running(&self) -> usize {
        self.counts.lock().running
    }

    pub fn waiting(&self) -> usize {
        self.counts.lock().waiting
    }

    /// Waits for a slot; `None` once `cancelled()` says so (checked every
    /// [`CANCEL_CHECK`] while waiting). The slot is freed when the permit
    /// drops.
    pub fn acquire(&self, cancelled: &dyn Fn() -> bool) -> Option<BuildPermit<'_>> {
        let started = Instant::now();
        let mut c = self.counts.lock();
        if c.running >= self.limit {
            c.waiting += 1;
            self.publish(&c);
            while c.running >= self.limit {
                if cancelled() {
                    c.waiting -= 1;
                    self.publish(&c);
                    return None;
                }
                self.freed.wait_for(&mut c, CANCEL_CHECK);
            }
            c.waiting -= 1;
        }
        c.running += 1;
        self.publish(&c);
        drop(c);
        metrics::counter!("storage_index_builds_total").increment(1);
        metrics::histogram!("storage_index_build_wait_seconds")
            .record(started.elapsed().as_secs_f64());
        Some(BuildPermit { budget: self })
    }

    /// Gauges set under the lock, so they never show a state that was not.
    /// (The slots too: a budget is made before the node's recorder exists.)
    fn publish(&self, c: &Counts) {
        metrics::gauge!("storage_index_build_slots").set(self.limit as f64);
        metrics::gauge!("storage_index_builds_running").set(c.running as f64);
        metrics::gauge!("storage_index_builds_waiting").set(c.waiting as f64);
    }
}

/// A slot in the [`BuildBudget`], held for one index build or merge.
pub struct BuildPermit<'a> {
    budget: &'a BuildBudget,
}

impl Drop for BuildPermit<'_> {
    fn drop(&mut self) {
        let mut c = self.budget.counts.lock();
        c.running -= 1;
        self.budget.publish(&c);
        drop(c);
        self.budget.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn default_is_half_the_cores_at_least_one() {
        assert_eq!(default_builds(1), 1);
        assert_eq!(default_builds(2), 1);
        assert_eq!(default_builds(3), 1);
        assert_eq!(default_builds(8), 4);
        let b = BuildBudget::new(default_builds(8), 8);
        assert_eq!(b.threads_per_build(), 2);
        assert_eq!(BuildBudget::new(0, 2).limit(), 1);
        assert_eq!(BuildBudget::new(1, 2).threads_per_build(), 2);
        assert_eq!(BuildBudget::new(4, 2).threads_per_build(), 1);
    }

    #[test]
    fn no_more_than_the_limit_run_at_once_and_the_rest_wait() {
        let budget = BuildBudget::new(2, 4);
        let now = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let never = || false;
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    let _permit = budget.acquire(&never).expect("not cancelled");
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    now.fetch_sub(1, Ordering::SeqCst);
                });
            }
            // While the six contend, two run and the others are counted waiting.
            let deadline = Instant::now() + Duration::from_secs(5);
            while budget.waiting() == 0 {
                assert!(Instant::now() < deadline, "nobody ever waited");
                std::thread::yield_now();
            }
            assert!(budget.running() <= 2);
        });
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        assert_eq!((budget.running(), budget.waiting()), (0, 0));
    }

    #[test]
    fn the_metrics_show_builds_running_and_slots() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let budget = BuildBudget::new(3, 6);
        let gauge = |text: &str, name: &str| -> Option<f64> {
            text.lines()
                .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
        };
        metrics::with_local_recorder(&recorder, || {
            let a = budget.acquire(&|| false).expect("slot");
            let _b = budget.acquire(&|| false).expect("slot");
            let text = handle.render();
            assert_eq!(
                gauge(&text, "storage_index_builds_running"),
                Some(2.0),
                "{text}"
            );
            assert_eq!(
                gauge(&text, "storage_index_builds_waiting"),
                Some(0.0),
                "{text}"
            );
            assert_eq!(
                gauge(&text, "storage_index_build_slots"),
                Some(3.0),
                "{text}"
            );
            assert_eq!(
                gauge(&text, "storage_index_builds_total"),
                Some(2.0),
                "{text}"
            );
            drop(a);
            let text = handle.render();
            assert_eq!(
                gauge(&text, "storage_index_builds_running"),
                Some(1.0),
                "{text}"
            );
        });
    }

    #[test]
    fn a_waiter_gives_up_when_cancelled() {
        let budget = BuildBudget::new(1, 2);
        let held = budget.acquire(&|| false).expect("free slot");
        let closing = AtomicBool::new(false);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| budget.acquire(&|| closing.load(Ordering::SeqCst)).is_none());
            let deadline = Instant::now() + Duration::from_secs(5);
            while budget.waiting() == 0 {
                assert!(Instant::now() < deadline, "waiter never queued");
                std::thread::yield_now();
            }
            closing.store(true, Ordering::SeqCst);
            assert!(
                waiter.join().expect("waiter"),
                "cancelled waiter got a slot"
            );
        });
        assert_eq!((budget.running(), budget.waiting()), (1, 0));
        drop(held);
        assert_eq!(budget.running(), 0);
        assert!(budget.acquire(&|| false).is_some());
    }
}
