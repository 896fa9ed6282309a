//! On-disk layout of a shard and its checkpoints.
//!
//! ```text
//! <shard dir>/
//!   manifest.json              the commit point: which segments, at which seq
//!   wal/                       see `wal.rs`
//!   segments/seg-00000003/
//!     ids.msgpack              immutable once sealed
//!     vectors.f32              immutable, little-endian rows
//!     index.faiss              immutable (FAISS write_index)
//!     state-<seq>.msgpack      versions, payloads, tombstones as of <seq>
//! ```
//!
//! A checkpoint writes every sealed segment's state for the shard's current
//! sequence number, then atomically replaces the manifest (write, fsync,
//! rename, fsync dir). Files the manifest does not name are leftovers of an
//! interrupted checkpoint and are removed on open.

use std::fs;
use std::path::{Path, PathBuf};

use protocol::{codec, CollectionConfig, Payload, PointId, SeqNo, Term};
use serde::{Deserialize, Serialize};

use crate::ann::{AnnIndex, AnnKind};
use crate::error::{IoContext, Result, ShardError};
use crate::segment::{Bitmap, Segment, SegmentState};
use crate::wal::sync_dir;

pub const MANIFEST: &str = "manifest.json";
const FORMAT: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub config: CollectionConfig,
    /// Segment states in this checkpoint reflect every operation up to here.
    pub seq: SeqNo,
    /// Term of the operation at `seq`.
    #[serde(default)]
    pub last_term: Term,
    /// Replay the WAL from here on open (points of unpersisted segments).
    pub replay_from: SeqNo,
    pub next_segment_id: u64,
    pub segments: Vec<SegmentEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SegmentEntry {
    pub id: u64,
    pub points: usize,
    pub kind: AnnKind,
}

#[derive(Serialize, Deserialize)]
struct SegmentStateFile {
    versions: Vec<u64>,
    payloads: Vec<Option<Payload>>,
    alive: Vec<u8>,
}

pub fn segments_dir(shard_dir: &Path) -> PathBuf {
    shard_dir.join("segments")
}

pub fn segment_dir(shard_dir: &Path, id: u64) -> PathBuf {
    segments_dir(shard_dir).join(format!("seg-{id:08}"))
}

fn state_file(seg_dir: &Path, seq: SeqNo) -> PathBuf {
    seg_dir.join(format!("state-{:020}.msgpack", seq.0))
}

pub fn new_manifest(config: &CollectionConfig) -> Manifest {
    Manifest {
        format: FORMAT,
        config: config.clone(),
        seq: SeqNo(0),
        last_term: Term(0),
        replay_from: SeqNo(1),
        next_segment_id: 1,
        segments: Vec::new(),
    }
}

pub fn read_manifest(shard_dir: &Path) -> Result<Option<Manifest>> {
    let path = shard_dir.join(MANIFEST);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ShardError::io(format!("read {}", path.display()), e)),
    };
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| ShardError::Corrupt(format!("{}: {e}", path.display())))?;
    if m.format != FORMAT {
        return Err(ShardError::Corrupt(format!(
            "unknown manifest format {}",
            m.format
        )));
    }
    Ok(Some(m))
}

pub fn write_manifest(shard_dir: &Path, m: &Manifest) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(m)
        .map_err(|e| ShardError::Corrupt(format!("encode manifest: {e}")))?;
    write_atomically(&shard_dir.join(MANIFEST), &bytes)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).ctx(|| format!("write {}", tmp.display()))?;
    fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .ctx(|| format!("fsync {}", tmp.display()))?;
    fs::rename(&tmp, path).ctx(|| format!("rename {}", tmp.display()))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).ctx(|| format!("write {}", path.display()))?;
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .ctx(|| format!("fsync {}", path.display()))
}

/// Writes the parts of a sealed segment that never change again.
pub fn write_immutable(
    shard_dir: &Path,
    id: u64,
    ids: &[PointId],
    vectors: &[f32],
    index: &AnnIndex,
) -> Result<()> {
    let dir = segment_dir(shard_dir, id);
    fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
    let ids = codec::encode(&ids).map_err(|e| ShardError::codec("encode ids", e))?;
    write_synced(&dir.join("ids.msgpack"), &ids)?;
    let vectors: Vec<u8> = vectors.iter().flat_map(|x| x.to_le_bytes()).collect();
    write_synced(&dir.join("vectors.f32"), &vectors)?;
    let index_path = dir.join("index.faiss");
    index.write(&index_path)?;
    fs::File::open(&index_path)
        .and_then(|f| f.sync_all())
        .ctx(|| format!("fsync {}", index_path.display()))?;
    sync_dir(&dir)?;
    sync_dir(&segments_dir(shard_dir))
}

