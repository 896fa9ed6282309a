//! The framing of one write-ahead-log record, bytes in and bytes out:
//!
//! ```text
//! +-----------+--------------+---------------------------------------+
//! | len: u32  | crc32c: u32  | msgpack(SequencedOperation), len bytes |
//! +-----------+--------------+---------------------------------------+
//! ```
//!
//! (little endian; the CRC covers the body). The WAL itself (files,
//! group commit, repair of a torn tail) is `storage-node`'s; the framing
//! lives here, without I/O, so that the fuzz targets (`fuzz/`) reach the
//! decoder without linking FAISS.

use thiserror::Error;

use crate::codec::{self, CodecError};
use crate::operation::SequencedOperation;

/// Bytes before the body: length and CRC.
pub const HEADER_BYTES: usize = 8;

/// Larger records are refused on write and treated as damage on read.
pub const MAX_RECORD_BYTES: usize = 256 << 20;

/// Why the front of a buffer is not one whole, intact record.
#[derive(Debug, Error)]
pub enum RecordError {
    #[error("truncated header ({got} bytes)")]
    TruncatedHeader { got: usize },
    #[error("record length {len} exceeds the limit")]
    TooLarge { len: usize },
    #[error("truncated body: {got} of {len} bytes")]
    TruncatedBody { got: usize, len: usize },
    #[error("CRC mismatch")]
    CrcMismatch,
    #[error("undecodable record: {0}")]
    Undecodable(CodecError),
    #[error("encode WAL record: {0}")]
    Encode(CodecError),
    #[error("operation of {len} bytes exceeds the WAL record limit")]
    EncodeTooLarge { len: usize },
}

/// Encodes `op` as one framed record.
pub fn encode(op: &SequencedOperation) -> Result<Vec<u8>, RecordError> {
    let body = codec::encode(op).map_err(RecordError::Encode)?;
    if body.len() > MAX_RECORD_BYTES {
        return Err(RecordError::EncodeTooLarge { len: body.len() });
    }
    let mut frame = Vec::with_capacity(HEADER_BYTES + body.len());
    // Cannot truncate: the body is at most MAX_RECORD_BYTES.
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// One record from the front of `buf` and the bytes it took. The length is
/// checked against [`MAX_RECORD_BYTES`] and against `buf` before the body
/// is looked at, so a damaged length never allocates.
pub fn decode(buf: &[u8]) -> Result<(SequencedOperation, usize), RecordError> {
    let Some((header, rest)) = buf.split_first_chunk::<HEADER_BYTES>() else {
        return Err(RecordError::TruncatedHeader { got: buf.len() });
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_RECORD_BYTES {
        return Err(RecordError::TooLarge { len });
    }
    let Some(body) = rest.get(..len) else {
        return Err(RecordError::TruncatedBody {
            got: rest.len(),
            len,
        });
    };
    if crc32c::crc32c(body) != crc {
        return Err(RecordError::CrcMismatch);
    }
    let op = codec::decode(body).map_err(RecordError::Undecodable)?;
    Ok((op, HEADER_BYTES + len))
}

/// The records of one WAL file's bytes, front to back.
#[derive(Debug, Default)]
pub struct Scan {
    pub records: Vec<SequencedOperation>,
    /// Byte offset of each record in `records`.
    pub offsets: Vec<u64>,
    /// Where the first bad record starts, and why; `None` when the whole
    /// buffer is records. Nothing after it is looked at.
    pub damage: Option<(usize, RecordError)>,
}

/// Decodes records from the front of `buf` until its end or the first
/// record that is not whole and intact.
pub fn scan(buf: &[u8]) -> Scan {
    let mut out = Scan::default();
    let mut pos = 0usize;
    while let Some(rest) = buf.get(pos..).filter(|r| !r.is_empty()) {
        match decode(rest) {
            Ok((op, used)) => {
                out.records.push(op);
                out.offsets.push(pos as u64);
                pos += used;
            }
            Err(e) => {
                out.damage = Some((pos, e));
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Operation, PointId, SeqNo, Term};

    fn op() -> SequencedOperation {
        SequencedOperation {
            seq: SeqNo(7),
            term: Term(2),
            op: Operation::Delete {
                ids: vec![PointId::Num(1)],
            },
        }
    }

    #[test]
    fn round_trip_and_every_kind_of_damage() {
        let frame = encode(&op()).unwrap();
        let mut two = frame.clone();
        two.extend_from_slice(&frame);
        let (back, used) = decode(&two).unwrap();
        assert_eq!((back, used), (op(), frame.len()));
        assert!(matches!(
            decode(&frame[..5]),
            Err(RecordError::TruncatedHeader { got: 5 })
        ));
        assert!(matches!(
            decode(&frame[..frame.len() - 1]),
            Err(RecordError::TruncatedBody { .. })
        ));
        let mut bad = frame.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(decode(&bad), Err(RecordError::CrcMismatch)));
        let mut huge = frame;
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode(&huge), Err(RecordError::TooLarge { .. })));
        // A valid frame around a body that is not an operation.
        let body = [0xc0u8];
        let mut junk = vec![1, 0, 0, 0];
        junk.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        junk.extend_from_slice(&body);
        assert!(matches!(decode(&junk), Err(RecordError::Undecodable(_))));
    }

    #[test]
    fn scan_stops_at_the_first_damage() {
        let frame = encode(&op()).unwrap();
        let mut buf = frame.repeat(3);
        let s = scan(&buf);
        assert_eq!(s.records.len(), 3);
        assert_eq!(
            s.offsets,
            vec![0, frame.len() as u64, 2 * frame.len() as u64]
        );
        assert!(s.damage.is_none());
        buf.truncate(2 * frame.len() + 3);
        let s = scan(&buf);
        assert_eq!(s.records.len(), 2);
        assert!(matches!(
            s.damage,
            Some((at, RecordError::TruncatedHeader { got: 3 })) if at == 2 * frame.len()
        ));
        assert!(scan(&[]).records.is_empty());
    }
}
