//! Payment rows. Status changes are conditional updates on the current status, so a
//! transition applies once however many times it is attempted.

use chrono::{DateTime, Utc};
use paygate_core::{Method, MinorUnit, PaymentStatus};

use super::{Store, Tx, merchant_page, on_pool, on_tx, on_write};

/// A stored payment. The card number and CVV are never stored: only network and last four.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Payment {
    pub id: String,
    pub merchant_id: String,
    pub order_id: String,
    #[sqlx(try_from = "i64")]
    pub amount: MinorUnit,
    pub currency: String,
    #[sqlx(try_from = "String")]
    pub method: Method,
    pub vpa: Option<String>,
    pub card_network: Option<String>,
    pub card_last4: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: PaymentStatus,
    pub captured: bool,
    pub error_code: Option<String>,
    pub error_description: Option<String>,
    /// `success` or `failure` for the documented test values.
    pub forced_outcome: Option<String>,
    pub captured_at: Option<DateTime<Utc>>,
    /// Sum of the pending and processed refunds.
    #[sqlx(try_from = "i64")]
    pub amount_refunded: MinorUnit,
    /// While a run asks the processor about this payment: until when it may.
    pub processor_lease_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

macro_rules! cols {
    () => {
        "id, merchant_id, order_id, amount, currency, method, vpa, card_network, card_last4, \
         status, captured, error_code, error_description, forced_outcome, captured_at, \
         amount_refunded, processor_lease_until, created_at, updated_at"
    };
}

/// Inserts a payment.
pub async fn insert(tx: &mut Tx, p: &Payment) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => {
        sqlx::query(concat!(
            "INSERT INTO payments (", cols!(), ") VALUES ",
            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        ))
        .bind(&p.id)
        .bind(&p.merchant_id)
        .bind(&p.order_id)
        .bind(p.amount.get())
        .bind(&p.currency)
        .bind(p.method.as_str())
        .bind(&p.vpa)
        .bind(&p.card_network)
        .bind(&p.card_last4)
        .bind(p.status.as_str())
        .bind(p.captured)
        .bind(&p.error_code)
        .bind(&p.error_description)
        .bind(&p.forced_outcome)
        .bind(p.captured_at)
        .bind(p.amount_refunded.get())
        .bind(p.processor_lease_until)
        .bind(p.created_at)
        .bind(p.updated_at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    })
}

