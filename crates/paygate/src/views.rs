//! The JSON shapes of the API (SPEC A3), shared by the handlers and by the event payloads so a
//! webhook carries exactly what the API shows. Each derives its OpenAPI schema (`ToSchema`);
//! the field comments are the document's descriptions.

use chrono::{DateTime, SecondsFormat, Utc};
use paygate_core::DeliveryStatus;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::store::{
    endpoints::Endpoint,
    events::Event,
    merchants::Merchant,
    orders::Order,
    payment_links::{LinkPayment, PaymentLink},
    payments::Payment,
    refunds::Refund,
    webhooks::Delivery,
};

mod audit_log;
mod settlements;
pub use audit_log::{ActorBody, AuditLogBody, ResourceBody};
pub use settlements::{ReconciliationBody, SettlementBody, TransactionBody};

/// ISO-8601 UTC with milliseconds, e.g. `2026-11-22T10:15:30.123Z`.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// What every form of an order shows.
#[derive(Serialize, ToSchema)]
pub struct OrderFields<'a> {
    /// The order's id, `order_` and 16 characters.
    #[schema(example = "order_NXhj67fGH2jk9mPq")]
    pub id: &'a str,
    /// What the order costs, in the currency's smallest unit (paise for INR).
    #[schema(minimum = 100, example = 50000)]
    pub amount: i64,
    /// ISO 4217 code, upper case.
    #[schema(example = "INR")]
    pub currency: &'a str,
    /// `created`, or `paid` once a payment succeeded.
    #[schema(example = "created")]
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
#[derive(Serialize, ToSchema)]
pub struct OrderBody<'a> {
    #[serde(flatten)]
    pub fields: OrderFields<'a>,
    /// The merchant the order belongs to.
    pub merchant_id: &'a str,
    /// The merchant's own reference, if given.
    pub receipt: Option<&'a str>,
    /// The merchant's notes: string values under keys of its choosing (`{}` when none).
    #[schema(value_type = Object)]
    pub notes: &'a Value,
    /// Where the hosted checkout sends the customer after paying; present only when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<&'a str>,
    /// When the order was created (ISO 8601, UTC, milliseconds).
    pub created_at: String,
    /// Last change (ISO 8601); shown when reading an order, not in the create response.
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
            callback_url: o.callback_url.as_deref(),
            created_at: iso(o.created_at),
            updated_at: full.then(|| iso(o.updated_at)),
        }
    }
}

/// An order as the public checkout endpoint shows it.
#[derive(Serialize, ToSchema)]
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
#[derive(Serialize, ToSchema)]
pub struct PaymentFields<'a> {
    /// The payment's id, `pay_` and 16 characters.
    #[schema(example = "pay_H8sK3jD9s2L1pQr4")]
    pub id: &'a str,
    /// The order it pays.
    pub order_id: &'a str,
    /// The order's amount, in the smallest currency unit.
    pub amount: i64,
    /// The order's currency.
    pub currency: &'a str,
    /// `upi` or `card`.
    #[schema(example = "upi")]
    pub method: &'a str,
    /// `pending` until the processor answers, then `success` or `failed`.
    #[schema(example = "pending")]
    pub status: &'a str,
    /// When the payment was created (ISO 8601, UTC, milliseconds).
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
#[derive(Serialize, ToSchema)]
pub struct PaymentBody<'a> {
    #[serde(flatten)]
    pub fields: PaymentFields<'a>,
    /// The customer's UPI id (UPI collect; intent and QR when the customer's answer carries it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpa: Option<&'a str>,
    /// For UPI intent and QR: the flow and the link to approve the payment with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upi: Option<UpiBody<'a>>,
    /// `visa`, `mastercard`, `amex`, `rupay` or `unknown` (card payments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_network: Option<&'a str>,
    /// The card number's last four digits (card payments); the rest is never kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_last4: Option<&'a str>,
    /// Whether a successful payment was captured (full form only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captured: Option<bool>,
    /// Sum of the pending and processed refunds (full form only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_refunded: Option<i64>,
    /// `null`, `partial` or `full` (full form only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub refund_status: Option<Option<&'static str>>,
    /// Why a failed payment failed, e.g. `PAYMENT_FAILED` (full form only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'a str>,
    /// A sentence for the failure (full form only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<&'a str>,
    /// The gateway's fee on a successful payment, in the smallest currency unit: the
    /// merchant's rate for the method (2 % by default), rounded half up; `null` until it
    /// succeeds. A refund does not return it (full form only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    pub fee: Option<Option<i64>>,
    /// The tax on the fee (GST 18 % by default), rounded half up; `null` until the payment
    /// succeeds (full form only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    pub tax: Option<Option<i64>>,
    /// The settlement that paid the payment out, `setl_…`; `null` until it is settled
    /// (full form only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub settlement_id: Option<Option<&'a str>>,
    /// Last change (ISO 8601; full form only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl<'a> PaymentBody<'a> {
    /// The create response, or the full payment.
    pub fn new(p: &'a Payment, full: bool) -> Self {
        Self {
            fields: p.into(),
            vpa: p.vpa.as_deref(),
            upi: UpiBody::of(p),
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
            fee: full.then_some(p.fee),
            tax: full.then_some(p.tax),
            settlement_id: full.then_some(p.settlement_id.as_deref()),
            updated_at: full.then(|| iso(p.updated_at)),
        }
    }
}

