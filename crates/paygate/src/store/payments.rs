//! Payment rows. Status changes are conditional updates on the current status, so a
//! transition applies once however many times it is attempted.

use chrono::{DateTime, Utc};
use paygate_core::{Method, MinorUnit, PaymentStatus, fees};

use super::{Store, Tx, sql, table::table};

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
    /// How many runs took the processor lease (more than one: a run may have asked before).
    pub processor_calls: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// `collect`, `intent` or `qr` (UPI payments made since the flows were recorded).
    pub upi_flow: Option<String>,
    /// The `upi://pay` link of an intent or QR payment.
    pub upi_uri: Option<String>,
    /// Where the QR of an intent or QR payment is served (SVG).
    pub upi_qr_url: Option<String>,
    /// When an intent or QR payment not approved by then fails (`PAYMENT_EXPIRED`).
    pub expires_at: Option<DateTime<Utc>>,
    /// The gateway's fee, set when the payment succeeds (the merchant's pricing).
    pub fee: Option<i64>,
    /// The tax on the fee, set with it.
    pub tax: Option<i64>,
    /// The settlement that paid it out, once settled.
    pub settlement_id: Option<String>,
}

macro_rules! cols {
    () => {
        "id, merchant_id, order_id, amount, currency, method, vpa, card_network, card_last4, \
         status, captured, error_code, error_description, forced_outcome, captured_at, \
         amount_refunded, processor_lease_until, processor_calls, created_at, updated_at, \
         upi_flow, upi_uri, upi_qr_url, expires_at, fee, tax, settlement_id"
    };
}

table!(Payment, "payments", cols, "created_at, id", pending);

/// The payment with this id, whoever owns it.
pub async fn get(store: &Store, id: &str) -> Result<Option<Payment>, sqlx::Error> {
    super::table::get(store, id).await
}

/// Filters of the dashboard's transactions page.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub status: Option<PaymentStatus>,
    pub method: Option<Method>,
    /// A payment id or an order id.
    pub search: Option<String>,
    /// Created at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Created before this instant.
    pub to: Option<DateTime<Utc>>,
}

impl Filter {
    /// The conditions of the filter, each served by an index: `(merchant_id, status, …)`,
    /// `(merchant_id, method, …)`, `(merchant_id, created_at, …)` or, for the search, the
    /// primary key and `(order_id)`.
    pub fn conditions(&self) -> super::table::Filter {
        use super::table::Arg;
        let mut c = super::table::Filter::default();
        if let Some(status) = self.status {
            c = c.and("status = ?", Arg::Text(status.as_str().to_owned()));
        }
        if let Some(method) = self.method {
            c = c.and("method = ?", Arg::Text(method.as_str().to_owned()));
        }
        if let Some(search) = &self.search {
            c = c.and("(id = ? OR order_id = ?)", Arg::Text(search.clone()));
        }
        if let Some(from) = self.from {
            c = c.and("created_at >= ?", Arg::Time(from));
        }
        if let Some(to) = self.to {
            c = c.and("created_at < ?", Arg::Time(to));
        }
        c
    }
}

/// A page of the merchant's payments matching `f`, newest first, with the matching total
/// (counted up to [`super::table::COUNT_UP_TO`]); `None` if the window's cursor is not one of
/// the merchant's payments.
pub async fn list_filtered(
    store: &Store,
    merchant_id: &str,
    f: &Filter,
    window: super::table::Window,
) -> Result<Option<super::table::Page<Payment>>, sqlx::Error> {
    super::table::filtered(store, merchant_id, &f.conditions(), window).await
}

