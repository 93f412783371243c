//! The pure domain of paygate: money, typed ids, input validation and the payment state
//! machine. Nothing here does I/O; everything is parsed once into types that cannot hold an
//! invalid value ("parse, don't validate").

pub mod card;
pub mod fees;
pub mod ids;
pub mod money;
pub mod payment;
pub mod vpa;
pub mod webhook;

pub use card::{Card, CardError, CardInput, CardNetwork};
pub use ids::{
    AuditLogId, EventId, OrderId, PaymentId, PaymentLinkId, ReconciliationId, RefundId,
    SettlementId,
};
pub use money::{Currency, MinorUnit, OrderAmount, display_amount};
pub use payment::{
    DeliveryStatus, ForcedOutcome, Method, OrderStatus, PaymentStatus, RefundStatus, UnknownName,
};
pub use vpa::Vpa;
