//! What the client saw, and the pure checks on it.
//!
//! A write is *acknowledged* only on a 2xx answer (after the client's
//! retries). Any other end (error status, timeout, connection failure) is
//! *unknown*: the write may or may not have been applied, so it is never
//! counted as lost, but if its point is present it must hold the right
//! content. A point is *lost* when it was acknowledged and is absent or
//! holds other content.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::Value;

use crate::points;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No 2xx answer: may or may not be applied.
    Unknown,
    /// A 2xx answer at the requested write consistency.
    Acknowledged,
}

/// One upsert request (one or a few point ids), as the client saw it.
#[derive(Clone, Debug, Serialize)]
pub struct WriteRecord {
    pub ids: Vec<u64>,
    /// The gateway (or load balancer) the request went through.
    pub via: String,
    pub outcome: Outcome,
    pub attempts: u32,
    /// The last error, for unknown writes.
    pub error: Option<String>,
    /// Since the scenario's start.
    pub started: Duration,
    pub finished: Duration,
}

impl WriteRecord {
    pub fn acked(&self) -> bool {
        self.outcome == Outcome::Acknowledged
    }
}

/// One search request, as the client saw it.
#[derive(Clone, Debug, Serialize)]
pub struct SearchRecord {
    pub via: String,
    pub ok: bool,
    pub attempts: u32,
    pub error: Option<String>,
    pub started: Duration,
    pub finished: Duration,
}

/// The shared, append-only record of one scenario's requests.
pub struct History {
    origin: Instant,
    writes: Mutex<Vec<WriteRecord>>,
    searches: Mutex<Vec<SearchRecord>>,
}

impl History {
    pub fn new() -> Arc<History> {
        Arc::new(History {
            origin: Instant::now(),
            writes: Mutex::new(Vec::new()),
            searches: Mutex::new(Vec::new()),
        })
    }

    /// Time since the scenario's start: the clock of every record and event.
    pub fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    pub fn record_write(&self, r: WriteRecord) {
        self.writes.lock().push(r);
    }

    pub fn record_search(&self, r: SearchRecord) {
        self.searches.lock().push(r);
    }

    pub fn writes(&self) -> Vec<WriteRecord> {
        self.writes.lock().clone()
    }

    pub fn searches(&self) -> Vec<SearchRecord> {
        self.searches.lock().clone()
    }

    /// Acknowledged points so far.
    pub fn acked_points(&self) -> usize {
        self.writes
            .lock()
            .iter()
            .filter(|w| w.acked())
            .map(|w| w.ids.len())
            .sum()
    }

    /// Acknowledged points so far through `via`, started at or after `since`.
    pub fn acked_points_via(&self, via: &str, since: Duration) -> usize {
        self.writes
            .lock()
            .iter()
            .filter(|w| w.acked() && w.via == via && w.started >= since)
            .map(|w| w.ids.len())
            .sum()
    }
}

/// A point as read back from the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadBack {
    pub vector: Option<Vec<f32>>,
    pub payload: Option<Value>,
}

/// The best outcome of every point id written (acknowledged wins, should
/// an id be written twice).
pub fn outcomes(writes: &[WriteRecord]) -> BTreeMap<u64, Outcome> {
    let mut out = BTreeMap::new();
    for w in writes {
        for id in &w.ids {
            let e = out.entry(*id).or_insert(w.outcome);
            *e = (*e).max(w.outcome);
        }
    }
    out
}

/// The history checked against what the cluster returned.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Verdict {
    /// Distinct point ids written.
    pub attempted: u64,
    pub acknowledged: u64,
    /// Acknowledged and absent, or present with other content.
    pub lost: Vec<u64>,
    /// Not acknowledged (error or timeout): may or may not be present.
    pub unknown: u64,
    /// Of those, present with the right content.
    pub unknown_present: u64,
    /// Not acknowledged, present, but with other content.
    pub unknown_wrong: Vec<u64>,
}

impl Verdict {
    pub fn lost_count(&self) -> u64 {
        self.lost.len() as u64
    }

