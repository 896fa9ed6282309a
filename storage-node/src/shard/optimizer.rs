//! Background work on a shard: index frozen segments, compact segments
//! with many tombstones, merge small ones, checkpoint and truncate the WAL.
//! Searches and writes go on meanwhile: indexes are built from a copy of
//! the vectors outside every lock, and swapped in under a short one.
//!
//! Closing the shard stops this work at once: the worker checks the
//! `closing` flag between steps and index builds check it between chunks
//! of points. Work given up is lost, not half-done: frozen segments and
//! merge sources stay in the manifest (and the WAL's replay range) until a
//! checkpoint after a finished build, so a restart does it again.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Weak;
use std::time::{Duration, Instant};

use protocol::{PointId, SeqNo};
use tracing::{error, info};

use super::activity::{Activity, Busy};
use super::persist::{self, Manifest, SegmentEntry};
use super::state::Loc;
use super::Inner;
use crate::ann::{AnnIndex, AnnKind};
use crate::error::{Result, ShardError};
use crate::segment::{Bitmap, Segment, SegmentState};

/// How much nicer than the rest of the process the optimizer threads run
/// (and the OpenMP workers FAISS starts from them, which inherit it).
const BACKGROUND_NICE: i32 = 10;

/// Lowers this thread's CPU priority. On two saturated cores an index
/// build must not delay the heartbeat that renews the node's write lease,
/// or the writes and searches clients wait on: the meta-service would
/// depose a healthy primary (issue 14). On Linux the nice value is per
/// thread, so this leaves every other thread of the process as it is.
/// Relative to the thread's nice value, not absolute: in a process that
/// already runs at nice 19 an absolute 10 would *raise* the priority
/// (root may), which is what happened under `nice -n 19`.
fn yield_to_foreground() {
    // SAFETY: plain system calls on the calling thread, no pointers.
    let changed = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        // -1 is a valid nice value: errno tells a failure apart.
        *libc::__errno_location() = 0;
        let current = libc::getpriority(libc::PRIO_PROCESS, tid);
        if current == -1 && *libc::__errno_location() != 0 {
            -1
        } else {
            libc::setpriority(libc::PRIO_PROCESS, tid, (current + BACKGROUND_NICE).min(19))
        }
    };
    if changed != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "could not lower the optimizer thread's priority"
        );
    }
}

