//! Shard transfers as operators see them: the running ones with their
//! progress (phase, points and bytes, rate, ETA) and the recently finished
//! ones, read from the cluster map only (the storage node carrying a
//! transfer out reports its progress into the map).
//!
//! One shape everywhere: `/api/cluster/transfers`, `/api/cluster/metrics`,
//! `/api/cluster/topology` and the `vectordb cluster` CLI (which
//! deserialises these same types), so the numbers agree.

use protocol::cluster::{
    ClusterMap, Migration, MigrationPhase, TransferKind, TransferOutcome, TransferRecord,
};
use protocol::{NodeId, ShardId};
use serde::{Deserialize, Serialize};

/// One running transfer with its progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TransferView {
    pub collection: String,
    #[schema(value_type = u32)]
    pub shard: ShardId,
    #[schema(value_type = u64)]
    pub from: NodeId,
    #[schema(value_type = u64)]
    pub to: NodeId,
    #[schema(value_type = TransferKindDoc)]
    pub kind: TransferKind,
    #[schema(value_type = MigrationPhaseDoc)]
    pub phase: MigrationPhase,
    pub points_copied: u64,
    pub points_total: u64,
    pub bytes_copied: u64,
    pub bytes_total: u64,
    pub started_at_ms: u64,
    /// When the executor last reported progress.
    pub updated_at_ms: u64,
    /// Average rates from the start to the last report (the executor's
    /// own timestamps, so the gateway's clock does not enter).
    pub points_per_sec: f64,
    pub bytes_per_sec: f64,
    /// Seconds left at that rate (bytes if the total is known, else
    /// points); `None` before the first progress report.
    pub eta_secs: Option<f64>,
}

impl TransferView {
    pub fn new(collection: &str, shard: ShardId, m: &Migration) -> Self {
        let secs = m.updated_at_ms.saturating_sub(m.started_at_ms) as f64 / 1000.0;
        let rate = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let points_per_sec = rate(m.points_copied);
        let bytes_per_sec = rate(m.bytes_copied);
        let eta = |done: u64, total: u64, per_sec: f64| {
            (total > 0 && per_sec > 0.0).then(|| total.saturating_sub(done) as f64 / per_sec)
        };
        let eta_secs = eta(m.bytes_copied, m.bytes_total, bytes_per_sec)
            .or_else(|| eta(m.points_copied, m.points_total, points_per_sec));
        Self {
            collection: collection.to_string(),
            shard,
            from: m.from,
            to: m.to,
            kind: m.kind,
            phase: m.phase,
            points_copied: m.points_copied,
            points_total: m.points_total,
            bytes_copied: m.bytes_copied,
            bytes_total: m.bytes_total,
            started_at_ms: m.started_at_ms,
            updated_at_ms: m.updated_at_ms,
            points_per_sec,
            bytes_per_sec,
            eta_secs,
        }
    }

    /// One line for humans (Qdrant's `comment` field, the CLI).
    pub fn summary(&self) -> String {
        format!(
            "{} {}: {}/{} points, {}/{} bytes",
            kind_name(self.kind),
            phase_name(self.phase),
            self.points_copied,
            self.points_total,
            self.bytes_copied,
            self.bytes_total
        )
    }
}

pub fn kind_name(k: TransferKind) -> &'static str {
    match k {
        TransferKind::Move => "move",
        TransferKind::Replicate => "replicate",
    }
}

pub fn phase_name(p: MigrationPhase) -> &'static str {
    match p {
        MigrationPhase::Snapshot => "snapshot",
        MigrationPhase::Delta => "delta",
        MigrationPhase::Index => "index",
        MigrationPhase::Verify => "verify",
        MigrationPhase::Switch => "switch",
    }
}

/// Every running transfer in the map, by collection and shard.
pub fn running(map: &ClusterMap) -> Vec<TransferView> {
    map.collections
        .values()
        .flat_map(|c| {
            c.shards.values().filter_map(|s| {
                s.migration
                    .as_ref()
                    .map(|m| TransferView::new(&c.name, s.id, m))
            })
        })
        .collect()
}

/// `GET /api/cluster/transfers`: running and finished transfers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TransfersReport {
    /// The map epoch these numbers are from.
    pub epoch: u64,
    pub running: Vec<TransferView>,
    /// Finished transfers since the cluster was created.
    pub completed: u64,
    pub failed: u64,
    /// The last few finished ones, oldest first.
    #[schema(value_type = Vec<TransferRecordDoc>)]
    pub recent: Vec<TransferRecord>,
}

