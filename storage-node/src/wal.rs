//! Write-ahead log: every operation a shard accepts is here before it is
//! acknowledged.
//!
//! The log is a folder of files named by the sequence number of their first
//! record (`00000000000000000042.wal`). A record is framed as
//!
//! ```text
//! +-----------+--------------+---------------------------------------+
//! | len: u32  | crc32c: u32  | msgpack(SequencedOperation), len bytes |
//! +-----------+--------------+---------------------------------------+
//! ```
//!
//! (little endian; the CRC covers the body; encoded and decoded by
//! `protocol::wal_record`, which the fuzz targets reach). Sequence numbers are
//! consecutive. On open, a torn or damaged record at the end of the newest
//! file is cut off with a warning: with fsync-before-ack it can only be a
//! write that was never acknowledged. Damage anywhere else means
//! acknowledged data is gone, and opening fails with [`ShardError::WalCorrupt`].
//!
//! Group commit: writers append under a short lock, then wait in
//! [`Wal::sync_to`]; one `fdatasync` covers every record appended before it
//! started, so concurrent writers share the cost of the flush.
//!
//! Reading back for replication ([`Wal::read_batch`]) never decodes more
//! than it returns: the most recent records stay in memory (a tail bounded
//! in bytes, shared with the caller as `Arc`s), and older ones are read
//! with one positioned read through an index of record offsets kept since
//! open. Only records whose append completed are visible to readers, so a
//! record being written is never mistaken for damage.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use protocol::wal_record::{self, RecordError};
use protocol::{SeqNo, SequencedOperation, Term};
use tracing::{info, warn};

use crate::error::{IoContext, Result, ShardError};

/// Larger records are refused on write and treated as damage on read.
pub use protocol::wal_record::MAX_RECORD_BYTES;

/// When an append is considered durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// `fdatasync` before acknowledging (group commit). Survives power loss.
    #[default]
    Always,
    /// Leave flushing to the OS: survives a process crash, not a power loss.
    Never,
}

#[derive(Clone, Debug)]
pub struct WalOptions {
    pub sync: SyncMode,
    /// A new file is started once the current one is larger than this.
    pub max_file_bytes: u64,
}

/// Encoded bytes of the newest records kept in memory for replication:
/// replicas that lag less than this are served without disk reads (about
/// a hundred 1,000-point 128-d batches).
pub const TAIL_BYTES: usize = 64 << 20;

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            sync: SyncMode::Always,
            max_file_bytes: 64 << 20,
        }
    }
}

pub struct Wal {
    dir: PathBuf,
    options: WalOptions,
    tail_limit: usize,
    writer: Mutex<Writer>,
    sync: Mutex<SyncState>,
    synced: Condvar,
}

struct Writer {
    file: Arc<File>,
    bytes: u64,
    last_seq: SeqNo,
    /// Every file, oldest first; the last is current.
    files: Vec<FileIndex>,
    total_bytes: u64,
    /// The newest records, oldest first, consecutive, ending at `last_seq`.
    tail: VecDeque<TailEntry>,
    tail_bytes: usize,
}

/// Where the records of one file start, so a reader can seek to one.
struct FileIndex {
    first: SeqNo,
    /// Byte offset of each complete record, in sequence order.
    offsets: Vec<u64>,
    /// End of the last complete record.
    end: u64,
}

struct TailEntry {
    op: Arc<SequencedOperation>,
    /// Encoded size (frame included).
    bytes: usize,
}

#[derive(Default)]
struct SyncState {
    synced_to: SeqNo,
    in_progress: bool,
    poisoned: bool,
}

fn file_name(first: SeqNo) -> String {
    format!("{:020}.wal", first.0)
}

