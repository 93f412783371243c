//! Settlement and reconciliation rows.
//!
//! A settlement claims its transactions by one conditional statement per table
//! (`settlement_id IS NULL`), so each transaction belongs to exactly one settlement however many
//! workers settle at once: on PostgreSQL a concurrent claim waits for the rows another holds and
//! re-checks the condition after it commits; on SQLite writers take turns. The payout's status
//! changes are conditional updates on the current status.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Store, Tx, sql, table::table};

/// A stored settlement: one payout of a merchant's due transactions in one currency. Amounts
/// are in the currency's smallest unit; `amount = gross - refunds - fees - tax`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Settlement {
    pub id: String,
    pub merchant_id: String,
    pub currency: String,
    /// What is paid out.
    pub amount: i64,
    /// The captured payments' amounts.
    pub gross: i64,
    /// The processed refunds' amounts.
    pub refunds: i64,
    /// The payments' fees.
    pub fees: i64,
    /// The tax on the fees.
    pub tax: i64,
    /// Payments and refunds settled.
    pub count: i64,
    /// `created`, `processed` or `failed` (retried).
    pub status: String,
    /// The bank's reference of the payout, once processed.
    pub utr: Option<String>,
    /// Payouts asked of the bank.
    pub attempts: i32,
    /// Why the last payout failed.
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
}

macro_rules! cols {
    () => {
        "id, merchant_id, currency, amount, gross, refunds, fees, tax, count, status, utr, \
         attempts, failure_reason, created_at, updated_at, processed_at"
    };
}

table!(Settlement, "settlements", cols, "created_at, id");

/// What one claim took: the transactions' count and sums.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub count: i64,
    pub gross: i64,
    pub refunds: i64,
    pub fees: i64,
    pub tax: i64,
}

/// The merchants and currencies with transactions due at `cutoff` (captured or processed at or
/// before it) not yet settled.
pub async fn due(
    store: &Store,
    cutoff: DateTime<Utc>,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let sql = "SELECT DISTINCT merchant_id, currency FROM payments \
               WHERE captured AND settlement_id IS NULL AND captured_at <= $1 \
               UNION \
               SELECT DISTINCT r.merchant_id, p.currency FROM refunds r \
               JOIN payments p ON p.id = r.payment_id \
               WHERE r.status = 'processed' AND r.settlement_id IS NULL AND r.processed_at <= $1 \
               AND p.captured";
    sql!(on_pool(store) => fetch_all(sql, cutoff))
}

/// Claims for settlement `id` every unsettled captured payment and processed refund (of a
/// captured payment) of the merchant in `currency` due at `cutoff`: one conditional statement
/// per table, then their sums. A transaction another settlement claimed is not claimed again.
pub async fn claim(
    tx: &mut Tx,
    id: &str,
    merchant_id: &str,
    currency: &str,
    cutoff: DateTime<Utc>,
) -> Result<Totals, sqlx::Error> {
    let payments = "UPDATE payments SET settlement_id = $1 \
                    WHERE merchant_id = $2 AND captured AND settlement_id IS NULL \
                    AND captured_at <= $4 AND currency = $3";
    sql!(on_tx(tx) => execute(payments, id, merchant_id, currency, cutoff))?;
    let refunds = "UPDATE refunds SET settlement_id = $1 \
                   WHERE merchant_id = $2 AND status = 'processed' AND settlement_id IS NULL \
                   AND processed_at <= $4 AND EXISTS (SELECT 1 FROM payments p \
                   WHERE p.id = refunds.payment_id AND p.captured AND p.currency = $3)";
    sql!(on_tx(tx) => execute(refunds, id, merchant_id, currency, cutoff))?;
    // PostgreSQL sums BIGINTs as NUMERIC: cast back (an overflow is an error on both).
    let sums = "SELECT CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(amount), 0) AS BIGINT), \
                CAST(COALESCE(SUM(fee), 0) AS BIGINT), CAST(COALESCE(SUM(tax), 0) AS BIGINT) \
                FROM payments WHERE settlement_id = $1";
    let (paid, gross, fees, tax): (i64, i64, i64, i64) = sql!(on_tx(tx) => fetch_one(sums, id))?;
    let sums = "SELECT CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(amount), 0) AS BIGINT) \
                FROM refunds WHERE settlement_id = $1";
    let (refunded, refunds): (i64, i64) = sql!(on_tx(tx) => fetch_one(sums, id))?;
    Ok(Totals {
        count: paid + refunded,
        gross,
        refunds,
        fees,
        tax,
    })
}

