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
        #[error("the order's payment link takes no more payments")]
        PaymentLinkClosed,
        #[error("payment not in capturable state")]
        NotCapturable,
        #[error("payment has refunds and cannot be captured")]
        HasRefunds,
        #[error("capture amount differs from the payment amount")]
        CaptureAmountMismatch,
        #[error("the merchant has no UPI id for intent and QR payments")]
        NoUpiId,
        #[error("UPI intent and QR payments are in INR")]
        UpiNotInr,
        #[error("the payment is not awaiting the customer's approval")]
        NotAwaitingApproval,
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

/// How the customer approves a UPI payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpiFlow {
    /// The customer types a VPA and approves the request sent to it.
    Collect,
    /// A `upi://pay` link opens the customer's UPI app.
    Intent,
    /// The same link as a QR code, scanned with the UPI app.
    Qr,
}

impl UpiFlow {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "collect" => Some(Self::Collect),
            "intent" => Some(Self::Intent),
            "qr" => Some(Self::Qr),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Collect => "collect",
            Self::Intent => "intent",
            Self::Qr => "qr",
        }
    }
}

/// How a payment is made, validated.
#[derive(Clone, Debug)]
pub enum Instrument {
    /// UPI collect, from this VPA.
    Upi(Vpa),
    /// UPI intent or QR: no VPA; the customer approves in their UPI app.
    UpiApp(UpiFlow),
    Card(Card),
}

/// What an intent or QR payment is created with, from its order and merchant: the payee and
/// amount of its `upi://pay` link, where its QR is served, and when it expires.
#[derive(Clone, Debug)]
pub struct UpiLink {
    pub flow: UpiFlow,
    /// The merchant's VPA and name.
    pub payee: String,
    pub payee_name: String,
    /// The order's amount in rupees (`"500.00"`) and the order's id (the note).
    pub amount: String,
    pub order_id: String,
    /// The public checkout's base URL (the QR is served under it).
    pub base_url: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl UpiLink {
    /// The payment's `upi://pay` link and its QR's URL.
    pub fn for_payment(&self, payment_id: &str) -> (String, String) {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("pa", &self.payee)
            .append_pair("pn", &self.payee_name)
            .append_pair("am", &self.amount)
            .append_pair("cu", "INR")
            .append_pair("tr", payment_id)
            .append_pair("tn", &format!("Order {}", self.order_id))
            .finish()
            // Spaces as %20, which every UPI app reads (a literal `+` is `%2B` already).
            .replace('+', "%20");
        let base = self.base_url.trim_end_matches('/');
        (
            format!("upi://pay?{query}"),
            format!("{base}/api/v1/payments/{payment_id}/upi/qr.svg"),
        )
    }
}

/// A validated payment request.
#[derive(Clone, Debug)]
pub struct NewPayment {
    pub order_id: String,
    pub instrument: Instrument,
}
