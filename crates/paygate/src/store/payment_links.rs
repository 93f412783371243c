//! Payment link rows. Every status change is a conditional update on the current status, so
//! it applies once however many times (and by however many workers) it is attempted.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Store, Tx, sql, table::table};

/// A stored payment link. Amounts are in the currency's smallest unit.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct PaymentLink {
    pub id: String,
    pub merchant_id: String,
    pub amount: i64,
    /// What successful payments of the link's orders added up to.
    pub amount_paid: i64,
    pub currency: String,
    pub accept_partial: bool,
    pub first_min_partial_amount: Option<i64>,
    pub description: Option<String>,
    /// `{name, email, contact}`, each optional.
    #[sqlx(json)]
    pub customer: Value,
    pub reference_id: Option<String>,
    pub expire_by: Option<DateTime<Utc>>,
    pub callback_url: Option<String>,
    /// A JSON object.
    #[sqlx(json)]
    pub notes: Value,
    /// `created`, `partially_paid`, `paid`, `expired` or `cancelled`.
    pub status: String,
    /// The link's page, on the checkout.
    pub short_url: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub expired_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl PaymentLink {
    /// Whether the link still takes payments (`created` or `partially_paid`).
    pub fn is_open(&self) -> bool {
        OPEN.contains(&self.status.as_str())
    }

    /// What is left to pay (never negative).
    pub fn amount_due(&self) -> i64 {
        self.amount.saturating_sub(self.amount_paid).max(0)
    }
}

/// The statuses of a link that takes payments.
pub const OPEN: [&str; 2] = ["created", "partially_paid"];

macro_rules! cols {
    () => {
        "id, merchant_id, amount, amount_paid, currency, accept_partial, \
         first_min_partial_amount, description, customer, reference_id, expire_by, callback_url, \
         notes, status, short_url, created_at, updated_at, paid_at, expired_at, cancelled_at"
    };
}

table!(PaymentLink, "payment_links", cols, "created_at, id");

/// The unique index on `(merchant_id, reference_id)`.
pub const REFERENCE_INDEX: &str = "payment_links_reference_idx";

/// Inserts a link.
pub async fn insert(tx: &mut Tx, l: &PaymentLink) -> Result<(), sqlx::Error> {
    let input = super::rows::Rows::new(1)
        .text("id", [l.id.clone()])
        .text("merchant_id", [l.merchant_id.clone()])
        .int("amount", [l.amount])
        .int("amount_paid", [l.amount_paid])
        .text("currency", [l.currency.clone()])
        .bool("accept_partial", [l.accept_partial])
        .opt_int("first_min_partial_amount", [l.first_min_partial_amount])
        .opt_text("description", [l.description.clone()])
        .json("customer", [l.customer.to_string()])
        .opt_text("reference_id", [l.reference_id.clone()])
        .opt_time("expire_by", [l.expire_by])
        .opt_text("callback_url", [l.callback_url.clone()])
        .json("notes", [l.notes.to_string()])
        .text("status", [l.status.clone()])
        .text("short_url", [l.short_url.clone()])
        .time("created_at", [l.created_at])
        .time("updated_at", [l.updated_at])
        .opt_time("paid_at", [l.paid_at])
        .opt_time("expired_at", [l.expired_at])
        .opt_time("cancelled_at", [l.cancelled_at]);
    super::table::insert_all::<PaymentLink>(tx, input).await
}

/// Cancels the merchant's open link; `None` when it is not open (or not the merchant's).
pub async fn cancel(
    tx: &mut Tx,
    merchant_id: &str,
    id: &str,
    at: DateTime<Utc>,
) -> Result<Option<PaymentLink>, sqlx::Error> {
    let sql = concat!(
        "UPDATE payment_links SET status = 'cancelled', cancelled_at = $3, updated_at = $3 ",
        "WHERE id = $1 AND merchant_id = $2 AND status IN ('created', 'partially_paid') ",
        "RETURNING ",
        cols!()
    );
    sql!(on_tx(tx) => fetch_optional(sql, id, merchant_id, at))
}

/// Expires up to `limit` open links whose `expire_by` has passed at `at`, in one statement;
/// returns the links this call expired (another worker's concurrent call expires the others).
pub async fn expire_due(
    tx: &mut Tx,
    at: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<PaymentLink>, sqlx::Error> {
    let sql = concat!(
        "UPDATE payment_links SET status = 'expired', expired_at = $1, updated_at = $1 ",
        "WHERE id IN (SELECT id FROM payment_links WHERE status IN ('created', 'partially_paid') ",
        "AND expire_by IS NOT NULL AND expire_by <= $1 ORDER BY expire_by LIMIT $2) ",
        "AND status IN ('created', 'partially_paid') RETURNING ",
        cols!()
    );
    sql!(on_tx(tx) => fetch_all(sql, at, limit))
}

/// Adds a successful payment of `amount` to what the link was paid, whatever its status, and
/// returns the link with its status as it was: the update holds the link's row until the
/// transaction ends, so the status returned is the one this payment found (a concurrent payment
/// of the same link waits here and finds what this one leaves). Runs in the transaction that
/// records the payment's success, once per payment.
pub async fn add_paid(
    tx: &mut Tx,
    id: &str,
    amount: i64,
    at: DateTime<Utc>,
) -> Result<Option<PaymentLink>, sqlx::Error> {
    let sql = concat!(
        "UPDATE payment_links SET amount_paid = amount_paid + $2, updated_at = $3 ",
        "WHERE id = $1 RETURNING ",
        cols!()
    );
    sql!(on_tx(tx) => fetch_optional(sql, id, amount, at))
}

/// Moves an open link to `status` (`partially_paid`, or `paid` with `paid_at`); `None` when it
/// is not open.
pub async fn set_paid_status(
    tx: &mut Tx,
    id: &str,
    status: &str,
    at: DateTime<Utc>,
) -> Result<Option<PaymentLink>, sqlx::Error> {
    let sql = concat!(
        "UPDATE payment_links SET status = $2, ",
        "paid_at = CASE WHEN $2 = 'paid' THEN $3 ELSE paid_at END, updated_at = $3 ",
        "WHERE id = $1 AND status IN ('created', 'partially_paid') RETURNING ",
        cols!()
    );
    sql!(on_tx(tx) => fetch_optional(sql, id, status, at))
}

/// A payment made through a link, as the link shows it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LinkPayment {
    pub id: String,
    pub amount: i64,
    pub method: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// The successful payments made through the link, oldest first.
pub async fn payments(store: &Store, id: &str) -> Result<Vec<LinkPayment>, sqlx::Error> {
    let sql = "SELECT p.id, p.amount, p.method, p.status, p.created_at FROM payments p \
               JOIN orders o ON o.id = p.order_id \
               WHERE o.payment_link_id = $1 AND p.status = 'success' ORDER BY p.created_at, p.id";
    sql!(on_pool(store) => fetch_all(sql, id))
}

/// Whether `order_id` is an order of the link `id`.
pub async fn has_order(store: &Store, id: &str, order_id: &str) -> Result<bool, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM orders WHERE id = $1 AND payment_link_id = $2";
    let n: i64 = sql!(on_pool(store) => scalar::fetch_one(sql, order_id, id))?;
    Ok(n > 0)
}
