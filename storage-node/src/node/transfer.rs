//! Shard transfers as this node executes them (it is the shard's primary
//! and the transfer's target is one of its replication peers): progress,
//! reporting to the meta-service, pacing of the snapshot.
//!
//! ```text
//!   replicator ──progress──▶ TransferState ──every second / phase change──▶
//!                                 │            Coordinator::submit(UpdateMigration)
//!                                 └──▶ GET /transfers, storage_transfer_* gauges
//! ```
//!
//! The node stays transport-agnostic: the meta-service is reached through
//! [`Coordinator`], which the server layer implements with its
//! `MetaClient`; a node without one (in-memory tests) copies data to
//! migration targets as to any replica but neither reports nor switches.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use protocol::cluster::{ClusterCommand, ClusterMap, CommandError, MigrationPhase};
use protocol::rpc::ShardRef;
use protocol::{Epoch, NodeId};
use serde::Serialize;
use tokio::sync::Notify;

use super::Node;

pub type CoordinatorFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Why a command did not go through.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SubmitError {
    /// The state machine refused it: nothing changed.
    #[error("refused: {0}")]
    Refused(CommandError),
    /// It certainly was not applied (no member reachable).
    #[error("not sent: {0}")]
    NotSent(String),
    /// No answer came back: it may have been applied.
    #[error("outcome unknown: {0}")]
    Unknown(String),
}

/// The meta-service as a transfer's executor needs it.
pub trait Coordinator: Send + Sync + 'static {
    /// Submits a command; the epoch it produced.
    fn submit(&self, cmd: ClusterCommand) -> CoordinatorFuture<Result<Epoch, SubmitError>>;
    /// The current map, read through the leader (linearizable).
    fn current_map(&self) -> CoordinatorFuture<Result<ClusterMap, String>>;
}

/// Wall-clock milliseconds since the Unix epoch (for `at_ms` fields).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A running transfer's progress as this node sees it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TransferProgress {
    pub collection: String,
    pub shard: protocol::ShardId,
    pub to: NodeId,
    pub phase: MigrationPhase,
    pub points_copied: u64,
    pub points_total: u64,
    pub bytes_copied: u64,
    pub bytes_total: u64,
    /// What the target has acknowledged (its applied sequence number).
    pub target_acked: u64,
    /// Snapshot attempts that failed in a row.
    pub snapshot_failures: u32,
    /// How long the last switch held writes, ms.
    pub last_hold_ms: Option<u64>,
    /// The target's indexed points, while the transfer waits for them.
    pub target_indexed: u64,
    /// Looks at the target's index that found it still working: each one
    /// is progress (an index build can take longer than the stall timeout
    /// without a point changing).
    pub index_checks: u64,
    /// When the transfer started waiting for the target's index (ms since
    /// the Unix epoch).
    pub index_wait_since_ms: Option<u64>,
    pub started_at_ms: u64,
}

/// One transfer's shared state: the replicator writes it, the reporter
/// and the HTTP routes read it.
pub struct TransferState {
    progress: Mutex<TransferProgress>,
    /// Wakes the reporter at once (phase changes).
    changed: Notify,
}

impl TransferState {
    pub fn progress(&self) -> TransferProgress {
        self.progress.lock().clone()
    }

    /// Changes the progress; a phase change is reported at once.
    pub fn update(&self, f: impl FnOnce(&mut TransferProgress)) {
        let mut p = self.progress.lock();
        let before = p.phase;
        f(&mut p);
        let phase_changed = p.phase != before;
        drop(p);
        if phase_changed {
            self.changed.notify_one();
        }
    }
}

type Key = (ShardRef, NodeId);

/// The transfers this node executes.
#[derive(Default)]
pub struct Transfers {
    running: Mutex<HashMap<Key, Arc<TransferState>>>,
}

impl Transfers {
    pub fn list(&self) -> Vec<TransferProgress> {
        let mut out: Vec<_> = self.running.lock().values().map(|t| t.progress()).collect();
        out.sort_by(|a, b| (&a.collection, a.shard, a.to).cmp(&(&b.collection, b.shard, b.to)));
        out
    }