    /// Points the cluster should hold: every acknowledged one plus the
    /// unknown ones that turned out present.
    pub fn expected_present(&self) -> u64 {
        self.acknowledged - self.lost_count()
            + self.unknown_present
            + self.unknown_wrong.len() as u64
    }
}

/// Classifies every written id against `found` (the points read back by id;
/// an id missing from the map is absent from the cluster).
pub fn check(writes: &[WriteRecord], found: &HashMap<u64, ReadBack>) -> Verdict {
    let mut v = Verdict::default();
    for (id, outcome) in outcomes(writes) {
        v.attempted += 1;
        let read = found.get(&id);
        let right =
            read.is_some_and(|r| points::matches(id, r.vector.as_deref(), r.payload.as_ref()));
        match outcome {
            Outcome::Acknowledged => {
                v.acknowledged += 1;
                if !right {
                    v.lost.push(id);
                }
            }
            Outcome::Unknown => {
                v.unknown += 1;
                match (read, right) {
                    (Some(_), true) => v.unknown_present += 1,
                    (Some(_), false) => v.unknown_wrong.push(id),
                    (None, _) => {}
                }
            }
        }
    }
    v
}

/// Time from `t` to the first acknowledgement of a write started at or
/// after `t` that `pred` selects.
pub fn first_ack_after(
    writes: &[WriteRecord],
    t: Duration,
    pred: impl Fn(&WriteRecord) -> bool,
) -> Option<Duration> {
    writes
        .iter()
        .filter(|w| w.acked() && w.started >= t && pred(w))
        .map(|w| w.finished.saturating_sub(t))
        .min()
}

/// Time from `t` to the last acknowledgement received after `t` among the
/// writes `pred` selects (how long a side kept acknowledging after a cut).
pub fn last_ack_after(
    writes: &[WriteRecord],
    t: Duration,
    pred: impl Fn(&WriteRecord) -> bool,
) -> Option<Duration> {
    writes
        .iter()
        .filter(|w| w.acked() && w.finished >= t && pred(w))
        .map(|w| w.finished - t)
        .max()
}

/// A stretch without an acknowledged write, on the history's clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AckGap {
    pub start: Duration,
    pub length: Duration,
}

/// The longest stretch within `[from, to]` without an acknowledgement
/// (the bounds count as ends of a stretch; the earliest of equal ones).
pub fn longest_ack_gap(writes: &[WriteRecord], from: Duration, to: Duration) -> AckGap {
    let mut times: Vec<Duration> = writes
        .iter()
        .filter(|w| w.acked() && w.finished >= from && w.finished <= to)
        .map(|w| w.finished)
        .collect();
    times.push(from);
    times.push(to);
    times.sort();
    times
        .windows(2)
        .map(|w| AckGap {
            start: w[0],
            length: w[1] - w[0],
        })
        .fold(AckGap::default(), |best, gap| {
            if gap.length > best.length {
                gap
            } else {
                best
            }
        })
}

/// Search counts for the report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SearchStats {
    pub attempted: u64,
    pub ok: u64,
    pub failed: u64,
    /// Succeeded, but only after a retry.
    pub retried: u64,
    pub max_latency_s: f64,
    /// Up to five failure messages.
    pub sample_errors: Vec<String>,
}