/// A UPI payment's flow; for intent and QR, how the customer approves it.
#[derive(Serialize, ToSchema)]
pub struct UpiBody<'a> {
    /// `intent` or `qr`.
    #[schema(example = "intent")]
    pub flow: &'a str,
    /// The `upi://pay` link that opens the customer's UPI app (intent and QR).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(
        example = "upi://pay?pa=testmerchant%40paygate&pn=Test%20Merchant&am=500.00&cu=INR&tr=pay_NXhj67fGH2jk9mPq&tn=Order%20order_NXhj67fGH2jk9mPq"
    )]
    pub uri: Option<&'a str>,
    /// The same link as a QR code, an SVG image (intent and QR).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr_svg_url: Option<&'a str>,
    /// When the payment fails with `PAYMENT_EXPIRED` unless the customer approved it (ISO
    /// 8601; intent and QR).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl<'a> UpiBody<'a> {
    /// The payment's UPI details for intent and QR; `None` for cards and UPI collect (whose
    /// answers keep the shape they always had).
    pub fn of(p: &'a Payment) -> Option<Self> {
        Some(Self {
            flow: p.upi_flow.as_deref()?,
            uri: p.upi_uri.as_deref(),
            qr_svg_url: p.upi_qr_url.as_deref(),
            expires_at: p.expires_at.map(iso),
        })
    }
}

/// A payment's status fields, for the checkout page's polling.
#[derive(Serialize, ToSchema)]
pub struct PublicPaymentBody<'a> {
    #[serde(flatten)]
    pub fields: PaymentFields<'a>,
    /// How a UPI payment is approved (for intent and QR, the link and its QR).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upi: Option<UpiBody<'a>>,
    /// Why a failed payment failed; `null` otherwise.
    pub error_code: Option<&'a str>,
    /// A sentence for the failure; `null` otherwise.
    pub error_description: Option<&'a str>,
    /// Last change (ISO 8601).
    pub updated_at: String,
}

impl<'a> From<&'a Payment> for PublicPaymentBody<'a> {
    fn from(p: &'a Payment) -> Self {
        Self {
            fields: p.into(),
            upi: UpiBody::of(p),
            error_code: p.error_code.as_deref(),
            error_description: p.error_description.as_deref(),
            updated_at: iso(p.updated_at),
        }
    }
}

/// A refund as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct RefundBody<'a> {
    /// The refund's id, `rfnd_` and 16 characters.
    #[schema(example = "rfnd_K9pL2mN8qR5tV7wX")]
    pub id: &'a str,
    /// The payment refunded.
    pub payment_id: &'a str,
    /// How much, in the smallest currency unit.
    pub amount: i64,
    /// Why, if given.
    pub reason: Option<&'a str>,
    /// `pending` until the processor answers, then `processed`.
    #[schema(example = "pending")]
    pub status: &'a str,
    /// When the refund was asked for (ISO 8601).
    pub created_at: String,
    /// When it was processed (ISO 8601), `null` while pending; shown when reading a refund,
    /// not in the create response.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
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

