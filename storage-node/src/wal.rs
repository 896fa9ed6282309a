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
//! (little endian; the CRC covers the body). Sequence numbers are
//! consecutive. On open, a torn or damaged record at the end of the newest
//! file is cut off with a warning: with fsync-before-ack it can only be a
//! write that was never acknowledged. Damage anywhere else means
//! acknowledged data is gone, and opening fails with [`ShardError::WalCorrupt`].
//!
//! Group commit: writers append under a short lock, then wait in
//! [`Wal::sync_to`]; one `fdatasync` covers every record appended before it
//! started, so concurrent writers share the cost of the flush.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use protocol::codec;
use protocol::{SeqNo, SequencedOperation};
use tracing::{info, warn};

use crate::error::{IoContext, Result, ShardError};

const HEADER_BYTES: usize = 8;
/// Larger records are refused on write and treated as damage on read.
pub const MAX_RECORD_BYTES: usize = 256 << 20;

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
    writer: Mutex<Writer>,
    sync: Mutex<SyncState>,
    synced: Condvar,
}

struct Writer {
    file: Arc<File>,
    bytes: u64,
    last_seq: SeqNo,
    /// First sequence number of every file, oldest first; the last is current.
    files: Vec<SeqNo>,
    total_bytes: u64,
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
        let mut firsts = list_files(dir)?;
        let mut records = Vec::new();
        let mut total_bytes = 0;
        let count = firsts.len();
        for (i, first) in firsts.iter().enumerate() {
            let path = dir.join(file_name(*first));
            let is_last = i + 1 == count;
            let before = records.len();
            total_bytes += read_file(&path, is_last, &mut records)?;
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
        if firsts.is_empty() {
            firsts.push(last_seq.next());
            create_file(dir, last_seq.next())?;
        }
        let current = dir.join(file_name(*firsts.last().unwrap_or(&SeqNo(1))));
        let file = OpenOptions::new()
            .append(true)
            .open(&current)
            .ctx(|| format!("open {}", current.display()))?;
        let bytes = file
            .metadata()
            .ctx(|| format!("stat {}", current.display()))?
            .len();
        info!(dir = %dir.display(), files = firsts.len(), records = records.len(), %last_seq, "WAL opened");
        let wal = Wal {
            dir: dir.to_path_buf(),
            options,
            writer: Mutex::new(Writer {
                file: Arc::new(file),
                bytes,
                last_seq,
                files: firsts,
                total_bytes,
            }),
            sync: Mutex::new(SyncState {
                synced_to: last_seq,
                ..SyncState::default()
            }),
            synced: Condvar::new(),
        };
        Ok((wal, records))
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
        let body = codec::encode(op).map_err(|e| ShardError::codec("encode WAL record", e))?;
        if body.len() > MAX_RECORD_BYTES {
            return Err(ShardError::Invalid(
                protocol::ValidationError::InvalidRequest {
                    reason: format!(
                        "operation of {} bytes exceeds the WAL record limit",
                        body.len()
                    ),
                },
            ));
        }
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
        let mut frame = Vec::with_capacity(HEADER_BYTES + body.len());
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        frame.extend_from_slice(&body);
        if let Err(e) = (&*w.file).write_all(&frame) {
            // Part of the frame may be on disk; only reopening (which cuts a
            // torn tail) makes the log trustworthy again.
            self.sync.lock().poisoned = true;
            return Err(ShardError::io("append to WAL", e));
        }
        w.bytes += frame.len() as u64;
        w.total_bytes += frame.len() as u64;
        w.last_seq = op.seq;
        Ok(())
    }

    fn rotate(&self, w: &mut Writer, next: SeqNo) -> Result<()> {
        w.file
            .sync_data()
            .ctx(|| "fsync WAL before rotation".into())?;
        let file = create_file(&self.dir, next)?;
        w.file = Arc::new(file);
        w.bytes = 0;
        w.files.push(next);
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

    /// First sequence number still in the log (what the truncation tests
    /// check; readers learn it from `WalTruncated`).
    #[cfg(test)]
    fn oldest_seq(&self) -> SeqNo {
        self.writer
            .lock()
            .files
            .first()
            .copied()
            .unwrap_or(SeqNo(1))
    }

    pub fn size_bytes(&self) -> u64 {
        self.writer.lock().total_bytes
    }

    /// Every record with `seq >= from`, read back from disk.
    pub fn read_from(&self, from: SeqNo) -> Result<Vec<SequencedOperation>> {
        let (files, last) = {
            let w = self.writer.lock();
            (w.files.clone(), w.last_seq)
        };
        let oldest = files.first().copied().unwrap_or(SeqNo(1));
        if from < oldest {
            return Err(ShardError::WalTruncated {
                requested: from,
                oldest,
            });
        }
        let mut out = Vec::new();
        for (i, first) in files.iter().enumerate() {
            let next_first = files.get(i + 1).copied();
            if next_first.is_some_and(|n| n <= from) {
                continue;
            }
            let mut recs = Vec::new();
            read_file(&self.dir.join(file_name(*first)), false, &mut recs)?;
            out.extend(recs.into_iter().filter(|r| r.seq >= from && r.seq <= last));
        }
        Ok(out)
    }

    /// Deletes whole files whose records all come before `seq`. The current
    /// file is always kept.
    pub fn truncate_before(&self, seq: SeqNo) -> Result<()> {
        let mut w = self.writer.lock();
        while w.files.len() > 1 && w.files[1] <= seq {
            let path = self.dir.join(file_name(w.files[0]));
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

/// Decodes the records of one file into `out`; returns the file's size
/// after any repair. A bad record in the last file ends the log there (the
/// file is cut to its valid prefix); elsewhere it is an error.
fn read_file(path: &Path, is_last: bool, out: &mut Vec<SequencedOperation>) -> Result<u64> {
    let data = fs::read(path).ctx(|| format!("read {}", path.display()))?;
    let mut pos = 0usize;
    while pos < data.len() {
        match decode_record(&data[pos..]) {
            Ok((op, used)) => {
                out.push(op);
                pos += used;
            }
            Err(reason) if is_last => {
                warn!(file = %path.display(), offset = pos, %reason,
                      dropped_bytes = data.len() - pos, "dropping torn or damaged WAL tail");
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .ctx(|| format!("open {} to cut its tail", path.display()))?;
                file.set_len(pos as u64)
                    .and_then(|_| file.sync_all())
                    .ctx(|| format!("cut tail of {}", path.display()))?;
                return Ok(pos as u64);
            }
            Err(reason) => return Err(corrupt(path, pos as u64, reason)),
        }
    }
    Ok(data.len() as u64)
}

/// One record from the front of `buf`, or why it is not a whole, intact one.
pub(crate) fn decode_record(
    buf: &[u8],
) -> std::result::Result<(SequencedOperation, usize), String> {
    if buf.len() < HEADER_BYTES {
        return Err(format!("truncated header ({} bytes)", buf.len()));
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if len > MAX_RECORD_BYTES {
        return Err(format!("record length {len} exceeds the limit"));
    }
    let Some(body) = buf.get(HEADER_BYTES..HEADER_BYTES + len) else {
        return Err(format!(
            "truncated body: {} of {len} bytes",
            buf.len() - HEADER_BYTES
        ));
    };
    if crc32c::crc32c(body) != crc {
        return Err("CRC mismatch".into());
    }
    let op = codec::decode(body).map_err(|e| format!("undecodable record: {e}"))?;
    Ok((op, HEADER_BYTES + len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
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
