//! One shard replica on disk: WAL + segments + payloads.
//!
//! Write path: validate → (under the write lock) assign the next sequence
//! number, append to the WAL, apply to memory → wait for the WAL flush
//! (group commit) → acknowledge. Readers never wait for writers' fsyncs;
//! they may see a write a few milliseconds before it is acknowledged,
//! never one that a restart could lose *after* it was acknowledged.
//!
//! Background: a worker thread indexes frozen segments (HNSW / IVF),
//! persists them, checkpoints and truncates the WAL, and compacts segments
//! with many tombstones; every build waits for a slot in the node's
//! [`BuildBudget`]. [`Shard::index_status`] says how far that work is.

mod activity;
mod budget;
mod optimizer;
mod persist;
mod read;
mod snapshot;
mod staging;
mod state;
mod status;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use protocol::collection::IndexKind;
use protocol::{CollectionConfig, Operation, SeqNo, SequencedOperation, Term, ValidationError};
use tracing::info;

use crate::ann::{AnnKind, AnnParams};
use crate::error::{Result, ShardError};
use crate::segment::Segment;
use crate::wal::{Wal, WalOptions};
use state::{Loc, State};

pub use budget::{available_cores, default_builds, BuildBudget, BuildPermit};
pub use read::{ShardDigest, ShardSnapshot, SnapshotPoint};
pub use staging::SnapshotWriter;

#[derive(Clone, Debug)]
pub struct ShardOptions {
    pub wal: WalOptions,
    /// The growing segment is frozen and indexed once it holds this many points.
    pub max_segment_points: usize,
    /// Freeze the growing segment early once the WAL is this large, so the
    /// WAL can be truncated (bounds replay time and disk use).
    pub flush_wal_bytes: u64,
    /// Merge the smallest sealed segments when there are more than this many.
    pub max_sealed_segments: usize,
    /// Merge the two smallest sealed segments while together they hold no
    /// more than this many live points: one large HNSW graph is searched
    /// in a fraction of the time of several small ones with the same `ef`
    /// (each graph is walked in full), at the cost of rebuilding it in the
    /// background. 0 turns it off.
    pub merge_below_points: usize,
    /// Rewrite a sealed segment once this share of its points are tombstones.
    pub max_tombstone_ratio: f64,
    /// Run indexing and compaction in a background thread (tests may turn
    /// it off and call `Shard::run_background_once`, feature `testsuite`,
    /// themselves).
    pub background: bool,
    /// A growing segment with at least `idle_seal_min_points` that has seen
    /// no write for this long is frozen and indexed, so a collection that
    /// stopped growing is not left to exact scans.
    pub idle_seal_after: Duration,
    pub idle_seal_min_points: usize,
    /// Index builds and merges allowed at once across the node: every
    /// shard of a node shares one (clones of these options share it).
    pub build_budget: Arc<BuildBudget>,
}

impl Default for ShardOptions {
    fn default() -> Self {
        Self {
            wal: WalOptions::default(),
            max_segment_points: 20_000,
            flush_wal_bytes: 256 << 20,
            max_sealed_segments: 8,
            merge_below_points: 200_000,
            max_tombstone_ratio: 0.2,
            background: true,
            idle_seal_after: Duration::from_secs(5),
            idle_seal_min_points: 1_000,
            build_budget: BuildBudget::for_this_machine(),
        }
    }
}