/// Inserts a settlement.
pub async fn insert(tx: &mut Tx, s: &Settlement) -> Result<(), sqlx::Error> {
    let sql = concat!(
        "INSERT INTO settlements (",
        cols!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    );
    sql!(on_tx(tx) => execute(
        sql,
        &s.id,
        &s.merchant_id,
        &s.currency,
        s.amount,
        s.gross,
        s.refunds,
        s.fees,
        s.tax,
        s.count,
        &s.status,
        &s.utr,
        s.attempts,
        &s.failure_reason,
        s.created_at,
        s.updated_at,
        s.processed_at,
    ))?;
    Ok(())
}

/// Settlements not paid out yet (`created`, or `failed` and to be retried) last changed
/// before `before`, least recently changed first.
pub async fn unpaid(
    store: &Store,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Settlement>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        cols!(),
        " FROM settlements WHERE status <> 'processed' AND updated_at < $1 ",
        "ORDER BY updated_at LIMIT $2"
    );
    sql!(on_pool(store) => fetch_all(sql, before, limit))
}

/// Records the payout of an unprocessed settlement; `None` when it was processed already.
pub async fn mark_processed(
    tx: &mut Tx,
    id: &str,
    utr: &str,
    at: DateTime<Utc>,
) -> Result<Option<Settlement>, sqlx::Error> {
    let sql = concat!(
        "UPDATE settlements SET status = 'processed', utr = $2, processed_at = $3, ",
        "updated_at = $3, attempts = attempts + 1, failure_reason = NULL ",
        "WHERE id = $1 AND status <> 'processed' RETURNING ",
        cols!()
    );
    sql!(on_tx(tx) => fetch_optional(sql, id, utr, at))
}

/// Records a failed payout of an unprocessed settlement (retried at the next cycle); `None`
/// when it was processed meanwhile.
pub async fn mark_failed(
    store: &Store,
    id: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<Option<Settlement>, sqlx::Error> {
    let sql = concat!(
        "UPDATE settlements SET status = 'failed', failure_reason = $2, updated_at = $3, ",
        "attempts = attempts + 1 WHERE id = $1 AND status <> 'processed' RETURNING ",
        cols!()
    );
    sql!(on_write(store) => fetch_optional(sql, id, reason, at))
}

/// A merchant's unsettled money in one currency: what the captured payments and processed
/// refunds not yet settled come to, and when the oldest of them became final.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsettled {
    pub currency: String,
    /// Captured minus refunded minus fees and tax (negative when refunds exceed).
    pub balance: i64,
    pub count: i64,
    pub oldest: Option<DateTime<Utc>>,
}

