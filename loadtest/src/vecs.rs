//! texmex `.fvecs` / `.ivecs`: every row is a little-endian `i32` dimension
//! `d` followed by `d` values (`f32` or `i32`). All rows must share `d`.
//!
//! Files are read whole (the largest we use is ~90 MB) and checked row by
//! row, so a truncated or corrupt file is an [`Error::Corrupt`], never a
//! panic or a silently short data set.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Row-major matrix read from a vecs file.
#[derive(Debug, Clone, PartialEq)]
pub struct Vecs<T> {
    pub dim: usize,
    pub data: Vec<T>,
}

impl<T> Vecs<T> {
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Row `i`; panics if out of range (callers index below `len()`).
    pub fn row(&self, i: usize) -> &[T] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    pub fn rows(&self) -> std::slice::ChunksExact<'_, T> {
        self.data.chunks_exact(self.dim.max(1))
    }

    /// Keeps the first `n` rows.
    pub fn truncate(&mut self, n: usize) {
        self.data.truncate(n * self.dim);
    }
}

/// Largest dimension we accept; guards against reading garbage as a size.
const MAX_DIM: usize = 1 << 16;

/// Parses vecs bytes; `limit` stops after that many rows.
fn parse<T>(
    bytes: &[u8],
    path: &Path,
    limit: Option<usize>,
    conv: fn([u8; 4]) -> T,
) -> Result<Vecs<T>> {
    let corrupt = |offset: usize, reason: String| Error::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let word = |at: usize| -> Option<[u8; 4]> { bytes.get(at..at + 4)?.try_into().ok() };
    let Some(first) = word(0) else {
        return if bytes.is_empty() {
            Err(corrupt(0, "empty file".into()))
        } else {
            Err(corrupt(0, "shorter than one dimension header".into()))
        };
    };
    let d = i32::from_le_bytes(first);
    if d <= 0 || d as usize > MAX_DIM {
        return Err(corrupt(
            0,
            format!("dimension {d} out of range 1..={MAX_DIM}"),
        ));
    }
    let dim = d as usize;
    let row_bytes = 4 * (dim + 1);
    if !bytes.len().is_multiple_of(row_bytes) {
        return Err(corrupt(
            bytes.len() - bytes.len() % row_bytes,
            format!(
                "{} trailing bytes: truncated row (row size {row_bytes})",
                bytes.len() % row_bytes
            ),
        ));
    }
    let total = bytes.len() / row_bytes;
    let rows = limit.map_or(total, |l| l.min(total));
    let mut data = Vec::with_capacity(rows * dim);
    for (r, row) in bytes.chunks_exact(row_bytes).take(rows).enumerate() {
        let (head, values) = row.split_at(4);
        let rd = i32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if rd != d {
            return Err(corrupt(
                r * row_bytes,
                format!("row {r} has dimension {rd}, expected {d}"),
            ));
        }
        data.extend(
            values
                .chunks_exact(4)
                .map(|c| conv([c[0], c[1], c[2], c[3]])),
        );
    }
    Ok(Vecs { dim, data })
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub fn parse_fvecs(bytes: &[u8], path: &Path, limit: Option<usize>) -> Result<Vecs<f32>> {
    parse(bytes, path, limit, f32::from_le_bytes)
}

pub fn parse_ivecs(bytes: &[u8], path: &Path, limit: Option<usize>) -> Result<Vecs<i32>> {
    parse(bytes, path, limit, i32::from_le_bytes)
}

/// Reads an `.fvecs` file (at most `limit` rows); rejects NaN / infinite values.
pub fn read_fvecs(path: &Path, limit: Option<usize>) -> Result<Vecs<f32>> {
    let v = parse_fvecs(&read(path)?, path, limit)?;
    if let Some(i) = v.data.iter().position(|x| !x.is_finite()) {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            offset: (i / v.dim) * 4 * (v.dim + 1) + 4 + 4 * (i % v.dim),
            reason: format!("non-finite value in row {}", i / v.dim),
        });
    }
    Ok(v)
}

