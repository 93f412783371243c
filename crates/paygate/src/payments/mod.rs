//! Payments: creation (pending at once), asynchronous processing, reading. The service
//! (`service`) calls the writer (`writes`); both share the errors and the events defined here.

pub mod service;
pub mod writes;

use paygate_core::{Card, Vpa};
use serde_json::json;

use crate::{
    idempotent,
    store::{events::Event, payments::Payment},
    views::PaymentBody,
};

idempotent::service_error! {
    /// Payment errors.
    pub enum Error {
        #[error("payment not found")]
        NotFound,
        #[error("order not found")]
        OrderNotFound,
        #[error("order is already paid")]
        OrderPaid,
        #[error("order already has a pending or successful payment")]
        OrderHasOpenPayment,
        #[error("payment not in capturable state")]
        NotCapturable,
        #[error("payment has refunds and cannot be captured")]
        HasRefunds,
        #[error("capture amount differs from the payment amount")]
        CaptureAmountMismatch,
    }
}

/// The `data` of a payment event: the payment as the API shows it.
pub(crate) fn event_data(payment: &Payment) -> serde_json::Value {
    json!({ "payment": PaymentBody::new(payment, true) })
}

/// An event of the payment, written as it changed.
pub(crate) fn event(payment: &Payment, event_type: &str, data: serde_json::Value) -> Event {
    let (merchant, id) = (&payment.merchant_id, &payment.id);
    Event::new(merchant, event_type, id, data, payment.updated_at)
}

/// How a payment is made, validated.
#[derive(Clone, Debug)]
pub enum Instrument {
    Upi(Vpa),
    Card(Card),
}

/// A validated payment request.
#[derive(Clone, Debug)]
pub struct NewPayment {
    pub order_id: String,
    pub instrument: Instrument,
}