impl Wal {
    /// Opens (or creates) the log in `dir` and returns every record it
    /// holds, oldest first, for replay.
    pub fn open(dir: &Path, options: WalOptions) -> Result<(Wal, Vec<SequencedOperation>)> {
        fs::create_dir_all(dir).ctx(|| format!("create WAL dir {}", dir.display()))?;
        let firsts = list_files(dir)?;
        let mut records = Vec::new();
        let mut total_bytes = 0;
        let count = firsts.len();
        let mut files = Vec::with_capacity(count);
        for (i, first) in firsts.iter().enumerate() {
            let path = dir.join(file_name(*first));
            let is_last = i + 1 == count;
            let before = records.len();
            let mut offsets = Vec::new();
            let end = read_file(&path, is_last, &mut records, &mut offsets)?;
            total_bytes += end;
            files.push(FileIndex {
                first: *first,
                offsets,
                end,
            });
            if let Some(r) = records.get(before) {
                if r.seq != *first {
                    return Err(corrupt(
                        &path,
                        0,
                        format!("starts at seq {} not {}", r.seq, first),
                    ));
                }
            }
        }
        for pair in records.windows(2) {
            if pair[1].seq != pair[0].seq.next() {
                return Err(ShardError::Corrupt(format!(
                    "WAL jumps from seq {} to {}",
                    pair[0].seq, pair[1].seq
                )));
            }
        }
        let last_seq = match (records.last(), firsts.last()) {
            (Some(r), _) => r.seq,
            (None, Some(first)) => SeqNo(first.0.saturating_sub(1)),
            (None, None) => SeqNo(0),
        };
        if files.is_empty() {
            files.push(FileIndex {
                first: last_seq.next(),
                offsets: Vec::new(),
                end: 0,
            });
            create_file(dir, last_seq.next())?;
        }
        let current = dir.join(file_name(files.last().map_or(SeqNo(1), |f| f.first)));
        let file = OpenOptions::new()
            .append(true)
            .open(&current)
            .ctx(|| format!("open {}", current.display()))?;
        let bytes = file
            .metadata()
            .ctx(|| format!("stat {}", current.display()))?
            .len();
        info!(dir = %dir.display(), files = files.len(), records = records.len(), %last_seq, "WAL opened");
        let wal = Wal {
            dir: dir.to_path_buf(),
            options,
            tail_limit: TAIL_BYTES,
            writer: Mutex::new(Writer {
                file: Arc::new(file),
                bytes,
                last_seq,
                files,
                total_bytes,
                tail: VecDeque::new(),
                tail_bytes: 0,
            }),
            sync: Mutex::new(SyncState {
                synced_to: last_seq,
                ..SyncState::default()
            }),
            synced: Condvar::new(),
        };
        Ok((wal, records))
    }

    /// Keeps at most `bytes` of records in memory (tests of the disk path).
    #[cfg(test)]
    fn with_tail_limit(mut self, bytes: usize) -> Self {
        self.tail_limit = bytes;
        self
    }

    /// Prepares an empty log whose first record will be `next` (a replica
    /// installed from a snapshot continues the primary's numbering).
    pub fn init_empty(dir: &Path, next: SeqNo) -> Result<()> {
        fs::create_dir_all(dir).ctx(|| format!("create WAL dir {}", dir.display()))?;
        if !list_files(dir)?.is_empty() {
            return Err(ShardError::Corrupt(format!(
                "WAL dir {} is not empty",
                dir.display()
            )));
        }
        create_file(dir, next).map(|_| ())
    }

    /// Appends one record; `op.seq` must follow the last one. The record is
    /// written to the OS but not yet durable: call [`Wal::sync_to`].
    pub fn append(&self, op: &SequencedOperation) -> Result<()> {
        self.append_shared(Arc::new(op.clone()))
    }

