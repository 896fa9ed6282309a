//! Figures: latency percentiles from an HDR histogram and recall@k.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Request latencies in microseconds, 1 µs .. 60 s at 3 significant digits.
#[derive(Clone)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    pub fn new() -> Self {
        // Bounds are constants within hdrhistogram's limits: cannot fail.
        let h = Histogram::new_with_bounds(1, 60_000_000, 3)
            .unwrap_or_else(|_| unreachable!("valid histogram bounds"));
        Latencies(h)
    }

    /// Records one request; values past the top are clamped to it.
    pub fn record(&mut self, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, 60_000_000);
        self.0.saturating_record(us);
    }

    pub fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides: `add` cannot fail.
        let _ = self.0.add(&other.0);
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    pub fn summary(&self) -> LatencySummary {
        let ms = |us: u64| us as f64 / 1000.0;
        if self.0.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: self.0.len(),
            mean_ms: self.0.mean() / 1000.0,
            p50_ms: ms(self.0.value_at_quantile(0.50)),
            p95_ms: ms(self.0.value_at_quantile(0.95)),
            p99_ms: ms(self.0.value_at_quantile(0.99)),
            max_ms: ms(self.0.max()),
        }
    }
}

/// Percentiles in milliseconds, as written to reports.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// CPU seconds (user + system) this process has used so far, from
/// `/proc/self/stat` (Linux, 100 ticks/s); `None` elsewhere. Lets a report
/// state what the load generator itself cost.
pub fn process_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Running recall@k: |returned top-k ∩ truth[:k]| / k, averaged per query.
#[derive(Debug, Default, Clone, Copy)]
pub struct Recall {
    pub found: u64,
    pub queries: u64,
    pub k: usize,
}

impl Recall {
    pub fn new(k: usize) -> Self {
        Recall {
            found: 0,
            queries: 0,
            k,
        }
    }

    /// Adds one query: `got` are returned ids best first, `truth` the exact
    /// ids best first (only the first `k` of each count).
    pub fn add(&mut self, got: &[u64], truth: &[i32]) {
        let truth = &truth[..truth.len().min(self.k)];
        self.found += got
            .iter()
            .take(self.k)
            .filter(|&&id| truth.iter().any(|&t| t >= 0 && t as u64 == id))
            .count() as u64;
        self.queries += 1;
    }

    pub fn merge(&mut self, other: &Recall) {
        self.found += other.found;
        self.queries += other.queries;
    }

    /// Mean recall, or `None` when no query was scored.
    pub fn value(&self) -> Option<f64> {
        (self.queries > 0 && self.k > 0)
            .then(|| self.found as f64 / (self.queries as f64 * self.k as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut l = Latencies::new();
        for ms in 1..=100u64 {
            l.record(Duration::from_millis(ms));
        }
        let s = l.summary();
        assert_eq!(s.count, 100);
        let close = |a: f64, b: f64| (a - b).abs() / b < 0.01;
        assert!(close(s.p50_ms, 50.0), "{s:?}");
        assert!(close(s.p95_ms, 95.0), "{s:?}");
        assert!(close(s.p99_ms, 99.0), "{s:?}");
        assert!(close(s.max_ms, 100.0), "{s:?}");
        assert!(close(s.mean_ms, 50.5), "{s:?}");
        let mut other = Latencies::new();
        other.record(Duration::from_secs(3600)); // clamped, not dropped
        l.merge(&other);
        assert_eq!(l.count(), 101);
        assert!(close(l.summary().max_ms, 60_000.0));
        assert_eq!(Latencies::new().summary(), LatencySummary::default());
    }

    #[test]
    fn process_cpu_grows_with_work() {
        let Some(a) = process_cpu_s() else { return };
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(200) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let b = process_cpu_s().unwrap_or(0.0);
        assert!(b >= a + 0.05, "{a} -> {b}");
    }

    #[test]
    fn recall_counts_only_the_first_k() {
        let mut r = Recall::new(3);
        r.add(&[1, 2, 3], &[3, 2, 1, 9]); // all three
        r.add(&[1, 9, 8], &[1, 2, 3, 9]); // 9 is past k in the truth
        r.add(&[], &[1, 2, 3]); // nothing returned
        r.add(&[1, 2, 3, 4], &[4, 5, 6]); // 4 is past k in the answer
        assert_eq!(r.queries, 4);
        assert_eq!(r.found, 4);
        assert!((r.value().unwrap_or(0.0) - 4.0 / 12.0).abs() < 1e-12);
        assert_eq!(Recall::new(10).value(), None);
    }
}
