//! Building a replica from another replica's snapshot: the catch-up path
//! when the primary's WAL no longer reaches back far enough, or when a
//! replica's history diverged from the primary's after a failover.

use std::path::Path;

use protocol::{CollectionConfig, SeqNo, Term};

use super::persist::{self, Manifest, SegmentEntry};
use super::{ann_kind, Shard, ShardOptions, ShardSnapshot};
use crate::ann::AnnIndex;
use crate::error::{IoContext, Result};
use crate::segment::{Bitmap, Segment, SegmentState};
use crate::wal::Wal;

impl Shard {
    /// Replaces whatever is in `dir` with the content of `snapshot`, as one
    /// sealed segment at the snapshot's sequence number and `last_term`,
    /// and opens it. The WAL continues at `snapshot.seq + 1`.
    pub fn create_from_snapshot(
        dir: &Path,
        config: CollectionConfig,
        options: ShardOptions,
        snapshot: &ShardSnapshot,
        last_term: Term,
    ) -> Result<Shard> {
        config.validate()?;
        let dim = config.dimension;
        for p in &snapshot.points {
            p.point.validate(dim)?;
        }
        if dir.exists() {
            std::fs::remove_dir_all(dir).ctx(|| format!("clear {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).ctx(|| format!("create {}", dir.display()))?;
        let n = snapshot.points.len();
        let mut segments = Vec::new();
        if n > 0 {
            let mut ids = Vec::with_capacity(n);
            let mut vectors = Vec::with_capacity(n * dim);
            let mut versions = Vec::with_capacity(n);
            let mut payloads = Vec::with_capacity(n);
            // Snapshot vectors are stored vectors (already normalised for
            // cosine); normalising again would change their low bits.
            for p in &snapshot.points {
                ids.push(p.point.id);
                vectors.extend_from_slice(&p.point.vector);
                versions.push(p.version);
                payloads.push(p.point.payload.clone());
            }
            let index = AnnIndex::build(
                ann_kind(&config),
                dim,
                config.distance,
                &vectors,
                config.hnsw.ef_search,
            )?;
            persist::write_immutable(dir, 1, &ids, &vectors, &index)?;
            let seg = Segment {
                id: 1,
                dim,
                state: SegmentState::Sealed,
                created_after: SeqNo(0),
                ids,
                versions,
                vectors,
                payloads,
                alive: Bitmap::with_len(n, true),
                index,
            };
            persist::write_state(dir, &seg, snapshot.seq)?;
            segments.push(SegmentEntry {
                id: 1,
                points: n,
                kind: seg.index.kind(),
            });
        }
        Wal::init_empty(&dir.join("wal"), snapshot.seq.next())?;
        let manifest = Manifest {
            format: 1,
            config: config.clone(),
            seq: snapshot.seq,
            last_term,
            replay_from: snapshot.seq.next(),
            next_segment_id: 2,
            segments,
        };
        persist::write_manifest(dir, &manifest)?;
        Shard::open(dir, config, options)
    }
}
