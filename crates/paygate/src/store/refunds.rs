//! Refund rows. A refund moves `pending → processed` once, by a conditional update.

use chrono::{DateTime, Utc};
use paygate_core::{MinorUnit, RefundStatus};

use super::{Store, Tx, sql, table::table};

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
    /// How many runs took the processor lease (more than one: a run may have asked before).
    pub processor_calls: i32,
}

macro_rules! cols {
    () => {
        "id, merchant_id, payment_id, amount, reason, status, created_at, updated_at, processed_at, \
         processor_lease_until, processor_calls"
    };
}

table!(Refund, "refunds", cols, "created_at, id", pending);

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
        )
        .int(
            "processor_calls",
            refunds.iter().map(|f| i64::from(f.processor_calls)),
        );
    super::table::insert_all::<Refund>(tx, input).await
}

/// The refund with this id, whoever owns it.
pub async fn get(store: &Store, id: &str) -> Result<Option<Refund>, sqlx::Error> {
    super::table::get(store, id).await
}

/// The refunds of one payment, oldest first.
pub async fn for_payment(store: &Store, payment_id: &str) -> Result<Vec<Refund>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        cols!(),
        " FROM refunds WHERE payment_id = $1 ORDER BY created_at, id"
    );
    sql!(on_pool(store) => fetch_all(sql, payment_id))
}

/// Marks a pending refund processed; `None` if it was not pending any more.
pub async fn finish(
    tx: &mut Tx,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Refund>, sqlx::Error> {
    let sql = concat!(
        "UPDATE refunds SET status = 'processed', processed_at = $2, updated_at = $2, ",
        "processor_lease_until = NULL WHERE id = $1 AND status = 'pending' RETURNING ",
        cols!()
    );
    sql!(on_tx(tx) => fetch_optional(sql, id, now))
}

/// Takes the refund's processor lease until `until` for a run about to ask the processor,
/// counting the call: only if the refund is pending and no other run holds a live lease.
pub async fn begin_processor_call(
    store: &Store,
    id: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    owner: &str,
) -> Result<Option<Refund>, sqlx::Error> {
    let sql = concat!(
        "UPDATE refunds SET processor_lease_until = $3, processor_lease_owner = $4, ",
        "processor_calls = processor_calls + 1 ",
        "WHERE id = $1 AND status = 'pending' ",
        "AND (processor_lease_until IS NULL OR processor_lease_until < $2) RETURNING ",
        cols!()
    );
    sql!(on_write(store) => fetch_optional(sql, id, now, until, owner))
}