/// A payment link as the API shows it (Razorpay's shape; `expire_by` in Unix seconds, as it
/// is given).
#[derive(Serialize, ToSchema)]
pub struct PaymentLinkBody<'a> {
    /// The link's id, `plink_` and 16 characters.
    #[schema(example = "plink_Kx7aB2cD9eF1gH3j")]
    pub id: &'a str,
    /// What the link asks for, in the currency's smallest unit.
    #[schema(example = 100000)]
    pub amount: i64,
    /// What successful payments through the link added up to.
    #[schema(example = 40000)]
    pub amount_paid: i64,
    /// What is left to pay.
    #[schema(example = 60000)]
    pub amount_due: i64,
    /// ISO 4217 code, upper case.
    #[schema(example = "INR")]
    pub currency: &'a str,
    /// Whether the customer may pay in parts.
    pub accept_partial: bool,
    /// With partial payments: the least the first payment may be.
    pub first_min_partial_amount: Option<i64>,
    /// What it is for, shown on the link's page.
    pub description: Option<&'a str>,
    /// `{name, email, contact}` as given (`{}` when none).
    #[schema(value_type = Object)]
    pub customer: &'a Value,
    /// The merchant's own reference, unique among its links.
    pub reference_id: Option<&'a str>,
    /// When the link expires, Unix seconds; `null`: never.
    #[schema(example = 1798761600)]
    pub expire_by: Option<i64>,
    /// Where the customer is sent after paying, with the signed outcome.
    pub callback_url: Option<&'a str>,
    /// `get` when there is a `callback_url`.
    pub callback_method: Option<&'static str>,
    /// `created`, `partially_paid`, `paid`, `expired` or `cancelled`.
    #[schema(example = "created")]
    pub status: &'a str,
    /// The link's page, to send to the customer.
    #[schema(example = "http://localhost:3001/l/plink_Kx7aB2cD9eF1gH3j")]
    pub short_url: &'a str,
    /// The merchant's notes: string values under keys of its choosing (`{}` when none).
    #[schema(value_type = Object)]
    pub notes: &'a Value,
    /// When it was created (ISO 8601).
    pub created_at: String,
    /// When it last changed (ISO 8601).
    pub updated_at: String,
    /// When payments covered its amount (ISO 8601); `null` before.
    pub paid_at: Option<String>,
    /// When it expired (ISO 8601); `null` unless it did.
    pub expired_at: Option<String>,
    /// When it was cancelled (ISO 8601); `null` unless it was.
    pub cancelled_at: Option<String>,
    /// The successful payments made through the link, oldest first: shown when reading one
    /// link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payments: Option<Vec<LinkPaymentBody<'a>>>,
}

/// A payment made through a payment link.
#[derive(Serialize, ToSchema)]
pub struct LinkPaymentBody<'a> {
    /// The payment's id.
    pub payment_id: &'a str,
    /// What it paid of the link, in the smallest currency unit.
    pub amount: i64,
    /// `upi` or `card`.
    pub method: &'a str,
    /// `success`.
    pub status: &'a str,
    /// When it was created (ISO 8601).
    pub created_at: String,
}

impl<'a> PaymentLinkBody<'a> {
    /// The link, with its payments when given.
    pub fn new(l: &'a PaymentLink, payments: Option<&'a [LinkPayment]>) -> Self {
        Self {
            id: &l.id,
            amount: l.amount,
            amount_paid: l.amount_paid,
            amount_due: l.amount_due(),
            currency: &l.currency,
            accept_partial: l.accept_partial,
            first_min_partial_amount: l.first_min_partial_amount,
            description: l.description.as_deref(),
            customer: &l.customer,
            reference_id: l.reference_id.as_deref(),
            expire_by: l.expire_by.map(|t| t.timestamp()),
            callback_url: l.callback_url.as_deref(),
            callback_method: l.callback_url.as_ref().map(|_| "get"),
            status: &l.status,
            short_url: &l.short_url,
            notes: &l.notes,
            created_at: iso(l.created_at),
            updated_at: iso(l.updated_at),
            paid_at: l.paid_at.map(iso),
            expired_at: l.expired_at.map(iso),
            cancelled_at: l.cancelled_at.map(iso),
            payments: payments.map(|ps| {
                ps.iter()
                    .map(|p| LinkPaymentBody {
                        payment_id: &p.id,
                        amount: p.amount,
                        method: &p.method,
                        status: &p.status,
                        created_at: iso(p.created_at),
                    })
                    .collect()
            }),
        }
    }
}

