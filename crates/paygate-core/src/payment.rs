//! The payment state machine: `pending → success | failed`, each payment exactly once. The
//! database applies a transition only with a conditional update on the `from` state, so a
//! second attempt at the same transition changes nothing.

use std::fmt;

/// How the customer pays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Upi,
    Card,
}

impl Method {
    /// Parses the API's method name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "upi" => Some(Self::Upi),
            "card" => Some(Self::Card),
            _ => None,
        }
    }

    /// The API's method name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upi => "upi",
            Self::Card => "card",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A payment's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentStatus {
    Pending,
    Success,
    Failed,
}

impl PaymentStatus {
    /// Parses a stored status.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "success" => Some(Self::Success),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }

    /// The status as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Success => "success",
            Self::Failed => "failed",
        }
    }

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

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored value that is not one of its type's names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName(pub String);

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown value {:?}", self.0)
    }
}

impl std::error::Error for UnknownName {}

/// `TryFrom<String>` (what a database row holds) and `as_str` for a name-coded enum.
macro_rules! stored_names {
    ($ty:ty) => {
        impl TryFrom<String> for $ty {
            type Error = UnknownName;
            fn try_from(s: String) -> Result<Self, UnknownName> {
                Self::parse(&s).ok_or(UnknownName(s))
            }
        }

        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                v.as_str().to_owned()
            }
        }
    };
}

stored_names!(Method);
stored_names!(PaymentStatus);

/// An order's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    Created,
    Paid,
}

impl OrderStatus {
    /// Parses a stored status.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "created" => Some(Self::Created),
            "paid" => Some(Self::Paid),
            _ => None,
        }
    }

    /// The status as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Paid => "paid",
        }
    }
}

stored_names!(OrderStatus);

/// A refund's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundStatus {
    Pending,
    Processed,
}

impl RefundStatus {
    /// Parses a stored status.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "processed" => Some(Self::Processed),
            _ => None,
        }
    }

    /// The status as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processed => "processed",
        }
    }
}

stored_names!(RefundStatus);

/// A webhook delivery's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Attempts remain (or the first is due).
    Pending,
    /// An attempt was answered 2xx.
    Success,
    /// Every attempt failed.
    Failed,
}

impl DeliveryStatus {
    /// Parses a stored status.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "success" => Some(Self::Success),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }

    /// The status as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Success => "success",
            Self::Failed => "failed",
        }
    }
}

stored_names!(DeliveryStatus);

macro_rules! display_as_str {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(OrderStatus, RefundStatus, DeliveryStatus);

/// An outcome fixed by a documented test value, whatever the mode and success rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForcedOutcome {
    Success,
    Failure,
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

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Self::Success),
            "failure" => Some(Self::Failure),
            _ => None,
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
