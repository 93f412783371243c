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

    /// The amount in major units with as many decimals as the currency has (none for JPY,
    /// three for KWD) and digit grouping: the Indian system (`1,23,45,678.00`: the last three
    /// digits, then pairs) for INR, groups of three (`12,345,678.00`) for every other currency.
    pub fn to_grouped_string(self, currency: Currency) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let exponent = currency.exponent();
        let unit = 10u64.pow(exponent);
        let whole = (abs / unit).to_string();
        let indian = currency == Currency::INR;
        let mut grouped = String::with_capacity(whole.len() + whole.len() / 2);
        for (i, digit) in whole.chars().enumerate() {
            let left = whole.len() - i;
            // A comma before the last three digits, then before every second (Indian) or
            // third digit further left.
            let boundary = if indian {
                left >= 3 && (left - 3).is_multiple_of(2)
            } else {
                left.is_multiple_of(3)
            };
            if i > 0 && boundary {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        if exponent == 0 {
            return format!("{sign}{grouped}");
        }
        let width = exponent as usize;
        format!("{sign}{grouped}.{:0width$}", abs % unit)
    }
}

/// An amount as people read it: `₹12,34,567.00` for INR, `USD 1,234,567.00` otherwise (the
/// code first), with the currency's digit grouping (see [`MinorUnit::to_grouped_string`]).
/// An unknown currency code is shown as given, with groups of three.
pub fn display_amount(amount: impl Into<MinorUnit>, currency: &str) -> String {
    let amount = amount.into().get();
    let parsed = Currency::parse(currency);
    let sign = if amount < 0 { "-" } else { "" };
    let abs = MinorUnit::new(i64::try_from(amount.unsigned_abs()).unwrap_or(i64::MAX));
    let grouped = abs.to_grouped_string(parsed.unwrap_or(Currency::USD));
    match parsed {
        Some(Currency::INR) => format!("{sign}₹{grouped}"),
        _ => format!("{sign}{currency} {grouped}"),
    }
}

impl From<i64> for MinorUnit {
    fn from(value: i64) -> Self {
        Self(value)
    }
}

impl From<MinorUnit> for i64 {
    fn from(value: MinorUnit) -> i64 {
        value.0
    }
}

impl PartialEq<i64> for MinorUnit {
    fn eq(&self, other: &i64) -> bool {
        self.0 == *other
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
    /// US dollars.
    pub const USD: Self = Self("USD");

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

    /// An amount typed in major units (`500`, `500.5`, `1,250.75`) in minor units: at most the
    /// currency's exponent of decimals, no sign; `None` when it is not such a number or does
    /// not fit.
    pub fn parse_major(self, text: &str) -> Option<i64> {
        let text: String = text.trim().chars().filter(|c| *c != ',').collect();
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        let exponent = self.exponent() as usize;
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > exponent {
            return None;
        }
        if text.contains('.') && fraction.is_empty() {
            return None;
        }
        let scale = 10i64.checked_pow(self.exponent())?;
        let minor = format!("{fraction:0<exponent$}");
        let minor: i64 = if minor.is_empty() {
            0
        } else {
            minor.parse().ok()?
        };
        whole
            .parse::<i64>()
            .ok()?
            .checked_mul(scale)?
            .checked_add(minor)
    }

    /// Digits after the decimal point of the currency's major unit (ISO 4217's minor unit):
    /// an amount in minor units is `major × 10^exponent`.
    pub fn exponent(self) -> u32 {
        match self.0 {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            "CLF" | "UYW" => 4,
            _ => 2,
        }
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
    fn major_units_parse_to_the_currencys_exponent() {
        let inr = Currency::INR;
        assert_eq!(inr.parse_major("500"), Some(50_000));
        assert_eq!(inr.parse_major(" 1,250.75 "), Some(125_075));
        assert_eq!(inr.parse_major("0.5"), Some(50));
        assert_eq!(inr.parse_major("12.345"), None);
        assert_eq!(inr.parse_major("-1"), None);
        assert_eq!(inr.parse_major("1."), None);
        assert_eq!(inr.parse_major(".5"), None);
        assert_eq!(inr.parse_major("abc"), None);
        assert_eq!(inr.parse_major("99999999999999999999"), None);
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(jpy.parse_major("500"), Some(500));
        assert_eq!(jpy.parse_major("500.5"), None);
    }

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

    #[test]
    fn rupees_use_indian_grouping_and_other_currencies_groups_of_three() {
        let inr = |n| display_amount(n, "INR");
        assert_eq!(inr(129_900), "₹1,299.00");
        assert_eq!(inr(123_456_700), "₹12,34,567.00");
        assert_eq!(inr(1_234_567_801), "₹1,23,45,678.01");
        assert_eq!(inr(99_999), "₹999.99");
        assert_eq!(inr(100_000), "₹1,000.00");
        assert_eq!(inr(10_000_000), "₹1,00,000.00");
        assert_eq!(inr(5), "₹0.05");
        assert_eq!(inr(-123_456_700), "-₹12,34,567.00");
        assert_eq!(display_amount(123_456_700, "USD"), "USD 1,234,567.00");
        assert_eq!(display_amount(100_000_000, "EUR"), "EUR 1,000,000.00");
        assert_eq!(display_amount(1_205, "usd"), "usd 12.05");
    }

    #[test]
    fn amounts_show_as_many_decimals_as_their_currency_has() {
        assert_eq!(display_amount(1_500, "JPY"), "JPY 1,500");
        assert_eq!(display_amount(1_234_567, "KWD"), "KWD 1,234.567");
        assert_eq!(display_amount(5, "KWD"), "KWD 0.005");
        assert_eq!(display_amount(-250, "INR"), "-₹2.50");
        assert_eq!(Currency::parse("jpy").unwrap().exponent(), 0);
        assert_eq!(Currency::INR.exponent(), 2);
    }

    proptest! {
        #[test]
        fn grouping_only_inserts_commas_where_the_system_puts_them(n in 0i64..i64::MAX) {
            for currency in [Currency::INR, Currency::USD] {
                let s = MinorUnit::new(n).to_grouped_string(currency);
                let (whole, fraction) = s.split_once('.').unwrap();
                prop_assert_eq!(format!("{}.{}", whole.replace(',', ""), fraction), MinorUnit::new(n).to_major_string());
                let groups: Vec<&str> = whole.split(',').collect();
                let last = groups.len() - 1;
                for (i, g) in groups.iter().enumerate() {
                    let want = if i == last { 3 } else if currency == Currency::INR { 2 } else { 3 };
                    if i == 0 { prop_assert!(!g.is_empty() && g.len() <= want) } else { prop_assert_eq!(g.len(), want) }
                }
            }
        }

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
