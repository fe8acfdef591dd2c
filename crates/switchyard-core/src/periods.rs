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

/// Day index of a civil date (inverse of [`civil_from_days`]).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats Unix milliseconds as ISO-8601 UTC with seconds: `2026-11-23T01:00:00Z`.
pub fn to_iso8601(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS);
    let secs = ms.rem_euclid(DAY_MS) / 1000;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Parses an ISO-8601 UTC instant with seconds (`2026-11-23T01:00:00Z`, optional fraction, `Z`
/// or `+00:00`) into Unix milliseconds.
pub fn parse_iso8601(text: &str) -> Option<i64> {
    let text = text.trim();
    let body = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix("+00:00"))?;
    let (date, time) = body.split_once('T')?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    let (time, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut time_parts = time.splitn(3, ':');
    let hour: i64 = time_parts.next()?.parse().ok()?;
    let minute: i64 = time_parts.next()?.parse().ok()?;
    let second: i64 = time_parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || day == 0 || day > 31 || hour > 23 || minute > 59 || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if civil_from_days(days) != (year, month, day) {
        return None;
    }
    let millis: i64 = if fraction.is_empty() {
        0
    } else if fraction.bytes().all(|b| b.is_ascii_digit()) {
        format!("{:0<3}", &fraction[..fraction.len().min(3)])
            .parse()
            .ok()?
    } else {
        return None;
    };
    Some(days * DAY_MS + (hour * 3600 + minute * 60 + second) * 1000 + millis)
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
        assert_eq!(
            Periods::at(monday + 6 * DAY_MS + DAY_MS - 1).week,
            start.week
        );
        assert_eq!(start.month, 2026 * 12 + 10);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
    }

    #[test]
    fn iso8601_round_trip() {
        let t = 20_780 * DAY_MS + 3_723_000;
        assert_eq!(to_iso8601(t), "2026-11-23T01:02:03Z");
        assert_eq!(parse_iso8601("2026-11-23T01:02:03Z"), Some(t));
        assert_eq!(parse_iso8601("2026-11-23T01:02:03.5+00:00"), Some(t + 500));
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-11-23",
            "2026-11-23T01:02:03",
            "x",
            "2026-13-01T00:00:00Z",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }
}
