//! UTC civil dates from unix seconds, and the period labels used for temporal validation.
//!
//! Implemented by hand (Hinnant's `civil_from_days`) so that the crate needs no date
//! library and never consults a time zone database: periods are always UTC.

use serde::{Deserialize, Serialize};

/// A proleptic Gregorian UTC date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CivilDate {
    pub year: i64,
    pub month: u32,
    pub day: u32,
}

/// The UTC date of a unix timestamp (seconds).
pub fn civil_from_unix(seconds: i64) -> CivilDate {
    civil_from_days(seconds.div_euclid(86_400))
}

/// Days since 1970-01-01 → date (Hinnant, "chrono-Compatible Low-Level Date Algorithms").
pub fn civil_from_days(days: i64) -> CivilDate {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    CivilDate {
        year: if m <= 2 { y + 1 } else { y },
        month: m,
        day: d,
    }
}

/// Date → days since 1970-01-01.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// ISO 8601 week-numbering year and week (1..=53) of a day since the epoch.
pub fn iso_week(days: i64) -> (i64, u32) {
    // 1970-01-01 was a Thursday; ISO weekday Monday = 1 … Sunday = 7.
    let weekday = (days + 3).rem_euclid(7) + 1;
    // The week belongs to the year of its Thursday.
    let thursday = days - (weekday - 1) + 3;
    let year = civil_from_days(thursday).year;
    let week = (thursday - days_from_civil(year, 1, 1)) / 7 + 1;
    (year, week as u32)
}

/// Granularity of temporal validation periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Year,
    Quarter,
    Month,
    /// ISO 8601 week (weeks start on Monday; week 1 holds the year's first Thursday).
    Week,
}

/// The label of the period holding `seconds`: `2024`, `2024-Q1`, `2024-03`, `2024-W09`.
/// Labels sort chronologically as strings (for years 0..=9999).
pub fn period_label(seconds: i64, period: Period) -> String {
    let days = seconds.div_euclid(86_400);
    let d = civil_from_days(days);
    match period {
        Period::Year => format!("{:04}", d.year),
        Period::Quarter => format!("{:04}-Q{}", d.year, (d.month - 1) / 3 + 1),
        Period::Month => format!("{:04}-{:02}", d.year, d.month),
        Period::Week => {
            let (y, w) = iso_week(days);
            format!("{y:04}-W{w:02}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(
            civil_from_unix(0),
            CivilDate {
                year: 1970,
                month: 1,
                day: 1
            }
        );
        // 2024-02-29T12:00:00Z
        assert_eq!(
            civil_from_unix(1_709_208_000),
            CivilDate {
                year: 2024,
                month: 2,
                day: 29
            }
        );
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_unix(-1).year, 1969);
    }

    #[test]
    fn round_trip_many_days() {
        for days in (-800_000..800_000).step_by(97) {
            let d = civil_from_days(days);
            assert_eq!(days_from_civil(d.year, d.month, d.day), days);
        }
    }

    #[test]
    fn iso_weeks_at_year_boundaries() {
        // 2021-01-03 (Sunday) is in 2020-W53; 2024-12-30 (Monday) is in 2025-W01.
        assert_eq!(iso_week(days_from_civil(2021, 1, 3)), (2020, 53));
        assert_eq!(iso_week(days_from_civil(2021, 1, 4)), (2021, 1));
        assert_eq!(iso_week(days_from_civil(2024, 12, 30)), (2025, 1));
        assert_eq!(period_label(1_709_208_000, Period::Week), "2024-W09");
        assert_eq!(period_label(1_709_208_000, Period::Quarter), "2024-Q1");
    }
}