    /// [`Wal::append`] without a copy: the log keeps `op` in its in-memory
    /// tail for replication.
    pub fn append_shared(&self, op: Arc<SequencedOperation>) -> Result<()> {
        let frame = match wal_record::encode(&op) {
            Ok(frame) => frame,
            Err(RecordError::Encode(e)) => return Err(ShardError::codec("encode WAL record", e)),
            Err(e) => {
                return Err(ShardError::Invalid(
                    protocol::ValidationError::InvalidRequest {
                        reason: e.to_string(),
                    },
                ))
            }
        };
        if self.sync.lock().poisoned {
            return Err(ShardError::Poisoned);
        }
        let mut w = self.writer.lock();
        if op.seq != w.last_seq.next() {
            return Err(ShardError::Corrupt(format!(
                "WAL append out of order: seq {} after {}",
                op.seq, w.last_seq
            )));
        }
        if w.bytes >= self.options.max_file_bytes {
            self.rotate(&mut w, op.seq)?;
        }
        let offset = w.bytes;
        if let Err(e) = (&*w.file).write_all(&frame) {
            // Part of the frame may be on disk; only reopening (which cuts a
            // torn tail) makes the log trustworthy again.
            self.sync.lock().poisoned = true;
            return Err(ShardError::io("append to WAL", e));
        }
        w.bytes += frame.len() as u64;
        w.total_bytes += frame.len() as u64;
        w.last_seq = op.seq;
        let end = w.bytes;
        if let Some(f) = w.files.last_mut() {
            f.offsets.push(offset);
            f.end = end;
        }
        w.tail.push_back(TailEntry {
            op,
            bytes: frame.len(),
        });
        w.tail_bytes += frame.len();
        while w.tail_bytes > self.tail_limit {
            match w.tail.pop_front() {
                Some(old) => w.tail_bytes -= old.bytes,
                None => break,
            }
        }
        Ok(())
    }

    fn rotate(&self, w: &mut Writer, next: SeqNo) -> Result<()> {
        w.file
            .sync_data()
            .ctx(|| "fsync WAL before rotation".into())?;
        let file = create_file(&self.dir, next)?;
        w.file = Arc::new(file);
        w.bytes = 0;
        w.files.push(FileIndex {
            first: next,
            offsets: Vec::new(),
            end: 0,
        });
        Ok(())
    }

    /// Returns once every record up to `seq` is durable (per [`SyncMode`]).
    pub fn sync_to(&self, seq: SeqNo) -> Result<()> {
        if self.options.sync == SyncMode::Never {
            return Ok(());
        }
        let mut st = self.sync.lock();
        loop {
            if st.poisoned {
                return Err(ShardError::Poisoned);
            }
            if st.synced_to >= seq {
                return Ok(());
            }
            if !st.in_progress {
                break;
            }
            self.synced.wait(&mut st);
        }
        st.in_progress = true;
        drop(st);
        // Everything appended so far is covered by this flush: older files
        // were flushed when they were rotated out.
        let (file, target) = {
            let w = self.writer.lock();
            (w.file.clone(), w.last_seq)
        };
        let result = file.sync_data();
        let mut st = self.sync.lock();
        st.in_progress = false;
        match result {
            Ok(()) => st.synced_to = st.synced_to.max(target),
            Err(_) => st.poisoned = true,
        }
        self.synced.notify_all();
        drop(st);
        result.ctx(|| "fsync WAL".into())
    }

    pub fn last_seq(&self) -> SeqNo {
        self.writer.lock().last_seq
    }

    /// Whether a failed write or fsync made the log refuse writes (until
    /// it is reopened).
    pub fn is_poisoned(&self) -> bool {
        self.sync.lock().poisoned
    }

    /// First sequence number still in the log.
    pub fn oldest_seq(&self) -> SeqNo {
        self.writer
            .lock()
            .files
            .first()
            .map_or(SeqNo(1), |f| f.first)
    }

    pub fn size_bytes(&self) -> u64 {
        self.writer.lock().total_bytes
    }

    /// Every record with `seq >= from` (tests and tools; replication uses
    /// [`Wal::read_batch`]).
    pub fn read_from(&self, from: SeqNo) -> Result<Vec<SequencedOperation>> {
        let last = self.last_seq();
        let mut out = Vec::new();
        let mut next = from;
        while next <= last {
            let batch = self.read_batch(next, usize::MAX, usize::MAX)?;
            let Some(end) = batch.last().map(|o| o.seq) else {
                break;
            };
            out.extend(batch.iter().map(|o| (**o).clone()));
            next = end.next();
        }
        out.retain(|o| o.seq <= last);
        Ok(out)
    }