/// Writes a sealed segment's mutable state as of `seq`.
pub fn write_state(shard_dir: &Path, seg: &Segment, seq: SeqNo) -> Result<()> {
    let dir = segment_dir(shard_dir, seg.id);
    let file = SegmentStateFile {
        versions: seg.versions.clone(),
        payloads: seg.payloads.clone(),
        alive: seg.alive.as_bytes().to_vec(),
    };
    let bytes = codec::encode(&file).map_err(|e| ShardError::codec("encode segment state", e))?;
    write_synced(&state_file(&dir, seq), &bytes)
}

pub fn load_segment(shard_dir: &Path, entry: &SegmentEntry, m: &Manifest) -> Result<Segment> {
    let dir = segment_dir(shard_dir, entry.id);
    let dim = m.config.dimension;
    let corrupt = |what: &str| ShardError::Corrupt(format!("segment {}: {what}", entry.id));
    let ids_bytes =
        fs::read(dir.join("ids.msgpack")).ctx(|| format!("read ids of {}", dir.display()))?;
    let ids: Vec<PointId> =
        codec::decode(&ids_bytes).map_err(|e| ShardError::codec("decode ids", e))?;
    let raw =
        fs::read(dir.join("vectors.f32")).ctx(|| format!("read vectors of {}", dir.display()))?;
    if raw.len() != ids.len() * dim * 4 || ids.len() != entry.points {
        return Err(corrupt("vector file size does not match its ids"));
    }
    let vectors: Vec<f32> = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let state_bytes =
        fs::read(state_file(&dir, m.seq)).ctx(|| format!("read state of {}", dir.display()))?;
    let state: SegmentStateFile =
        codec::decode(&state_bytes).map_err(|e| ShardError::codec("decode segment state", e))?;
    let alive = Bitmap::from_bytes(state.alive, ids.len())
        .ok_or_else(|| corrupt("tombstone bitmap size"))?;
    if state.versions.len() != ids.len() || state.payloads.len() != ids.len() {
        return Err(corrupt("state length does not match its ids"));
    }
    let index = AnnIndex::read(
        &dir.join("index.faiss"),
        entry.kind,
        m.config.hnsw.ef_search,
    )?;
    if index.len() != ids.len() {
        return Err(corrupt("index size does not match its ids"));
    }
    Ok(Segment {
        id: entry.id,
        dim,
        state: SegmentState::Sealed,
        created_after: SeqNo(0),
        ids,
        versions: state.versions,
        vectors,
        payloads: state.payloads,
        alive,
        index,
        payload_index: Default::default(),
    })
}

/// Removes segment folders and state files that the manifest does not name.
pub fn remove_unreferenced(shard_dir: &Path, m: &Manifest) -> Result<()> {
    let root = segments_dir(shard_dir);
    if !root.exists() {
        return Ok(());
    }
    let keep: Vec<PathBuf> = m
        .segments
        .iter()
        .map(|s| segment_dir(shard_dir, s.id))
        .collect();
    for entry in fs::read_dir(&root).ctx(|| format!("list {}", root.display()))? {
        let path = entry.ctx(|| format!("list {}", root.display()))?.path();
        if !keep.contains(&path) {
            tracing::info!(path = %path.display(), "removing segment not in the manifest");
            fs::remove_dir_all(&path).ctx(|| format!("remove {}", path.display()))?;
            continue;
        }
        let current = state_file(&path, m.seq);
        for f in fs::read_dir(&path).ctx(|| format!("list {}", path.display()))? {
            let f = f.ctx(|| format!("list {}", path.display()))?.path();
            let is_state = f
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("state-"));
            if is_state && f != current {
                fs::remove_file(&f).ctx(|| format!("remove {}", f.display()))?;
            }
        }
    }
    Ok(())
}
