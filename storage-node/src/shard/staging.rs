//! Building a shard from a snapshot that arrives in chunks, without ever
//! holding the whole shard in memory: points are buffered up to one
//! segment's worth (`max_segment_points`), then written out as a sealed
//! segment with an exact (flat) index; [`SnapshotWriter::finish`] commits
//! the manifest at the snapshot's sequence number and opens the shard.
//!
//! The flat segments are given their ANN index later by the shard's
//! background worker (`optimizer.rs` rewrites unindexed segments), so
//! receiving a snapshot costs disk writes, not index builds, and the
//! replica serves exact (correct, slower) searches meanwhile.
//!
//! Nothing is committed before `finish`: a crash or a new snapshot
//! midway leaves a directory without a manifest, which the next
//! [`SnapshotWriter::create`] clears.

use std::path::{Path, PathBuf};

use protocol::{CollectionConfig, Payload, PointId, SeqNo, Term};

use super::persist::{self, Manifest, SegmentEntry};
use super::{Shard, ShardOptions, SnapshotPoint};
use crate::ann::{AnnIndex, AnnKind};
use crate::error::{IoContext, Result};
use crate::segment::{Bitmap, Segment, SegmentState};
use crate::wal::Wal;

pub struct SnapshotWriter {
    dir: PathBuf,
    config: CollectionConfig,
    options: ShardOptions,
    seq: SeqNo,
    last_term: Term,
    ids: Vec<PointId>,
    vectors: Vec<f32>,
    versions: Vec<u64>,
    payloads: Vec<Option<Payload>>,
    segments: Vec<SegmentEntry>,
    next_segment_id: u64,
    points: u64,
}

impl SnapshotWriter {
    /// Starts a shard in `dir` (emptied first) for a snapshot at `seq`,
    /// whose operation there has term `last_term`.
    pub fn create(
        dir: &Path,
        config: CollectionConfig,
        options: ShardOptions,
        seq: SeqNo,
        last_term: Term,
    ) -> Result<SnapshotWriter> {
        config.validate()?;
        if dir.exists() {
            std::fs::remove_dir_all(dir).ctx(|| format!("clear {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).ctx(|| format!("create {}", dir.display()))?;
        Ok(SnapshotWriter {
            dir: dir.to_path_buf(),
            config,
            options,
            seq,
            last_term,
            ids: Vec::new(),
            vectors: Vec::new(),
            versions: Vec::new(),
            payloads: Vec::new(),
            segments: Vec::new(),
            next_segment_id: 1,
            points: 0,
        })
    }

    pub fn seq(&self) -> SeqNo {
        self.seq
    }

    /// Points received so far.
    pub fn points(&self) -> u64 {
        self.points
    }

    /// Adds points (stored vectors: not normalised again). Ids must not
    /// repeat across calls (snapshot pages come in id order).
    pub fn add(&mut self, points: Vec<SnapshotPoint>) -> Result<()> {
        let dim = self.config.dimension;
        for p in &points {
            p.point.validate(dim)?;
        }
        for p in points {
            self.ids.push(p.point.id);
            self.vectors.extend_from_slice(&p.point.vector);
            self.versions.push(p.version);
            self.payloads.push(p.point.payload);
            self.points += 1;
            if self.ids.len() >= self.options.max_segment_points.max(1) {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Writes the buffered points as one sealed segment.
    fn flush(&mut self) -> Result<()> {
        let n = self.ids.len();
        if n == 0 {
            return Ok(());
        }
        let dim = self.config.dimension;
        let index = AnnIndex::build(
            AnnKind::Flat,
            dim,
            self.config.distance,
            &self.vectors,
            self.config.hnsw.ef_search,
        )?;
        let id = self.next_segment_id;
        self.next_segment_id += 1;
        persist::write_immutable(&self.dir, id, &self.ids, &self.vectors, &index)?;
        let seg = Segment {
            id,
            dim,
            state: SegmentState::Sealed,
            created_after: SeqNo(0),
            ids: std::mem::take(&mut self.ids),
            versions: std::mem::take(&mut self.versions),
            vectors: std::mem::take(&mut self.vectors),
            payloads: std::mem::take(&mut self.payloads),
            alive: Bitmap::with_len(n, true),
            index,
            payload_index: Default::default(),
        };
        persist::write_state(&self.dir, &seg, self.seq)?;
        self.segments.push(SegmentEntry {
            id,
            points: n,
            kind: AnnKind::Flat,
        });
        Ok(())
    }

    /// Writes what is left, commits the manifest at the snapshot's
    /// sequence number (the WAL continues after it) and opens the shard.
    pub fn finish(mut self) -> Result<Shard> {
        self.flush()?;
        Wal::init_empty(&self.dir.join("wal"), self.seq.next())?;
        let manifest = Manifest {
            format: 1,
            config: self.config.clone(),
            seq: self.seq,
            last_term: self.last_term,
            replay_from: self.seq.next(),
            next_segment_id: self.next_segment_id,
            segments: std::mem::take(&mut self.segments),
        };
        persist::write_manifest(&self.dir, &manifest)?;
        Shard::open(&self.dir, self.config, self.options)
    }
}
