//! Datetimes in the formats Qdrant reads: `YYYY-MM-DD`, optionally
//! followed by `T` or a space and `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fff…`,
//! then for the forms with seconds an optional offset (`Z`, `+HH`,
//! `+HH:MM`, `+HHMM`, ` UTC`; a space may come before it). No offset means
//! UTC. Fractions finer than a microsecond are cut.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A datetime bound of a range: kept as written (so it goes back on the
/// wire unchanged) beside its instant in microseconds since the epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct DateTime {
    text: String,
    micros: i64,
}

impl DateTime {
    pub fn parse(text: &str) -> Option<Self> {
        parse_datetime(text).map(|micros| Self {
            text: text.to_owned(),
            micros,
        })
    }

    pub fn micros(&self) -> i64 {
        self.micros
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Serialize for DateTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for DateTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{text:?} is not a datetime (RFC 3339, e.g. 2024-05-01T12:00:00Z)"
            ))
        })
    }
}

/// Microseconds since 1970-01-01T00:00:00Z, or `None` when `s` is not in
/// one of the accepted formats.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.trim_start();
    let b = s.as_bytes();
    let year = digits(b.get(0..4)?)?;
    let month = digits(sep(b, 4, b'-', 5..7)?)?;
    let day = digits(sep(b, 7, b'-', 8..10)?)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let date = days_from_civil(year, month, day) * 86_400_000_000;
    let rest = &s[10..];
    if rest.is_empty() {
        return Some(date);
    }
    let rb = rest.as_bytes();
    if rb[0] != b'T' && rb[0] != b' ' {
        return None;
    }
    let hour = digits(rb.get(1..3)?)?;
    let minute = digits(sep(rb, 3, b':', 4..6)?)?;
    if hour > 23 || minute > 59 {
        return None;
    }
    let mut micros = date + (hour * 3600 + minute * 60) * 1_000_000;
    let rest = &rest[6..];
    if rest.is_empty() {
        return Some(micros);
    }
    let rb = rest.as_bytes();
    let second = digits(sep(rb, 0, b':', 1..3)?)?;
    if second > 60 {
        return None;
    }
    micros += second * 1_000_000;
    let mut rest = &rest[3..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let kept = &frac[..n.min(6)];
        micros += digits(kept.as_bytes())? * 10_i64.pow(6 - kept.len() as u32);
        rest = &frac[n..];
    }
    Some(micros - offset_micros(rest)?)
}

/// The offset east of UTC a suffix names; `""` is UTC.
fn offset_micros(suffix: &str) -> Option<i64> {
    let s = suffix.strip_prefix(' ').unwrap_or(suffix);
    if s.is_empty() {
        return suffix.is_empty().then_some(0);
    }
    if s == "Z" || s == "z" || (s == "UTC" && suffix.starts_with(' ')) {
        return Some(0);
    }
    let sign = match s.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let b = &s.as_bytes()[1..];
    let (h, m) = match b.len() {
        2 => (digits(b)?, 0),
        4 => (digits(&b[0..2])?, digits(&b[2..4])?),
        5 if b[2] == b':' => (digits(&b[0..2])?, digits(&b[3..5])?),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60) * 1_000_000)
}

/// `b[range]` when `b[at]` is the separator `c`.
fn sep(b: &[u8], at: usize, c: u8, range: std::ops::Range<usize>) -> Option<&[u8]> {
    (b.get(at) == Some(&c)).then_some(())?;
    b.get(range)
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
