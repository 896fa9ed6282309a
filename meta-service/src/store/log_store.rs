//! The Raft log, vote and committed id in one redb file.
//!
//! redb commits are durable (fsync) by default, so `append` reports the
//! entries flushed only after its transaction committed. Every redb call is
//! blocking, so each runs on tokio's blocking pool, never on a core worker.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader, StorageIOError};
use redb::{Database, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Entry, LogId, RaftStorageError, TypeConfig, Vote};

/// Log index → msgpack-encoded entry.
const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("logs");
/// Small named values: vote, committed id, last purged id.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
const KEY_LAST_PURGED: &str = "last_purged";

/// Cheap to clone: every clone is the same database (the log reader openraft
/// asks for is simply another clone).
#[derive(Clone, Debug)]
pub struct LogStore {
    db: Arc<Database>,
}

type Io = StorageIOError<crate::MemberId>;

impl LogStore {
    /// Opens (or creates) `dir/raft-log.redb`.
    pub fn open(dir: &Path) -> Result<Self, RaftStorageError> {
        std::fs::create_dir_all(dir).map_err(|e| Io::write_logs(&e))?;
        let db = Database::create(dir.join("raft-log.redb")).map_err(|e| Io::write_logs(&e))?;
        // Create the tables up front so readers never meet a missing table.
        let txn = db.begin_write().map_err(|e| Io::write_logs(&e))?;
        txn.open_table(LOGS).map_err(|e| Io::write_logs(&e))?;
        txn.open_table(META).map_err(|e| Io::write_logs(&e))?;
        txn.commit().map_err(|e| Io::write_logs(&e))?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Runs blocking redb work off the async workers.
    async fn blocking<T, F>(&self, f: F) -> Result<T, RaftStorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, RaftStorageError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| RaftStorageError::from(Io::read_logs(&e)))?
    }

    async fn read_meta<T: DeserializeOwned + Send + 'static>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, RaftStorageError> {
        self.blocking(move |db| read_meta(db, key)).await
    }

    /// Writes one named value. `durable: false` skips the fsync: the value
    /// becomes durable with the next durable commit, and losing it in a
    /// crash must be harmless (true of the committed id: it only saves
    /// re-applying entries at start-up, and the leader re-sends it).
    async fn write_meta<T: Serialize>(
        &self,
        key: &'static str,
        value: &T,
        durable: bool,
    ) -> Result<(), RaftStorageError> {
        let bytes = protocol::codec::encode(value).map_err(|e| Io::write(&e))?;
        self.blocking(move |db| {
            let mut txn = db.begin_write().map_err(|e| Io::write(&e))?;
            if !durable {
                txn.set_durability(redb::Durability::None);
            }
            {
                let mut t = txn.open_table(META).map_err(|e| Io::write(&e))?;
                t.insert(key, bytes.as_slice()).map_err(|e| Io::write(&e))?;
            }
            txn.commit().map_err(|e| Io::write(&e))?;
            Ok(())
        })
        .await
    }
}

fn read_meta<T: DeserializeOwned>(db: &Database, key: &str) -> Result<Option<T>, RaftStorageError> {
    let txn = db.begin_read().map_err(|e| Io::read(&e))?;
    let t = txn.open_table(META).map_err(|e| Io::read(&e))?;
    let value = t.get(key).map_err(|e| Io::read(&e))?;
    let Some(v) = value else {
        return Ok(None);
    };
    Ok(Some(
        protocol::codec::decode(v.value()).map_err(|e| Io::read(&e))?,
    ))
}

fn last_log_id(db: &Database) -> Result<Option<LogId>, RaftStorageError> {
    let txn = db.begin_read().map_err(|e| Io::read_logs(&e))?;
    let t = txn.open_table(LOGS).map_err(|e| Io::read_logs(&e))?;
    let last = t.last().map_err(|e| Io::read_logs(&e))?;
    let Some((_, v)) = last else {
        return Ok(None);
    };
    let entry: Entry = protocol::codec::decode(v.value()).map_err(|e| Io::read_logs(&e))?;
    Ok(Some(entry.log_id))
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, RaftStorageError> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => Bound::Included(e),
            Bound::Excluded(&e) => Bound::Excluded(e),
            Bound::Unbounded => Bound::Unbounded,
        };
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(|e| Io::read_logs(&e))?;
            let t = txn.open_table(LOGS).map_err(|e| Io::read_logs(&e))?;
            let mut out = Vec::new();
            for item in t
                .range::<u64>((Bound::Included(start), end))
                .map_err(|e| Io::read_logs(&e))?
            {
                let (_, v) = item.map_err(|e| Io::read_logs(&e))?;
                out.push(protocol::codec::decode(v.value()).map_err(|e| Io::read_logs(&e))?);
            }
            Ok(out)
        })
        .await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, RaftStorageError> {
        self.blocking(|db| {
            let last_purged_log_id: Option<LogId> = read_meta(db, KEY_LAST_PURGED)?;
            let last_log_id = last_log_id(db)?.or(last_purged_log_id);
            Ok(LogState {
                last_purged_log_id,
                last_log_id,
            })
        })
        .await
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), RaftStorageError> {
        self.write_meta(KEY_VOTE, vote, true)
            .await
            .map_err(|e| Io::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, RaftStorageError> {
        self.read_meta(KEY_VOTE).await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), RaftStorageError> {
        self.write_meta(KEY_COMMITTED, &committed, false).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, RaftStorageError> {
        Ok(self
            .read_meta::<Option<LogId>>(KEY_COMMITTED)
            .await?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), RaftStorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut encoded = Vec::new();
        for entry in entries {
            let bytes = protocol::codec::encode(&entry).map_err(|e| Io::write_logs(&e))?;
            encoded.push((entry.log_id.index, bytes));
        }
        let res = self
            .blocking(move |db| {
                let txn = db.begin_write().map_err(|e| Io::write_logs(&e))?;
                {
                    let mut t = txn.open_table(LOGS).map_err(|e| Io::write_logs(&e))?;
                    for (index, bytes) in &encoded {
                        t.insert(*index, bytes.as_slice())
                            .map_err(|e| Io::write_logs(&e))?;
                    }
                }
                txn.commit().map_err(|e| Io::write_logs(&e))?;
                Ok(())
            })
            .await;
        match res {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), RaftStorageError> {
        tracing::debug!(%log_id, "truncate log from");
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(|e| Io::write_logs(&e))?;
            {
                let mut t = txn.open_table(LOGS).map_err(|e| Io::write_logs(&e))?;
                t.retain_in(log_id.index.., |_, _| false)
                    .map_err(|e| Io::write_logs(&e))?;
            }
            txn.commit().map_err(|e| Io::write_logs(&e))?;
            Ok(())
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), RaftStorageError> {
        tracing::debug!(%log_id, "purge log up to");
        let purged = protocol::codec::encode(&log_id).map_err(|e| Io::write_logs(&e))?;
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(|e| Io::write_logs(&e))?;
            {
                // Record the purge point first (same transaction): the log
                // state must never claim entries that are gone.
                let mut m = txn.open_table(META).map_err(|e| Io::write_logs(&e))?;
                m.insert(KEY_LAST_PURGED, purged.as_slice())
                    .map_err(|e| Io::write_logs(&e))?;
                let mut t = txn.open_table(LOGS).map_err(|e| Io::write_logs(&e))?;
                t.retain_in(..=log_id.index, |_, _| false)
                    .map_err(|e| Io::write_logs(&e))?;
            }
            txn.commit().map_err(|e| Io::write_logs(&e))?;
            Ok(())
        })
        .await
    }
}
