//! How numbers, money, distances and times look on screen.
use fieldsync_protocol::money::format_minor;

/// "1234.50 UAH".
pub fn money(minor: i64, currency: &str) -> String {
    if currency.is_empty() {
        format_minor(minor)
    } else {
        format!("{} {currency}", format_minor(minor))
    }
}

/// Thousandths as the agent types them: 2000 -> "2", 2500 -> "2.5".
pub fn qty(milli: i64) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    let m = milli.unsigned_abs();
    let (int, frac) = (m / 1000, m % 1000);
    if frac == 0 {
        format!("{sign}{int}")
    } else {
        let f = format!("{frac:03}");
        format!("{sign}{int}.{}", f.trim_end_matches('0'))
    }
}

/// Parses a quantity typed by the agent ("2", "2.5", "2,5") into thousandths; empty is 0.
/// Negative, over-precise or absurd quantities are refused.
pub fn parse_qty(s: &str) -> Option<i64> {
    let s = s.trim().replace(',', ".");
    if s.is_empty() {
        return Some(0);
    }
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    if frac.len() > 3
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || (int.is_empty() && frac.is_empty())
        || int.len() > 7
    {
        return None;
    }
    let int: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<3}").parse().ok()?
    };
    Some(int * 1000 + frac)
}

/// "35 m", "1.2 km".
pub fn distance(m: f64) -> String {
    if m < 1000.0 {
        format!("{} m", m.round() as i64)
    } else if m < 100_000.0 {
        format!("{:.1} km", m / 1000.0)
    } else {
        format!("{} km", (m / 1000.0).round() as i64)
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// "2026-11-23" for a moment of the wall clock (`Engine::local_ms`).
pub fn date(ms: i64) -> String {
    let (y, m, d) = civil(ms.div_euclid(86_400_000));
    format!("{y:04}-{m:02}-{d:02}")
}

/// "14:05".
pub fn time(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}", secs / 3600, secs % 3600 / 60)
}

/// "2026-11-23 14:05".
pub fn date_time(ms: i64) -> String {
    format!("{} {}", date(ms), time(ms))
}

/// Whole minutes between two moments (never negative).
pub fn minutes(from_ms: i64, to_ms: i64) -> i64 {
    ((to_ms - from_ms) / 60_000).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_round_trip() {
        for (s, m) in [
            ("2", 2000),
            ("2.5", 2500),
            ("2,25", 2250),
            ("0.125", 125),
            ("", 0),
        ] {
            assert_eq!(parse_qty(s), Some(m), "{s}");
        }
        for bad in ["-1", "1.2345", "abc", ".", "1e3", "99999999"] {
            assert_eq!(parse_qty(bad), None, "{bad}");
        }
        assert_eq!(qty(2000), "2");
        assert_eq!(qty(2500), "2.5");
        assert_eq!(qty(125), "0.125");
    }

    #[test]
    fn dates_and_distances() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date_time(1_795_392_300_000), "2026-11-23 00:05");
        assert_eq!(date(951_782_400_000), "2000-02-29");
        assert_eq!(distance(34.6), "35 m");
        assert_eq!(distance(1234.0), "1.2 km");
        assert_eq!(money(123_450, "UAH"), "1234.50 UAH");
    }
}
