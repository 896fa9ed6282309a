//! One shard replica held by this node, whichever role it plays.
//!
//! ```text
//!            map says primary (term T)            map says replica
//!   Follower ─────────────────────────▶ Leader ───────────────────▶ Follower
//!     ▲  applies Replicate / InstallSnapshot      orders writes,
//!     │  from the primary of the highest term     one replicator per peer
//! ```
//!
//! Data lives in `<dir>/gen-<n>`; installing a snapshot writes generation
//! `n + 1` beside the current one, chunk by chunk as they arrive (never
//! the whole snapshot in memory), and switches `CURRENT` atomically after
//! the last one, so a crash mid-install leaves the old replica intact (the
//! half-built generation is removed on the next open or the next `first`
//! chunk).
//!
//! A primary's writes pass a gate ([`LocalReplica::write_gate`]) while
//! they are ordered and applied; a transfer's switch closes it, so that
//! writes wait (they do not fail) while the target takes the last
//! operations and the meta-service switches the assignment.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use protocol::rpc::{ShardRef, SnapshotEntry, StorageError};
use protocol::{CollectionConfig, NodeId, Operation, SeqNo, SequencedOperation, Term};
use tokio::sync::watch;

use super::leadership::{Leadership, PeerLag, Stream, StreamSource};
use crate::shard::{Shard, ShardOptions, SnapshotPoint, SnapshotWriter};
use crate::ShardError;

pub struct LocalReplica {
    pub shard_ref: ShardRef,
    /// The epoch that created the collection (`CollectionInfo::created_epoch`).
    pub incarnation: protocol::Epoch,
    dir: PathBuf,
    config: CollectionConfig,
    options: ShardOptions,
    shard: RwLock<Arc<Shard>>,
    generation: AtomicU64,
    /// Highest term seen for this shard (cluster map or a primary).
    known_term: AtomicU64,
    /// Set while this node is the shard's primary.
    leadership: Mutex<Option<Leadership>>,
    /// The snapshot being received (its staging generation).
    incoming: Mutex<Option<Incoming>>,
    /// Writes hold it shared while they are applied; a transfer's switch
    /// holds it exclusively.
    gate: Arc<tokio::sync::RwLock<()>>,
    /// After a snapshot install: the content is a state of the primary's
    /// history only from this sequence number on (kept in the generation's
    /// `CONSISTENT_FROM` file across restarts).
    consistent_from: AtomicU64,
    /// Bumped after every local write, wakes the replicators.
    applied_tx: watch::Sender<SeqNo>,
    /// Serialises replication requests from the primary.
    apply_lock: tokio::sync::Mutex<()>,
}

struct Incoming {
    term: Term,
    seq: SeqNo,
    /// The sender's name for this snapshot (`InstallSnapshot::snapshot_id`).
    id: Option<u64>,
    /// `None` while a chunk is being written on a blocking thread.
    writer: Option<SnapshotWriter>,
}