pub struct Shard {
    inner: Arc<Inner>,
    /// Both taken by [`Shard::close`] (dropping the sender ends the worker's wait).
    wake: Mutex<Option<mpsc::Sender<()>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

struct Inner {
    dir: PathBuf,
    config: CollectionConfig,
    options: ShardOptions,
    wal: Wal,
    /// Orders writers: sequence numbers are assigned and logged in order.
    write_lock: Mutex<()>,
    state: RwLock<State>,
    /// One indexing / compaction job at a time.
    optimize_lock: Mutex<()>,
    /// What that job is doing now ([`activity::Activity`] as a number), for
    /// [`Shard::index_status`].
    activity: AtomicU8,
    /// The last background failure, cleared by the next round that works.
    last_error: Mutex<Option<String>>,
    term: AtomicU64,
    /// Set by [`Shard::close`]: background work stops at its next check
    /// (between steps, and between chunks of an index build).
    closing: AtomicBool,
    /// When the last operation was applied (idle sealing).
    last_write: Mutex<Instant>,
    /// WAL records a running transfer still needs: checkpoints keep every
    /// record from the lowest pin on (see [`Shard::pin_wal`]).
    wal_pins: Mutex<BTreeMap<u64, SeqNo>>,
    next_pin: AtomicU64,
}

impl Shard {
    /// Opens the shard in `dir`, creating it if empty: loads the persisted
    /// segments and replays the WAL tail.
    pub fn open(dir: &Path, config: CollectionConfig, options: ShardOptions) -> Result<Shard> {
        config.validate()?;
        std::fs::create_dir_all(dir)
            .map_err(|e| ShardError::io(format!("create {}", dir.display()), e))?;
        let manifest = match persist::read_manifest(dir)? {
            Some(m) => {
                if m.config.dimension != config.dimension || m.config.distance != config.distance {
                    return Err(ShardError::Invalid(ValidationError::InvalidConfig {
                        reason: format!(
                            "shard at {} holds {}-d {:?} vectors, not {}-d {:?}",
                            dir.display(),
                            m.config.dimension,
                            m.config.distance,
                            config.dimension,
                            config.distance
                        ),
                    }));
                }
                m
            }
            None => {
                let m = persist::new_manifest(&config);
                persist::write_manifest(dir, &m)?;
                m
            }
        };
        persist::remove_unreferenced(dir, &manifest)?;
        let mut segments = Vec::new();
        for entry in &manifest.segments {
            segments.push(persist::load_segment(dir, entry, &manifest)?);
        }
        let mut points = BTreeMap::new();
        for seg in &segments {
            for off in seg.alive.iter_ones() {
                points.insert(
                    seg.ids[off],
                    Loc {
                        seg: seg.id,
                        off: off as u32,
                    },
                );
            }
        }
        let next_id = manifest.next_segment_id;
        let replay_base = SeqNo(manifest.replay_from.0.saturating_sub(1));
        segments.push(Segment::new_growing(
            next_id,
            config.dimension,
            config.distance,
            replay_base,
        )?);
        let mut state = State::new(
            segments,
            points,
            manifest.seq,
            manifest.last_term,
            next_id + 1,
        );
        state.payload_indexes = config.payload_indexes.clone();
        let (wal, records) = Wal::open(&dir.join("wal"), options.wal.clone())?;
        let mut replayed = 0;
        for rec in records.iter().filter(|r| r.seq >= manifest.replay_from) {
            state.apply(&config, rec)?;
            replayed += 1;
            if state.growing_mut().len() >= options.max_segment_points {
                state.freeze_growing(config.distance, rec.seq)?;
            }
        }
        if wal.last_seq() < manifest.seq {
            return Err(ShardError::Corrupt(format!(
                "WAL ends at seq {} but the checkpoint is at {}",
                wal.last_seq(),
                manifest.seq
            )));
        }
        let term = state.last_term.0;
        info!(dir = %dir.display(), checkpoint = %manifest.seq, replayed, applied = %state.applied,
              points = state.points.len(), "shard opened");
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            config,
            options,
            wal,
            write_lock: Mutex::new(()),
            state: RwLock::new(state),
            optimize_lock: Mutex::new(()),
            activity: AtomicU8::new(0),
            last_error: Mutex::new(None),
            term: AtomicU64::new(term),
            closing: AtomicBool::new(false),
            last_write: Mutex::new(Instant::now()),
            wal_pins: Mutex::new(BTreeMap::new()),
            next_pin: AtomicU64::new(1),
        });
        let (wake, worker) = if inner.options.background {
            let (tx, rx) = mpsc::channel();
            let weak = Arc::downgrade(&inner);
            let handle = std::thread::Builder::new()
                .name("shard-optimizer".into())
                .spawn(move || optimizer::worker(weak, rx))
                .map_err(|e| ShardError::io("spawn optimizer thread", e))?;
            let _ = tx.send(());
            (Some(tx), Some(handle))
        } else {
            (None, None)
        };
        Ok(Shard {
            inner,
            wake: Mutex::new(wake),
            worker: Mutex::new(worker),
        })
    }

    pub fn config(&self) -> &CollectionConfig {
        &self.inner.config
    }

    pub fn payload_indexes(&self) -> protocol::PayloadIndexes {
        self.inner.state.read().payload_indexes.clone()
    }

    /// Adopts the collection's declared payload indexes (from a newer
    /// cluster map); segments build them on their next filtered read.
    pub fn set_payload_indexes(&self, indexes: &protocol::PayloadIndexes) {
        if self.inner.state.read().payload_indexes == *indexes {
            return;
        }
        self.inner.state.write().payload_indexes = indexes.clone();
    }

    /// Highest sequence number applied (and logged).
    pub fn applied_seq(&self) -> SeqNo {
        self.inner.state.read().applied
    }

    /// Term of the last applied operation.
    pub fn last_term(&self) -> Term {
        self.inner.state.read().last_term
    }

    /// Term of the operation at `seq` while the WAL still has it (`Term(0)`
    /// for seq 0, before any operation).
    pub fn term_at(&self, seq: SeqNo) -> Result<Option<Term>> {
        if seq == SeqNo(0) {
            return Ok(Some(Term(0)));
        }
        {
            let state = self.inner.state.read();
            if seq == state.applied {
                return Ok(Some(state.last_term));
            }
            if seq > state.applied {
                return Ok(None);
            }
        }
        self.inner.wal.term_at(seq)
    }

    pub fn term(&self) -> Term {
        Term(self.inner.term.load(Ordering::SeqCst))
    }

    /// Sets the term stamped on operations this shard orders (the
    /// replication layer sets it from the meta-service).
    pub fn set_term(&self, term: Term) {
        self.inner.term.fetch_max(term.0, Ordering::SeqCst);
    }

    /// Orders, logs, applies and (per the WAL's sync mode) makes durable one
    /// client operation under the shard's current term (single-writer use:
    /// a replicated primary uses [`Shard::apply_in_term`]).
    pub fn apply(&self, op: Operation) -> Result<SeqNo> {
        self.apply_in_term(op, self.term())
    }

    /// Like [`Shard::apply`] for a write authorised under `term`. Refused
    /// with [`ShardError::StaleTerm`] when the shard's term has moved past
    /// it (a newer primary's `Replicate` arrived meanwhile): logging it under
    /// the newer term would give it the identity of the new primary's
    /// operation at the same sequence number. Returns the sequence number
    /// once the operation may be acknowledged. On error nothing was applied.
    pub fn apply_in_term(&self, op: Operation, term: Term) -> Result<SeqNo> {
        op.validate(self.inner.config.dimension)?;
        let seq = {
            let _order = self.inner.write_lock.lock();
            let current = self.term();
            if current > term {
                return Err(ShardError::StaleTerm {
                    authorised: term,
                    current,
                });
            }
            self.set_term(term);
            let op = match op {
                Operation::DeleteByFilter { filter } => Operation::Delete {
                    ids: self.inner.state.read().matching_ids(&filter),
                },
                op => op,
            };
            let seq = self.inner.wal.last_seq().next();
            self.log_and_apply(Arc::new(SequencedOperation { seq, term, op }))?;
            seq
        };
        self.inner.wal.sync_to(seq)?;
        Ok(seq)
    }

    /// Applies an operation ordered by another replica (the primary). An
    /// operation already applied is acknowledged again without effect; one
    /// that skips ahead is refused (the caller must catch up first).
    pub fn apply_sequenced(&self, sop: SequencedOperation) -> Result<()> {
        self.apply_sequenced_batch(vec![sop]).map(|_| ())
    }

    /// Applies consecutive operations ordered by the primary, then makes
    /// them durable with one flush; returns the applied sequence number.
    /// Operations already held are skipped, after checking that the one
    /// held has the same term (else [`ShardError::Diverged`]: this replica
    /// logged another primary's operation under that number and needs a
    /// snapshot). A gap before the first new operation is refused.
    pub fn apply_sequenced_batch(&self, ops: Vec<SequencedOperation>) -> Result<SeqNo> {
        for sop in &ops {
            sop.op.validate(self.inner.config.dimension)?;
        }
        let mut durable_to = SeqNo(0);
        {
            let _order = self.inner.write_lock.lock();
            for sop in ops {
                let last = self.inner.wal.last_seq();
                if sop.seq <= last {
                    if let Some(ours) = self.inner.wal.term_at(sop.seq)? {
                        if ours != sop.term {
                            return Err(ShardError::Diverged {
                                seq: sop.seq,
                                ours,
                                theirs: sop.term,
                            });
                        }
                    }
                    durable_to = durable_to.max(sop.seq);
                    continue;
                }
                if sop.seq != last.next() {
                    return Err(ShardError::Corrupt(format!(
                        "operation {} does not follow {}; catch up first",
                        sop.seq, last
                    )));
                }
                self.set_term(sop.term);
                durable_to = sop.seq;
                self.log_and_apply(Arc::new(sop))?;
            }
        }
        // One flush for the whole batch: the replica acknowledges only
        // what is durable, and what it held already may still be in flight
        // to disk from a concurrent request.
        self.inner.wal.sync_to(durable_to)?;
        Ok(self.applied_seq())
    }

    fn log_and_apply(&self, sop: Arc<SequencedOperation>) -> Result<()> {
        self.inner.wal.append_shared(sop.clone())?;
        *self.inner.last_write.lock() = Instant::now();
        let mut state = self.inner.state.write();
        state.apply(&self.inner.config, &sop)?;
        let full = state.growing_mut().len() >= self.inner.options.max_segment_points
            || self.inner.wal.size_bytes() >= self.inner.options.flush_wal_bytes;
        if full && !state.growing_mut().is_empty() {
            state.freeze_growing(self.inner.config.distance, sop.seq)?;
            drop(state);
            self.wake();
        }
        Ok(())
    }

    fn wake(&self) {
        if let Some(tx) = &*self.wake.lock() {
            let _ = tx.send(());
        }
    }

    /// Operations after `seq`, from the WAL; [`ShardError::WalTruncated`]
    /// when the WAL no longer reaches back that far (use a snapshot).
    pub fn operations_since(&self, seq: SeqNo) -> Result<Vec<SequencedOperation>> {
        self.inner.wal.read_from(seq.next())
    }

    /// The next operations after `seq` for replication, bounded in count
    /// and encoded bytes (see [`crate::wal::Wal::read_batch`]): shared with
    /// the WAL's in-memory tail, or read from disk without decoding more
    /// than is returned. Blocking (may read a file).
    pub fn operations_after(
        &self,
        seq: SeqNo,
        max_ops: usize,
        max_bytes: usize,
    ) -> Result<Vec<Arc<SequencedOperation>>> {
        self.inner.wal.read_batch(seq.next(), max_ops, max_bytes)
    }

    /// Keeps every WAL record from `from` on until the pin is advanced or
    /// dropped: a replica fed a snapshot taken at S0 must then get the
    /// operations after S0 from the WAL; if a checkpoint truncated them
    /// meanwhile, it would need another snapshot, and under steady writes
    /// it never catches up.
    pub fn pin_wal(&self, from: SeqNo) -> WalPin {
        let id = self.inner.next_pin.fetch_add(1, Ordering::SeqCst);
        self.inner.wal_pins.lock().insert(id, from);
        WalPin {
            inner: Arc::downgrade(&self.inner),
            id,
        }
    }

    /// Whether the WAL still holds every operation after `seq` (else a
    /// replica at `seq` needs a snapshot).
    pub fn has_operations_after(&self, seq: SeqNo) -> bool {
        self.inner.wal.oldest_seq() <= seq.next()
    }

    /// Indexes frozen segments, compacts, checkpoints: one round of what the
    /// background worker does, for tests that turn the worker off. Returns
    /// whether there was anything to do.
    #[cfg(any(test, feature = "testsuite"))]
    pub fn run_background_once(&self) -> Result<bool> {
        optimizer::run_once(&self.inner)
    }

    /// Merges every segment, the growing one included, into one sealed ANN
    /// segment without tombstones (what the engine-vs-FAISS benchmark runs
    /// after its bulk load). No route exposes it, so only test and bench
    /// builds have it.
    #[cfg(any(test, feature = "testsuite"))]
    pub fn optimize(&self) -> Result<()> {
        optimizer::optimize_all(&self.inner)
    }

    /// Segments as (points, live points, index kind), oldest first.
    pub fn segment_info(&self) -> Vec<(usize, usize, AnnKind)> {
        self.inner
            .state
            .read()
            .segments
            .iter()
            .map(|s| (s.len(), s.live(), s.index.kind()))
            .collect()
    }
}

