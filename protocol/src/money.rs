//! Money and quantities: integers only. Money is in minor units, quantities in thousandths.

/// Sum of one order line: `quantity_milli * price_minor / 1000`, rounded half to even.
/// Returns `None` on overflow or a negative input.
pub fn line_sum(quantity_milli: i64, price_minor: i64) -> Option<i64> {
    if quantity_milli < 0 || price_minor < 0 {
        return None;
    }
    let product = (quantity_milli as i128).checked_mul(price_minor as i128)?;
    let q = product / 1000;
    let r = product % 1000;
    let rounded = match r.cmp(&500) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    };
    i64::try_from(rounded).ok()
}

/// Total of an order from its line sums; `None` on overflow.
pub fn order_total(line_sums: impl IntoIterator<Item = i64>) -> Option<i64> {
    line_sums
        .into_iter()
        .try_fold(0i64, |acc, s| acc.checked_add(s))
}

/// Formats minor units as a decimal amount with two decimals ("12.34").
pub fn format_minor(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn line_sum_rounds_half_to_even() {
        assert_eq!(line_sum(1000, 1999), Some(1999));
        assert_eq!(line_sum(2500, 100), Some(250));
        assert_eq!(line_sum(500, 1), Some(0)); // 0.5 -> 0
        assert_eq!(line_sum(1500, 1), Some(2)); // 1.5 -> 2
        assert_eq!(line_sum(1501, 1), Some(2));
        assert_eq!(line_sum(-1, 1), None);
        assert_eq!(line_sum(i64::MAX, i64::MAX), None);
    }

    #[test]
    fn format_minor_shows_two_decimals() {
        assert_eq!(format_minor(12345), "123.45");
        assert_eq!(format_minor(5), "0.05");
        assert_eq!(format_minor(-250), "-2.50");
    }

    proptest! {
        #[test]
        fn whole_quantities_multiply_exactly(q in 0i64..100_000, p in 0i64..10_000_000) {
            prop_assert_eq!(line_sum(q * 1000, p), Some(q * p));
        }
    }
}