impl LocalReplica {
    pub fn open(
        shard_ref: ShardRef,
        dir: PathBuf,
        config: CollectionConfig,
        options: ShardOptions,
        incarnation: protocol::Epoch,
    ) -> crate::Result<Self> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| ShardError::io(format!("create {}", dir.display()), e))?;
        let generation = read_generation(&dir)?;
        remove_other_generations(&dir, generation);
        let shard = Shard::open(&gen_dir(&dir, generation), config.clone(), options.clone())?;
        let term = shard.last_term().0;
        let consistent_from = read_consistent_from(&gen_dir(&dir, generation));
        let (applied_tx, _) = watch::channel(shard.applied_seq());
        Ok(Self {
            shard_ref,
            incarnation,
            dir,
            config,
            options,
            shard: RwLock::new(Arc::new(shard)),
            generation: AtomicU64::new(generation),
            known_term: AtomicU64::new(term),
            leadership: Mutex::new(None),
            incoming: Mutex::new(None),
            gate: Arc::new(tokio::sync::RwLock::new(())),
            consistent_from: AtomicU64::new(consistent_from),
            applied_tx,
            apply_lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn shard(&self) -> Arc<Shard> {
        self.shard.read().clone()
    }

    /// Adopts the collection's declared payload indexes (every map).
    pub fn set_payload_indexes(&self, indexes: &protocol::PayloadIndexes) {
        self.shard().set_payload_indexes(indexes);
    }

    /// See [`protocol::rpc::ReplicaStatus::consistent_from`].
    pub fn consistent_from(&self) -> SeqNo {
        SeqNo(self.consistent_from.load(Ordering::SeqCst))
    }

    pub fn known_term(&self) -> Term {
        Term(self.known_term.load(Ordering::SeqCst))
    }

    pub fn observe_term(&self, term: Term) {
        self.known_term.fetch_max(term.0, Ordering::SeqCst);
    }

    pub fn is_leading(&self) -> bool {
        self.leadership.lock().is_some()
    }

    /// Becomes (or stays) the primary under `term` with these peers; a new
    /// term or peer set restarts replication with a fresh sync of each
    /// peer. Returns the streams the caller must start (none when nothing
    /// changed).
    pub fn lead(&self, term: Term, peers: &[NodeId]) -> Vec<Stream> {
        let mut g = self.leadership.lock();
        if let Some(l) = g.as_ref() {
            if l.term == term && l.peers == peers {
                return Vec::new();
            }
        }
        // Under the same term (only the peer set changed: a transfer's
        // target added or switched in, a source removed) the peers' marks
        // stay true, and writes applied before the change wait on them:
        // with fresh marks they would wait for the write timeout (the old
        // streams stop, the new ones record into other marks). Peers that
        // left forget theirs: if they come back it is with other data.
        let mut same_term_acks = None;
        if let Some(old) = g.take() {
            let _ = old.stop.send(true);
            if old.term == term {
                for gone in old.peers.iter().filter(|p| !peers.contains(p)) {
                    old.acks.forget(*gone);
                }
                same_term_acks = Some(old.acks.clone());
            }
        }
        self.observe_term(term);
        self.shard().set_term(term);
        let (mut leadership, mut streams) = Leadership::start(term, peers);
        if let Some(acks) = same_term_acks {
            leadership.acks = acks.clone();
            for s in &mut streams {
                s.acks = acks.clone();
            }
        }
        tracing::info!(shard = ?self.shard_ref, %term, ?peers, "leading shard");
        *g = Some(leadership);
        streams
    }

    /// Primary: makes the replicator of `peer` sync again now. False when
    /// this node does not lead the shard or has no stream to `peer`.
    pub fn kick(&self, peer: NodeId) -> bool {
        let g = self.leadership.lock();
        match g.as_ref().and_then(|l| l.kicks.get(&peer)) {
            Some(kick) => {
                // A stored permit: a kick during a send is not lost.
                kick.notify_one();
                true
            }
            None => false,
        }
    }

    /// Stops leading (replicators end at their next step).
    pub fn follow(&self) {
        if let Some(old) = self.leadership.lock().take() {
            let _ = old.stop.send(true);
            tracing::info!(shard = ?self.shard_ref, "no longer leading shard");
        }
    }

    /// The write gate (see the module doc): a write takes it shared
    /// before it checks the map and releases it once applied.
    pub async fn write_gate(&self) -> tokio::sync::OwnedRwLockReadGuard<()> {
        self.gate.clone().read_owned().await
    }

    /// Closes the gate: returns once every write past it is applied; new
    /// writes wait until the guard is dropped.
    pub async fn hold_writes(&self) -> tokio::sync::OwnedRwLockWriteGuard<()> {
        self.gate.clone().write_owned().await
    }

    /// Primary: how far behind each peer is now; `None` on a replica.
    pub fn replication_lags(&self) -> Option<Vec<PeerLag>> {
        let (peers, acks) = {
            let g = self.leadership.lock();
            let l = g.as_ref()?;
            (l.peers.clone(), l.acks.clone())
        };
        Some(acks.lags(&peers, self.shard().applied_seq(), Instant::now()))
    }

    /// Primary: logs and applies `op` locally, then waits until `required`
    /// replicas (this one included, only `active` peers counted) have it.
    /// `gate` (from [`LocalReplica::write_gate`]) is released once the
    /// operation is applied.
    pub async fn write(
        &self,
        op: Operation,
        required: usize,
        active: &[NodeId],
        timeout: Duration,
        gate: tokio::sync::OwnedRwLockReadGuard<()>,
    ) -> Result<(SeqNo, usize), StorageError> {
        let (term, acks) = {
            let g = self.leadership.lock();
            let l = g.as_ref().ok_or(StorageError::NotPrimary {
                primary: None,
                epoch: protocol::Epoch(0),
            })?;
            (l.term, l.acks.clone())
        };
        if self.known_term() > term {
            return Err(StorageError::StaleTerm {
                got: term,
                current: self.known_term(),
            });
        }
        let shard = self.shard();
        let seq = tokio::task::spawn_blocking(move || shard.apply_in_term(op, term))
            .await
            .map_err(|e| StorageError::Internal {
                message: e.to_string(),
            })?
            .map_err(to_storage_error)?;
        acks.applied(seq, Instant::now());
        self.applied_tx.send_modify(|a| *a = (*a).max(seq));
        drop(gate);
        let deadline = Instant::now() + timeout;
        loop {
            let changed = acks.changed();
            let count = 1 + acks.count_at_least(seq, active);
            if count >= required {
                return Ok((seq, count));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, changed).await.is_err() {
                let count = 1 + acks.count_at_least(seq, active);
                if count >= required {
                    return Ok((seq, count));
                }
                return Err(StorageError::ConsistencyNotMet {
                    acked: count,
                    required,
                });
            }
        }
    }

    /// Replica: applies the primary's operations in order, durably, with
    /// one flush per batch. A batch that starts past what is applied may be
    /// overtaken by its predecessor (the primary pipelines batches on
    /// independent streams): it waits for it a little before answering
    /// [`StorageError::Behind`].
    pub async fn apply_replicated(
        &self,
        term: Term,
        ops: Vec<SequencedOperation>,
    ) -> Result<SeqNo, StorageError> {
        let deadline = tokio::time::Instant::now() + GAP_WAIT;
        let mut applied_rx = self.applied_tx.subscribe();
        let one = loop {
            let one = self.apply_lock.lock().await;
            self.check_term(term)?;
            let applied = self.shard().applied_seq();
            match ops.first() {
                Some(first) if first.seq > applied.next() => {
                    drop(one);
                    // Any change: check again under the lock.
                    let changed = tokio::time::timeout_at(deadline, applied_rx.changed()).await;
                    if !matches!(changed, Ok(Ok(()))) {
                        return Err(StorageError::Behind { applied });
                    }
                }
                _ => break one,
            }
        };
        let shard = self.shard();
        let result = tokio::task::spawn_blocking(move || shard.apply_sequenced_batch(ops))
            .await
            .map_err(|e| StorageError::Internal {
                message: e.to_string(),
            })?;
        drop(one);
        let applied = result.map_err(to_storage_error)?;
        self.applied_tx.send_modify(|a| *a = (*a).max(applied));
        Ok(applied)
    }

    /// Replica: receives one chunk of the primary's snapshot and writes it
    /// into the staging generation; the last one finishes it at `seq`
    /// (with `last_term`) and replaces this replica's content.
    ///
    /// A `first` chunk starts a new snapshot and discards the one being
    /// received; any other chunk is added only to the snapshot of its
    /// `(term, seq, snapshot_id)`. A chunk of another one (a superseded
    /// stream still sending, or a snapshot whose start this replica lost
    /// in a restart) is refused with [`StorageError::Unavailable`]: its
    /// sender stops or starts over, and the pages of two snapshots are
    /// never mixed (their `consistent_from` would not hold for the mix).
    #[allow(clippy::too_many_arguments)]
    pub async fn install_chunk(
        &self,
        term: Term,
        seq: SeqNo,
        last_term: Term,
        chunk: Vec<SnapshotEntry>,
        first: bool,
        last: bool,
        consistent_from: SeqNo,
        snapshot_id: Option<u64>,
    ) -> Result<SeqNo, StorageError> {
        let _one = self.apply_lock.lock().await;
        self.check_term(term)?;
        let next_gen = self.generation.load(Ordering::SeqCst) + 1;
        let dir = gen_dir(&self.dir, next_gen);
        let writer = if first {
            // A new snapshot: whatever was half-built is discarded.
            self.incoming.lock().take();
            let (config, options, dir) = (self.config.clone(), self.options.clone(), dir.clone());
            blocking(move || SnapshotWriter::create(&dir, config, options, seq, last_term)).await?
        } else {
            let mut g = self.incoming.lock();
            match g
                .as_mut()
                .filter(|i| i.term == term && i.seq == seq && i.id == snapshot_id)
            {
                Some(inc) => inc.writer.take().ok_or_else(|| StorageError::Unavailable {
                    message: "snapshot chunk arrived while the previous one is written".into(),
                })?,
                None => {
                    return Err(StorageError::Unavailable {
                        message: format!(
                            "snapshot chunk (term {term}, seq {seq}) of a snapshot this replica is not receiving"
                        ),
                    })
                }
            }
        };
        let points = chunk
            .into_iter()
            .map(|e| SnapshotPoint {
                point: e.point,
                version: e.version,
            })
            .collect::<Vec<_>>();
        let mut writer = writer;
        let (writer, written) = tokio::task::spawn_blocking(move || {
            let r = writer.add(points);
            (writer, r)
        })
        .await
        .map_err(|e| StorageError::Internal {
            message: e.to_string(),
        })?;
        if let Err(e) = written {
            // A chunk that cannot be written ends this snapshot.
            self.incoming.lock().take();
            return Err(to_storage_error(e));
        }
        if !last {
            *self.incoming.lock() = Some(Incoming {
                term,
                seq,
                id: snapshot_id,
                writer: Some(writer),
            });
            return Ok(self.shard().applied_seq());
        }
        self.incoming.lock().take();
        let points = writer.points();
        let consistent_from = consistent_from.max(seq);
        let built = blocking(move || writer.finish()).await?;
        write_consistent_from(&dir, consistent_from).map_err(to_storage_error)?;
        write_generation(&self.dir, next_gen).map_err(to_storage_error)?;
        self.consistent_from
            .store(consistent_from.0, Ordering::SeqCst);
        // The snapshot opened with the config this replica opened with;
        // payload indexes declared since then carry over.
        built.set_payload_indexes(&self.shard().payload_indexes());
        let old = std::mem::replace(&mut *self.shard.write(), Arc::new(built));
        let old_gen = self.generation.swap(next_gen, Ordering::SeqCst);
        let old_dir = gen_dir(&self.dir, old_gen);
        self.applied_tx.send_modify(|a| *a = seq);
        // The old shard closes (its background thread joins) off the runtime.
        tokio::task::spawn_blocking(move || {
            drop(old);
            if let Err(e) = std::fs::remove_dir_all(&old_dir) {
                tracing::warn!(dir = %old_dir.display(), error = %e, "could not remove replaced replica data");
            }
        });
        tracing::info!(shard = ?self.shard_ref, %seq, points, "replica replaced from the primary's snapshot");
        Ok(seq)
    }

    fn check_term(&self, term: Term) -> Result<(), StorageError> {
        let current = self.known_term();
        if term < current {
            return Err(StorageError::StaleTerm { got: term, current });
        }
        self.observe_term(term);
        if self.is_leading() && term > current {
            // A newer primary exists: stop ordering writes here.
            self.follow();
        }
        self.shard().set_term(term);
        Ok(())
    }
}

impl StreamSource for LocalReplica {
    fn shard_ref(&self) -> &ShardRef {
        &self.shard_ref
    }

    fn incarnation(&self) -> protocol::Epoch {
        self.incarnation
    }

    fn shard(&self) -> Arc<Shard> {
        LocalReplica::shard(self)
    }

    fn applied_watch(&self) -> watch::Receiver<SeqNo> {
        self.applied_tx.subscribe()
    }

    fn observe_term(&self, term: Term) {
        LocalReplica::observe_term(self, term)
    }

    fn write_gate(&self) -> Arc<tokio::sync::RwLock<()>> {
        self.gate.clone()
    }
}

/// How long a replicated batch waits for the batch before it (sent on
/// another stream) before the replica answers `Behind`.
const GAP_WAIT: Duration = Duration::from_millis(500);

pub fn to_storage_error(e: ShardError) -> StorageError {
    match e {
        ShardError::StaleTerm {
            authorised,
            current,
        } => StorageError::StaleTerm {
            got: authorised,
            current,
        },
        ShardError::Invalid(v) => StorageError::Invalid {
            message: v.to_string(),
        },
        // The primary resyncs on it and finds the peer needs a snapshot.
        ShardError::Diverged { .. } => StorageError::Invalid {
            message: e.to_string(),
        },
        ShardError::Poisoned | ShardError::Io { .. } => StorageError::Unavailable {
            message: e.to_string(),
        },
        other => StorageError::Internal {
            message: other.to_string(),
        },
    }
}

/// Runs shard work on a blocking thread, mapping its error.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Internal {
            message: e.to_string(),
        })?
        .map_err(to_storage_error)
}

