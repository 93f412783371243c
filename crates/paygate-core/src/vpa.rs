//! UPI virtual payment addresses (SPEC A4): `^[a-zA-Z0-9._-]+@[a-zA-Z0-9]+$`.

use crate::payment::ForcedOutcome;

/// A validated VPA such as `customer@okhdfc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vpa(String);

impl Vpa {
    /// Longest accepted VPA, in bytes.
    pub const MAX_LEN: usize = 255;

    /// Parses a VPA: a handle of letters, digits, `.`, `_`, `-`, an `@`, and a provider of
    /// letters and digits.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() > Self::MAX_LEN {
            return None;
        }
        let (handle, provider) = s.split_once('@')?;
        let handle_ok = !handle.is_empty()
            && handle
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        let provider_ok =
            !provider.is_empty() && provider.bytes().all(|b| b.is_ascii_alphanumeric());
        (handle_ok && provider_ok).then(|| Self(s.to_owned()))
    }

    /// The VPA as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `success@…` and `failure@…` force the outcome in any mode.
    pub fn forced_outcome(&self) -> Option<ForcedOutcome> {
        ForcedOutcome::for_vpa(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn examples() {
        assert!(Vpa::parse("user@paytm").is_some());
        assert!(Vpa::parse("first.last_1-x@okhdfcbank").is_some());
        assert!(Vpa::parse("user@pay.tm").is_none());
        assert!(Vpa::parse("user@@paytm").is_none());
        assert!(Vpa::parse("@paytm").is_none());
        assert!(Vpa::parse("user@").is_none());
        assert!(Vpa::parse("user paytm").is_none());
        assert!(Vpa::parse("usér@paytm").is_none());
    }

    proptest! {
        #[test]
        fn matches_the_documented_pattern(s in "[a-zA-Z0-9._@ -]{0,12}") {
            let expected = match s.split_once('@') {
                Some((h, p)) => !h.is_empty() && !p.is_empty()
                    && h.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
                    && p.chars().all(|c| c.is_ascii_alphanumeric()),
                None => false,
            };
            prop_assert_eq!(Vpa::parse(&s).is_some(), expected);
        }
    }
}
