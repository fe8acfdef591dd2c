//! UTC accounting periods: the day, the week (from Monday) and the month of an instant.

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// Indexes of the UTC day, ISO week (weeks start on Monday) and month containing an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    /// Days since 1970-01-01.
    pub day: i64,
    /// Weeks since the Monday before 1970-01-01.
    pub week: i64,
    /// `year * 12 + (month - 1)`.
    pub month: i64,
}

/// Year, month (1-12) and day (1-31) of a day index (Howard Hinnant's civil-from-days).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
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

impl Periods {
    /// The periods containing `now_ms` (Unix milliseconds).
    pub fn at(now_ms: i64) -> Periods {
        let day = now_ms.div_euclid(DAY_MS);
        // 1970-01-01 was a Thursday; shifting by 3 makes weeks start on Monday.
        let week = (day + 3).div_euclid(7);
        let (year, month, _) = civil_from_days(day);
        Periods {
            day,
            week,
            month: year * 12 + i64::from(month) - 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_table() {
        // 2026-11-23 is a Monday, 2026-11-22 a Sunday.
        let monday = 20_780 * DAY_MS;
        assert_eq!(civil_from_days(20_780), (2026, 11, 23));
        let sunday = Periods::at(monday - 1);
        let start = Periods::at(monday);
        assert_eq!(start.week, sunday.week + 1);
        assert_eq!(start.day, sunday.day + 1);
        assert_eq!(Periods::at(monday + 6 * DAY_MS + DAY_MS - 1).week, start.week);
        assert_eq!(start.month, 2026 * 12 + 10);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