/// The merchant's unsettled money, per currency.
pub async fn unsettled(store: &Store, merchant_id: &str) -> Result<Vec<Unsettled>, sqlx::Error> {
    let payments = "SELECT currency, CAST(COUNT(*) AS BIGINT), \
                    CAST(COALESCE(SUM(amount - COALESCE(fee, 0) - COALESCE(tax, 0)), 0) AS BIGINT), \
                    MIN(captured_at) FROM payments \
                    WHERE merchant_id = $1 AND captured AND settlement_id IS NULL GROUP BY currency";
    let rows: Vec<(String, i64, i64, Option<DateTime<Utc>>)> =
        sql!(on_pool(store) => fetch_all(payments, merchant_id))?;
    let refunds = "SELECT p.currency, CAST(COUNT(*) AS BIGINT), \
                   CAST(COALESCE(SUM(r.amount), 0) AS BIGINT), MIN(r.processed_at) \
                   FROM refunds r JOIN payments p ON p.id = r.payment_id \
                   WHERE r.merchant_id = $1 AND r.status = 'processed' \
                   AND r.settlement_id IS NULL AND p.captured GROUP BY p.currency";
    let refunded: Vec<(String, i64, i64, Option<DateTime<Utc>>)> =
        sql!(on_pool(store) => fetch_all(refunds, merchant_id))?;
    let mut out: Vec<Unsettled> = Vec::new();
    for (currency, count, money, oldest) in rows {
        out.push(Unsettled {
            currency,
            balance: money,
            count,
            oldest,
        });
    }
    for (currency, count, money, oldest) in refunded {
        let at = match out.iter().position(|u| u.currency == currency) {
            Some(at) => at,
            None => {
                out.push(Unsettled {
                    currency,
                    balance: 0,
                    count: 0,
                    oldest: None,
                });
                out.len() - 1
            }
        };
        let u = &mut out[at];
        u.balance = u.balance.saturating_sub(money);
        u.count = u.count.saturating_add(count);
        u.oldest = match (u.oldest, oldest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    out.sort_by(|a, b| a.currency.cmp(&b.currency));
    Ok(out)
}

/// A payment or a refund as reconciliation sees it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Transaction {
    /// `payment` or `refund`.
    pub kind: String,
    pub id: String,
    /// The payment (a refund's payment; a payment's own id).
    pub payment_id: String,
    pub amount: i64,
    /// The fee (zero for a refund: the fee is not returned).
    pub fee: i64,
    pub tax: i64,
    pub currency: String,
    /// When it became final: captured, or processed.
    pub at: DateTime<Utc>,
    pub settlement_id: Option<String>,
    /// When its settlement was paid out.
    pub settled_at: Option<DateTime<Utc>>,
    pub utr: Option<String>,
}

/// Which transactions a reconciliation list reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// Final at or after.
    pub from: DateTime<Utc>,
    /// Final before.
    pub to: DateTime<Utc>,
    /// Only this settlement's.
    pub settlement_id: Option<String>,
    /// Right after this transaction (final at, id).
    pub after: Option<(DateTime<Utc>, String)>,
    pub limit: i64,
}

/// The recon list's statement: each table's page read from its index by (time, id) after the
/// cursor (a row value, which both databases compare on the index), then the two merged; `$7`
/// is the settlement when the filters name one.
macro_rules! recon {
    ($payments:literal, $refunds:literal) => {
        concat!(
            "SELECT * FROM (SELECT * FROM (",
            "SELECT 'payment' AS kind, p.id, p.id AS payment_id, p.amount, ",
            "COALESCE(p.fee, 0) AS fee, COALESCE(p.tax, 0) AS tax, p.currency, p.captured_at AS at, ",
            "p.settlement_id, s.processed_at AS settled_at, s.utr ",
            "FROM payments p LEFT JOIN settlements s ON s.id = p.settlement_id ",
            "WHERE p.merchant_id = $1 AND p.captured AND p.captured_at >= $2 AND p.captured_at < $3 ",
            "AND (p.captured_at, p.id) > ($4, $5) ",
            $payments,
            " ORDER BY p.captured_at, p.id LIMIT $6) a UNION ALL SELECT * FROM (",
            "SELECT 'refund' AS kind, r.id, r.payment_id, r.amount, 0 AS fee, 0 AS tax, p.currency, ",
            "r.processed_at AS at, r.settlement_id, s.processed_at AS settled_at, s.utr ",
            "FROM refunds r JOIN payments p ON p.id = r.payment_id ",
            "LEFT JOIN settlements s ON s.id = r.settlement_id ",
            "WHERE r.merchant_id = $1 AND r.status = 'processed' AND p.captured ",
            "AND r.processed_at >= $2 AND r.processed_at < $3 ",
            "AND (r.processed_at, r.id) > ($4, $5) ",
            $refunds,
            " ORDER BY r.processed_at, r.id LIMIT $6) b) t ORDER BY at, id LIMIT $6"
        )
    };
}

