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

/// The digits of the time part of [`ordered_id`], in ASCII order and of one case, so that ids
/// sort by time under byte order and under case-insensitive collations alike.
const TIME_DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// How many of an ordered id's [`RANDOM_LEN`] characters tell its time: 8 base-36 digits of
/// milliseconds since the Unix epoch last until 2059.
const TIME_LEN: usize = 8;

/// A new id ordered by time: `prefix`, the milliseconds since the Unix epoch (`at_ms`) as
/// [`TIME_LEN`] base-36 digits, then random alphanumerics to [`RANDOM_LEN`] characters, the
/// shape [`has_id_shape`] accepts. Ids made later sort after those made earlier (within a
/// millisecond, at random), so a batch of them lands on the same few pages of an index instead
/// of one page each. For ids that are not secrets: they tell when they were made.
pub fn ordered_id(prefix: &str, at_ms: u64) -> String {
    let mut time = [b'0'; TIME_LEN];
    let mut rest = at_ms;
    for digit in time.iter_mut().rev() {
        *digit = TIME_DIGITS[(rest % 36) as usize];
        rest /= 36;
    }
    let mut id = String::with_capacity(prefix.len() + RANDOM_LEN);
    id.push_str(prefix);
    id.extend(time.iter().map(|&b| char::from(b)));
    id.push_str(&Alphanumeric.sample_string(&mut rand::rng(), RANDOM_LEN - TIME_LEN));
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
        prefixed_id!($(#[$doc])* $name, $prefix, random_id);
    };
    ($(#[$doc:meta])* $name:ident, $prefix:literal, ordered) => {
        prefixed_id!($(#[$doc])* $name, $prefix, |prefix| {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            ordered_id(prefix, ms)
        });
    };
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $make:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id.
            pub fn generate() -> Self {
                let make: fn(&str) -> String = $make;
                Self(make($prefix))
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
    /// An event id, `evt_` + 16 alphanumerics, ordered by time (see [`ordered_id`]); stable
    /// for de-duplication by receivers.
    EventId,
    "evt_",
    ordered
);
prefixed_id!(
    /// An audit log entry's id, `audit_` + 16 alphanumerics, ordered by time (see
    /// [`ordered_id`]).
    AuditLogId,
    "audit_",
    ordered
);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ordered_ids_sort_by_their_time_and_keep_the_shape() {
        // 2026-12-07 and a millisecond, a second and a year later.
        let times = [
            1_796_601_600_000_u64,
            1_796_601_600_001,
            1_796_601_601_000,
            1_828_137_600_000,
        ];
        let ids: Vec<String> = times.iter().map(|&t| ordered_id("evt_", t)).collect();
        for id in &ids {
            assert!(has_id_shape("evt_", id), "{id}");
        }
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
            assert!(pair[0].to_lowercase()[..12] < pair[1].to_lowercase()[..12]);
        }
        // The same millisecond: the same time part, a different random part.
        let (a, b) = (ordered_id("evt_", times[0]), ordered_id("evt_", times[0]));
        assert_eq!(a[..12], b[..12]);
        assert_ne!(a, b);
        // The last millisecond that fits, and the Unix epoch.
        assert!(ordered_id("evt_", 36_u64.pow(8) - 1).starts_with("evt_zzzzzzzz"));
        assert!(ordered_id("evt_", 0).starts_with("evt_00000000"));
        let now = EventId::generate();
        assert!(EventId::parse(now.as_str()).is_some());
        assert!(now.as_str() > ids[0].as_str());
    }

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
