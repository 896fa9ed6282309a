//! Events counted over the last minute, for the rates a service reports
//! about itself in its JSON endpoints (Prometheus derives its own rates
//! from the counters with `rate()`; a JSON reader has no such engine).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

/// The window the counts cover.
pub const WINDOW_SECS: u64 = 60;

/// Per-second buckets of events over the last [`WINDOW_SECS`].
pub struct MinuteCounter {
    started: Instant,
    /// (second since `started`, events in it), oldest first.
    buckets: Mutex<VecDeque<(u64, u64)>>,
}

impl Default for MinuteCounter {
    fn default() -> Self {
        MinuteCounter::new(Instant::now())
    }
}

impl MinuteCounter {
    pub fn new(started: Instant) -> Self {
        MinuteCounter {
            started,
            buckets: Mutex::new(VecDeque::new()),
        }
    }

    pub fn add(&self, events: u64) {
        self.add_at(events, Instant::now());
    }

    pub fn add_at(&self, events: u64, now: Instant) {
        let sec = now.saturating_duration_since(self.started).as_secs();
        // A panic elsewhere while holding the lock leaves counts that are
        // still counts: keep using them.
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        match b.back_mut() {
            Some((s, n)) if *s == sec => *n += events,
            _ => b.push_back((sec, events)),
        }
        while b.front().is_some_and(|(s, _)| s + WINDOW_SECS <= sec) {
            b.pop_front();
        }
    }

    /// Events in the last [`WINDOW_SECS`] (the current second included).
    pub fn last_minute(&self) -> u64 {
        self.last_minute_at(Instant::now())
    }

    pub fn last_minute_at(&self, now: Instant) -> u64 {
        let sec = now.saturating_duration_since(self.started).as_secs();
        let b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        b.iter()
            .filter(|(s, _)| s + WINDOW_SECS > sec)
            .map(|(_, n)| n)
            .sum()
    }

    /// Events per second over the last minute, or since the start if that
    /// was less than a minute (but at least one second) ago.
    pub fn per_sec(&self) -> f64 {
        self.per_sec_at(Instant::now())
    }

    pub fn per_sec_at(&self, now: Instant) -> f64 {
        let span = now
            .saturating_duration_since(self.started)
            .as_secs_f64()
            .clamp(1.0, WINDOW_SECS as f64);
        self.last_minute_at(now) as f64 / span
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counts_fall_out_of_the_window_after_a_minute() {
        let t0 = Instant::now();
        let c = MinuteCounter::new(t0);
        let at = |s: u64| t0 + Duration::from_millis(s * 1000 + 500);
        c.add_at(30, at(0));
        c.add_at(10, at(0));
        assert_eq!(c.last_minute_at(at(0)), 40);
        // Half a second in: the rate is over one second, not half of one.
        assert_eq!(c.per_sec_at(at(0)), 40.0);
        c.add_at(20, at(30));
        assert_eq!(c.last_minute_at(at(59)), 60);
        // 60 events over the 59.5 s since the start.
        assert_eq!(c.per_sec_at(at(59)), 60.0 / 59.5);
        assert_eq!(c.last_minute_at(at(60)), 20);
        assert_eq!(c.last_minute_at(at(90)), 0);
        assert_eq!(c.per_sec_at(at(90)), 0.0);
    }
}
