//! One scenario's result, the suite's markdown table and JSON report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::history::{SearchStats, Verdict};

/// Writes, counted in points (one id each) except where it says requests.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WriteStats {
    pub attempted: u64,
    pub acknowledged: u64,
    pub lost: u64,
    /// Up to 20 lost ids, for the evidence.
    pub lost_sample: Vec<u64>,
    pub unknown: u64,
    pub unknown_present: u64,
    pub unknown_wrong: u64,
    /// Upsert requests sent / without a 2xx answer after the retries.
    pub requests: u64,
    pub failed_requests: u64,
}

/// Recovery times in seconds; `None` where the scenario has no such event
/// (or it never happened: then there is a violation too).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timings {
    /// Fault → the meta-service marks the node dead (or the load balancer
    /// stops sending to a dead gateway).
    pub detection_s: Option<f64>,
    /// Fault → first acknowledged write on every shard that lost its
    /// primary (or through the side that has to take over).
    pub failover_s: Option<f64>,
    /// Restart / heal → every replica reports the same count and checksum.
    pub convergence_s: Option<f64>,
    /// Longest stretch without an acknowledged write during the fault.
    pub longest_ack_gap_s: Option<f64>,
    /// When that stretch began, in s since the scenario's start (the
    /// clock of `events`), so it can be told apart from the fault's own.
    pub longest_ack_gap_at_s: Option<f64>,
    /// Scenario-specific times (leader change, minority refusal, …).
    pub extra: BTreeMap<String, f64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ScenarioReport {
    pub name: String,
    pub passed: bool,
    /// Broken guarantees; the scenario passes when there are none.
    pub violations: Vec<String>,
    pub notes: Vec<String>,
    pub writes: WriteStats,
    pub searches: SearchStats,
    pub timings: Timings,
    /// Fault events on the scenario's clock (s since its start): kill,
    /// cut, heal, restart; the history's times are on the same clock.
    pub events: BTreeMap<String, f64>,
    /// For lost points: which write, through where, when.
    pub lost_detail: Vec<String>,
    /// Nodes marked dead and primaries replaced while the scenario ran.
    pub changes: crate::timeline::ClusterChanges,
    pub duration_s: f64,
}

impl ScenarioReport {
    pub fn new(name: &str) -> ScenarioReport {
        ScenarioReport {
            name: name.to_string(),
            passed: true,
            ..ScenarioReport::default()
        }
    }

    pub fn violation(&mut self, what: impl Into<String>) {
        let what = what.into();
        tracing::error!(scenario = %self.name, "VIOLATION: {what}");
        self.violations.push(what);
        self.passed = false;
    }

    /// Records a fault event at `at` on the scenario's clock.
    pub fn event(&mut self, what: &str, at: std::time::Duration) {
        self.events.insert(what.to_string(), at.as_secs_f64());
    }

    pub fn record_ack_gap(&mut self, gap: crate::history::AckGap) {
        self.timings.longest_ack_gap_s = Some(gap.length.as_secs_f64());
        self.timings.longest_ack_gap_at_s = Some(gap.start.as_secs_f64());
    }

    pub fn note(&mut self, what: impl Into<String>) {
        let what = what.into();
        tracing::info!(scenario = %self.name, "{what}");
        self.notes.push(what);
    }

    /// Takes the history check's counts; lost or wrong points are violations.
    pub fn apply_verdict(&mut self, v: &Verdict, requests: u64, failed_requests: u64) {
        self.writes = WriteStats {
            attempted: v.attempted,
            acknowledged: v.acknowledged,
            lost: v.lost_count(),
            lost_sample: v.lost.iter().take(20).copied().collect(),
            unknown: v.unknown,
            unknown_present: v.unknown_present,
            unknown_wrong: v.unknown_wrong.len() as u64,
            requests,
            failed_requests,
        };
        if !v.lost.is_empty() {
            self.violation(format!(
                "{} acknowledged points lost (absent or wrong content), e.g. {:?}",
                v.lost.len(),
                self.writes.lost_sample
            ));
        }
        if !v.unknown_wrong.is_empty() {
            self.violation(format!(
                "{} unacknowledged points present with wrong content, e.g. {:?}",
                v.unknown_wrong.len(),
                &v.unknown_wrong[..v.unknown_wrong.len().min(20)]
            ));
        }
    }
}