    fn remove(&self, key: &Key) {
        self.running.lock().remove(key);
    }
}

impl Node {
    /// The transfer to `peer` of this shard, if the map has one and this
    /// node leads the shard; started (with its reporter) on first sight.
    pub(crate) fn transfer_to(
        self: &Arc<Self>,
        shard: &ShardRef,
        peer: NodeId,
    ) -> Option<Arc<TransferState>> {
        let map = self.map();
        let info = map.shard(&shard.collection, shard.shard)?;
        let m = info.migration.as_ref()?;
        if m.to != peer || info.primary != Some(self.id) {
            return None;
        }
        let key = (shard.clone(), peer);
        let mut running = self.transfers.running.lock();
        if let Some(t) = running.get(&key) {
            return Some(t.clone());
        }
        let state = Arc::new(TransferState {
            progress: Mutex::new(TransferProgress {
                collection: shard.collection.clone(),
                shard: shard.shard,
                to: peer,
                phase: MigrationPhase::Snapshot,
                started_at_ms: now_ms(),
                ..TransferProgress::default()
            }),
            changed: Notify::new(),
        });
        running.insert(key.clone(), state.clone());
        drop(running);
        tokio::spawn(report(self.clone(), key, state.clone()));
        Some(state)
    }

    pub fn transfers(&self) -> Vec<TransferProgress> {
        self.transfers.list()
    }

    pub(crate) fn coordinator(&self) -> Option<Arc<dyn Coordinator>> {
        self.coordinator.read().clone()
    }

    /// Lets this node report and switch the transfers it executes.
    pub fn set_coordinator(&self, c: Arc<dyn Coordinator>) {
        *self.coordinator.write() = Some(c);
    }

    /// Whether the map still has this transfer with this node executing it.
    fn transfer_running(&self, key: &Key) -> bool {
        let map = self.map();
        map.shard(&key.0.collection, key.0.shard).is_some_and(|i| {
            i.primary == Some(self.id) && i.migration.as_ref().is_some_and(|m| m.to == key.1)
        })
    }
}

/// How often progress goes to the meta-service at the least.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Reports the transfer's progress at each phase change and, while it
/// moves (points, bytes, the target's acknowledged operations, or its
/// index build), every second, until the map no longer has it (switched,
/// aborted, or the primary moved); then forgets it. A transfer that stops
/// moving goes silent, so the controller's stall timeout
/// (`rebalancing.stall_after_ms`) can fail it.
async fn report(node: Arc<Node>, key: Key, state: Arc<TransferState>) {
    let mut reported: Option<(MigrationPhase, u64, u64, u64, u64, u64, u64)> = None;
    loop {
        let _ = tokio::time::timeout(REPORT_EVERY, state.changed.notified()).await;
        if !node.transfer_running(&key) {
            break;
        }
        let p = state.progress();
        export_metrics(&p);
        let Some(c) = node.coordinator() else {
            continue;
        };
        let now = (
            p.phase,
            p.points_copied,
            p.points_total,
            p.bytes_copied,
            p.bytes_total,
            p.target_acked,
            p.index_checks,
        );
        if reported == Some(now) {
            continue;
        }
        let cmd = ClusterCommand::UpdateMigration {
            collection: p.collection.clone(),
            shard: p.shard,
            to: p.to,
            phase: p.phase,
            points_copied: p.points_copied,
            points_total: p.points_total,
            bytes_copied: p.bytes_copied,
            bytes_total: p.bytes_total,
            at_ms: now_ms(),
        };
        match c.submit(cmd).await {
            Ok(_) => reported = Some(now),
            Err(SubmitError::Refused(CommandError::NoMigration { .. })) => break,
            Err(e) => {
                tracing::debug!(shard = ?key.0, to = %key.1, error = %e, "transfer progress not reported")
            }
        }
    }
    node.transfers.remove(&key);
    clear_metrics(&key);
    tracing::info!(shard = ?key.0, to = %key.1, "transfer no longer running here");
}

