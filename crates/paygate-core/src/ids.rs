//! Public identifiers: a fixed prefix and 16 characters of `[A-Za-z0-9]` drawn from a CSPRNG
//! (rand's thread generator, a ChaCha stream reseeded from the operating system).

use std::fmt;

use rand::distr::{Alphanumeric, SampleString};

/// Length of the random part of every prefixed id.
pub const RANDOM_LEN: usize = 16;

/// A new random id: `prefix` followed by [`RANDOM_LEN`] alphanumeric characters.
pub fn random_id(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + RANDOM_LEN);
    id.push_str(prefix);
    id.push_str(&Alphanumeric.sample_string(&mut rand::rng(), RANDOM_LEN));
    id
}

/// Whether `s` is `prefix` followed by exactly [`RANDOM_LEN`] ASCII alphanumerics.
pub fn has_id_shape(prefix: &str, s: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == RANDOM_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh random id.
            pub fn generate() -> Self {
                Self(random_id($prefix))
            }

            /// Parses an id, accepting only the exact shape this kind of id has.
            pub fn parse(s: &str) -> Option<Self> {
                has_id_shape($prefix, s).then(|| Self(s.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// An order id, `order_` + 16 alphanumerics.
    OrderId,
    "order_"
);
prefixed_id!(
    /// A payment id, `pay_` + 16 alphanumerics.
    PaymentId,
    "pay_"
);
prefixed_id!(
    /// A refund id, `rfnd_` + 16 alphanumerics.
    RefundId,
    "rfnd_"
);
prefixed_id!(
    /// A payment link id, `plink_` + 16 alphanumerics.
    PaymentLinkId,
    "plink_"
);
prefixed_id!(
    /// A settlement id, `setl_` + 16 alphanumerics.
    SettlementId,
    "setl_"
);
prefixed_id!(
    /// A reconciliation id, `recon_` + 16 alphanumerics.
    ReconciliationId,
    "recon_"
);
prefixed_id!(
    /// An event id, `evt_` + 16 alphanumerics; stable for de-duplication by receivers.
    EventId,
    "evt_"
);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn generated_ids_have_the_documented_shape() {
        for _ in 0..1000 {
            let id = PaymentId::generate();
            assert!(id.as_str().starts_with("pay_"));
            assert_eq!(id.as_str().len(), 4 + RANDOM_LEN);
            assert!(PaymentId::parse(id.as_str()).is_some());
        }
    }

    #[test]
    fn generated_ids_do_not_repeat() {
        let ids: std::collections::HashSet<_> = (0..10_000).map(|_| OrderId::generate()).collect();
        assert_eq!(ids.len(), 10_000);
    }

    #[test]
    fn ids_of_another_kind_are_rejected() {
        let order = OrderId::generate();
        assert!(PaymentId::parse(order.as_str()).is_none());
        assert!(RefundId::parse("rfnd_short").is_none());
        assert!(RefundId::parse("rfnd_abcdefghijklmnop").is_some());
        assert!(RefundId::parse("rfnd_abcdefghijklmn-p").is_none());
        assert!(RefundId::parse("rfnd_abcdefghijklmnopq").is_none());
    }

    proptest! {
        #[test]
        fn parse_accepts_exactly_prefix_plus_sixteen_alphanumerics(s in "\\PC{0,30}") {
            let expected = s.len() == 4 + RANDOM_LEN
                && s.starts_with("pay_")
                && s[4..].bytes().all(|b| b.is_ascii_alphanumeric());
            prop_assert_eq!(PaymentId::parse(&s).is_some(), expected);
        }

        #[test]
        fn well_formed_ids_round_trip(tail in "[A-Za-z0-9]{16}") {
            let s = format!("order_{tail}");
            let id = OrderId::parse(&s).expect("well-formed id");
            prop_assert_eq!(id.as_str(), s.as_str());
        }
    }
}