/// Removes generations other than the current one: leftovers of a
/// snapshot install interrupted by a crash (never committed).
fn remove_other_generations(dir: &Path, current: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(n) = name.to_str().and_then(|n| n.strip_prefix("gen-")) else {
            continue;
        };
        if n.parse::<u64>().is_ok_and(|g| g != current) {
            let path = entry.path();
            tracing::info!(path = %path.display(), "removing an unfinished replica generation");
            if let Err(e) = std::fs::remove_dir_all(&path) {
                tracing::warn!(path = %path.display(), error = %e, "could not remove it");
            }
        }
    }
}

const CONSISTENT_FROM: &str = "CONSISTENT_FROM";

/// 0 when the generation was not built from a snapshot (or the file is
/// unreadable: then a transfer's verification may fail and be retried).
fn read_consistent_from(gen: &Path) -> u64 {
    std::fs::read_to_string(gen.join(CONSISTENT_FROM))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn write_consistent_from(gen: &Path, seq: SeqNo) -> crate::Result<()> {
    let path = gen.join(CONSISTENT_FROM);
    std::fs::write(&path, seq.0.to_string())
        .and_then(|_| std::fs::File::open(&path)?.sync_all())
        .map_err(|e| ShardError::io(format!("write {}", path.display()), e))
}

fn gen_dir(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("gen-{generation}"))
}

