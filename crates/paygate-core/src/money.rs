//! Money: amounts are integers in the currency's smallest unit (paise for INR), never floats,
//! and every arithmetic step is checked.

use std::fmt;

/// An amount in the smallest unit of its currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MinorUnit(i64);

impl MinorUnit {
    /// Zero.
    pub const ZERO: Self = Self(0);

    /// Wraps a raw amount.
    pub const fn new(value: i64) -> Self {
        Self(value)
    }

    /// The raw amount.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self)
    }

    /// `self - other`, or `None` on overflow.
    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.0.checked_sub(other.0).map(Self)
    }

    /// The amount in major units with two decimals, for display (`50000` → `"500.00"`).
    pub fn to_major_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl fmt::Display for MinorUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The amount of an order: at least [`OrderAmount::MIN`] and at most [`OrderAmount::MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderAmount(MinorUnit);

impl OrderAmount {
    /// The smallest amount an order may have (1.00 in a two-decimal currency).
    pub const MIN: i64 = 100;
    /// The largest amount an order may have: the largest integer a JSON number carries
    /// exactly in every client (2^53 − 1).
    pub const MAX: i64 = 9_007_199_254_740_991;

    /// Parses an order amount.
    pub fn parse(value: i64) -> Option<Self> {
        (Self::MIN..=Self::MAX)
            .contains(&value)
            .then_some(Self(MinorUnit(value)))
    }

    /// The amount.
    pub fn get(self) -> MinorUnit {
        self.0
    }
}

/// A currency: an active ISO 4217 alphabetic code, upper-case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Currency(&'static str);

impl Currency {
    /// The default currency.
    pub const INR: Self = Self("INR");

    /// Parses a currency code, case-insensitively; `None` if it is not an ISO 4217 code.
    pub fn parse(code: &str) -> Option<Self> {
        if code.len() != 3 {
            return None;
        }
        let upper = code.to_ascii_uppercase();
        ISO_4217
            .binary_search(&upper.as_str())
            .ok()
            .map(|i| Self(ISO_4217[i]))
    }

    /// The upper-case code.
    pub fn code(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Active ISO 4217 alphabetic codes, sorted.
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
    "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
    "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
    "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB",
    "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
    "VES", "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn currency_table_is_sorted_for_binary_search() {
        assert!(ISO_4217.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn currencies_parse_case_insensitively_and_unknown_codes_are_rejected() {
        assert_eq!(Currency::parse("inr"), Some(Currency::INR));
        assert_eq!(Currency::parse("USD").map(Currency::code), Some("USD"));
        assert_eq!(Currency::parse("XYZ"), None);
        assert_eq!(Currency::parse("INRR"), None);
        assert_eq!(Currency::parse(""), None);
    }

    #[test]
    fn order_amount_bounds() {
        assert!(OrderAmount::parse(99).is_none());
        assert!(OrderAmount::parse(100).is_some());
        assert!(OrderAmount::parse(OrderAmount::MAX).is_some());
        assert!(OrderAmount::parse(OrderAmount::MAX + 1).is_none());
        assert!(OrderAmount::parse(-100).is_none());
    }

    #[test]
    fn major_string_has_two_decimals() {
        assert_eq!(MinorUnit::new(50000).to_major_string(), "500.00");
        assert_eq!(MinorUnit::new(105).to_major_string(), "1.05");
        assert_eq!(MinorUnit::new(-7).to_major_string(), "-0.07");
    }

    proptest! {
        #[test]
        fn checked_arithmetic_matches_i128(a in any::<i64>(), b in any::<i64>()) {
            let wide = i128::from(a) + i128::from(b);
            let sum = MinorUnit::new(a).checked_add(MinorUnit::new(b));
            prop_assert_eq!(sum.map(|m| i128::from(m.get())), i64::try_from(wide).ok().map(i128::from));
            let wide = i128::from(a) - i128::from(b);
            let diff = MinorUnit::new(a).checked_sub(MinorUnit::new(b));
            prop_assert_eq!(diff.map(|m| i128::from(m.get())), i64::try_from(wide).ok().map(i128::from));
        }
    }
}