/// A page of a list: `{data, total, limit, offset, has_more}`.
#[derive(Serialize, ToSchema)]
pub struct Page<T> {
    /// The rows of this page, newest first.
    pub data: Vec<T>,
    /// How many rows the whole list has, counted up to 10,000: a longer list reads 10,000
    /// (page on with `has_more` and `starting_after`).
    pub total: i64,
    /// The page size asked for (1–100, default 10).
    pub limit: i64,
    /// How many rows were skipped (0 when paging by cursor).
    pub offset: i64,
    /// Whether more rows follow this page in the direction it was read: older rows (from the
    /// start, an `offset` or `starting_after`), newer ones (`ending_before`).
    pub has_more: bool,
}

/// A payment's refunds: `{data, total}`, oldest first.
#[derive(Serialize, ToSchema)]
pub struct RefundList<'a> {
    /// Every refund of the payment.
    pub data: Vec<RefundBody<'a>>,
    /// How many there are.
    pub total: usize,
}

/// The merchant's webhook configuration.
#[derive(Serialize, ToSchema)]
pub struct WebhookConfigBody<'a> {
    /// Where events are delivered; `null` when webhooks are off.
    pub webhook_url: Option<&'a str>,
    /// The `whsec_…` secret deliveries are signed with.
    pub webhook_secret: &'a str,
}

impl<'a> From<&'a Merchant> for WebhookConfigBody<'a> {
    fn from(m: &'a Merchant) -> Self {
        Self {
            webhook_url: m.webhook_url.as_deref(),
            webhook_secret: &m.webhook_secret,
        }
    }
}

/// A webhook delivery as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct DeliveryBody<'a> {
    /// The delivery's id, `whk_` and 16 characters.
    pub id: &'a str,
    /// The event type delivered, e.g. `payment.success`.
    pub event: &'a str,
    /// The event's id (the same in every delivery of it, so receivers can de-duplicate).
    pub event_id: &'a str,
    /// `pending` (more attempts to come), `success` or `failed` (attempts exhausted).
    pub status: &'static str,
    /// Attempts made in the current cycle.
    pub attempts: i32,
    /// When the delivery was created (ISO 8601).
    pub created_at: String,
    /// When it was last attempted (ISO 8601), `null` before the first attempt.
    pub last_attempt_at: Option<String>,
    /// When the next attempt is due (ISO 8601), while pending.
    pub next_retry_at: Option<String>,
    /// The receiver's HTTP status at the last attempt; `null` when it did not answer.
    pub response_code: Option<i32>,
    /// The start of the receiver's answer at the last attempt.
    pub response_body: Option<&'a str>,
    /// How long the last attempt took, ms.
    pub duration_ms: Option<i64>,
    /// The endpoint it goes to (`we_…`); `null` for the default endpoint (the webhook URL of
    /// `PUT /api/v1/webhooks/config`).
    pub endpoint_id: Option<&'a str>,
    /// The event's sequence number (also `sequence` in the body and `webhook-sequence`):
    /// larger for every later event of the same resource.
    pub sequence: Option<i64>,
}

impl<'a> From<&'a Delivery> for DeliveryBody<'a> {
    fn from(d: &'a Delivery) -> Self {
        let pending = d.status == DeliveryStatus::Pending;
        Self {
            id: &d.id,
            event: &d.event,
            event_id: &d.event_id,
            status: d.status.as_str(),
            attempts: d.attempts,
            created_at: iso(d.created_at),
            last_attempt_at: d.last_attempt_at.map(iso),
            next_retry_at: d.next_retry_at.filter(|_| pending).map(iso),
            response_code: d.response_code,
            response_body: d.response_body.as_deref(),
            duration_ms: d.duration_ms,
            endpoint_id: d.endpoint_id.as_deref(),
            sequence: d.sequence,
        }
    }
}

