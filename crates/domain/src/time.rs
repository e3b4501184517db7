//! Timestamps and durations, with a fixed textual form so that hashed records are stable.
//!
//! A [`Timestamp`] is microseconds since the Unix epoch in UTC. It is always written as
//! `YYYY-MM-DDTHH:MM:SS.ffffffZ` (27 bytes, lexicographic order equals time order), which is
//! the form stored in the database and hashed into audit events.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// A point in time, in microseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

impl Timestamp {
    pub const fn from_micros(us: i64) -> Timestamp {
        Timestamp(us)
    }

    pub const fn from_unix_seconds(s: i64) -> Timestamp {
        Timestamp(s * MICROS_PER_SEC)
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    pub const fn as_unix_seconds(self) -> i64 {
        self.0.div_euclid(MICROS_PER_SEC)
    }

    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.0))
    }

    pub fn minus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(d.0))
    }

    /// The time elapsed from `earlier` to `self` (negative if `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration(self.0 - earlier.0)
    }

    /// Parses `YYYY-MM-DD` (midnight UTC) or RFC 3339 (`YYYY-MM-DDTHH:MM[:SS[.fff]]` followed
    /// by `Z` or an offset `±HH:MM`; a space may stand for the `T`).
    pub fn parse(s: &str) -> Result<Timestamp> {
        parse_timestamp(s.trim()).ok_or_else(|| {
            Error::invalid(format!(
                "`{s}` is not a time: expected YYYY-MM-DD or RFC 3339 such as 2026-01-31T08:00:00Z"
            ))
        })
    }

    /// The civil date (year, month, day) in UTC.
    pub fn date(self) -> (i64, u32, u32) {
        civil_from_days(self.0.div_euclid(MICROS_PER_SEC * SECS_PER_DAY))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(MICROS_PER_SEC * SECS_PER_DAY);
        let rem = self.0.rem_euclid(MICROS_PER_SEC * SECS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let secs = rem / MICROS_PER_SEC;
        let micros = rem % MICROS_PER_SEC;
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A signed span of time in microseconds, written like `90s`, `15m`, `6h`, `7d`, `2w`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Duration(i64);

impl Duration {
    pub const fn from_micros(us: i64) -> Duration {
        Duration(us)
    }
    pub const fn from_secs(s: i64) -> Duration {
        Duration(s * MICROS_PER_SEC)
    }
    pub const fn from_days(d: i64) -> Duration {
        Duration(d * SECS_PER_DAY * MICROS_PER_SEC)
    }
    pub const fn as_micros(self) -> i64 {
        self.0
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / MICROS_PER_SEC as f64
    }

    /// Parses a positive whole number followed by a unit: `s`, `m`, `h`, `d` or `w`.
    pub fn parse(s: &str) -> Result<Duration> {
        let t = s.trim();
        let bad = || {
            Error::invalid(format!(
                "`{s}` is not a duration: expected a whole number and a unit (s, m, h, d, w), such as 6h or 30d"
            ))
        };
        let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (num, unit) = t.split_at(split);
        let n: i64 = num.parse().map_err(|_| bad())?;
        let secs = match unit {
            "s" => 1,
            "m" | "min" => 60,
            "h" => 3600,
            "d" => SECS_PER_DAY,
            "w" => 7 * SECS_PER_DAY,
            _ => return Err(bad()),
        };
        n.checked_mul(secs * MICROS_PER_SEC)
            .map(Duration)
            .ok_or_else(bad)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0 / MICROS_PER_SEC;
        if self.0 % MICROS_PER_SEC != 0 {
            write!(f, "{}us", self.0)
        } else if s != 0 && s % (7 * SECS_PER_DAY) == 0 {
            write!(f, "{}w", s / (7 * SECS_PER_DAY))
        } else if s != 0 && s % SECS_PER_DAY == 0 {
            write!(f, "{}d", s / SECS_PER_DAY)
        } else if s != 0 && s % 3600 == 0 {
            write!(f, "{}h", s / 3600)
        } else if s != 0 && s % 60 == 0 {
            write!(f, "{}m", s / 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Duration::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Days since the epoch to a civil date (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A civil date to days since the epoch (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn num(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_timestamp(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    // The date's fields are ASCII; anything else (a multi-byte character among them) is
    // not a time, and must not be sliced through.
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' || !b[..10].is_ascii() {
        return None;
    }
    let y = num(&s[0..4])?;
    let mo = num(&s[5..7])? as u32;
    let d = num(&s[8..10])? as u32;
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    if b.len() == 10 {
        return Some(Timestamp(days * SECS_PER_DAY * MICROS_PER_SEC));
    }
    if b[10] != b'T' && b[10] != b't' && b[10] != b' ' {
        return None;
    }
    let rest = &s[11..];
    // Split the offset off the end.
    let (clock, offset_secs) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else {
        let pos = rest.rfind(['+', '-'])?;
        let (c, off) = rest.split_at(pos);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let off = &off[1..];
        if off.len() != 5 || off.as_bytes()[2] != b':' {
            return None;
        }
        let oh = num(&off[0..2])?;
        let om = num(&off[3..5])?;
        if oh > 23 || om > 59 {
            return None;
        }
        (c, sign * (oh * 3600 + om * 60))
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((h, f)) => (h, Some(f)),
        None => (clock, None),
    };
    let parts: Vec<&str> = hms.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.len() != 2) {
        return None;
    }
    let h = num(parts[0])?;
    let mi = num(parts[1])?;
    let sec = if parts.len() == 3 { num(parts[2])? } else { 0 };
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let micros = match frac {
        None => 0,
        Some(f) => {
            if f.is_empty() || f.len() > 9 || !f.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let padded = format!("{f:0<6}");
            num(&padded[..6])?
        }
    };
    let secs = days * SECS_PER_DAY + h * 3600 + mi * 60 + sec - offset_secs;
    Some(Timestamp(secs * MICROS_PER_SEC + micros))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_multi_byte_character_in_the_date_is_refused_not_sliced() {
        for s in [
            "2024-01-1é",
            "2024-01-1éT00:00:00Z",
            "2024-0é-01",
            "2é24-01-01",
        ] {
            assert!(Timestamp::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn formats_fixed_width() {
        assert_eq!(
            Timestamp::from_micros(0).to_string(),
            "1970-01-01T00:00:00.000000Z"
        );
        let t = Timestamp::parse("2026-02-28T23:59:59.5+01:00").unwrap();
        assert_eq!(t.to_string(), "2026-02-28T22:59:59.500000Z");
    }

    #[test]
    fn parses_dates_and_rejects_nonsense() {
        assert_eq!(
            Timestamp::parse("2024-02-29").unwrap().to_string(),
            "2024-02-29T00:00:00.000000Z"
        );
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "yesterday",
            "2026-01-01T25:00Z",
            "",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(
            Duration::parse("6h").unwrap(),
            Duration::from_secs(6 * 3600)
        );
        assert_eq!(Duration::parse("30d").unwrap().to_string(), "30d");
        assert_eq!(Duration::parse("14d").unwrap().to_string(), "2w");
        assert!(Duration::parse("6 hours").is_err());
        assert!(Duration::parse("h").is_err());
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(us in -62_000_000_000_000_000i64..253_000_000_000_000_000i64) {
            let t = Timestamp::from_micros(us);
            prop_assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        }

        #[test]
        fn civil_round_trip(days in -1_000_000i64..1_000_000i64) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
