//! Card validation (SPEC A4). The full number and the CVV never leave [`Card::parse`]: the
//! parsed [`Card`] keeps only the network, the last four digits, the expiry and the holder.

use std::fmt;

use crate::payment::ForcedOutcome;

/// A card network, from the number's prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardNetwork {
    Visa,
    Mastercard,
    Amex,
    Rupay,
    Unknown,
}

impl CardNetwork {
    /// Detects the network of a digits-only number; first match wins: `4` visa, `51`–`55`
    /// mastercard, `34`/`37` amex, `60`/`65`/`81`–`89` rupay, anything else unknown.
    pub fn detect(digits: &str) -> Self {
        let two: u8 = digits.get(..2).and_then(|p| p.parse().ok()).unwrap_or(0);
        if digits.starts_with('4') {
            Self::Visa
        } else if (51..=55).contains(&two) {
            Self::Mastercard
        } else if two == 34 || two == 37 {
            Self::Amex
        } else if two == 60 || two == 65 || (81..=89).contains(&two) {
            Self::Rupay
        } else {
            Self::Unknown
        }
    }

    /// The lower-case name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Visa => "visa",
            Self::Mastercard => "mastercard",
            Self::Amex => "amex",
            Self::Rupay => "rupay",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for CardNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a card was refused. Messages never contain the number or the CVV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardError {
    /// Not 13–19 digits (after removing spaces and dashes) or not Luhn-valid.
    InvalidNumber,
    /// The CVV is not 3–4 digits.
    InvalidCvv,
    /// Month not 1–12 or year not 2 or 4 digits.
    InvalidExpiry,
    /// The expiry month is in the past.
    Expired,
    /// The holder name is empty or longer than [`Card::HOLDER_NAME_MAX`] characters.
    InvalidHolderName,
}

impl CardError {
    /// A description for the API error body.
    pub fn description(self) -> &'static str {
        match self {
            Self::InvalidNumber => "Card number is invalid",
            Self::InvalidCvv => "CVV must be 3 or 4 digits",
            Self::InvalidExpiry => "Card expiry date is invalid",
            Self::Expired => "Card has expired",
            Self::InvalidHolderName => "holder_name must be 1 to 100 characters",
        }
    }
}

/// The raw card fields of a payment request, borrowed from the request body.
#[derive(Clone, Copy)]
pub struct CardInput<'a> {
    pub number: &'a str,
    pub expiry_month: &'a str,
    pub expiry_year: &'a str,
    pub cvv: &'a str,
    pub holder_name: &'a str,
}

impl fmt::Debug for CardInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardInput { .. }")
    }
}

/// A validated card, reduced to what may be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Card {
    pub network: CardNetwork,
    pub last4: String,
    pub expiry_month: u32,
    pub expiry_year: i32,
    pub holder_name: String,
    /// Set for the documented test cards, which force an outcome in any mode.
    pub forced_outcome: Option<ForcedOutcome>,
}

impl Card {
    /// Longest accepted holder name, in characters.
    pub const HOLDER_NAME_MAX: usize = 100;

    /// Validates the card fields; `today` is the current `(year, month)`.
    pub fn parse(input: CardInput<'_>, today: (i32, u32)) -> Result<Self, CardError> {
        let digits = normalize_number(input.number).ok_or(CardError::InvalidNumber)?;
        if !luhn_valid(&digits) {
            return Err(CardError::InvalidNumber);
        }
        let (year, month) =
            parse_expiry(input.expiry_month, input.expiry_year).ok_or(CardError::InvalidExpiry)?;
        if (year, month) < today {
            return Err(CardError::Expired);
        }
        if !cvv_valid(input.cvv) {
            return Err(CardError::InvalidCvv);
        }
        let holder_name = input.holder_name.trim();
        if holder_name.is_empty() || holder_name.chars().count() > Self::HOLDER_NAME_MAX {
            return Err(CardError::InvalidHolderName);
        }
        Ok(Self {
            network: CardNetwork::detect(&digits),
            last4: digits[digits.len() - 4..].to_owned(),
            expiry_month: month,
            expiry_year: year,
            holder_name: holder_name.to_owned(),
            forced_outcome: ForcedOutcome::for_card_number(&digits),
        })
    }
}