    /// Consecutive records from `from` on: at most `max_ops`, and no more
    /// than `max_bytes` of encoded records unless the first alone is larger.
    /// Empty when `from` is past the last record;
    /// [`ShardError::WalTruncated`] when the log no longer reaches back to
    /// `from`. Served from the in-memory tail when it covers `from`, else
    /// from one file with one positioned read (possibly fewer records than
    /// asked: the caller asks again from where it stopped).
    pub fn read_batch(
        &self,
        from: SeqNo,
        max_ops: usize,
        max_bytes: usize,
    ) -> Result<Vec<Arc<SequencedOperation>>> {
        let max_ops = max_ops.max(1);
        let (path, start, end, count) = {
            let w = self.writer.lock();
            let oldest = w.files.first().map_or(SeqNo(1), |f| f.first);
            if from < oldest {
                return Err(ShardError::WalTruncated {
                    requested: from,
                    oldest,
                });
            }
            if from > w.last_seq {
                return Ok(Vec::new());
            }
            if let Some(front) = w.tail.front().map(|e| e.op.seq) {
                if front <= from {
                    let skip = (from.0 - front.0) as usize;
                    let mut out = Vec::new();
                    let mut bytes = 0usize;
                    for e in w.tail.range(skip.min(w.tail.len())..) {
                        if out.len() >= max_ops
                            || (!out.is_empty() && bytes.saturating_add(e.bytes) > max_bytes)
                        {
                            break;
                        }
                        bytes += e.bytes;
                        out.push(e.op.clone());
                    }
                    return Ok(out);
                }
            }
            let i = w.files.partition_point(|f| f.first <= from);
            let Some(file) = i.checked_sub(1).and_then(|i| w.files.get(i)) else {
                return Err(ShardError::Corrupt(format!("no WAL file holds seq {from}")));
            };
            let k = (from.0 - file.first.0) as usize;
            let Some(&start) = file.offsets.get(k) else {
                return Err(ShardError::Corrupt(format!(
                    "WAL index has no record {from} in {}",
                    file_name(file.first)
                )));
            };
            let mut n = 1;
            let mut end = file.offsets.get(k + 1).copied().unwrap_or(file.end);
            while n < max_ops {
                let next_end = file.offsets.get(k + n + 1).copied().unwrap_or(file.end);
                if k + n >= file.offsets.len() || (next_end - start) as usize > max_bytes {
                    break;
                }
                end = next_end;
                n += 1;
            }
            (self.dir.join(file_name(file.first)), start, end, n)
        };
        let mut buf = vec![0u8; (end - start) as usize];
        let read = File::open(&path).and_then(|f| f.read_exact_at(&mut buf, start));
        if let Err(e) = read {
            // Truncation removed the file after the index was consulted.
            if e.kind() == std::io::ErrorKind::NotFound {
                return Err(ShardError::WalTruncated {
                    requested: from,
                    oldest: self.oldest_seq(),
                });
            }
            return Err(ShardError::io(format!("read {}", path.display()), e));
        }
        let mut out = Vec::with_capacity(count);
        let mut pos = 0usize;
        while out.len() < count {
            let (op, used) = decode_record(&buf[pos..])
                .map_err(|reason| corrupt(&path, start + pos as u64, reason))?;
            let expected = SeqNo(from.0 + out.len() as u64);
            if op.seq != expected {
                return Err(corrupt(
                    &path,
                    start + pos as u64,
                    format!("holds seq {} where {expected} was expected", op.seq),
                ));
            }
            out.push(Arc::new(op));
            pos += used;
        }
        Ok(out)
    }

