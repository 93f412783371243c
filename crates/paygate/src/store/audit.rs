//! Whole-table reads for an audit of the books (the chaos soak's auditor in `bench/`, and
//! tests): every payment, refund, processor operation, event and webhook destination. Never
//! on a request's path: each reads a whole table.

use chrono::{DateTime, Utc};

use super::{Store, sql};

/// A payment as the audit reads it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentRow {
    pub id: String,
    pub merchant_id: String,
    pub order_id: String,
    pub amount: i64,
    pub status: String,
    pub amount_refunded: i64,
    /// The status of its order.
    pub order_status: String,
}

pub async fn payments(store: &Store) -> Result<Vec<PaymentRow>, sqlx::Error> {
    let sql = "SELECT p.id, p.merchant_id, p.order_id, p.amount, p.status, p.amount_refunded, \
               o.status AS order_status FROM payments p JOIN orders o ON o.id = p.order_id";
    sql!(on_pool(store) => fetch_all(sql))
}

/// A refund as the audit reads it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct RefundRow {
    pub id: String,
    pub payment_id: String,
    pub amount: i64,
    pub status: String,
}

pub async fn refunds(store: &Store) -> Result<Vec<RefundRow>, sqlx::Error> {
    let sql = "SELECT id, payment_id, amount, status FROM refunds";
    sql!(on_pool(store) => fetch_all(sql))
}

/// One key of the simulated bank's ledger: `(key, kind, succeeded, calls)`.
pub async fn operations(store: &Store) -> Result<Vec<(String, String, bool, i32)>, sqlx::Error> {
    let sql = "SELECT idempotency_key, kind, succeeded, calls FROM processor_operations";
    sql!(on_pool(store) => fetch_all(sql))
}

/// An event as the audit reads it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRow {
    pub seq: i64,
    pub id: String,
    pub merchant_id: String,
    pub event_type: String,
    pub resource_id: String,
    pub created_at: DateTime<Utc>,
}

pub async fn events(store: &Store) -> Result<Vec<EventRow>, sqlx::Error> {
    let sql = "SELECT seq, id, merchant_id, event_type, resource_id, created_at FROM events \
               ORDER BY seq";
    sql!(on_pool(store) => fetch_all(sql))
}

/// Where a merchant's events go: its default URL (`endpoint_id` `None`, every event) or an
/// endpoint, with the secrets that sign.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Destination {
    pub merchant_id: String,
    pub endpoint_id: Option<String>,
    pub url: String,
    /// The endpoint's filter (empty: every event).
    pub events: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub enabled: bool,
}

pub async fn destinations(store: &Store) -> Result<Vec<Destination>, sqlx::Error> {
    let sql = "SELECT id AS merchant_id, NULL AS endpoint_id, webhook_url AS url, '' AS events, \
               webhook_secret AS secret, previous_webhook_secret AS previous_secret, TRUE AS enabled \
               FROM merchants WHERE webhook_url IS NOT NULL \
               UNION ALL SELECT merchant_id, id, url, events, secret, previous_secret, enabled \
               FROM webhook_endpoints";
    sql!(on_pool(store) => fetch_all(sql))
}

/// Work still pending: `(payments, refunds, webhook deliveries)`.
pub async fn pending(store: &Store) -> Result<(i64, i64, i64), sqlx::Error> {
    let sql = "SELECT (SELECT COUNT(*) FROM payments WHERE status = 'pending'), \
               (SELECT COUNT(*) FROM refunds WHERE status = 'pending'), \
               (SELECT COUNT(*) FROM webhook_logs WHERE status = 'pending')";
    sql!(on_pool(store) => fetch_one(sql))
}