/// Removes spaces and dashes; `Some(digits)` if what remains is 13–19 ASCII digits.
pub fn normalize_number(number: &str) -> Option<String> {
    let digits: String = number.chars().filter(|c| *c != ' ' && *c != '-').collect();
    ((13..=19).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some(digits)
}

/// The Luhn checksum of a digits-only string (false for an empty or non-digit string).
pub fn luhn_valid(digits: &str) -> bool {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if !i.is_multiple_of(2) {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Parses an expiry: month `1`–`12` (one or two digits), year of 2 digits (20YY) or 4.
/// Returns `(year, month)`.
pub fn parse_expiry(month: &str, year: &str) -> Option<(i32, u32)> {
    let month = month.trim();
    let year = year.trim();
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(month) || month.len() > 2 || !all_digits(year) {
        return None;
    }
    let m: u32 = month.parse().ok()?;
    if !(1..=12).contains(&m) {
        return None;
    }
    let y: i32 = match year.len() {
        2 => 2000 + year.parse::<i32>().ok()?,
        4 => year.parse().ok()?,
        _ => return None,
    };
    Some((y, m))
}

/// A CVV is 3 or 4 ASCII digits.
pub fn cvv_valid(cvv: &str) -> bool {
    (3..=4).contains(&cvv.len()) && cvv.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const TODAY: (i32, u32) = (2026, 11);

    fn input<'a>(number: &'a str, month: &'a str, year: &'a str, cvv: &'a str) -> CardInput<'a> {
        CardInput {
            number,
            expiry_month: month,
            expiry_year: year,
            cvv,
            holder_name: "A Customer",
        }
    }

    /// Appends the Luhn check digit to a digit string.
    fn with_check_digit(payload: &str) -> String {
        (0..10)
            .map(|d| format!("{payload}{d}"))
            .find(|n| luhn_valid(n))
            .expect("one check digit fits")
    }

    #[test]
    fn known_numbers_pass_luhn_and_a_changed_digit_fails() {
        for n in [
            "4111111111111111",
            "5555555555554444",
            "378282246310005",
            "6011111111111117",
        ] {
            assert!(luhn_valid(n), "{n}");
        }
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid(""));
        assert!(!luhn_valid("41111a1111111111"));
    }

    #[test]
    fn network_detection_follows_the_first_matching_prefix() {
        assert_eq!(CardNetwork::detect("4111111111111111"), CardNetwork::Visa);
        assert_eq!(
            CardNetwork::detect("5105105105105100"),
            CardNetwork::Mastercard
        );
        assert_eq!(
            CardNetwork::detect("5555555555554444"),
            CardNetwork::Mastercard
        );
        assert_eq!(
            CardNetwork::detect("5612345678901234"),
            CardNetwork::Unknown
        );
        assert_eq!(CardNetwork::detect("378282246310005"), CardNetwork::Amex);
        assert_eq!(CardNetwork::detect("341111111111111"), CardNetwork::Amex);
        assert_eq!(CardNetwork::detect("6011111111111117"), CardNetwork::Rupay);
        assert_eq!(CardNetwork::detect("6522222222222222"), CardNetwork::Rupay);
        assert_eq!(CardNetwork::detect("8112345678901234"), CardNetwork::Rupay);
        assert_eq!(CardNetwork::detect("8912345678901234"), CardNetwork::Rupay);
        assert_eq!(
            CardNetwork::detect("9012345678901234"),
            CardNetwork::Unknown
        );
        assert_eq!(
            CardNetwork::detect("3530111333300000"),
            CardNetwork::Unknown
        );
    }

    #[test]
    fn spaces_and_dashes_are_stripped_and_other_characters_refused() {
        assert_eq!(
            normalize_number("4111 1111-1111 1111").as_deref(),
            Some("4111111111111111")
        );
        assert_eq!(normalize_number("4111.1111.1111.1111"), None);
        assert_eq!(normalize_number("411111111111"), None);
        assert_eq!(normalize_number("41111111111111111111"), None);
    }

    #[test]
    fn expiry_accepts_two_and_four_digit_years_and_rejects_past_months() {
        assert_eq!(parse_expiry("12", "30"), Some((2030, 12)));
        assert_eq!(parse_expiry("1", "2031"), Some((2031, 1)));
        assert_eq!(parse_expiry("01", "2031"), Some((2031, 1)));
        assert_eq!(parse_expiry("13", "2030"), None);
        assert_eq!(parse_expiry("0", "2030"), None);
        assert_eq!(parse_expiry("12", "203"), None);
        assert_eq!(parse_expiry("12", "+30"), None);
        let current = Card::parse(input("4111111111111111", "11", "2026", "123"), TODAY);
        assert!(current.is_ok(), "the current month is still valid");
        let last = Card::parse(input("4111111111111111", "10", "26", "123"), TODAY);
        assert_eq!(last, Err(CardError::Expired));
        let month = Card::parse(input("4111111111111111", "13", "30", "123"), TODAY);
        assert_eq!(month, Err(CardError::InvalidExpiry));
    }

    #[test]
    fn parsed_card_keeps_only_network_and_last_four() {
        let card = Card::parse(input("5555-5555-5555-4444", "12", "30", "123"), TODAY)
            .expect("valid card");
        assert_eq!(card.network, CardNetwork::Mastercard);
        assert_eq!(card.last4, "4444");
        let debug = format!("{card:?} {:?}", input("5555555555554444", "1", "30", "123"));
        assert!(!debug.contains("5555555555554444") && !debug.contains("123\""));
    }

    #[test]
    fn cvv_and_holder_name_are_checked() {
        let bad_cvv = Card::parse(input("4111111111111111", "12", "30", "12"), TODAY);
        assert_eq!(bad_cvv, Err(CardError::InvalidCvv));
        let bad_cvv = Card::parse(input("4111111111111111", "12", "30", "12a"), TODAY);
        assert_eq!(bad_cvv, Err(CardError::InvalidCvv));
        let mut blank = input("4111111111111111", "12", "30", "1234");
        blank.holder_name = "  ";
        assert_eq!(Card::parse(blank, TODAY), Err(CardError::InvalidHolderName));
    }

    proptest! {
        #[test]
        fn appending_the_check_digit_makes_any_payload_luhn_valid(payload in "[0-9]{12,18}") {
            let n = with_check_digit(&payload);
            prop_assert!(luhn_valid(&n));
            // Changing any single digit breaks the checksum.
            let bytes = n.as_bytes();
            for i in 0..bytes.len() {
                let mut other = bytes.to_vec();
                other[i] = b'0' + (bytes[i] - b'0' + 1) % 10;
                prop_assert!(!luhn_valid(std::str::from_utf8(&other).unwrap()));
            }
        }

        #[test]
        fn network_depends_only_on_the_prefix(p in 0u8..100, rest in "[0-9]{11,17}") {
            let n = format!("{p:02}{rest}");
            let expected = match p {
                40..=49 => CardNetwork::Visa,
                51..=55 => CardNetwork::Mastercard,
                34 | 37 => CardNetwork::Amex,
                60 | 65 | 81..=89 => CardNetwork::Rupay,
                _ => CardNetwork::Unknown,
            };
            prop_assert_eq!(CardNetwork::detect(&n), expected);
        }

        #[test]
        fn expiry_is_valid_exactly_from_the_current_month(y in 2000i32..2100, m in 1u32..=12) {
            let result = Card::parse(
                input("4111111111111111", &m.to_string(), &y.to_string(), "123"),
                TODAY,
            );
            if (y, m) >= TODAY {
                prop_assert!(result.is_ok());
            } else {
                prop_assert_eq!(result, Err(CardError::Expired));
            }
        }

        #[test]
        fn two_digit_years_mean_twenty_yy(yy in 0u32..100, m in 1u32..=12) {
            prop_assert_eq!(parse_expiry(&m.to_string(), &format!("{yy:02}")), Some((2000 + yy as i32, m)));
        }
    }
}