/// The merchant's captured payments and processed refunds in `w`, oldest first: one page,
/// read from the indexes by time (or by settlement), so each page costs the same however deep.
pub async fn transactions(
    store: &Store,
    merchant_id: &str,
    w: &Window,
) -> Result<Vec<Transaction>, sqlx::Error> {
    let (after_at, after_id) = w
        .after
        .clone()
        .unwrap_or((DateTime::UNIX_EPOCH, String::new()));
    // Nothing before the cursor's time can follow it: starting the range there lets SQLite
    // seek the index to it (it reads a row value as a filter, not as a bound).
    let from = w.from.max(after_at);
    match &w.settlement_id {
        None => {
            let sql = recon!("", "");
            sql!(on_pool(store) => fetch_all(sql, merchant_id, from, w.to, after_at, after_id, w.limit))
        }
        Some(s) => {
            let sql = recon!("AND p.settlement_id = $7", "AND r.settlement_id = $7");
            sql!(on_pool(store) => fetch_all(sql, merchant_id, from, w.to, after_at, after_id, w.limit, s))
        }
    }
}

/// When transaction `id` of the merchant became final (for a cursor), if it is one.
pub async fn final_at(
    store: &Store,
    merchant_id: &str,
    id: &str,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let sql = "SELECT captured_at FROM payments WHERE id = $1 AND merchant_id = $2 AND captured \
               UNION ALL SELECT processed_at FROM refunds \
               WHERE id = $1 AND merchant_id = $2 AND status = 'processed'";
    let at: Option<Option<DateTime<Utc>>> =
        sql!(on_pool(store) => scalar::fetch_optional(sql, id, merchant_id))?;
    Ok(at.flatten())
}

/// A kept reconciliation: a bank report checked against paygate's transactions of its date.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct Reconciliation {
    pub id: String,
    pub merchant_id: String,
    /// The report's date, `YYYY-MM-DD` (UTC).
    pub report_date: String,
    pub matched: i64,
    pub mismatched: i64,
    pub unknown: i64,
    pub missing: i64,
    /// Each line's result, a JSON array.
    #[sqlx(json)]
    pub lines: Value,
    pub created_at: DateTime<Utc>,
}

macro_rules! reconciliation_cols {
    () => {
        "id, merchant_id, report_date, matched, mismatched, unknown, missing, lines, created_at"
    };
}

table!(
    Reconciliation,
    "reconciliations",
    reconciliation_cols,
    "created_at, id"
);

/// Keeps a reconciliation.
pub async fn insert_reconciliation(tx: &mut Tx, r: &Reconciliation) -> Result<(), sqlx::Error> {
    let input = super::rows::Rows::new(1)
        .text("id", [r.id.clone()])
        .text("merchant_id", [r.merchant_id.clone()])
        .text("report_date", [r.report_date.clone()])
        .int("matched", [r.matched])
        .int("mismatched", [r.mismatched])
        .int("unknown", [r.unknown])
        .int("missing", [r.missing])
        .json("lines", [r.lines.to_string()])
        .time("created_at", [r.created_at]);
    super::table::insert_all::<Reconciliation>(tx, input).await
}

/// The merchant's captured payments and processed refunds with these ids, in one statement.
pub async fn known(
    store: &Store,
    merchant_id: &str,
    ids: &[String],
) -> Result<Vec<Transaction>, sqlx::Error> {
    let input = super::rows::Rows::new(ids.len())
        .text("id", ids.iter().cloned())
        .text("merchant_id", ids.iter().map(|_| merchant_id.to_owned()));
    let sql = "SELECT 'payment' AS kind, p.id, p.id AS payment_id, p.amount, \
               COALESCE(p.fee, 0) AS fee, COALESCE(p.tax, 0) AS tax, p.currency, \
               p.captured_at AS at, p.settlement_id, s.processed_at AS settled_at, s.utr \
               FROM v JOIN payments p ON p.id = v.id AND p.merchant_id = v.merchant_id \
               AND p.captured \
               LEFT JOIN settlements s ON s.id = p.settlement_id \
               UNION ALL \
               SELECT 'refund' AS kind, r.id, r.payment_id, r.amount, 0 AS fee, 0 AS tax, p.currency, \
               r.processed_at AS at, r.settlement_id, s.processed_at AS settled_at, s.utr \
               FROM v JOIN refunds r ON r.id = v.id AND r.merchant_id = v.merchant_id \
               AND r.status = 'processed' \
               JOIN payments p ON p.id = r.payment_id AND p.captured \
               LEFT JOIN settlements s ON s.id = r.settlement_id";
    super::rows::fetch_read(store, input, sql).await
}