impl Shard {
    /// Tells background work to stop at its next check and returns at once
    /// (the first step of a node's shutdown, so an index build does not
    /// run on while requests drain); [`Shard::close`] then joins it.
    /// Reads and writes are unaffected.
    pub fn stop_background(&self) {
        self.inner.closing.store(true, Ordering::SeqCst);
    }

    /// Stops background work at its next check (an index build or merge in
    /// progress is abandoned; the frozen segments stay in the WAL's replay
    /// range and are indexed again after a restart), joins the worker
    /// thread and syncs the WAL. Within a second or so even mid-build.
    /// Idempotent; dropping the shard does the same.
    pub fn close(&self) -> Result<()> {
        self.inner.closing.store(true, Ordering::SeqCst);
        self.wake.lock().take();
        let worker = self.worker.lock().take();
        if let Some(w) = worker {
            if w.join().is_err() {
                tracing::error!(dir = %self.inner.dir.display(), "shard optimizer thread panicked");
            }
        }
        // Wait for a caller-driven optimisation (`optimize`) to notice too.
        drop(self.inner.optimize_lock.lock());
        let _order = self.inner.write_lock.lock();
        let applied = self.inner.state.read().applied;
        self.inner.wal.sync_to(applied)
    }

    /// Whether the WAL refuses writes after a failed write or fsync: the
    /// shard must be reopened (which cuts a torn tail) to take writes again.
    pub fn is_poisoned(&self) -> bool {
        self.inner.wal.is_poisoned()
    }