pub(super) fn worker(shard: Weak<Inner>, wake: Receiver<()>) {
    yield_to_foreground();
    loop {
        match wake.recv_timeout(Duration::from_millis(500)) {
            Ok(()) => {}
            Err(RecvTimeoutError::Timeout) => {
                let Some(inner) = shard.upgrade() else { return };
                match seal_if_idle(&inner) {
                    Ok(true) => {}
                    // Index work left by a failed round is retried here
                    // too, not only at the next freeze's wake-up.
                    Ok(false)
                        if first_frozen(&inner).is_some()
                            || next_index_rewrite(&inner).is_some()
                            || next_merge(&inner).is_some() => {}
                    Ok(false) => continue,
                    Err(e) => {
                        error!(dir = %inner.dir.display(), error = %e, "idle seal failed");
                        *inner.last_error.lock() = Some(format!("idle seal: {e}"));
                        continue;
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
        loop {
            let Some(inner) = shard.upgrade() else { return };
            if inner.closing.load(Ordering::SeqCst) {
                return;
            }
            let result = run_once(&inner);
            if result.is_ok() {
                // A round that worked (or found nothing left to do): the
                // work that failed before is done or gone.
                inner.last_error.lock().take();
            }
            match result {
                Ok(true) => continue,
                Ok(false) => break,
                Err(ShardError::Closing) => {
                    info!(dir = %inner.dir.display(), "shard closing: background work stopped; it resumes after a restart");
                    return;
                }
                Err(e) => {
                    error!(dir = %inner.dir.display(), error = %e, "shard background work failed; retrying later");
                    *inner.last_error.lock() = Some(e.to_string());
                    drop(inner);
                    std::thread::sleep(Duration::from_secs(1));
                    break;
                }
            }
        }
    }
}

/// Freezes the growing segment when it has been idle long enough and is
/// worth an index; `Ok(true)` when it did.
fn seal_if_idle(inner: &Inner) -> Result<bool> {
    if inner.last_write.lock().elapsed() < inner.options.idle_seal_after {
        return Ok(false);
    }
    let _order = inner.write_lock.lock();
    let mut state = inner.state.write();
    if state.growing_mut().len() < inner.options.idle_seal_min_points.max(1) {
        return Ok(false);
    }
    let last = state.applied;
    state.freeze_growing(inner.config.distance, last)?;
    info!(dir = %inner.dir.display(), "idle growing segment frozen for indexing");
    Ok(true)
}

/// One unit of background work; `Ok(false)` when there is none.
pub(super) fn run_once(inner: &Inner) -> Result<bool> {
    let _one_at_a_time = inner.optimize_lock.lock();
    if inner.closing.load(Ordering::SeqCst) {
        return Ok(false);
    }
    if let Some(id) = first_frozen(inner) {
        index_frozen(inner, id)?;
        return Ok(true);
    }
    if let Some(ids) = next_index_rewrite(inner) {
        merge(inner, &ids)?;
        return Ok(true);
    }
    match next_merge(inner) {
        Some(ids) => {
            merge(inner, &ids)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The next merge to run, if any. Size-based merges wait until the shard
/// is idle (no write for `idle_seal_after`): during an ingest they would
/// rebuild ever larger graphs over and over.
fn next_merge(inner: &Inner) -> Option<Vec<u64>> {
    let idle = inner.last_write.lock().elapsed() >= inner.options.idle_seal_after;
    let state = inner.state.read();
    plan_merge(&summaries(&state.segments), merge_policy(inner, idle))
}

/// Whether a merge will run once the shard is idle (what
/// [`next_merge`] then picks): work still due, for the shard's status.
pub(super) fn merge_due(inner: &Inner, segments: &[Segment]) -> bool {
    plan_merge(&summaries(segments), merge_policy(inner, true)).is_some()
}

fn merge_policy(inner: &Inner, idle: bool) -> MergePolicy {
    MergePolicy {
        max_sealed: inner.options.max_sealed_segments,
        merge_below_points: if idle {
            inner.options.merge_below_points
        } else {
            0
        },
        max_tombstone_ratio: inner.options.max_tombstone_ratio,
    }
}

#[cfg(any(test, feature = "testsuite"))]
pub(super) fn optimize_all(inner: &Inner) -> Result<()> {
    let _one_at_a_time = inner.optimize_lock.lock();
    {
        let _order = inner.write_lock.lock();
        let mut state = inner.state.write();
        let last = state.applied;
        state.freeze_growing(inner.config.distance, last)?;
    }
    let ids: Vec<u64> = {
        let state = inner.state.read();
        state
            .segments
            .iter()
            .filter(|s| s.state != SegmentState::Growing)
            .map(|s| s.id)
            .collect()
    };
    if ids.is_empty() {
        return Ok(());
    }
    merge(inner, &ids)
}

/// Sealed segments that still have only an exact index (written by a
/// snapshot install, `staging.rs`), to be rewritten with the collection's
/// ANN index: at once, not only when idle, since until then every search
/// scans them.
fn next_index_rewrite(inner: &Inner) -> Option<Vec<u64>> {
    let wanted = inner.ann_kind();
    if wanted == AnnKind::Flat {
        return None;
    }
    let state = inner.state.read();
    let unindexed: Vec<(u64, usize)> = state
        .segments
        .iter()
        .filter(|s| s.state == SegmentState::Sealed && s.index.kind() == AnnKind::Flat)
        .map(|s| (s.id, s.live()))
        .collect();
    let limit = inner
        .options
        .merge_below_points
        .max(inner.options.max_segment_points);
    plan_index_rewrite(&unindexed, limit)
}

/// The unindexed segments (id, live points) to rewrite together: the
/// smallest first, as many as fit under `limit` points, at least one.
pub(crate) fn plan_index_rewrite(unindexed: &[(u64, usize)], limit: usize) -> Option<Vec<u64>> {
    let mut by_size = unindexed.to_vec();
    by_size.sort_by_key(|s| (s.1, s.0));
    let mut total = 0;
    let mut out = Vec::new();
    for (id, live) in by_size {
        if !out.is_empty() && total + live > limit {
            break;
        }
        total += live;
        out.push(id);
    }
    (!out.is_empty()).then_some(out)
}

fn first_frozen(inner: &Inner) -> Option<u64> {
    let state = inner.state.read();
    state
        .segments
        .iter()
        .find(|s| s.state == SegmentState::Frozen)
        .map(|s| s.id)
}

/// Builds the ANN index of a frozen segment, persists it and swaps it in.
fn index_frozen(inner: &Inner, id: u64) -> Result<()> {
    let (ids, vectors) = {
        let state = inner.state.read();
        let Some(seg) = state.segment(id) else {
            return Ok(());
        };
        (seg.ids.clone(), seg.vectors.clone())
    };
    let started = Instant::now();
    info!(segment = id, points = ids.len(), "indexing segment");
    let index = build_and_persist(inner, id, &ids, &vectors)?;
    {
        let mut state = inner.state.write();
        if let Some(seg) = state.segment_mut(id) {
            seg.index = index;
            seg.state = SegmentState::Sealed;
        }
    }
    info!(
        segment = id,
        points = ids.len(),
        secs = started.elapsed().as_secs_f32(),
        "segment indexed"
    );
    checkpoint(inner)
}

/// Rewrites the given segments as one, without their tombstones. Points
/// deleted or replaced while the new index was being built are found
/// dead at swap time and stay out.
fn merge(inner: &Inner, ids: &[u64]) -> Result<()> {
    let started = Instant::now();
    let (sources, vectors, new_id) = {
        let mut state = inner.state.write();
        let new_id = state.next_segment_id;
        state.next_segment_id += 1;
        let mut sources: Vec<(PointId, Loc)> = Vec::new();
        let mut vectors = Vec::new();
        for seg in state.segments.iter().filter(|s| ids.contains(&s.id)) {
            for off in seg.alive.iter_ones() {
                sources.push((
                    seg.ids[off],
                    Loc {
                        seg: seg.id,
                        off: off as u32,
                    },
                ));
                vectors.extend_from_slice(seg.vector(off));
            }
        }
        (sources, vectors, new_id)
    };
    let point_ids: Vec<PointId> = sources.iter().map(|(id, _)| *id).collect();
    let index = if sources.is_empty() {
        None
    } else {
        Some(build_and_persist(inner, new_id, &point_ids, &vectors)?)
    };
    {
        let _order = inner.write_lock.lock();
        let mut state = inner.state.write();
        if let Some(index) = index {
            let n = sources.len();
            let mut seg = Segment {
                id: new_id,
                dim: inner.config.dimension,
                state: SegmentState::Sealed,
                created_after: SeqNo(0),
                ids: point_ids,
                versions: vec![0; n],
                vectors,
                payloads: vec![None; n],
                alive: Bitmap::with_len(n, false),
                index,
                payload_index: Default::default(),
            };
            for (i, (id, loc)) in sources.iter().enumerate() {
                if state.points.get(id) != Some(loc) {
                    continue;
                }
                if let Some(old) = state.segment(loc.seg) {
                    seg.versions[i] = old.versions[loc.off as usize];
                    seg.payloads[i] = old.payloads[loc.off as usize].clone();
                    seg.alive.set(i, true);
                }
            }
            for i in seg.alive.iter_ones() {
                state.points.insert(
                    seg.ids[i],
                    Loc {
                        seg: new_id,
                        off: i as u32,
                    },
                );
            }
            let pos = state
                .segments
                .iter()
                .position(|s| s.state != SegmentState::Sealed)
                .unwrap_or(0);
            state.segments.insert(pos, seg);
        }
        state.segments.retain(|s| !ids.contains(&s.id));
    }
    info!(sources = ?ids, into = new_id, points = sources.len(), secs = started.elapsed().as_secs_f32(), "segments merged");
    checkpoint(inner)
}

/// Builds the collection's ANN index over `vectors` and writes the
/// segment's immutable files, within the node's build budget: it first
/// waits for a slot, and builds with the budget's share of the cores.
/// [`ShardError::Closing`] when the shard closed meanwhile.
fn build_and_persist(inner: &Inner, id: u64, ids: &[PointId], vectors: &[f32]) -> Result<AnnIndex> {
    let closing = || inner.closing.load(Ordering::SeqCst);
    let busy = Busy::new(&inner.activity, Activity::Waiting);
    let budget = &inner.options.build_budget;
    let _slot = budget.acquire(&closing).ok_or(ShardError::Closing)?;
    busy.set(Activity::Running);
    crate::ann::set_faiss_threads(budget.threads_per_build());
    let index = AnnIndex::build_until(
        inner.ann_kind(),
        inner.config.dimension,
        inner.config.distance,
        vectors,
        inner.config.hnsw.ef_search,
        &closing,
    )?
    .ok_or(ShardError::Closing)?;
    if closing() {
        return Err(ShardError::Closing);
    }
    persist::write_immutable(&inner.dir, id, ids, vectors, &index)?;
    Ok(index)
}

/// Persists every sealed segment's state at the current sequence number,
/// commits a new manifest, then drops what it makes unnecessary (old
/// state files, merged segments, WAL files before the replay point).
pub(super) fn checkpoint(inner: &Inner) -> Result<()> {
    let manifest = {
        let _order = inner.write_lock.lock();
        let state = inner.state.read();
        let seq = state.applied;
        inner.wal.sync_to(seq)?;
        let mut entries = Vec::new();
        for seg in state
            .segments
            .iter()
            .filter(|s| s.state == SegmentState::Sealed)
        {
            persist::write_state(&inner.dir, seg, seq)?;
            entries.push(SegmentEntry {
                id: seg.id,
                points: seg.len(),
                kind: seg.index.kind(),
            });
        }
        let oldest_unpersisted = state
            .segments
            .iter()
            .filter(|s| s.state != SegmentState::Sealed)
            .map(|s| s.created_after)
            .min()
            .unwrap_or(seq);
        let manifest = Manifest {
            format: 1,
            config: inner.config.clone(),
            seq,
            last_term: state.last_term,
            replay_from: oldest_unpersisted.next(),
            next_segment_id: state.next_segment_id,
            segments: entries,
        };
        persist::write_manifest(&inner.dir, &manifest)?;
        manifest
    };
    persist::remove_unreferenced(&inner.dir, &manifest)?;
    let keep_from = inner
        .lowest_pin()
        .map_or(manifest.replay_from, |p| p.min(manifest.replay_from));
    inner.wal.truncate_before(keep_from)?;
    info!(seq = %manifest.seq, replay_from = %manifest.replay_from, segments = manifest.segments.len(), "checkpoint");
    Ok(())
}

/// (id, points, live points, state) of each segment.
fn summaries(segments: &[Segment]) -> Vec<(u64, usize, usize, SegmentState)> {
    segments
        .iter()
        .map(|s| (s.id, s.len(), s.live(), s.state))
        .collect()
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct MergePolicy {
    pub max_sealed: usize,
    pub merge_below_points: usize,
    pub max_tombstone_ratio: f64,
}

/// Which sealed segments to rewrite next: one whose tombstones passed the
/// ratio; else the two smallest when there are too many sealed segments;
/// else the smallest ones, as many as stay under `merge_below_points`
/// together (at least two), in one rewrite.
pub(crate) fn plan_merge(
    segments: &[(u64, usize, usize, SegmentState)],
    policy: MergePolicy,
) -> Option<Vec<u64>> {
    let sealed: Vec<_> = segments
        .iter()
        .filter(|s| s.3 == SegmentState::Sealed)
        .collect();
    if let Some(s) = sealed
        .iter()
        .find(|s| s.1 > 0 && (s.1 - s.2) as f64 / s.1 as f64 > policy.max_tombstone_ratio)
    {
        return Some(vec![s.0]);
    }
    if sealed.len() < 2 {
        return None;
    }
    let mut by_size = sealed.clone();
    by_size.sort_by_key(|s| (s.2, s.0));
    if sealed.len() > policy.max_sealed.max(1) {
        return Some(vec![by_size[0].0, by_size[1].0]);
    }
    let mut total = 0;
    let fitting: Vec<u64> = by_size
        .iter()
        .take_while(|s| {
            total += s.2;
            total <= policy.merge_below_points
        })
        .map(|s| s.0)
        .collect();
    (fitting.len() >= 2).then_some(fitting)
}

#[cfg(test)]
mod tests {
    use super::*;
    use SegmentState::*;

    fn policy(max_sealed: usize, merge_below_points: usize) -> MergePolicy {
        MergePolicy {
            max_sealed,
            merge_below_points,
            max_tombstone_ratio: 0.2,
        }
    }

    #[test]
    fn unindexed_segments_are_rewritten_smallest_first_up_to_the_limit() {
        assert_eq!(plan_index_rewrite(&[], 100), None);
        let segs = [(1, 50), (2, 30), (3, 40)];
        assert_eq!(plan_index_rewrite(&segs, 100), Some(vec![2, 3]));
        assert_eq!(plan_index_rewrite(&segs, 120), Some(vec![2, 3, 1]));
        // One too large for the limit still goes, alone.
        assert_eq!(plan_index_rewrite(&[(7, 500)], 100), Some(vec![7]));
    }

    #[test]
    fn merge_plan() {
        let p = policy(8, 0);
        assert_eq!(
            plan_merge(&[(1, 100, 100, Sealed), (2, 10, 10, Growing)], p),
            None
        );
        assert_eq!(
            plan_merge(&[(1, 100, 70, Sealed), (2, 100, 100, Sealed)], p),
            Some(vec![1])
        );
        // Tombstones in a frozen or growing segment are not a reason to rewrite.
        assert_eq!(plan_merge(&[(1, 100, 10, Frozen)], p), None);
        let many: Vec<_> = (1..=4)
            .map(|i| (i, 100, 100 - i as usize, Sealed))
            .collect();
        assert_eq!(plan_merge(&many, policy(3, 0)), Some(vec![4, 3]));
    }

    #[test]
    fn small_sealed_segments_merge_until_the_size_limit() {
        let segs = [
            (1, 20_000, 20_000, Sealed),
            (2, 20_000, 19_000, Sealed),
            (3, 17_500, 17_500, Sealed),
            (4, 500, 500, Growing),
        ];
        assert_eq!(plan_merge(&segs, policy(8, 40_000)), Some(vec![3, 2]));
        assert_eq!(plan_merge(&segs, policy(8, 36_000)), None);
        // Everything that fits, in one rewrite.
        assert_eq!(plan_merge(&segs, policy(8, 200_000)), Some(vec![3, 2, 1]));
        // Merged: one segment left, nothing more to do.
        let merged = [(5, 56_500, 56_500, Sealed), (4, 500, 500, Growing)];
        assert_eq!(plan_merge(&merged, policy(8, 200_000)), None);
        // Off with 0.
        assert_eq!(plan_merge(&segs, policy(8, 0)), None);
    }

    fn own_nice() -> i32 {
        // SAFETY: plain system calls on the calling thread.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::getpriority(libc::PRIO_PROCESS, tid)
        }
    }

    #[test]
    fn background_threads_run_below_the_rest_of_the_process() {
        let before = own_nice();
        let background = std::thread::spawn(|| {
            yield_to_foreground();
            // Threads it starts (as OpenMP does) inherit the lower priority.
            std::thread::spawn(own_nice).join().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(background, (before + BACKGROUND_NICE).min(19));
        assert_eq!(own_nice(), before, "only the optimizer thread is lowered");
    }
}
