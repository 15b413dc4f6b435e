//! JavaScript's `Date.prototype.toString()` in UTC, the form Express Gateway stores in
//! `createdAt` / `updatedAt`: `Mon Nov 23 2026 16:56:02 GMT+0000 (Coordinated Universal Time)`.

/// The date of `unix_seconds` (seconds since 1970-01-01 UTC) as JavaScript prints it in UTC.
pub fn js_date_string(unix_seconds: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let month_name = MONTHS[(month as usize).saturating_sub(1).min(11)];
    format!(
        "{weekday} {month_name} {day:02} {year:04} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// Now, as [`js_date_string`].
pub fn now_js() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    js_date_string(secs)
}

/// Year, month (1-12), day (1-31) of a count of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, proleptic Gregorian calendar).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_print_as_javascript_does() {
        assert_eq!(
            js_date_string(0),
            "Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)"
        );
        // new Date(Date.UTC(2026, 10, 23, 16, 56, 2)).toString() with TZ=UTC
        assert_eq!(
            js_date_string(1_795_452_962),
            "Mon Nov 23 2026 16:56:02 GMT+0000 (Coordinated Universal Time)"
        );
        assert_eq!(
            js_date_string(951_782_400),
            "Tue Feb 29 2000 00:00:00 GMT+0000 (Coordinated Universal Time)"
        );
    }
}
