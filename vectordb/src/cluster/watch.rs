//! Watching transfers: one `indicatif` bar per running transfer (phase,
//! points and bytes copied, rate, ETA), polled from
//! `GET /api/cluster/transfers`, and the finished ones reported with their
//! outcome. When the output is not a terminal the bars are hidden and every
//! phase change and ending is printed as a line instead (logs, tests).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Result;
use gateway::transfers::{failure_reason, kind_name, phase_name, TransferView, TransfersReport};
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use protocol::cluster::{MigrationPhase, TransferRecord};

use super::http::Api;

/// A transfer's identity: a shard goes to one node at a time, and its
/// start time tells two transfers of the same shard to the same node apart.
pub type Key = (String, u32, u64, u64);

pub fn view_key(v: &TransferView) -> Key {
    (v.collection.clone(), v.shard.0, v.to.0, v.started_at_ms)
}

pub fn record_key(r: &TransferRecord) -> Key {
    (r.collection.clone(), r.shard.0, r.to.0, r.started_at_ms)
}

/// A finished record, unique among the kept ones.
fn record_id(r: &TransferRecord) -> (Key, u64) {
    (record_key(r), r.finished_at_ms)
}

pub fn label(collection: &str, shard: u32, from: u64, to: u64) -> String {
    format!("{collection}/{shard} {from}→{to}")
}

/// Phase, points and bytes copied, rate and ETA, as the executor reported
/// them (indicatif's own rate would only see the jumps between polls).
pub fn progress_message(v: &TransferView) -> String {
    format!(
        "{} {}: {}/{} points, {}/{}, {}/s ({:.0} points/s), ETA {}",
        kind_name(v.kind),
        phase_name(v.phase),
        v.points_copied,
        v.points_total,
        HumanBytes(v.bytes_copied),
        HumanBytes(v.bytes_total),
        HumanBytes(v.bytes_per_sec as u64),
        v.points_per_sec,
        v.eta_secs.map_or("?".to_string(), |s| format!("{s:.0} s"))
    )
}

/// How often the routes are polled.
pub const POLL: Duration = Duration::from_millis(500);

pub struct Watcher {
    api: Api,
    multi: MultiProgress,
    bars: HashMap<Key, (ProgressBar, MigrationPhase)>,
    /// Finished records already reported (or there before we started).
    seen: HashSet<(Key, u64)>,
    /// Transfers we saw running, so their ending is reported even when
    /// the record arrives a poll later.
    pub observed: HashSet<Key>,
}

/// What one poll found.
pub struct Poll {
    pub report: TransfersReport,
    /// Records that appeared since the previous poll.
    pub finished: Vec<TransferRecord>,
}

impl Watcher {
    /// A watcher that ignores every transfer finished before now.
    pub async fn start(api: Api) -> Result<Self> {
        let first = api.transfers().await?;
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        Ok(Self {
            api,
            multi,
            bars: HashMap::new(),
            seen: first.recent.iter().map(record_id).collect(),
            observed: HashSet::new(),
        })
    }

    fn line(&self, text: String) {
        if self.multi.is_hidden() {
            println!("{text}");
        } else {
            let _ = self.multi.println(text);
        }
    }

    fn new_bar(&self, v: &TransferView) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(0));
        let style =
            ProgressStyle::with_template("{prefix:.bold} [{bar:30.cyan/blue}] {percent:>3}% {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label(&v.collection, v.shard.0, v.from.0, v.to.0));
        bar
    }

    fn update_bar(bar: &ProgressBar, v: &TransferView) {
        // Bytes when the executor reports them, else points; nothing known
        // yet is 0 %, not 100 % of nothing.
        let (done, total) = if v.bytes_total > 0 {
            (v.bytes_copied, v.bytes_total)
        } else {
            (v.points_copied, v.points_total)
        };
        bar.set_length(total.max(done).max(1));
        bar.set_position(done);
        bar.set_message(progress_message(v));
    }

    /// Polls once: updates the bars, reports phase changes and endings.
    pub async fn poll(&mut self) -> Result<Poll> {
        let report = self.api.transfers().await?;
        let mut running = HashSet::new();
        for v in &report.running {
            let key = view_key(v);
            running.insert(key.clone());
            self.observed.insert(key.clone());
            let hidden = self.multi.is_hidden();
            let changed = match self.bars.get(&key) {
                Some((_, phase)) => *phase != v.phase,
                None => true,
            };
            if changed && hidden {
                self.line(format!(
                    "transfer {} {}",
                    label(&v.collection, v.shard.0, v.from.0, v.to.0),
                    progress_message(v)
                ));
            }
            let bar = match self.bars.remove(&key) {
                Some((bar, _)) => bar,
                None => self.new_bar(v),
            };
            Self::update_bar(&bar, v);
            self.bars.insert(key, (bar, v.phase));
        }
        let mut finished = Vec::new();
        for r in &report.recent {
            if self.seen.insert(record_id(r)) {
                finished.push(r.clone());
            }
        }
        for r in &finished {
            let key = record_key(r);
            let secs = r.finished_at_ms.saturating_sub(r.started_at_ms) as f64 / 1000.0;
            let text = match failure_reason(r) {
                None => format!(
                    "transfer {} {} completed: {} points, {} bytes in {secs:.1} s",
                    label(&r.collection, r.shard.0, r.from.0, r.to.0),
                    kind_name(r.kind),
                    r.points_copied,
                    r.bytes_copied
                ),
                Some(reason) => format!(
                    "transfer {} {} FAILED after {secs:.1} s: {reason}",
                    label(&r.collection, r.shard.0, r.from.0, r.to.0),
                    kind_name(r.kind)
                ),
            };
            if let Some((bar, _)) = self.bars.remove(&key) {
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
            self.line(text);
        }
        // A transfer gone from the running list whose record has not
        // arrived yet keeps its bar until it does.
        Ok(Poll { report, finished })
    }

    /// Clears every bar (at the end of a watch).
    pub fn clear(&mut self) {
        for (_, (bar, _)) in self.bars.drain() {
            bar.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::cluster::{Migration, TransferKind};
    use protocol::{NodeId, ShardId};

    #[test]
    fn the_message_has_phase_points_bytes_rate_and_eta() {
        let m = Migration {
            from: NodeId(1),
            to: NodeId(4),
            kind: TransferKind::Replicate,
            phase: MigrationPhase::Delta,
            points_copied: 2000,
            points_total: 4000,
            bytes_copied: 2 << 20,
            bytes_total: 4 << 20,
            started_at_ms: 1_000,
            updated_at_ms: 3_000,
        };
        let v = TransferView::new("c", ShardId(3), &m);
        assert_eq!(
            progress_message(&v),
            "replicate delta: 2000/4000 points, 2.00 MiB/4.00 MiB, 1.00 MiB/s (1000 points/s), ETA 2 s"
        );
        assert_eq!(label("c", 3, 1, 4), "c/3 1→4");
    }
}
