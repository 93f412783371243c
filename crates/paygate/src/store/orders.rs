//! Order rows.

use chrono::{DateTime, Utc};
use paygate_core::{MinorUnit, OrderStatus};
use serde_json::Value;
use sqlx::types::Json;

use super::{Store, Tx, merchant_page, on_pool, on_tx};

/// A stored order.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Order {
    pub id: String,
    pub merchant_id: String,
    #[sqlx(try_from = "i64")]
    pub amount: MinorUnit,
    pub currency: String,
    pub receipt: Option<String>,
    /// A JSON object.
    #[sqlx(json)]
    pub notes: Value,
    #[sqlx(try_from = "String")]
    pub status: OrderStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

macro_rules! cols {
    () => {
        "id, merchant_id, amount, currency, receipt, notes, status, created_at, updated_at"
    };
}

/// Inserts an order.
pub async fn insert(tx: &mut Tx, o: &Order) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => {
        sqlx::query(concat!(
            "INSERT INTO orders (", cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&o.id)
        .bind(&o.merchant_id)
        .bind(o.amount.get())
        .bind(&o.currency)
        .bind(&o.receipt)
        .bind(Json(&o.notes))
        .bind(o.status.as_str())
        .bind(o.created_at)
        .bind(o.updated_at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    })
}

/// The order with this id, whoever owns it.
pub async fn get(store: &Store, id: &str) -> Result<Option<Order>, sqlx::Error> {
    on_pool!(store, pool => {
        sqlx::query_as::<_, Order>(concat!("SELECT ", cols!(), " FROM orders WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await
    })
}

/// A page of the merchant's orders, newest first, and the merchant's total.
pub async fn list(
    store: &Store,
    merchant_id: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Order>, i64), sqlx::Error> {
    merchant_page!(
        store,
        "orders",
        cols,
        Order,
        "created_at DESC, id DESC",
        merchant_id,
        limit,
        offset
    )
}

/// Marks a `created` order `paid`; returns whether it changed.
pub async fn mark_paid(tx: &mut Tx, id: &str, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    on_tx!(tx, conn => {
        let done = sqlx::query(
            "UPDATE orders SET status = 'paid', updated_at = $2 WHERE id = $1 AND status = 'created'",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected() == 1)
    })
}

/// Inserts orders, in one statement.
pub async fn insert_all(tx: &mut Tx, orders: &[Order]) -> Result<(), sqlx::Error> {
    let input = super::rows::Rows::new(orders.len())
        .text("id", orders.iter().map(|o| o.id.clone()))
        .text("merchant_id", orders.iter().map(|o| o.merchant_id.clone()))
        .int("amount", orders.iter().map(|o| o.amount.get()))
        .text("currency", orders.iter().map(|o| o.currency.clone()))
        .opt_text("receipt", orders.iter().map(|o| o.receipt.clone()))
        .json("notes", orders.iter().map(|o| o.notes.to_string()))
        .text("status", orders.iter().map(|o| o.status.as_str()))
        .time("created_at", orders.iter().map(|o| o.created_at))
        .time("updated_at", orders.iter().map(|o| o.updated_at));
    super::rows::execute(
        tx,
        input,
        concat!(
            "INSERT INTO orders (",
            cols!(),
            ") SELECT ",
            cols!(),
            " FROM v"
        ),
    )
    .await?;
    Ok(())
}

/// Deletes orders this transaction inserted (whose request lost its idempotency key).
pub async fn delete_in(tx: &mut Tx, ids: &[String]) -> Result<(), sqlx::Error> {
    let input = super::rows::Rows::new(ids.len()).text("id", ids.iter().cloned());
    super::rows::execute(
        tx,
        input,
        "DELETE FROM orders WHERE id IN (SELECT id FROM v)",
    )
    .await?;
    Ok(())
}

/// The owner and status of each of these orders that exists: `(id, merchant_id, status)`.
pub async fn owners(
    tx: &mut Tx,
    ids: &[String],
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let input = super::rows::Rows::new(ids.len()).text("id", ids.iter().cloned());
    super::rows::fetch(
        tx,
        input,
        "SELECT o.id, o.merchant_id, o.status FROM orders o JOIN v ON o.id = v.id",
    )
    .await
}

/// Marks these `created` orders `paid`, in one statement.
pub async fn mark_all_paid(
    tx: &mut Tx,
    ids: &[String],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let input = super::rows::Rows::new(ids.len())
        .text("id", ids.iter().cloned())
        .time("at", ids.iter().map(|_| now));
    super::rows::execute(
        tx,
        input,
        "UPDATE orders SET status = 'paid', updated_at = v.at FROM v \
         WHERE orders.id = v.id AND orders.status = 'created'",
    )
    .await?;
    Ok(())
}
