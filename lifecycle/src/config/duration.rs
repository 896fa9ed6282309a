//! Durations as the spec writes them (`150ms`, `1s`, `2m`, a bare number of
//! milliseconds) and the Raft election timeout's range (`150-300ms`).

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// `"150ms"`, `"1s"`, `"2m"`, `"1h"` or a bare number of milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let secs = match unit.trim() {
        "" | "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown unit {other:?} in {s:?}")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

/// A `min-max` range of durations, e.g. the spec's Raft election timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurationRange {
    pub min: Duration,
    pub max: Duration,
}

/// `"150-300ms"` (one unit for both ends), `"150ms-300ms"`, or one
/// duration (`"200ms"`: min = max). The low end must not exceed the high.
pub fn parse_duration_range(s: &str) -> Result<DurationRange, String> {
    let s = s.trim();
    let Some((lo, hi)) = s.split_once('-') else {
        let d = parse_duration(s)?;
        return Ok(DurationRange { min: d, max: d });
    };
    let max = parse_duration(hi)?;
    // `150-300ms`: the low end borrows the high end's unit.
    let lo = lo.trim();
    let min = if lo.bytes().all(|b| b.is_ascii_digit() || b == b'.') && !lo.is_empty() {
        let unit = hi
            .trim()
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
        parse_duration(&format!("{lo}{unit}"))?
    } else {
        parse_duration(lo)?
    };
    if min > max {
        return Err(format!("range {s:?}: the low end exceeds the high end"));
    }
    Ok(DurationRange { min, max })
}

/// What YAML may hold where a duration is expected.
#[derive(Deserialize)]
#[serde(untagged)]
enum DurationIn {
    Millis(u64),
    Text(String),
}

/// `Option<Duration>` field: absent is `None` (with `#[serde(default)]`).
pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match DurationIn::deserialize(d)? {
        DurationIn::Millis(ms) => Ok(Some(Duration::from_millis(ms))),
        DurationIn::Text(s) => parse_duration(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// A duration that may be switched off (`off`, `none` or 0): absent is
/// `None`, off is `Some(None)`.
pub fn option_or_off<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<Duration>>, D::Error> {
    match DurationIn::deserialize(d)? {
        DurationIn::Text(s) if s == "off" || s == "none" => Ok(Some(None)),
        DurationIn::Millis(0) => Ok(Some(None)),
        DurationIn::Millis(ms) => Ok(Some(Some(Duration::from_millis(ms)))),
        DurationIn::Text(s) => parse_duration(&s)
            .map(|d| Some(Some(d)))
            .map_err(serde::de::Error::custom),
    }
}

/// `Option<DurationRange>` field.
pub fn option_range<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DurationRange>, D::Error> {
    match DurationIn::deserialize(d)? {
        DurationIn::Millis(ms) => {
            let d = Duration::from_millis(ms);
            Ok(Some(DurationRange { min: d, max: d }))
        }
        DurationIn::Text(s) => parse_duration_range(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_ranges_parse() {
        assert_eq!(parse_duration("150ms"), Ok(Duration::from_millis(150)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("40"), Ok(Duration::from_millis(40)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("soon").is_err());
        let r = |a, b| DurationRange {
            min: Duration::from_millis(a),
            max: Duration::from_millis(b),
        };
        assert_eq!(parse_duration_range("150-300ms"), Ok(r(150, 300)));
        assert_eq!(parse_duration_range("1s-2s"), Ok(r(1000, 2000)));
        assert_eq!(parse_duration_range("500ms-1s"), Ok(r(500, 1000)));
        assert_eq!(parse_duration_range("200ms"), Ok(r(200, 200)));
        assert!(parse_duration_range("300-150ms").is_err());
        assert!(parse_duration_range("a-150ms").is_err());
    }
}
