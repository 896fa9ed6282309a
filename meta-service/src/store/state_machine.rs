//! The Raft state machine: the cluster map in memory, snapshots on disk.
//!
//! The map itself is not written on every apply: the log is durable, and
//! openraft re-applies committed entries after the last snapshot on start
//! (the log store persists the committed id). Snapshots are written to
//! `dir/snapshot.bin` atomically (write a temp file, fsync, rename, fsync
//! the directory), so a crash leaves either the old or the new snapshot.
//!
//! Every applied change is published on a `watch` channel: API handlers
//! read the latest map from it without locking the state machine, and
//! long-polls wait on it for an epoch.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use protocol::cluster::ClusterMap;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::{
    CommandOutcome, Entry, LogId, RaftStorageError, Snapshot, SnapshotMeta, StoredMembership,
    TypeConfig,
};

const SNAPSHOT_FILE: &str = "snapshot.bin";

type Io = StorageIOError<crate::MemberId>;

/// A snapshot as stored on disk: openraft's metadata plus the encoded map.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    /// msgpack of the [`ClusterMap`].
    data: Vec<u8>,
}

#[derive(Debug)]
pub struct StateMachineStore {
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    map: ClusterMap,
    published: watch::Sender<Arc<ClusterMap>>,
    snapshots: Arc<SnapshotFile>,
}

/// Builds one snapshot from a copy of the state taken when openraft asked.
pub struct SnapshotBuilder {
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    map: ClusterMap,
    snapshots: Arc<SnapshotFile>,
}

/// The snapshot file of one state machine, shared with its builders.
/// openraft runs a builder concurrently with the state machine, so a build
/// of an older state could finish after `install_snapshot` of a newer one:
/// writes go through one lock and never replace a newer snapshot.
#[derive(Debug)]
struct SnapshotFile {
    dir: PathBuf,
    seq: AtomicU64,
    /// `last_log_id` of the snapshot on disk.
    current: parking_lot::Mutex<Option<LogId>>,
}

impl SnapshotFile {
    /// Writes `stored` unless the file already holds a newer snapshot;
    /// returns whether it wrote.
    fn write(&self, stored: &StoredSnapshot) -> Result<bool, RaftStorageError> {
        let mut current = self.current.lock();
        if *current > stored.meta.last_log_id {
            return Ok(false);
        }
        write_snapshot_file(&self.dir, stored)?;
        *current = stored.meta.last_log_id;
        Ok(true)
    }
}

impl StateMachineStore {
    /// Opens the state machine in `dir`, restoring the latest snapshot if
    /// there is one. Returns it with a receiver of the published map.
    pub fn open(dir: &Path) -> Result<(Self, watch::Receiver<Arc<ClusterMap>>), RaftStorageError> {
        std::fs::create_dir_all(dir).map_err(|e| Io::read_state_machine(&e))?;
        let (last_applied, last_membership, map) = match read_snapshot_file(dir)? {
            Some(stored) => {
                let map: ClusterMap = protocol::codec::decode(&stored.data)
                    .map_err(|e| Io::read_snapshot(None, &e))?;
                (stored.meta.last_log_id, stored.meta.last_membership, map)
            }
            None => (None, StoredMembership::default(), ClusterMap::default()),
        };
        let (published, rx) = watch::channel(Arc::new(map.clone()));
        Ok((
            Self {
                last_applied,
                last_membership,
                map,
                published,
                snapshots: Arc::new(SnapshotFile {
                    dir: dir.to_path_buf(),
                    seq: AtomicU64::new(0),
                    current: parking_lot::Mutex::new(last_applied),
                }),
            },
            rx,
        ))
    }

    pub fn map(&self) -> &ClusterMap {
        &self.map
    }

    fn publish(&self) {
        self.published.send_replace(Arc::new(self.map.clone()));
    }
}

fn read_snapshot_file(dir: &Path) -> Result<Option<StoredSnapshot>, RaftStorageError> {
    let path = dir.join(SNAPSHOT_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(
            protocol::codec::decode(&bytes).map_err(|e| Io::read_snapshot(None, &e))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Io::read_snapshot(None, &e).into()),
    }
}

