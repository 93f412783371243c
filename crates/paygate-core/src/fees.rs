//! Fees: a percentage of an amount in basis points (0.01 %), rounded half up to the minor unit.
//! The store computes the same rounding in SQL when a payment becomes final (split by 10 000 so
//! nothing overflows); this is its reference, with the defaults and the parser of the
//! percentages merchants are priced with.

/// The fee when a merchant has no pricing for a method: 2 %.
pub const DEFAULT_FEE_BPS: i64 = 200;
/// The tax on the fee when a merchant has no pricing for a method: GST 18 %.
pub const DEFAULT_TAX_BPS: i64 = 1_800;
/// The largest rate: 100 %.
pub const MAX_BPS: i64 = 10_000;

/// `amount × bps / 10 000`, rounded half up; `None` for a negative amount or a rate outside
/// 0..=10 000.
pub fn percent_half_up(amount: i64, bps: i64) -> Option<i64> {
    if amount < 0 || !(0..=MAX_BPS).contains(&bps) {
        return None;
    }
    let exact = i128::from(amount) * i128::from(bps);
    i64::try_from((exact + 5_000) / 10_000).ok()
}

/// The fee and the tax on it for `amount`.
pub fn fee_and_tax(amount: i64, fee_bps: i64, tax_bps: i64) -> Option<(i64, i64)> {
    let fee = percent_half_up(amount, fee_bps)?;
    Some((fee, percent_half_up(fee, tax_bps)?))
}

/// A percentage as typed (`2`, `2.5`, `18.00`) in basis points: at most two decimals, at most
/// 100.
pub fn parse_percent(text: &str) -> Option<i64> {
    let text = text.trim().trim_end_matches('%').trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (text.contains('.') && !digits(fraction)) || fraction.len() > 2 {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
    let bps = whole.checked_mul(100)?.checked_add(fraction)?;
    (bps <= MAX_BPS).then_some(bps)
}

/// Basis points as a percentage for people: `200` → `2.00 %`.
pub fn show_percent(bps: i64) -> String {
    format!("{}.{:02} %", bps / 100, bps % 100)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_defaults_round_half_up_to_the_paisa() {
        // ₹500.00: 2 % is ₹10.00, GST 18 % of it ₹1.80.
        assert_eq!(fee_and_tax(50_000, 200, 1_800), Some((1_000, 180)));
        // ₹1.25: 2 % is 2.5 paise → 3; 18 % of 3 is 0.54 → 1.
        assert_eq!(fee_and_tax(125, 200, 1_800), Some((3, 1)));
        // ₹123.45: 246.9 → 247; 44.46 → 44.
        assert_eq!(fee_and_tax(12_345, 200, 1_800), Some((247, 44)));
        assert_eq!(percent_half_up(-1, 200), None);
        assert_eq!(percent_half_up(100, 10_001), None);
        assert_eq!(
            percent_half_up(9_007_199_254_740_991, 10_000),
            Some(9_007_199_254_740_991)
        );
    }

    #[test]
    fn percentages_parse_to_basis_points() {
        assert_eq!(parse_percent("2"), Some(200));
        assert_eq!(parse_percent("2.5"), Some(250));
        assert_eq!(parse_percent("18.00 %"), Some(1_800));
        assert_eq!(parse_percent("100"), Some(10_000));
        assert_eq!(parse_percent("100.01"), None);
        assert_eq!(parse_percent("1.234"), None);
        assert_eq!(parse_percent("-1"), None);
        assert_eq!(parse_percent("."), None);
        assert_eq!(parse_percent("abc"), None);
        assert_eq!(show_percent(250), "2.50 %");
    }

    proptest! {
        /// What the store computes in SQL without overflow (quotient and remainder by 10 000)
        /// is this exact rounding.
        #[test]
        fn the_split_the_store_uses_is_exact(amount in 0i64..=9_007_199_254_740_991, bps in 0i64..=10_000) {
            let split = (amount / 10_000) * bps + ((amount % 10_000) * bps + 5_000) / 10_000;
            prop_assert_eq!(Some(split), percent_half_up(amount, bps));
        }
    }
}