pub fn read_ivecs(path: &Path, limit: Option<usize>) -> Result<Vecs<i32>> {
    parse_ivecs(&read(path)?, path, limit)
}

fn write_rows<T: Copy>(path: &Path, v: &Vecs<T>, bytes: fn(T) -> [u8; 4]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut w = std::io::BufWriter::new(file);
    let d = i32::try_from(v.dim)
        .map_err(|_| Error::Invalid(format!("dimension {} too large", v.dim)))?;
    for row in v.rows() {
        w.write_all(&d.to_le_bytes()).map_err(io)?;
        for &x in row {
            w.write_all(&bytes(x)).map_err(io)?;
        }
    }
    w.flush().map_err(io)
}

pub fn write_fvecs(path: &Path, v: &Vecs<f32>) -> Result<()> {
    write_rows(path, v, f32::to_le_bytes)
}

pub fn write_ivecs(path: &Path, v: &Vecs<i32>) -> Result<()> {
    write_rows(path, v, i32::to_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("t.fvecs")
    }

    fn encode(rows: &[Vec<f32>]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in rows {
            out.extend((r.len() as i32).to_le_bytes());
            for x in r {
                out.extend(x.to_le_bytes());
            }
        }
        out
    }

    #[test]
    fn parses_rows_and_limit() {
        let b = encode(&[vec![1.0, 2.0], vec![3.0, 4.0], vec![5.0, 6.0]]);
        let v = parse_fvecs(&b, p(), None).expect("parse");
        assert_eq!((v.dim, v.len()), (2, 3));
        assert_eq!(v.row(1), &[3.0, 4.0]);
        let v = parse_fvecs(&b, p(), Some(2)).expect("parse");
        assert_eq!(v.len(), 2);
        let v = parse_fvecs(&b, p(), Some(10)).expect("parse");
        assert_eq!(v.len(), 3);
    }

    #[test]
    fn truncated_and_corrupt_files_are_errors() {
        let b = encode(&[vec![1.0, 2.0], vec![3.0, 4.0]]);
        for cut in 1..b.len() {
            if cut % 12 == 0 {
                continue;
            }
            let e = parse_fvecs(&b[..cut], p(), None);
            assert!(matches!(e, Err(Error::Corrupt { .. })), "cut {cut}: {e:?}");
        }
        assert!(matches!(
            parse_fvecs(&[], p(), None),
            Err(Error::Corrupt { .. })
        ));
        // Second row claims another dimension.
        let mut bad = encode(&[vec![1.0, 2.0], vec![3.0, 4.0]]);
        bad[12..16].copy_from_slice(&7i32.to_le_bytes());
        assert!(matches!(
            parse_fvecs(&bad, p(), None),
            Err(Error::Corrupt { offset: 12, .. })
        ));
        // Negative / huge dimension header.
        for d in [0i32, -3, i32::MAX] {
            let mut bad = encode(&[vec![1.0]]);
            bad[..4].copy_from_slice(&d.to_le_bytes());
            assert!(parse_ivecs(&bad, p(), None).is_err());
        }
    }

    #[test]
    fn write_then_read_round_trips_and_nan_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("a.fvecs");
        let v = Vecs {
            dim: 3,
            data: vec![0.5, -1.0, 2.0, 3.0, 4.0, 5.0],
        };
        write_fvecs(&f, &v).expect("write");
        assert_eq!(read_fvecs(&f, None).expect("read"), v);
        let i = dir.path().join("a.ivecs");
        let g = Vecs {
            dim: 2,
            data: vec![1, 2, 3, 4],
        };
        write_ivecs(&i, &g).expect("write");
        assert_eq!(read_ivecs(&i, None).expect("read"), g);
        let nan = Vecs {
            dim: 1,
            data: vec![f32::NAN],
        };
        write_fvecs(&f, &nan).expect("write");
        assert!(matches!(read_fvecs(&f, None), Err(Error::Corrupt { .. })));
        assert!(matches!(
            read_fvecs(&dir.path().join("missing"), None),
            Err(Error::Io { .. })
        ));
    }
}