fn labels(collection: &str, shard: protocol::ShardId, to: NodeId) -> [(&'static str, String); 3] {
    [
        ("collection", collection.to_string()),
        ("shard", shard.to_string()),
        ("to", to.to_string()),
    ]
}

fn phase_number(p: MigrationPhase) -> f64 {
    match p {
        MigrationPhase::Snapshot => 1.0,
        MigrationPhase::Delta => 2.0,
        MigrationPhase::Index => 3.0,
        MigrationPhase::Verify => 4.0,
        MigrationPhase::Switch => 5.0,
    }
}

/// `storage_transfer_*` gauges of one transfer.
pub fn export_metrics(p: &TransferProgress) {
    let l = labels(&p.collection, p.shard, p.to);
    metrics::gauge!("storage_transfer_phase", &l).set(phase_number(p.phase));
    metrics::gauge!("storage_transfer_points_copied", &l).set(p.points_copied as f64);
    metrics::gauge!("storage_transfer_points_total", &l).set(p.points_total as f64);
    metrics::gauge!("storage_transfer_bytes_copied", &l).set(p.bytes_copied as f64);
    metrics::gauge!("storage_transfer_bytes_total", &l).set(p.bytes_total as f64);
}

fn clear_metrics(key: &Key) {
    let l = labels(&key.0.collection, key.0.shard, key.1);
    metrics::gauge!("storage_transfer_phase", &l).set(0.0);
}

/// Paces a byte stream to a rate: after `sent` bytes in `elapsed`, how
/// long to wait so that the average stays at or below `bytes_per_sec`
/// (0 or less: unthrottled).
pub fn pace(sent: u64, elapsed: Duration, bytes_per_sec: f64) -> Duration {
    if bytes_per_sec <= 0.0 || !bytes_per_sec.is_finite() {
        return Duration::ZERO;
    }
    let due = Duration::from_secs_f64(sent as f64 / bytes_per_sec);
    due.saturating_sub(elapsed)
}

/// A snapshot stream's pacer: the rate is read again before every chunk
/// (the operator may change `rebalancing.throttle_mb_per_sec` mid-way).
pub struct Pacer {
    started: Instant,
    sent: u64,
}

impl Pacer {
    pub fn new() -> Self {
        Pacer {
            started: Instant::now(),
            sent: 0,
        }
    }

    /// Counts `bytes` as sent; the wait before the next chunk.
    pub fn sent(&mut self, bytes: u64, mb_per_sec: f64) -> Duration {
        self.sent += bytes;
        pace(self.sent, self.started.elapsed(), mb_per_sec * 1_000_000.0)
    }
}

impl Default for Pacer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_keeps_the_average_rate() {
        // 10 MB at 10 MB/s take a second: after 0.2 s, wait 0.8 s.
        let wait = pace(10_000_000, Duration::from_millis(200), 10_000_000.0);
        assert_eq!(wait, Duration::from_millis(800));
        // Already slower than the rate: no wait.
        assert_eq!(
            pace(1_000, Duration::from_secs(1), 10_000_000.0),
            Duration::ZERO
        );
        // Unthrottled.
        assert_eq!(pace(u64::MAX, Duration::ZERO, 0.0), Duration::ZERO);
    }

    #[test]
    fn a_pacer_spreads_chunks_over_time() {
        let mut p = Pacer::new();
        // 1 MB chunks at 2 MB/s: the second chunk is due at 1 s.
        let first = p.sent(1_000_000, 2.0);
        assert!(first > Duration::from_millis(400) && first <= Duration::from_millis(500));
        let second = p.sent(1_000_000, 2.0);
        assert!(second > Duration::from_millis(900) && second <= Duration::from_secs(1));
        assert_eq!(Pacer::new().sent(1 << 30, 0.0), Duration::ZERO);
    }
}