/// Writes `stored` as the current snapshot, atomically and durably.
fn write_snapshot_file(dir: &Path, stored: &StoredSnapshot) -> Result<(), RaftStorageError> {
    let sig = Some(stored.meta.signature());
    let err = |e: &dyn std::error::Error| -> RaftStorageError {
        Io::write_snapshot(sig.clone(), &AnyErr(e.to_string())).into()
    };
    let bytes = protocol::codec::encode(stored).map_err(|e| err(&e))?;
    let tmp = dir.join(format!("{SNAPSHOT_FILE}.{}.tmp", stored.meta.snapshot_id));
    let mut f = std::fs::File::create(&tmp).map_err(|e| err(&e))?;
    f.write_all(&bytes).map_err(|e| err(&e))?;
    f.sync_all().map_err(|e| err(&e))?;
    drop(f);
    std::fs::rename(&tmp, dir.join(SNAPSHOT_FILE)).map_err(|e| err(&e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| err(&e))?;
    Ok(())
}

/// An error carried as text (the snapshot path mixes error types).
#[derive(Debug)]
struct AnyErr(String);

impl std::fmt::Display for AnyErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AnyErr {}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, RaftStorageError> {
        let data = protocol::codec::encode(&self.map).map_err(|e| Io::write_snapshot(None, &e))?;
        let seq = self.snapshots.seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match &self.last_applied {
            Some(id) => format!("{}-{}-{}", id.leader_id, id.index, seq),
            None => format!("none-{seq}"),
        };
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        };
        let file = self.snapshots.clone();
        let written = tokio::task::spawn_blocking(move || file.write(&stored))
            .await
            .map_err(|e| Io::write_snapshot(None, &e))??;
        if !written {
            tracing::info!(snapshot = %meta.snapshot_id, "built snapshot is older than the one on disk; not kept");
        }
        tracing::info!(snapshot = %meta.snapshot_id, epoch = %self.map.epoch, "snapshot built");
        metrics::counter!("meta_snapshots_built_total").increment(1);
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership), RaftStorageError> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandOutcome>, RaftStorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            let outcome = match entry.payload {
                EntryPayload::Blank => Ok(self.map.epoch),
                EntryPayload::Normal(cmd) => {
                    let res = crate::commands::apply(&mut self.map, &cmd);
                    match &res {
                        Ok(epoch) => {
                            tracing::debug!(kind = cmd.kind(), %epoch, "applied");
                            metrics::counter!("meta_commands_applied_total", "kind" => cmd.kind())
                                .increment(1);
                        }
                        Err(e) => {
                            tracing::debug!(kind = cmd.kind(), error = %e, "refused");
                            metrics::counter!("meta_commands_refused_total", "kind" => cmd.kind())
                                .increment(1);
                        }
                    }
                    res
                }
                EntryPayload::Membership(m) => {
                    self.last_membership = StoredMembership::new(Some(entry.log_id), m);
                    Ok(self.map.epoch)
                }
            };
            out.push(outcome);
        }
        metrics::gauge!("meta_cluster_map_epoch").set(self.map.epoch.0 as f64);
        self.publish();
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            last_applied: self.last_applied,
            last_membership: self.last_membership.clone(),
            map: self.map.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, RaftStorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), RaftStorageError> {
        let data = snapshot.into_inner();
        let map: ClusterMap = protocol::codec::decode(&data)
            .map_err(|e| Io::read_snapshot(Some(meta.signature()), &e))?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        let file = self.snapshots.clone();
        tokio::task::spawn_blocking(move || file.write(&stored))
            .await
            .map_err(|e| Io::write_snapshot(Some(meta.signature()), &e))??;
        tracing::info!(snapshot = %meta.snapshot_id, epoch = %map.epoch, "snapshot installed");
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        self.map = map;
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, RaftStorageError> {
        let dir = self.snapshots.dir.clone();
        let stored = tokio::task::spawn_blocking(move || read_snapshot_file(&dir))
            .await
            .map_err(|e| Io::read_snapshot(None, &e))??;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(index: u64) -> StoredSnapshot {
        StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: Some(openraft::testing::log_id(1, 1, index)),
                last_membership: StoredMembership::default(),
                snapshot_id: format!("s{index}"),
            },
            data: vec![],
        }
    }

    #[test]
    fn an_older_snapshot_never_replaces_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = SnapshotFile {
            dir: dir.path().to_path_buf(),
            seq: AtomicU64::new(0),
            current: parking_lot::Mutex::new(None),
        };
        assert!(file.write(&stored(5)).unwrap());
        assert!(
            !file.write(&stored(3)).unwrap(),
            "a late build of an older state"
        );
        let on_disk = read_snapshot_file(dir.path()).unwrap().unwrap();
        assert_eq!(on_disk.meta.snapshot_id, "s5");
        assert!(file.write(&stored(9)).unwrap());
    }
}