/// A webhook endpoint as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct EndpointBody<'a> {
    /// The endpoint's id, `we_` and 16 characters.
    #[schema(example = "we_Q2x8LmN4pR7sT1vW")]
    pub id: &'a str,
    /// Where its deliveries go.
    pub url: &'a str,
    /// The merchant's note about it.
    pub description: Option<&'a str>,
    /// Whether it gets deliveries (a disabled endpoint's pending deliveries wait for it).
    pub enabled: bool,
    /// The event types it gets: exact names or trailing wildcards (`payment.*`); empty for
    /// every event.
    pub events: Vec<&'a str>,
    /// The `whsec_…` secret its deliveries are signed with (shown to its merchant only).
    pub secret: &'a str,
    /// After a rotation, until when the previous secret still signs beside this one
    /// (ISO 8601); `null` when only this one signs.
    pub previous_secret_expires_at: Option<String>,
    /// Since when every attempt to it has failed (ISO 8601); `null` after a success.
    pub failing_since: Option<String>,
    /// `failing` when the gateway disabled it (every attempt failed for
    /// `WEBHOOK_ENDPOINT_DISABLE_AFTER`); `null` otherwise.
    pub disabled_reason: Option<&'a str>,
    /// When it was created (ISO 8601).
    pub created_at: String,
    /// Last change (ISO 8601).
    pub updated_at: String,
}

impl<'a> From<&'a Endpoint> for EndpointBody<'a> {
    fn from(e: &'a Endpoint) -> Self {
        Self {
            id: &e.id,
            url: &e.url,
            description: e.description.as_deref(),
            enabled: e.enabled,
            events: e.events.split_whitespace().collect(),
            secret: &e.secret,
            previous_secret_expires_at: e.previous_secret_until.map(iso),
            failing_since: e.failing_since.map(iso),
            disabled_reason: e.disabled_reason.as_deref(),
            created_at: iso(e.created_at),
            updated_at: iso(e.updated_at),
        }
    }
}

/// A merchant's webhook endpoints.
#[derive(Serialize, ToSchema)]
pub struct EndpointList<'a> {
    /// Every endpoint, oldest first.
    pub data: Vec<EndpointBody<'a>>,
    /// How many there are.
    pub total: usize,
}

/// The answer to a replay or a retry of an endpoint's failed deliveries.
#[derive(Serialize, ToSchema)]
pub struct QueuedBody<'a> {
    /// The endpoint.
    pub endpoint_id: &'a str,
    /// For a replay: its id (`rpl_…`); it runs until every delivery it queued has ended, and
    /// another replay of the endpoint meanwhile answers 409 naming it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_id: Option<&'a str>,
    /// How many deliveries were queued.
    pub queued: usize,
    /// For a replay: whether the range held more events than one replay takes (10,000);
    /// replay again from `next_since`.
    pub has_more: bool,
    /// Where a further replay should start (ISO 8601), when `has_more`.
    pub next_since: Option<String>,
}

/// The answer to deleting an endpoint.
#[derive(Serialize, ToSchema)]
pub struct DeletedBody<'a> {
    /// The endpoint deleted.
    pub id: &'a str,
    /// `true`.
    pub deleted: bool,
}

/// The answer to a manual retry.
#[derive(Serialize, ToSchema)]
pub struct RetryBody<'a> {
    /// The delivery retried.
    pub id: &'a str,
    /// `pending`: a new cycle of attempts, starting now.
    pub status: &'static str,
    /// `Webhook retry scheduled`.
    pub message: &'static str,
}

/// An event of the merchant's event log.
#[derive(Serialize, ToSchema)]
pub struct EventBody<'a> {
    /// The event's id, `evt_` and 16 characters.
    pub id: &'a str,
    /// Its type, e.g. `payment.created`.
    pub event: &'a str,
    /// The order, payment or refund it is about.
    pub resource_id: &'a str,
    /// What its webhook payload carries, e.g. `{"payment": {…}}`.
    #[schema(value_type = Object)]
    pub data: &'a Value,
    /// When it happened (ISO 8601).
    pub created_at: String,
}

impl<'a> From<&'a Event> for EventBody<'a> {
    fn from(e: &'a Event) -> Self {
        Self {
            id: &e.id,
            event: &e.event_type,
            resource_id: &e.resource_id,
            data: &e.data,
            created_at: iso(e.created_at),
        }
    }
}