fn read_generation(dir: &Path) -> crate::Result<u64> {
    let path = dir.join("CURRENT");
    match std::fs::read_to_string(&path) {
        Ok(s) => s
            .trim()
            .parse()
            .map_err(|_| ShardError::Corrupt(format!("{} holds {s:?}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(1),
        Err(e) => Err(ShardError::io(format!("read {}", path.display()), e)),
    }
}

fn write_generation(dir: &Path, generation: u64) -> crate::Result<()> {
    let tmp = dir.join("CURRENT.tmp");
    let path = dir.join("CURRENT");
    std::fs::write(&tmp, generation.to_string())
        .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| ShardError::io(format!("write {}", path.display()), e))?;
    crate::wal::sync_dir(dir)
}

#[cfg(test)]
mod tests {
    //! Term checks and sequencing on the replica side, on a real shard.

    use super::*;
    use protocol::{Distance, Point, PointId, ShardId};

    fn replica(dir: &Path) -> LocalReplica {
        LocalReplica::open(
            ShardRef {
                collection: "c".into(),
                shard: ShardId(0),
            },
            dir.to_path_buf(),
            CollectionConfig::new(2, Distance::Dot),
            ShardOptions::default(),
            protocol::Epoch(1),
        )
        .expect("open replica")
    }

    fn op(seq: u64, term: u64) -> SequencedOperation {
        SequencedOperation {
            seq: SeqNo(seq),
            term: Term(term),
            op: Operation::Upsert {
                points: vec![Point {
                    id: PointId::Num(seq),
                    vector: vec![seq as f32, 1.0],
                    payload: None,
                }],
            },
        }
    }

    #[tokio::test]
    async fn applies_in_order_and_skips_what_it_already_has() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = replica(dir.path());
        assert_eq!(
            r.apply_replicated(Term(1), vec![op(1, 1), op(2, 1)]).await,
            Ok(SeqNo(2))
        );
        // A resent batch overlapping what was applied: only the new tail.
        assert_eq!(
            r.apply_replicated(Term(1), vec![op(2, 1), op(3, 1)]).await,
            Ok(SeqNo(3))
        );
        assert_eq!(r.shard().content_checksum().0, 3);
        // Entirely old: nothing changes.
        assert_eq!(
            r.apply_replicated(Term(1), vec![op(1, 1)]).await,
            Ok(SeqNo(3))
        );
    }

    #[tokio::test]
    async fn a_gap_is_refused_with_what_was_applied() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = replica(dir.path());
        r.apply_replicated(Term(1), vec![op(1, 1)])
            .await
            .expect("first op");
        assert_eq!(
            r.apply_replicated(Term(1), vec![op(3, 1)]).await,
            Err(StorageError::Behind { applied: SeqNo(1) })
        );
        assert_eq!(r.shard().applied_seq(), SeqNo(1));
    }

    #[tokio::test]
    async fn an_older_term_is_refused_and_a_newer_one_adopted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = replica(dir.path());
        r.apply_replicated(Term(2), vec![op(1, 2)])
            .await
            .expect("term 2");
        assert_eq!(r.known_term(), Term(2));
        assert_eq!(
            r.apply_replicated(Term(1), vec![op(2, 1)]).await,
            Err(StorageError::StaleTerm {
                got: Term(1),
                current: Term(2),
            })
        );
        assert_eq!(r.shard().applied_seq(), SeqNo(1));
        // A snapshot from the old term is refused too.
        assert!(matches!(
            r.install_chunk(
                Term(1),
                SeqNo(5),
                Term(1),
                Vec::new(),
                true,
                true,
                SeqNo(5),
                None
            )
            .await,
            Err(StorageError::StaleTerm { .. })
        ));
        r.apply_replicated(Term(3), vec![op(2, 3)])
            .await
            .expect("term 3");
        assert_eq!(r.known_term(), Term(3));
        assert_eq!(r.shard().last_term(), Term(3));
    }

    #[tokio::test]
    async fn the_term_survives_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let r = replica(dir.path());
            r.apply_replicated(Term(4), vec![op(1, 4)])
                .await
                .expect("term 4");
        }
        let r = replica(dir.path());
        assert_eq!(r.known_term(), Term(4));
        assert!(matches!(
            r.apply_replicated(Term(3), vec![op(2, 3)]).await,
            Err(StorageError::StaleTerm { .. })
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_that_overtook_its_predecessor_waits_for_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = Arc::new(replica(dir.path()));
        let later = {
            let r = r.clone();
            tokio::spawn(async move { r.apply_replicated(Term(1), vec![op(3, 1), op(4, 1)]).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            r.apply_replicated(Term(1), vec![op(1, 1), op(2, 1)]).await,
            Ok(SeqNo(2))
        );
        assert_eq!(later.await.expect("join"), Ok(SeqNo(4)));
    }

    #[tokio::test]
    async fn an_operation_held_under_another_term_is_not_acknowledged() {
        // This replica logged op 2 of term 1 (e.g. as the old primary);
        // the new primary's op 2 of term 2 is another operation.
        let dir = tempfile::tempdir().expect("tempdir");
        let r = replica(dir.path());
        r.apply_replicated(Term(1), vec![op(1, 1), op(2, 1)])
            .await
            .expect("term 1");
        assert!(matches!(
            r.apply_replicated(Term(2), vec![op(2, 2)]).await,
            Err(StorageError::Invalid { .. })
        ));
    }

    fn entries(ids: std::ops::Range<u64>) -> Vec<SnapshotEntry> {
        ids.map(|i| SnapshotEntry {
            point: Point {
                id: PointId::Num(i),
                vector: vec![i as f32, 1.0],
                payload: None,
            },
            version: 1,
        })
        .collect()
    }

    #[tokio::test]
    async fn chunks_of_a_superseded_snapshot_at_the_same_seq_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = replica(dir.path());
        let (t, s) = (Term(1), SeqNo(9));
        // Snapshot 1 starts; snapshot 2, read at the same seq, replaces it.
        r.install_chunk(t, s, t, entries(0..5), true, false, s, Some(1))
            .await
            .expect("first of 1");
        r.install_chunk(t, s, t, entries(0..5), true, false, s, Some(2))
            .await
            .expect("first of 2");
        // Snapshot 1's next chunks are not added to snapshot 2.
        for last in [false, true] {
            assert!(matches!(
                r.install_chunk(t, s, t, entries(5..10), false, last, s, Some(1))
                    .await,
                Err(StorageError::Unavailable { .. })
            ));
        }
        assert_eq!(r.shard().applied_seq(), SeqNo(0), "nothing installed");
        r.install_chunk(t, s, t, entries(5..8), false, true, s, Some(2))
            .await
            .expect("last of 2");
        assert_eq!(r.shard().applied_seq(), s);
        let live: usize = r.shard().segment_info().iter().map(|s| s.1).sum();
        assert_eq!((live, r.shard().content_checksum().0), (8, 8));
        // A chunk whose snapshot this replica never started (it restarted
        // meanwhile) is refused too, and retrying is worth it.
        let refused = r
            .install_chunk(
                t,
                SeqNo(12),
                t,
                entries(0..1),
                false,
                false,
                SeqNo(12),
                Some(3),
            )
            .await;
        assert!(refused.is_err_and(|e| e.is_transient()));
    }

    #[tokio::test]
    async fn a_write_without_leadership_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = replica(dir.path());
        let gate = r.write_gate().await;
        let write = r
            .write(
                Operation::Delete {
                    ids: vec![PointId::Num(1)],
                },
                1,
                &[],
                Duration::from_millis(10),
                gate,
            )
            .await;
        assert!(matches!(write, Err(StorageError::NotPrimary { .. })));
        assert!(!r.kick(NodeId(2)), "no stream to kick without leadership");
    }
}