/// Marks a successful, uncaptured payment captured; `None` if it is not in that state.
pub async fn capture(
    tx: &mut Tx,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Payment>, sqlx::Error> {
    let sql = concat!(
        "UPDATE payments SET captured = TRUE, captured_at = $2, updated_at = $2 ",
        // A payment with refunds (made or in progress) is not captured: its money is going back.
        "WHERE id = $1 AND status = 'success' AND captured = FALSE AND amount_refunded = 0 ",
        "RETURNING ",
        cols!()
    );
    sql!(on_tx(tx) => fetch_optional(sql, id, now))
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
    let sql = concat!(
        "UPDATE payments SET amount_refunded = amount_refunded + $2, updated_at = $3 ",
        // Written as a difference: `amount_refunded + $2` could overflow BIGINT.
        "WHERE id = $1 AND status = 'success' AND $2 <= amount - amount_refunded RETURNING ",
        cols!()
    );
    sql!(on_tx(tx) => fetch_optional(sql, id, amount.get(), now))
}

/// Gives back `amount` reserved by [`reserve_refund`] in this transaction (its request did
/// not go through).
pub async fn release_refund(tx: &mut Tx, id: &str, amount: MinorUnit) -> Result<(), sqlx::Error> {
    let sql = "UPDATE payments SET amount_refunded = amount_refunded - $2 WHERE id = $1";
    sql!(on_tx(tx) => execute(sql, id, amount.get()))?;
    Ok(())
}

/// The payment, read inside a transaction.
pub async fn get_in(tx: &mut Tx, id: &str) -> Result<Option<Payment>, sqlx::Error> {
    super::table::get_in(tx, id).await
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
    pub upi_flow: Option<String>,
    pub upi_uri: Option<String>,
    pub upi_qr_url: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

/// Inserts a pending payment for each row whose order exists (and is the merchant's) and is
/// not paid (and, for an order of a payment link, the link still takes it), unless the order
/// has a pending or successful payment (the unique index, with
/// `ON CONFLICT DO NOTHING`: a conflict skips that row, it fails nothing else). One statement
/// for the batch, which reads the orders itself. Returns the payments inserted.
pub async fn insert_for_orders(tx: &mut Tx, rows: &[NewRow]) -> Result<Vec<Payment>, sqlx::Error> {
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
        .opt_text("upi_flow", rows.iter().map(|r| r.upi_flow.clone()))
        .opt_text("upi_uri", rows.iter().map(|r| r.upi_uri.clone()))
        .opt_text("upi_qr_url", rows.iter().map(|r| r.upi_qr_url.clone()))
        .opt_time("expires_at", rows.iter().map(|r| r.expires_at))
        .time("at", rows.iter().map(|r| r.at));
    super::rows::fetch(
        tx,
        input,
        concat!(
            "INSERT INTO payments (id, merchant_id, order_id, amount, currency, method, vpa, card_network, ",
            "card_last4, status, captured, forced_outcome, amount_refunded, created_at, updated_at, ",
            "upi_flow, upi_uri, upi_qr_url, expires_at) ",
            "SELECT v.id, o.merchant_id, o.id, o.amount, o.currency, v.method, v.vpa, v.card_network, ",
            "v.card_last4, 'pending', FALSE, v.forced_outcome, 0, v.at, v.at, ",
            "v.upi_flow, v.upi_uri, v.upi_qr_url, v.expires_at ",
            "FROM v JOIN orders o ON o.id = v.order_id ",
            "WHERE o.status = 'created' AND (v.merchant_filter IS NULL OR o.merchant_id = v.merchant_filter) ",
            // An order of a payment link only while the link takes it: open, not past its
            // expiry, and the order's amount still due.
            "AND (o.payment_link_id IS NULL OR EXISTS (SELECT 1 FROM payment_links l ",
            "WHERE l.id = o.payment_link_id AND l.status IN ('created', 'partially_paid') ",
            "AND (l.expire_by IS NULL OR l.expire_by > v.at) AND o.amount <= l.amount - l.amount_paid)) ",
            "ON CONFLICT DO NOTHING RETURNING ",
            cols!()
        ),
    )
    .await
}

/// Takes the processor leases of these payments until `until` for runs about to ask the
/// processor, counting the calls, in one statement: only of payments still pending whose lease
/// no other run holds. Returns the payments whose lease this call took.
pub async fn begin_processor_calls(
    store: &Store,
    ids: &[String],
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    owner: &str,
) -> Result<Vec<Payment>, sqlx::Error> {
    let input = super::rows::Rows::new(ids.len())
        .text("id", ids.iter().cloned())
        .time("now", ids.iter().map(|_| now))
        .time("until", ids.iter().map(|_| until))
        .text("owner", ids.iter().map(|_| owner.to_owned()));
    let sql = format!(
        "UPDATE payments SET processor_lease_until = v.until, processor_lease_owner = v.owner, \
         processor_calls = payments.processor_calls + 1 \
         FROM v WHERE payments.id = v.id AND payments.status = 'pending' \
         AND (payments.processor_lease_until IS NULL OR payments.processor_lease_until < v.now) \
         RETURNING {}",
        super::rows::qualified("payments", cols!())
    );
    super::rows::fetch_write(store, input, &sql).await
}

/// Records the customer's answer to an intent or QR payment (`outcome`: `success` or
/// `failure`, the payer's VPA when known), once: only while it is pending, unanswered and not
/// expired at `now`. Returns the payment when this call recorded it.
pub async fn answer_upi(
    tx: &mut Tx,
    id: &str,
    outcome: &str,
    payer: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<Payment>, sqlx::Error> {
    let sql = concat!(
        "UPDATE payments SET forced_outcome = $2, vpa = COALESCE($3, vpa), updated_at = $4 ",
        "WHERE id = $1 AND status = 'pending' AND upi_flow IN ('intent', 'qr') ",
        "AND forced_outcome IS NULL AND expires_at > $4 RETURNING ",
        cols!()
    );
    sql!(on_tx(tx) => fetch_optional(sql, id, outcome, payer, now))
}

/// Gives up a processor lease this run took without asking the processor (an intent or QR
/// payment still waiting for its customer).
pub async fn release_lease(store: &Store, id: &str, owner: &str) -> Result<(), sqlx::Error> {
    let sql = "UPDATE payments SET processor_lease_until = NULL \
               WHERE id = $1 AND status = 'pending' AND processor_lease_owner = $2";
    sql!(on_write(store) => execute(sql, id, owner))?;
    Ok(())
}

/// A payment's final status, as the batched update takes it.
#[derive(Clone, Debug)]
pub struct Finish {
    pub id: String,
    pub status: PaymentStatus,
    pub error_code: Option<String>,
    pub error_description: Option<String>,
    /// An expiry: only while the customer has not answered (no forced outcome recorded), so
    /// an approval and the expiry never both take effect.
    pub unanswered_only: bool,
    pub at: DateTime<Utc>,
}

/// The statement of [`finish_all`]. A success carries its fee and the tax on it, from the
/// merchant's pricing for the method (joined once per row; the defaults without one): each
/// `amount × bps / 10 000` rounded half up, computed on the quotient and remainder by 10 000 so
/// no product overflows (`paygate_core::fees`).
static FINISH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let share = |amount: &str, bps: &str| {
        format!("(({amount}) / 10000) * {bps} + ((({amount}) % 10000) * {bps} + 5000) / 10000")
    };
    let fee_bps = format!("COALESCE(pr.fee_bps, {})", fees::DEFAULT_FEE_BPS);
    let tax_bps = format!("COALESCE(pr.tax_bps, {})", fees::DEFAULT_TAX_BPS);
    let fee = share("payments.amount", &fee_bps);
    let tax = share(&fee, &tax_bps);
    format!(
        "UPDATE payments SET status = v.status, error_code = v.error_code, \
         error_description = v.error_description, processor_lease_until = NULL, updated_at = v.at, \
         fee = CASE WHEN v.status = 'success' THEN {fee} END, \
         tax = CASE WHEN v.status = 'success' THEN {tax} END \
         FROM v JOIN payments p0 ON p0.id = v.id \
         LEFT JOIN pricing pr ON pr.merchant_id = p0.merchant_id AND pr.method = p0.method \
         WHERE payments.id = v.id AND payments.status = 'pending' \
         AND (NOT v.unanswered_only OR payments.forced_outcome IS NULL) RETURNING {}",
        super::rows::qualified("payments", cols!())
    )
});

/// Moves each `pending` payment to its final status, in one statement, and returns the
/// payments this call moved (one already final is left alone: the transition happened).
pub async fn finish_all(tx: &mut Tx, rows: &[Finish]) -> Result<Vec<Payment>, sqlx::Error> {
    let input = super::rows::Rows::new(rows.len())
        .text("id", rows.iter().map(|r| r.id.clone()))
        .text("status", rows.iter().map(|r| r.status.as_str()))
        .opt_text("error_code", rows.iter().map(|r| r.error_code.clone()))
        .opt_text(
            "error_description",
            rows.iter().map(|r| r.error_description.clone()),
        )
        .bool("unanswered_only", rows.iter().map(|r| r.unanswered_only))
        .time("at", rows.iter().map(|r| r.at));
    super::rows::fetch(tx, input, &FINISH).await
}
