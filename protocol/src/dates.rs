//! Calendar dates as the wire carries them: ISO `YYYY-MM-DD` strings, parsed and computed with
//! `jiff`. Day numbers (days since 1970-01-01) are what storage and spreadsheets count in.
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// Parses a strict `YYYY-MM-DD` date; anything else (other layouts, 2026-02-29) is `None`.
pub fn parse(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !b[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.parse().ok()
}

/// Whether `s` is a strict `YYYY-MM-DD` date.
pub fn is_date(s: &str) -> bool {
    parse(s).is_some()
}

/// `YYYY-MM-DD`.
pub fn format(d: Date) -> String {
    d.to_string()
}

const EPOCH: Date = Date::constant(1970, 1, 1);

/// Days since 1970-01-01.
pub fn day_number(d: Date) -> i64 {
    (d - EPOCH).get_days() as i64
}

/// The date of a day number; `None` outside the years -9999..=9999.
pub fn from_day_number(days: i64) -> Option<Date> {
    let days = i32::try_from(days).ok()?;
    EPOCH.checked_add(jiff::Span::new().days(days)).ok()
}

/// Day number of a strict `YYYY-MM-DD` string.
pub fn parse_day_number(s: &str) -> Option<i64> {
    parse(s).map(day_number)
}

/// `YYYY-MM-DD` of a day number (the epoch for one out of range).
pub fn format_day_number(days: i64) -> String {
    format(from_day_number(days).unwrap_or(EPOCH))
}

/// The UTC day number of a Unix time in milliseconds.
pub fn day_of_ms(ms: i64) -> i64 {
    ms.div_euclid(86_400_000)
}

/// The calendar date of a Unix time in milliseconds in a time zone (IANA name; UTC when the
/// name is unknown or empty).
pub fn date_at(ms: i64, tz: &str) -> Date {
    let zone = zone(tz);
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(zone)
        .date()
}

/// The first millisecond of a calendar day in a time zone (IANA name; UTC when unknown).
pub fn day_start_ms(d: Date, tz: &str) -> Option<i64> {
    Some(d.to_zoned(zone(tz)).ok()?.timestamp().as_millisecond())
}

/// The UTC offset in minutes of this machine's time zone (the `TZ` variable or the system's
/// setting; UTC when neither is known) at a Unix time in milliseconds.
pub fn system_utc_offset_min(ms: i64) -> i32 {
    let at = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let zone = TimeZone::try_system().unwrap_or(TimeZone::UTC);
    zone.to_offset(at).seconds() / 60
}

/// The calendar day number of a Unix time in milliseconds at a UTC offset in minutes.
pub fn local_day_of_ms(ms: i64, utc_offset_min: i32) -> i64 {
    day_of_ms(ms + i64::from(utc_offset_min) * 60_000)
}

/// The time zone of an IANA name, UTC when unknown.
pub fn zone(tz: &str) -> TimeZone {
    if tz.is_empty() {
        return TimeZone::UTC;
    }
    TimeZone::get(tz).unwrap_or(TimeZone::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_dates_round_trip_through_day_numbers() {
        assert_eq!(parse_day_number("1970-01-01"), Some(0));
        assert_eq!(
            format_day_number(parse_day_number("2026-11-22").unwrap()),
            "2026-11-22"
        );
        assert_eq!(parse_day_number("1969-12-31"), Some(-1));
        assert!(is_date("2024-02-29"));
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "yesterday",
            "20260101",
            "2026-1-01",
            "+02026-01-01",
            "2026-01-01T00:00",
            "",
        ] {
            assert!(!is_date(bad), "{bad}");
        }
        // 2026-12-01 00:30 in Kyiv is still 2026-11-30 in UTC.
        let ms = 1_764_541_800_000 + 365 * 86_400_000;
        assert_eq!(format(date_at(ms, "UTC")), "2026-11-30");
        assert_eq!(format(date_at(ms, "Europe/Kyiv")), "2026-12-01");
        assert_eq!(format(date_at(ms, "Not/AZone")), "2026-11-30");
        let dec1 = parse("2026-12-01").unwrap();
        assert_eq!(day_start_ms(dec1, "Europe/Kyiv"), Some(ms - 30 * 60_000));
    }
}