    /// Whether the disk takes writes again: writes a small file next to
    /// the shard's data, fsyncs it and removes it. A poisoned shard is
    /// reopened only after this succeeds.
    pub fn probe_disk(&self) -> Result<()> {
        use std::io::Write;
        let path = self.inner.dir.join("fsync-probe");
        let result = (|| {
            let mut f = std::fs::File::create(&path)?;
            f.write_all(&[0u8; 4096])?;
            f.sync_all()?;
            std::fs::remove_file(&path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        result.map_err(|e| ShardError::io(format!("probe {}", path.display()), e))
    }

    /// Whether [`Shard::close`] (or [`Shard::stop_background`]) ran.
    pub fn is_closed(&self) -> bool {
        self.inner.closing.load(Ordering::SeqCst)
    }
}

impl Drop for Shard {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(dir = %self.inner.dir.display(), error = %e, "closing shard failed");
        }
    }
}

/// A hold on the WAL from a sequence number on (see [`Shard::pin_wal`]);
/// released on drop.
pub struct WalPin {
    inner: std::sync::Weak<Inner>,
    id: u64,
}

impl WalPin {
    /// Records before `from` may go now.
    pub fn advance(&self, from: SeqNo) {
        if let Some(inner) = self.inner.upgrade() {
            if let Some(p) = inner.wal_pins.lock().get_mut(&self.id) {
                *p = (*p).max(from);
            }
        }
    }
}

impl Drop for WalPin {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.wal_pins.lock().remove(&self.id);
        }
    }
}

impl Inner {
    /// The lowest sequence number a pin keeps, if any.
    fn lowest_pin(&self) -> Option<SeqNo> {
        self.wal_pins.lock().values().min().copied()
    }

    fn ann_kind(&self) -> AnnKind {
        ann_kind(&self.config)
    }

    fn default_params(&self) -> AnnParams {
        AnnParams {
            ef_search: self.config.hnsw.ef_search,
            nprobe: match self.config.index {
                IndexKind::Ivf { nprobe, .. } => nprobe,
                IndexKind::Hnsw => 1,
            },
        }
    }
}

/// The index a sealed segment of this collection gets.
fn ann_kind(config: &CollectionConfig) -> AnnKind {
    match config.index {
        IndexKind::Hnsw => AnnKind::Hnsw {
            m: config.hnsw.m,
            ef_construct: config.hnsw.ef_construct,
        },
        IndexKind::Ivf { nlist, .. } => AnnKind::Ivf { nlist },
    }
}