/// The whole run, as written to `--report`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SuiteReport {
    pub started_unix: u64,
    pub commit: Option<String>,
    pub project: String,
    /// The client's retry policy, stated once for every scenario.
    pub retry_policy: String,
    pub settings: BTreeMap<String, String>,
    pub cluster_start_s: Option<f64>,
    pub scenarios: Vec<ScenarioReport>,
    pub total_s: f64,
    pub passed: bool,
}

fn secs(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_string(), |s| format!("{s:.2} s"))
}

/// The summary table (markdown), one row per scenario.
pub fn render_table(scenarios: &[ScenarioReport]) -> String {
    let mut out = String::new();
    out.push_str(
        "| scenario | attempted | acknowledged | lost | failed | unknown (present) | detection | failover | convergence | result |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for s in scenarios {
        let attempted = if s.searches.attempted > 0 {
            format!("{} w + {} s", s.writes.attempted, s.searches.attempted)
        } else {
            format!("{} w", s.writes.attempted)
        };
        let failed = format!("{} w / {} s", s.writes.failed_requests, s.searches.failed);
        let mut result = if s.passed {
            "PASS".to_string()
        } else {
            format!("FAIL: {}", s.violations.join("; "))
        };
        let mut extra: Vec<String> = s
            .timings
            .extra
            .iter()
            .map(|(k, v)| format!("{k} {v:.2} s"))
            .collect();
        if let Some(gap) = s.timings.longest_ack_gap_s {
            let at = s
                .timings
                .longest_ack_gap_at_s
                .map(|at| format!(" from +{at:.1} s"))
                .unwrap_or_default();
            extra.push(format!("longest write gap {gap:.2} s{at}"));
        }
        let marks: u32 = s.changes.dead_marks.values().sum();
        extra.push(format!(
            "{marks} dead mark(s), {} primary change(s)",
            s.changes.primary_changes
        ));
        if !extra.is_empty() {
            let _ = write!(result, " ({})", extra.join(", "));
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} |",
            s.name,
            attempted,
            s.writes.acknowledged,
            s.writes.lost,
            failed,
            s.writes.unknown,
            s.writes.unknown_present,
            secs(s.timings.detection_s),
            secs(s.timings.failover_s),
            secs(s.timings.convergence_s),
            result.replace('|', "/"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_a_row_per_scenario_with_times_and_verdict() {
        let mut ok = ScenarioReport::new("kill-storage");
        ok.apply_verdict(
            &Verdict {
                attempted: 10,
                acknowledged: 9,
                unknown: 1,
                unknown_present: 1,
                ..Verdict::default()
            },
            10,
            1,
        );
        ok.timings.detection_s = Some(5.123);
        ok.timings.failover_s = Some(6.0);
        ok.timings.extra.insert("leader change".into(), 0.5);
        let mut bad = ScenarioReport::new("partition");
        bad.searches.attempted = 4;
        bad.searches.failed = 1;
        bad.apply_verdict(
            &Verdict {
                attempted: 3,
                acknowledged: 3,
                lost: vec![7],
                ..Verdict::default()
            },
            3,
            0,
        );
        bad.violation("minority | side took writes");
        let t = render_table(&[ok.clone(), bad.clone()]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert_eq!(
            lines[2],
            "| kill-storage | 10 w | 9 | 0 | 1 w / 0 s | 1 (1) | 5.12 s | 6.00 s | – | PASS (leader change 0.50 s, 0 dead mark(s), 0 primary change(s)) |"
        );
        assert!(lines[3].starts_with("| partition | 3 w + 4 s | 3 | 1 | 0 w / 1 s |"));
        assert!(lines[3].contains("FAIL: 1 acknowledged points lost"));
        assert!(
            lines[3].contains("minority / side"),
            "pipes are escaped: {}",
            lines[3]
        );
        assert!(ok.passed && !bad.passed);
        assert_eq!(bad.writes.lost_sample, vec![7]);
        // Every row has as many cells as the header.
        let cells = |l: &str| l.matches('|').count();
        assert!(lines.iter().all(|l| cells(l) == cells(lines[0])));
    }
}
