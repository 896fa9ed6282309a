//! A set of offsets in FAISS `IDSelectorBitmap` layout (segments hand it
//! to FAISS as the filter of an HNSW walk).

/// A set of offsets, in FAISS `IDSelectorBitmap` layout (bit `i % 8` of
/// byte `i / 8`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bitmap {
    bytes: Vec<u8>,
    len: usize,
    ones: usize,
}

impl Bitmap {
    pub fn with_len(len: usize, value: bool) -> Self {
        let mut bytes = vec![if value { 0xff } else { 0 }; len.div_ceil(8)];
        if value && !len.is_multiple_of(8) {
            if let Some(last) = bytes.last_mut() {
                *last = (1u8 << (len % 8)) - 1;
            }
        }
        Self {
            bytes,
            len,
            ones: if value { len } else { 0 },
        }
    }

    pub fn from_bytes(bytes: Vec<u8>, len: usize) -> Option<Self> {
        if bytes.len() != len.div_ceil(8) {
            return None;
        }
        let mut b = Self {
            bytes,
            len,
            ones: 0,
        };
        b.ones = (0..len).filter(|&i| b.get(i)).count();
        Some(b)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn count_ones(&self) -> usize {
        self.ones
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn get(&self, i: usize) -> bool {
        i < self.len && self.bytes[i / 8] & (1 << (i % 8)) != 0
    }

    pub fn set(&mut self, i: usize, value: bool) {
        if i >= self.len || self.get(i) == value {
            return;
        }
        if value {
            self.bytes[i / 8] |= 1 << (i % 8);
            self.ones += 1;
        } else {
            self.bytes[i / 8] &= !(1 << (i % 8));
            self.ones -= 1;
        }
    }

    pub fn push(&mut self, value: bool) {
        if self.len.is_multiple_of(8) {
            self.bytes.push(0);
        }
        self.len += 1;
        self.set(self.len - 1, value);
    }

    /// Bits set in both (as long as the longer; missing bits are clear).
    pub fn and(&self, other: &Bitmap) -> Bitmap {
        self.combine(other, |a, b| a & b)
    }

    /// Bits set in either.
    pub fn or(&self, other: &Bitmap) -> Bitmap {
        self.combine(other, |a, b| a | b)
    }

    fn combine(&self, other: &Bitmap, f: impl Fn(u8, u8) -> u8) -> Bitmap {
        let len = self.len.max(other.len);
        let byte = |b: &Bitmap, i: usize| b.bytes.get(i).copied().unwrap_or(0);
        let bytes = (0..len.div_ceil(8))
            .map(|i| f(byte(self, i), byte(other, i)))
            .collect();
        let ones = 0;
        let mut out = Bitmap { bytes, len, ones };
        out.ones = (0..len).filter(|&i| out.get(i)).count();
        out
    }

    pub fn iter_ones(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len).filter(|&i| self.get(i))
    }
}