impl TransfersReport {
    pub fn from_map(map: &ClusterMap) -> Self {
        Self {
            epoch: map.epoch.0,
            running: running(map),
            completed: map.transfers.completed,
            failed: map.transfers.failed,
            recent: map.transfers.recent.clone(),
        }
    }

    /// The latest finished record of a transfer of this shard to `to`
    /// that ended at or after `since_ms`.
    pub fn finished(
        &self,
        collection: &str,
        shard: ShardId,
        to: NodeId,
        since_ms: u64,
    ) -> Option<&TransferRecord> {
        self.recent.iter().rev().find(|r| {
            r.collection == collection
                && r.shard == shard
                && r.to == to
                && r.finished_at_ms >= since_ms
        })
    }
}

/// Why a finished transfer failed, if it did.
pub fn failure_reason(r: &TransferRecord) -> Option<&str> {
    match &r.outcome {
        TransferOutcome::Completed => None,
        TransferOutcome::Failed { reason } => Some(reason),
    }
}

// The JSON shapes of protocol's transfer types, for the OpenAPI document
// (only described, never built).

#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransferKindDoc {
    Move,
    Replicate,
}

#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MigrationPhaseDoc {
    Snapshot,
    Delta,
    Index,
    Verify,
    Switch,
}

/// A finished transfer.
#[derive(utoipa::ToSchema)]
pub struct TransferRecordDoc {
    pub collection: String,
    pub shard: u32,
    pub from: u64,
    pub to: u64,
    pub kind: TransferKindDoc,
    /// `completed` or `failed` (then with `reason`).
    pub outcome: String,
    pub reason: Option<String>,
    pub points_copied: u64,
    pub bytes_copied: u64,
    pub started_at_ms: u64,
    pub finished_at_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migration(points: (u64, u64), bytes: (u64, u64), secs: u64) -> Migration {
        Migration {
            from: NodeId(1),
            to: NodeId(4),
            kind: TransferKind::Move,
            phase: MigrationPhase::Snapshot,
            points_copied: points.0,
            points_total: points.1,
            bytes_copied: bytes.0,
            bytes_total: bytes.1,
            started_at_ms: 10_000,
            updated_at_ms: 10_000 + secs * 1000,
        }
    }

    #[test]
    fn rate_and_eta_from_the_executors_timestamps() {
        let v = TransferView::new("c", ShardId(2), &migration((500, 2000), (5000, 20_000), 5));
        assert_eq!(v.points_per_sec, 100.0);
        assert_eq!(v.bytes_per_sec, 1000.0);
        assert_eq!(v.eta_secs, Some(15.0));
        assert_eq!(
            v.summary(),
            "move snapshot: 500/2000 points, 5000/20000 bytes"
        );
    }

    #[test]
    fn no_eta_before_progress_and_points_when_bytes_are_unknown() {
        let v = TransferView::new("c", ShardId(0), &migration((0, 0), (0, 0), 0));
        assert_eq!((v.points_per_sec, v.eta_secs), (0.0, None));
        let v = TransferView::new("c", ShardId(0), &migration((100, 400), (0, 0), 2));
        assert_eq!(v.eta_secs, Some(6.0));
    }

    #[test]
    fn report_round_trips_and_finds_the_finished_record() {
        let mut map = ClusterMap::default();
        map.transfers.record(TransferRecord {
            collection: "c".into(),
            shard: ShardId(1),
            from: NodeId(1),
            to: NodeId(4),
            kind: TransferKind::Move,
            outcome: TransferOutcome::Failed {
                reason: "node 4 is dead".into(),
            },
            points_copied: 3,
            bytes_copied: 30,
            started_at_ms: 5,
            finished_at_ms: 9,
        });
        let r = TransfersReport::from_map(&map);
        let json = serde_json::to_string(&r).unwrap();
        let back: TransfersReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        assert_eq!(r.failed, 1);
        let rec = r.finished("c", ShardId(1), NodeId(4), 5).unwrap();
        assert_eq!(failure_reason(rec), Some("node 4 is dead"));
        assert!(r.finished("c", ShardId(1), NodeId(4), 10).is_none());
        assert!(r.finished("c", ShardId(2), NodeId(4), 0).is_none());
    }
}
