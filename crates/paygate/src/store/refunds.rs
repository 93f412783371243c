//! Refund rows. A refund moves `pending → processed` once, by a conditional update.

use chrono::{DateTime, Utc};
use paygate_core::{MinorUnit, RefundStatus};

use super::{Store, Tx, merchant_page, on_pool, on_tx, on_write};

/// A stored refund.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Refund {
    pub id: String,
    pub merchant_id: String,
    pub payment_id: String,
    #[sqlx(try_from = "i64")]
    pub amount: MinorUnit,
    pub reason: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: RefundStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
    /// While a run asks the processor about this refund: until when it may.
    pub processor_lease_until: Option<DateTime<Utc>>,
}

macro_rules! cols {
    () => {
        "id, merchant_id, payment_id, amount, reason, status, created_at, updated_at, processed_at, \
         processor_lease_until"
    };
}

/// Inserts a refund.
pub async fn insert(tx: &mut Tx, f: &Refund) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => {
        sqlx::query(concat!("INSERT INTO refunds (", cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"))
            .bind(&f.id)
            .bind(&f.merchant_id)
            .bind(&f.payment_id)
            .bind(f.amount.get())
            .bind(&f.reason)
            .bind(f.status.as_str())
            .bind(f.created_at)
            .bind(f.updated_at)
            .bind(f.processed_at)
            .bind(f.processor_lease_until)
            .execute(&mut *conn)
            .await?;
        Ok(())
    })
}

/// Inserts refunds, in one statement.
pub async fn insert_all(tx: &mut Tx, refunds: &[Refund]) -> Result<(), sqlx::Error> {
    let input = super::rows::Rows::new(refunds.len())
        .text("id", refunds.iter().map(|f| f.id.clone()))
        .text("merchant_id", refunds.iter().map(|f| f.merchant_id.clone()))
        .text("payment_id", refunds.iter().map(|f| f.payment_id.clone()))
        .int("amount", refunds.iter().map(|f| f.amount.get()))
        .opt_text("reason", refunds.iter().map(|f| f.reason.clone()))
        .text("status", refunds.iter().map(|f| f.status.as_str()))
        .time("created_at", refunds.iter().map(|f| f.created_at))
        .time("updated_at", refunds.iter().map(|f| f.updated_at))
        .opt_time("processed_at", refunds.iter().map(|f| f.processed_at))
        .opt_time(
            "processor_lease_until",
            refunds.iter().map(|f| f.processor_lease_until),
        );
    super::rows::execute(
        tx,
        input,
        concat!(
            "INSERT INTO refunds (",
            cols!(),
            ") SELECT ",
            cols!(),
            " FROM v"
        ),
    )
    .await?;
    Ok(())
}

/// The refund with this id, whoever owns it.
pub async fn get(store: &Store, id: &str) -> Result<Option<Refund>, sqlx::Error> {
    on_pool!(store, pool => {
        sqlx::query_as::<_, Refund>(concat!("SELECT ", cols!(), " FROM refunds WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await
    })
}

/// The refunds of one payment, oldest first.
pub async fn for_payment(store: &Store, payment_id: &str) -> Result<Vec<Refund>, sqlx::Error> {
    on_pool!(store, pool => {
        let rows = sqlx::query_as::<_, Refund>(concat!(
            "SELECT ", cols!(), " FROM refunds WHERE payment_id = $1 ORDER BY created_at, id"
        ))
        .bind(payment_id)
        .fetch_all(pool)
        .await?;
        Ok(rows)
    })
}

/// A page of the merchant's refunds, newest first, and the merchant's total.
pub async fn list(
    store: &Store,
    merchant_id: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Refund>, i64), sqlx::Error> {
    merchant_page!(
        store,
        "refunds",
        cols,
        Refund,
        "created_at DESC, id DESC",
        merchant_id,
        limit,
        offset
    )
}

/// Marks a pending refund processed; `None` if it was not pending any more.
pub async fn finish(
    tx: &mut Tx,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Refund>, sqlx::Error> {
    on_tx!(tx, conn => {
        sqlx::query_as::<_, Refund>(concat!(
            "UPDATE refunds SET status = 'processed', processed_at = $2, updated_at = $2, ",
            "processor_lease_until = NULL ",
            "WHERE id = $1 AND status = 'pending' RETURNING ", cols!()
        ))
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await
    })
}

/// Takes the refund's processor lease until `until` for a run about to ask the processor,
/// counting the call: only if the refund is pending and no other run holds a live lease.
pub async fn begin_processor_call(
    store: &Store,
    id: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Option<Refund>, sqlx::Error> {
    on_write!(store, pool => {
        sqlx::query_as::<_, Refund>(concat!(
            "UPDATE refunds SET processor_lease_until = $3, processor_calls = processor_calls + 1 ",
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

/// Ids of refunds still `pending` that were created before `before`, oldest first.
pub async fn pending_before(
    store: &Store,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    on_pool!(store, pool => {
        sqlx::query_scalar(
            "SELECT id FROM refunds WHERE status = 'pending' AND created_at < $1 ORDER BY created_at LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}