    /// Term of the record at `seq`; `None` when the log does not hold it.
    pub fn term_at(&self, seq: SeqNo) -> Result<Option<Term>> {
        match self.read_batch(seq, 1, 0) {
            Ok(ops) => Ok(ops.first().filter(|o| o.seq == seq).map(|o| o.term)),
            Err(ShardError::WalTruncated { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes whole files whose records all come before `seq`. The current
    /// file is always kept.
    pub fn truncate_before(&self, seq: SeqNo) -> Result<()> {
        let mut w = self.writer.lock();
        while w.files.len() > 1 && w.files[1].first <= seq {
            let path = self.dir.join(file_name(w.files[0].first));
            let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            fs::remove_file(&path).ctx(|| format!("remove {}", path.display()))?;
            w.total_bytes = w.total_bytes.saturating_sub(len);
            w.files.remove(0);
        }
        Ok(())
    }
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> ShardError {
    ShardError::WalCorrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

fn list_files(dir: &Path) -> Result<Vec<SeqNo>> {
    let mut firsts = Vec::new();
    for entry in fs::read_dir(dir).ctx(|| format!("list {}", dir.display()))? {
        let entry = entry.ctx(|| format!("list {}", dir.display()))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".wal")) else {
            continue;
        };
        match stem.parse::<u64>() {
            Ok(n) => firsts.push(SeqNo(n)),
            Err(_) => warn!(file = ?name, "ignoring unexpected file in WAL dir"),
        }
    }
    firsts.sort();
    Ok(firsts)
}

fn create_file(dir: &Path, first: SeqNo) -> Result<File> {
    let path = dir.join(file_name(first));
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ctx(|| format!("create {}", path.display()))?;
    sync_dir(dir)?;
    Ok(file)
}

/// Makes a created, renamed or removed directory entry durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(|| format!("fsync dir {}", dir.display()))
}

/// Decodes the records of one file into `out` (and where each starts into
/// `offsets`); returns the file's size after any repair. A bad record in
/// the last file ends the log there (the file is cut to its valid prefix);
/// elsewhere it is an error.
fn read_file(
    path: &Path,
    is_last: bool,
    out: &mut Vec<SequencedOperation>,
    offsets: &mut Vec<u64>,
) -> Result<u64> {
    let data = fs::read(path).ctx(|| format!("read {}", path.display()))?;
    let scan = wal_record::scan(&data);
    out.extend(scan.records);
    offsets.extend(scan.offsets);
    match scan.damage {
        None => Ok(data.len() as u64),
        Some((pos, reason)) if is_last => {
            warn!(file = %path.display(), offset = pos, %reason,
                  dropped_bytes = data.len() - pos, "dropping torn or damaged WAL tail");
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .ctx(|| format!("open {} to cut its tail", path.display()))?;
            file.set_len(pos as u64)
                .and_then(|_| file.sync_all())
                .ctx(|| format!("cut tail of {}", path.display()))?;
            Ok(pos as u64)
        }
        Some((pos, reason)) => Err(corrupt(path, pos as u64, reason.to_string())),
    }
}

/// One record from the front of `buf`, or why it is not a whole, intact one
/// (the framing is `protocol::wal_record`).
pub(crate) fn decode_record(
    buf: &[u8],
) -> std::result::Result<(SequencedOperation, usize), String> {
    wal_record::decode(buf).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use protocol::wal_record::HEADER_BYTES;
    use protocol::{Operation, Point, PointId, Term};

    fn op(seq: u64, n: usize) -> SequencedOperation {
        SequencedOperation {
            seq: SeqNo(seq),
            term: Term(1),
            op: Operation::Upsert {
                points: (0..n)
                    .map(|i| Point {
                        id: PointId::Num(seq * 100 + i as u64),
                        vector: vec![seq as f32, i as f32],
                        payload: None,
                    })
                    .collect(),
            },
        }
    }

    fn write_all(dir: &Path, ops: &[SequencedOperation], max_file_bytes: u64) {
        let (wal, _) = Wal::open(
            dir,
            WalOptions {
                sync: SyncMode::Always,
                max_file_bytes,
            },
        )
        .unwrap();
        for o in ops {
            wal.append(o).unwrap();
            wal.sync_to(o.seq).unwrap();
        }
    }

    fn only_file(dir: &Path) -> PathBuf {
        let files = list_files(dir).unwrap();
        dir.join(file_name(*files.last().unwrap()))
    }

    #[test]
    fn round_trip_across_files_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let ops: Vec<_> = (1..=50).map(|s| op(s, 3)).collect();
        write_all(dir.path(), &ops, 512);
        assert!(
            list_files(dir.path()).unwrap().len() > 3,
            "expected rotation"
        );
        let (wal, back) = Wal::open(dir.path(), WalOptions::default()).unwrap();
        assert_eq!(back, ops);
        assert_eq!(wal.last_seq(), SeqNo(50));
        assert_eq!(wal.read_from(SeqNo(40)).unwrap(), ops[39..].to_vec());
        wal.append(&op(51, 1)).unwrap();
        assert!(wal.append(&op(53, 1)).is_err(), "gaps are refused");
    }

    #[test]
    fn torn_tail_is_dropped_and_log_continues() {
        let dir = tempfile::tempdir().unwrap();
        let ops: Vec<_> = (1..=5).map(|s| op(s, 2)).collect();
        write_all(dir.path(), &ops, u64::MAX);
        let path = only_file(dir.path());
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (wal, back) = Wal::open(dir.path(), WalOptions::default()).unwrap();
        assert_eq!(back, ops[..4].to_vec());
        assert_eq!(wal.last_seq(), SeqNo(4));
        wal.append(&op(5, 1)).unwrap();
        wal.sync_to(SeqNo(5)).unwrap();
        drop(wal);
        let (_, back) = Wal::open(dir.path(), WalOptions::default()).unwrap();
        assert_eq!(back.len(), 5);
        assert_eq!(back[4], op(5, 1));
    }

    #[test]
    fn corrupt_crc_in_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let ops: Vec<_> = (1..=3).map(|s| op(s, 2)).collect();
        write_all(dir.path(), &ops, u64::MAX);
        let path = only_file(dir.path());
        let mut data = fs::read(&path).unwrap();
        let last = data.len() - 2;
        data[last] ^= 0xff;
        fs::write(&path, &data).unwrap();
        let (_, back) = Wal::open(dir.path(), WalOptions::default()).unwrap();
        assert_eq!(back, ops[..2].to_vec());
    }

    #[test]
    fn corruption_before_the_tail_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let ops: Vec<_> = (1..=40).map(|s| op(s, 3)).collect();
        write_all(dir.path(), &ops, 512);
        let first = dir.path().join(file_name(SeqNo(1)));
        let mut data = fs::read(&first).unwrap();
        data[HEADER_BYTES + 1] ^= 0xff;
        fs::write(&first, &data).unwrap();
        match Wal::open(dir.path(), WalOptions::default()) {
            Err(ShardError::WalCorrupt { offset, .. }) => assert_eq!(offset, 0),
            other => panic!("expected WalCorrupt, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn truncation_keeps_what_replay_needs() {
        let dir = tempfile::tempdir().unwrap();
        let ops: Vec<_> = (1..=40).map(|s| op(s, 3)).collect();
        write_all(dir.path(), &ops, 512);
        let (wal, _) = Wal::open(dir.path(), WalOptions::default()).unwrap();
        wal.truncate_before(SeqNo(30)).unwrap();
        assert!(wal.oldest_seq() <= SeqNo(30));
        assert!(wal.oldest_seq() > SeqNo(1));
        assert!(matches!(
            wal.read_from(SeqNo(1)),
            Err(ShardError::WalTruncated { .. })
        ));
        assert_eq!(wal.read_from(SeqNo(30)).unwrap(), ops[29..].to_vec());
        drop(wal);
        let (wal, back) = Wal::open(dir.path(), WalOptions::default()).unwrap();
        assert_eq!(back.last(), ops.last());
        assert_eq!(wal.last_seq(), SeqNo(40));
    }

    #[test]
    fn empty_current_file_keeps_the_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let ops: Vec<_> = (1..=10).map(|s| op(s, 3)).collect();
        write_all(dir.path(), &ops, 1);
        let (wal, _) = Wal::open(
            dir.path(),
            WalOptions {
                sync: SyncMode::Always,
                max_file_bytes: 1,
            },
        )
        .unwrap();
        wal.append(&op(11, 1)).unwrap();
        // 11 went into its own file; drop everything before it.
        wal.truncate_before(SeqNo(12)).unwrap();
        drop(wal);
        let (wal, back) = Wal::open(dir.path(), WalOptions::default()).unwrap();
        assert_eq!(back, vec![op(11, 1)]);
        assert_eq!(wal.last_seq(), SeqNo(11));
    }

    #[test]
    fn concurrent_writers_share_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), WalOptions::default()).unwrap();
        let wal = Arc::new(wal);
        let next = Arc::new(Mutex::new(0u64));
        std::thread::scope(|s| {
            for _ in 0..4 {
                let (wal, next) = (wal.clone(), next.clone());
                s.spawn(move || {
                    for _ in 0..50 {
                        let seq = {
                            let mut n = next.lock();
                            *n += 1;
                            wal.append(&op(*n, 1)).unwrap();
                            *n
                        };
                        wal.sync_to(SeqNo(seq)).unwrap();
                    }
                });
            }
        });
        drop(wal);
        let (_, back) = Wal::open(dir.path(), WalOptions::default()).unwrap();
        assert_eq!(back.len(), 200);
    }

    fn plain(ops: &[Arc<SequencedOperation>]) -> Vec<SequencedOperation> {
        ops.iter().map(|o| (**o).clone()).collect()
    }

    #[test]
    fn batches_from_the_tail_and_from_disk_agree() {
        // Tail limits: all on disk, part in memory, all in memory.
        for tail in [0, 600, usize::MAX] {
            let dir = tempfile::tempdir().unwrap();
            let all: Vec<_> = (1..=70).map(|s| op(s, 3)).collect();
            write_all(dir.path(), &all[..60], 512);
            // Reopened: the first 60 are only on disk.
            let options = WalOptions {
                sync: SyncMode::Always,
                max_file_bytes: 512,
            };
            let wal = Wal::open(dir.path(), options)
                .unwrap()
                .0
                .with_tail_limit(tail);
            for o in &all[60..] {
                wal.append(o).unwrap();
            }
            for from in 1..=70u64 {
                let got = wal.read_batch(SeqNo(from), 7, usize::MAX).unwrap();
                assert!(
                    !got.is_empty() && got.len() <= 7,
                    "from {from}: {}",
                    got.len()
                );
                let i = from as usize - 1;
                assert_eq!(plain(&got), all[i..i + got.len()].to_vec(), "from {from}");
                // A byte budget below one record still returns one.
                assert_eq!(wal.read_batch(SeqNo(from), 7, 1).unwrap().len(), 1);
            }
            assert!(wal.read_batch(SeqNo(71), 7, usize::MAX).unwrap().is_empty());
            assert_eq!(wal.read_from(SeqNo(1)).unwrap(), all);
            assert_eq!(wal.term_at(SeqNo(65)).unwrap(), Some(Term(1)));
            assert_eq!(wal.term_at(SeqNo(71)).unwrap(), None);
            wal.truncate_before(SeqNo(30)).unwrap();
            assert!(matches!(
                wal.read_batch(SeqNo(1), 7, usize::MAX),
                Err(ShardError::WalTruncated { .. })
            ));
        }
    }

    #[test]
    fn readers_racing_appends_see_only_whole_records() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(
            dir.path(),
            WalOptions {
                sync: SyncMode::Never,
                max_file_bytes: 4096,
            },
        )
        .unwrap()
        .0
        .with_tail_limit(0);
        let n = 2_000u64;
        std::thread::scope(|s| {
            s.spawn(|| {
                for seq in 1..=n {
                    wal.append(&op(seq, 2)).unwrap();
                }
            });
            s.spawn(|| {
                let mut next = SeqNo(1);
                while next.0 <= n {
                    let got = wal.read_batch(next, 16, 2048).unwrap();
                    for o in &got {
                        assert_eq!(**o, op(next.0, 2));
                        next = next.next();
                    }
                }
            });
        });
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_record(&bytes);
        }

        #[test]
        fn any_cut_of_the_tail_keeps_a_prefix(n in 1u64..20, cut in 0usize..400) {
            let dir = tempfile::tempdir().unwrap();
            let ops: Vec<_> = (1..=n).map(|s| op(s, 2)).collect();
            write_all(dir.path(), &ops, u64::MAX);
            let path = only_file(dir.path());
            let len = fs::metadata(&path).unwrap().len();
            let new_len = len.saturating_sub(cut as u64);
            OpenOptions::new().write(true).open(&path).unwrap().set_len(new_len).unwrap();
            let (_, back) = Wal::open(dir.path(), WalOptions::default()).unwrap();
            prop_assert!(back.len() as u64 <= n);
            prop_assert_eq!(&back[..], &ops[..back.len()]);
        }
    }
}