/// The payment with this id, whoever owns it.
pub async fn get(store: &Store, id: &str) -> Result<Option<Payment>, sqlx::Error> {
    on_pool!(store, pool => {
        sqlx::query_as::<_, Payment>(concat!("SELECT ", cols!(), " FROM payments WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await
    })
}

/// A page of the merchant's payments, newest first, and the merchant's total.
pub async fn list(
    store: &Store,
    merchant_id: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Payment>, i64), sqlx::Error> {
    merchant_page!(
        store,
        "payments",
        cols,
        Payment,
        "created_at DESC, id DESC",
        merchant_id,
        limit,
        offset
    )
}

/// Filters of the dashboard's transactions page.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub status: Option<PaymentStatus>,
    pub method: Option<Method>,
    /// A payment id or an order id.
    pub search: Option<String>,
}

/// A page of the merchant's payments matching `f`, newest first, and the matching total.
pub async fn list_filtered(
    store: &Store,
    merchant_id: &str,
    f: &Filter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Payment>, i64), sqlx::Error> {
    macro_rules! filtered {
        () => {
            " FROM payments WHERE merchant_id = $1 AND ($2 IS NULL OR status = $2) \
             AND ($3 IS NULL OR method = $3) AND ($4 IS NULL OR id = $4 OR order_id = $4)"
        };
    }
    on_pool!(store, pool => {
        let page = sqlx::query_as::<_, Payment>(concat!(
            "SELECT ", cols!(), filtered!(), " ORDER BY created_at DESC, id DESC LIMIT $5 OFFSET $6"
        ))
        .bind(merchant_id)
        .bind(f.status.map(PaymentStatus::as_str))
        .bind(f.method.map(Method::as_str))
        .bind(&f.search)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await?;
        let total: i64 = sqlx::query_scalar(concat!("SELECT COUNT(*)", filtered!()))
            .bind(merchant_id)
            .bind(f.status.map(PaymentStatus::as_str))
            .bind(f.method.map(Method::as_str))
            .bind(&f.search)
            .fetch_one(pool)
            .await?;
        Ok((page, total))
    })
}

/// Moves a `pending` payment to its final status and returns the updated row, or `None`
/// when the payment was no longer pending (the transition already happened).
pub async fn finish(
    tx: &mut Tx,
    id: &str,
    status: PaymentStatus,
    error: Option<(&str, &str)>,
    now: DateTime<Utc>,
) -> Result<Option<Payment>, sqlx::Error> {
    on_tx!(tx, conn => {
        sqlx::query_as::<_, Payment>(concat!(
            "UPDATE payments SET status = $2, error_code = $3, error_description = $4, ",
            "processor_lease_until = NULL, updated_at = $5 WHERE id = $1 AND status = 'pending' RETURNING ", cols!()
        ))
        .bind(id)
        .bind(status.as_str())
        .bind(error.map(|e| e.0))
        .bind(error.map(|e| e.1))
        .bind(now)
        .fetch_optional(&mut *conn)
        .await
    })
}

/// Takes the payment's processor lease until `until` for a run about to ask the processor,
/// counting the call: only if the payment is pending and no other run holds a live lease.
/// Returns the payment, or `None` when it is final or another run is asking.
pub async fn begin_processor_call(
    store: &Store,
    id: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Option<Payment>, sqlx::Error> {
    on_write!(store, pool => {
        sqlx::query_as::<_, Payment>(concat!(
            "UPDATE payments SET processor_lease_until = $3, processor_calls = processor_calls + 1 ",
            "WHERE id = $1 AND status = 'pending' ",
            "AND (processor_lease_until IS NULL OR processor_lease_until < $2) RETURNING ", cols!()
        ))
        .bind(id)
        .bind(now)
        .bind(until)
        .fetch_optional(pool)
        .await
    })
}

/// Marks a successful, uncaptured payment captured; `None` if it is not in that state.
pub async fn capture(
    tx: &mut Tx,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Payment>, sqlx::Error> {
    on_tx!(tx, conn => {
        sqlx::query_as::<_, Payment>(concat!(
            "UPDATE payments SET captured = TRUE, captured_at = $2, updated_at = $2 ",
            "WHERE id = $1 AND status = 'success' AND captured = FALSE RETURNING ", cols!()
        ))
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await
    })
}

/// Reserves `amount` of a successful payment for a refund, if what is left covers it. The
/// check and the change are one conditional update, so concurrent refunds serialise on the
/// payment's row and can never reserve more than the payment. `None` when refused.
pub async fn reserve_refund(
    tx: &mut Tx,
    id: &str,
    amount: MinorUnit,
    now: DateTime<Utc>,
) -> Result<Option<Payment>, sqlx::Error> {
    on_tx!(tx, conn => {
        sqlx::query_as::<_, Payment>(concat!(
            "UPDATE payments SET amount_refunded = amount_refunded + $2, updated_at = $3 ",
            // Written as a difference: `amount_refunded + $2` could overflow BIGINT.
            "WHERE id = $1 AND status = 'success' AND $2 <= amount - amount_refunded RETURNING ", cols!()
        ))
        .bind(id)
        .bind(amount.get())
        .bind(now)
        .fetch_optional(&mut *conn)
        .await
    })
}

/// Gives back `amount` reserved by [`reserve_refund`] in this transaction (its request did
/// not go through).
pub async fn release_refund(tx: &mut Tx, id: &str, amount: MinorUnit) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => {
        sqlx::query("UPDATE payments SET amount_refunded = amount_refunded - $2 WHERE id = $1")
            .bind(id)
            .bind(amount.get())
            .execute(&mut *conn)
            .await?;
        Ok(())
    })
}

/// The payment, read inside a transaction.
pub async fn get_in(tx: &mut Tx, id: &str) -> Result<Option<Payment>, sqlx::Error> {
    on_tx!(tx, conn => {
        sqlx::query_as::<_, Payment>(concat!("SELECT ", cols!(), " FROM payments WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
    })
}

/// Ids of payments still `pending` that were created before `before`, oldest first.
pub async fn pending_before(
    store: &Store,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    on_pool!(store, pool => {
        sqlx::query_scalar(
            "SELECT id FROM payments WHERE status = 'pending' AND created_at < $1 \
             ORDER BY created_at LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}

/// A payment to create for an order, as the batched insert takes it: the amount, currency and
/// merchant come from the order, in the same statement.
#[derive(Clone, Debug)]
pub struct NewRow {
    pub id: String,
    pub order_id: String,
    /// The order must belong to this merchant (the authenticated API); `None`: any (checkout).
    pub merchant_filter: Option<String>,
    pub method: Method,
    pub vpa: Option<String>,
    pub card_network: Option<String>,
    pub card_last4: Option<String>,
    pub forced_outcome: Option<String>,
    pub at: DateTime<Utc>,
}

/// Inserts a pending payment for each row whose order exists (and is the merchant's) and is
/// not paid, unless the order has a pending or successful payment (the unique index, with
/// `ON CONFLICT DO NOTHING`: a conflict skips that row, it fails nothing else). One statement
/// for the batch, which reads the orders itself. Returns the payments inserted.
pub async fn insert_for_orders(tx: &mut Tx, rows: &[NewRow]) -> Result<Vec<Payment>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let input = super::rows::Rows::new(rows.len())
        .text("id", rows.iter().map(|r| r.id.clone()))
        .text("order_id", rows.iter().map(|r| r.order_id.clone()))
        .opt_text(
            "merchant_filter",
            rows.iter().map(|r| r.merchant_filter.clone()),
        )
        .text("method", rows.iter().map(|r| r.method.as_str()))
        .opt_text("vpa", rows.iter().map(|r| r.vpa.clone()))
        .opt_text("card_network", rows.iter().map(|r| r.card_network.clone()))
        .opt_text("card_last4", rows.iter().map(|r| r.card_last4.clone()))
        .opt_text(
            "forced_outcome",
            rows.iter().map(|r| r.forced_outcome.clone()),
        )
        .time("at", rows.iter().map(|r| r.at));
    super::rows::fetch(
        tx,
        input,
        concat!(
            "INSERT INTO payments (id, merchant_id, order_id, amount, currency, method, vpa, card_network, ",
            "card_last4, status, captured, forced_outcome, amount_refunded, created_at, updated_at) ",
            "SELECT v.id, o.merchant_id, o.id, o.amount, o.currency, v.method, v.vpa, v.card_network, ",
            "v.card_last4, 'pending', FALSE, v.forced_outcome, 0, v.at, v.at ",
            "FROM v JOIN orders o ON o.id = v.order_id ",
            "WHERE o.status = 'created' AND (v.merchant_filter IS NULL OR o.merchant_id = v.merchant_filter) ",
            "ON CONFLICT DO NOTHING RETURNING ",
            cols!()
        ),
    )
    .await
}

/// Deletes payments this transaction inserted (whose request lost its idempotency key).
pub async fn delete_in(tx: &mut Tx, ids: &[String]) -> Result<(), sqlx::Error> {
    let input = super::rows::Rows::new(ids.len()).text("id", ids.iter().cloned());
    super::rows::execute(
        tx,
        input,
        "DELETE FROM payments WHERE id IN (SELECT id FROM v)",
    )
    .await?;
    Ok(())
}

/// [`begin_processor_call`] for many payments in one statement; returns those whose lease
/// this call took.
pub async fn begin_processor_calls(
    store: &Store,
    ids: &[String],
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<Payment>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let input = super::rows::Rows::new(ids.len())
        .text("id", ids.iter().cloned())
        .time("now", ids.iter().map(|_| now))
        .time("until", ids.iter().map(|_| until));
    let sql = format!(
        "UPDATE payments SET processor_lease_until = v.until, processor_calls = payments.processor_calls + 1 \
         FROM v WHERE payments.id = v.id AND payments.status = 'pending' \
         AND (payments.processor_lease_until IS NULL OR payments.processor_lease_until < v.now) \
         RETURNING {}",
        super::rows::qualified("payments", cols!())
    );
    super::rows::fetch_write(store, input, &sql).await
}

/// A payment's final status, as the batched update takes it.
#[derive(Clone, Debug)]
pub struct Finish {
    pub id: String,
    pub status: PaymentStatus,
    pub error_code: Option<String>,
    pub error_description: Option<String>,
    pub at: DateTime<Utc>,
}

/// [`finish`] for many payments in one statement: moves each `pending` payment to its final
/// status and returns the payments this call moved (one already final is left alone).
pub async fn finish_all(tx: &mut Tx, rows: &[Finish]) -> Result<Vec<Payment>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let input = super::rows::Rows::new(rows.len())
        .text("id", rows.iter().map(|r| r.id.clone()))
        .text("status", rows.iter().map(|r| r.status.as_str()))
        .opt_text("error_code", rows.iter().map(|r| r.error_code.clone()))
        .opt_text(
            "error_description",
            rows.iter().map(|r| r.error_description.clone()),
        )
        .time("at", rows.iter().map(|r| r.at));
    let sql = format!(
        "UPDATE payments SET status = v.status, error_code = v.error_code, \
         error_description = v.error_description, processor_lease_until = NULL, updated_at = v.at \
         FROM v WHERE payments.id = v.id AND payments.status = 'pending' RETURNING {}",
        super::rows::qualified("payments", cols!())
    );
    super::rows::fetch(tx, input, &sql).await
}

/// The payments with these ids (any order), whoever owns them.
pub async fn get_many(store: &Store, ids: &[String]) -> Result<Vec<Payment>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let input = super::rows::Rows::new(ids.len()).text("id", ids.iter().cloned());
    let sql = format!(
        "SELECT {} FROM payments JOIN v ON payments.id = v.id",
        super::rows::qualified("payments", cols!())
    );
    super::rows::fetch_write(store, input, &sql).await
}