pub fn search_stats(searches: &[SearchRecord]) -> SearchStats {
    let mut s = SearchStats::default();
    for r in searches {
        s.attempted += 1;
        if r.ok {
            s.ok += 1;
            if r.attempts > 1 {
                s.retried += 1;
            }
        } else {
            s.failed += 1;
            if s.sample_errors.len() < 5 {
                s.sample_errors.push(format!(
                    "{:.2}s: {}",
                    r.started.as_secs_f64(),
                    r.error.clone().unwrap_or_default()
                ));
            }
        }
        s.max_latency_s = s
            .max_latency_s
            .max((r.finished.saturating_sub(r.started)).as_secs_f64());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn write(ids: &[u64], acked: bool, started: u64, finished: u64) -> WriteRecord {
        WriteRecord {
            ids: ids.to_vec(),
            via: "gw".into(),
            outcome: if acked {
                Outcome::Acknowledged
            } else {
                Outcome::Unknown
            },
            attempts: 1,
            error: None,
            started: ms(started),
            finished: ms(finished),
        }
    }

    fn right(id: u64) -> ReadBack {
        ReadBack {
            vector: Some(points::vector(id)),
            payload: Some(points::payload(id)),
        }
    }

    #[test]
    fn acknowledged_unknown_and_lost_are_told_apart() {
        let writes = vec![
            write(&[1, 2], true, 0, 10),
            write(&[3], false, 5, 20),
            write(&[4], false, 6, 30),
            write(&[5], true, 7, 40),
            write(&[6], false, 8, 50),
            write(&[7], true, 9, 60),
        ];
        let mut found = HashMap::new();
        found.insert(1, right(1));
        // 2: acknowledged, absent → lost.
        found.insert(3, right(3)); // unknown, present
                                   // 4: unknown, absent → fine.
        found.insert(5, right(6)); // acknowledged, wrong content → lost
        found.insert(6, right(7)); // unknown, wrong content
        found.insert(7, right(7));
        let v = check(&writes, &found);
        assert_eq!(v.attempted, 7);
        assert_eq!(v.acknowledged, 4);
        assert_eq!(v.lost, vec![2, 5]);
        assert_eq!(v.unknown, 3);
        assert_eq!(v.unknown_present, 1);
        assert_eq!(v.unknown_wrong, vec![6]);
        assert_eq!(v.expected_present(), 4);
    }

    #[test]
    fn a_retried_id_counts_once_and_acknowledged_wins() {
        let writes = vec![write(&[1], false, 0, 5), write(&[1], true, 6, 9)];
        assert_eq!(outcomes(&writes)[&1], Outcome::Acknowledged);
        let v = check(&writes, &HashMap::new());
        assert_eq!((v.attempted, v.acknowledged, v.unknown), (1, 1, 0));
        assert_eq!(v.lost, vec![1]);
    }

    #[test]
    fn nothing_acknowledged_nothing_lost() {
        let writes = vec![write(&[1], false, 0, 5), write(&[2], false, 0, 5)];
        let v = check(&writes, &HashMap::new());
        assert_eq!(v.lost_count(), 0);
        assert_eq!(v.unknown, 2);
    }

    #[test]
    fn ack_times_and_gaps() {
        let writes = vec![
            write(&[1], true, 0, 100),
            write(&[2], true, 90, 200),
            write(&[3], false, 210, 900),
            write(&[4], true, 950, 1200),
            write(&[5], true, 1300, 1350),
        ];
        // First ack of a write started at/after 150 ms: id 4, at 1200.
        assert_eq!(first_ack_after(&writes, ms(150), |_| true), Some(ms(1050)));
        assert_eq!(
            first_ack_after(&writes, ms(150), |w| w.ids[0] == 5),
            Some(ms(1200))
        );
        assert_eq!(first_ack_after(&writes, ms(2000), |_| true), None);
        assert_eq!(
            last_ack_after(&writes, ms(150), |w| w.ids[0] < 4),
            Some(ms(50))
        );
        let gap = |start, length| AckGap {
            start: ms(start),
            length: ms(length),
        };
        assert_eq!(longest_ack_gap(&writes, ms(0), ms(1400)), gap(200, 1000));
        assert_eq!(longest_ack_gap(&writes, ms(1250), ms(2000)), gap(1350, 650));
        assert_eq!(longest_ack_gap(&[], ms(10), ms(30)), gap(10, 20));
    }

    #[test]
    fn search_counts() {
        let rec = |ok: bool, attempts: u32, lat: u64| SearchRecord {
            via: "lb".into(),
            ok,
            attempts,
            error: (!ok).then(|| "503".to_string()),
            started: ms(0),
            finished: ms(lat),
        };
        let s = search_stats(&[rec(true, 1, 5), rec(true, 2, 400), rec(false, 3, 700)]);
        assert_eq!((s.attempted, s.ok, s.failed, s.retried), (3, 2, 1, 1));
        assert!((s.max_latency_s - 0.7).abs() < 1e-9);
        assert_eq!(s.sample_errors.len(), 1);
    }
}
