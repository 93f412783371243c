//! The JSON shapes of the API (SPEC A3), shared by the handlers and by the event payloads so a
//! webhook carries exactly what the API shows.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::store::{orders::Order, payments::Payment, refunds::Refund};

/// ISO-8601 UTC with milliseconds, e.g. `2026-11-22T10:15:30.123Z`.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// What every form of an order shows.
#[derive(Serialize)]
pub struct OrderFields<'a> {
    pub id: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub status: &'a str,
}

impl<'a> From<&'a Order> for OrderFields<'a> {
    fn from(o: &'a Order) -> Self {
        Self {
            id: &o.id,
            amount: o.amount.get(),
            currency: &o.currency,
            status: o.status.as_str(),
        }
    }
}

/// An order as the API shows it.
#[derive(Serialize)]
pub struct OrderBody<'a> {
    #[serde(flatten)]
    pub fields: OrderFields<'a>,
    pub merchant_id: &'a str,
    pub receipt: Option<&'a str>,
    pub notes: &'a Value,
    pub created_at: String,
    /// Shown when reading an order, not in the create response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl<'a> OrderBody<'a> {
    /// The create response (no `updated_at`) or the full order.
    pub fn new(o: &'a Order, full: bool) -> Self {
        Self {
            fields: o.into(),
            merchant_id: &o.merchant_id,
            receipt: o.receipt.as_deref(),
            notes: &o.notes,
            created_at: iso(o.created_at),
            updated_at: full.then(|| iso(o.updated_at)),
        }
    }
}

/// An order as the public checkout endpoint shows it.
#[derive(Serialize)]
pub struct PublicOrderBody<'a> {
    #[serde(flatten)]
    pub fields: OrderFields<'a>,
}

impl<'a> From<&'a Order> for PublicOrderBody<'a> {
    fn from(o: &'a Order) -> Self {
        Self { fields: o.into() }
    }
}

/// What every form of a payment shows.
#[derive(Serialize)]
pub struct PaymentFields<'a> {
    pub id: &'a str,
    pub order_id: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub method: &'a str,
    pub status: &'a str,
    pub created_at: String,
}

impl<'a> From<&'a Payment> for PaymentFields<'a> {
    fn from(p: &'a Payment) -> Self {
        Self {
            id: &p.id,
            order_id: &p.order_id,
            amount: p.amount.get(),
            currency: &p.currency,
            method: p.method.as_str(),
            status: p.status.as_str(),
            created_at: iso(p.created_at),
        }
    }
}

/// A payment as the API shows it: UPI payments carry `vpa`, card payments `card_network`
/// and `card_last4`; the full form adds `captured`, `updated_at` and, when failed, the error.
#[derive(Serialize)]
pub struct PaymentBody<'a> {
    #[serde(flatten)]
    pub fields: PaymentFields<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpa: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_network: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_last4: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captured: Option<bool>,
    /// Sum of the pending and processed refunds (full form only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_refunded: Option<i64>,
    /// `null`, `partial` or `full` (full form only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_status: Option<Option<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl<'a> PaymentBody<'a> {
    /// The create response, or the full payment.
    pub fn new(p: &'a Payment, full: bool) -> Self {
        Self {
            fields: p.into(),
            vpa: p.vpa.as_deref(),
            card_network: p.card_network.as_deref(),
            card_last4: p.card_last4.as_deref(),
            captured: full.then_some(p.captured),
            amount_refunded: full.then_some(p.amount_refunded.get()),
            refund_status: full.then_some(match p.amount_refunded.get() {
                0 => None,
                n if n >= p.amount.get() => Some("full"),
                _ => Some("partial"),
            }),
            error_code: p.error_code.as_deref().filter(|_| full),
            error_description: p.error_description.as_deref().filter(|_| full),
            updated_at: full.then(|| iso(p.updated_at)),
        }
    }
}

/// A payment's status fields, for the checkout page's polling.
#[derive(Serialize)]
pub struct PublicPaymentBody<'a> {
    #[serde(flatten)]
    pub fields: PaymentFields<'a>,
    pub error_code: Option<&'a str>,
    pub error_description: Option<&'a str>,
    pub updated_at: String,
}

impl<'a> From<&'a Payment> for PublicPaymentBody<'a> {
    fn from(p: &'a Payment) -> Self {
        Self {
            fields: p.into(),
            error_code: p.error_code.as_deref(),
            error_description: p.error_description.as_deref(),
            updated_at: iso(p.updated_at),
        }
    }
}

/// A refund as the API shows it.
#[derive(Serialize)]
pub struct RefundBody<'a> {
    pub id: &'a str,
    pub payment_id: &'a str,
    pub amount: i64,
    pub reason: Option<&'a str>,
    pub status: &'a str,
    pub created_at: String,
    /// Shown when reading a refund, not in the create response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processed_at: Option<Option<String>>,
}

impl<'a> RefundBody<'a> {
    /// The create response, or the full refund.
    pub fn new(r: &'a Refund, full: bool) -> Self {
        Self {
            id: &r.id,
            payment_id: &r.payment_id,
            amount: r.amount.get(),
            reason: r.reason.as_deref(),
            status: r.status.as_str(),
            created_at: iso(r.created_at),
            processed_at: full.then(|| r.processed_at.map(iso)),
        }
    }
}

/// A page of a list: `{data, total, limit, offset}`.
#[derive(Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}
