//! The payment state machine: `pending → success | failed`, each payment exactly once. The
//! database applies a transition only with a conditional update on the `from` state, so a
//! second attempt at the same transition changes nothing.

use std::fmt;

/// A stored value that is not one of its type's names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName(pub String);

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown value {:?}", self.0)
    }
}

impl std::error::Error for UnknownName {}

/// A closed set of names, as stored in the database and shown in the API: the enum with
/// `parse` and `as_str`, `Display`, `TryFrom<String>` (what a row holds) and comparison with
/// the name itself.
macro_rules! names {
    ($(#[$meta:meta])* pub enum $ty:ident {
        $($(#[$vmeta:meta])* $variant:ident = $name:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $ty {
            $($(#[$vmeta])* $variant),+
        }

        impl $ty {
            /// Every value.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// Parses a name.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($name => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// The name, as stored and shown.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name),+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<String> for $ty {
            type Error = UnknownName;
            fn try_from(s: String) -> Result<Self, UnknownName> {
                Self::parse(&s).ok_or(UnknownName(s))
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

names! {
    /// How the customer pays.
    pub enum Method {
        Upi = "upi",
        Card = "card",
    }
}

names! {
    /// A payment's status.
    pub enum PaymentStatus {
        Pending = "pending",
        Success = "success",
        Failed = "failed",
    }
}

impl PaymentStatus {
    /// Whether the status is final.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending)
    }

    /// Whether `self → to` is a transition of the state machine.
    pub fn can_become(self, to: Self) -> bool {
        matches!((self, to), (Self::Pending, Self::Success | Self::Failed))
    }

    /// The name of the event recorded when a payment enters this status.
    pub fn event_name(self) -> &'static str {
        match self {
            Self::Pending => "payment.pending",
            Self::Success => "payment.success",
            Self::Failed => "payment.failed",
        }
    }
}

names! {
    /// An order's status.
    pub enum OrderStatus {
        Created = "created",
        Paid = "paid",
    }
}

names! {
    /// A refund's status.
    pub enum RefundStatus {
        Pending = "pending",
        Processed = "processed",
    }
}

names! {
    /// A webhook delivery's status.
    pub enum DeliveryStatus {
        /// Attempts remain (or the first is due).
        Pending = "pending",
        /// An attempt was answered 2xx.
        Success = "success",
        /// Every attempt failed.
        Failed = "failed",
    }
}

names! {
    /// An outcome fixed by a documented test value, whatever the mode and success rates.
    pub enum ForcedOutcome {
        Success = "success",
        Failure = "failure",
    }
}

/// Test cards that always succeed.
pub const TEST_CARDS_SUCCEED: &[&str] = &["4111111111111111", "5555555555554444"];
/// Test cards that are always declined.
pub const TEST_CARDS_DECLINED: &[&str] = &["4000000000000002"];

impl ForcedOutcome {
    /// `success@…` always succeeds and `failure@…` always fails.
    pub fn for_vpa(vpa: &str) -> Option<Self> {
        match vpa.split_once('@')?.0 {
            "success" => Some(Self::Success),
            "failure" => Some(Self::Failure),
            _ => None,
        }
    }

    /// The documented test cards (digits only).
    pub fn for_card_number(digits: &str) -> Option<Self> {
        if TEST_CARDS_SUCCEED.contains(&digits) {
            Some(Self::Success)
        } else if TEST_CARDS_DECLINED.contains(&digits) {
            Some(Self::Failure)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [PaymentStatus; 3] = [
        PaymentStatus::Pending,
        PaymentStatus::Success,
        PaymentStatus::Failed,
    ];

    #[test]
    fn only_pending_payments_move_and_only_to_a_final_status() {
        for from in ALL {
            for to in ALL {
                let allowed = from == PaymentStatus::Pending && to.is_final();
                assert_eq!(from.can_become(to), allowed, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn statuses_round_trip() {
        for s in ALL {
            assert_eq!(PaymentStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(Method::parse("netbanking"), None);
    }

    #[test]
    fn test_values_force_outcomes() {
        assert_eq!(
            ForcedOutcome::for_vpa("success@upi"),
            Some(ForcedOutcome::Success)
        );
        assert_eq!(
            ForcedOutcome::for_vpa("failure@okaxis"),
            Some(ForcedOutcome::Failure)
        );
        assert_eq!(ForcedOutcome::for_vpa("someone@okaxis"), None);
        assert_eq!(
            ForcedOutcome::for_card_number("4000000000000002"),
            Some(ForcedOutcome::Failure)
        );
        assert_eq!(
            ForcedOutcome::for_card_number("4111111111111111"),
            Some(ForcedOutcome::Success)
        );
        assert_eq!(ForcedOutcome::for_card_number("4242424242424242"), None);
    }
}
