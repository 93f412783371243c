//! Order rows.

use chrono::{DateTime, Utc};
use paygate_core::{MinorUnit, OrderStatus};
use serde_json::Value;

use super::{Tx, table::table};

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
    /// The payment link this order is an attempt to pay, if any.
    pub payment_link_id: Option<String>,
    /// Where the hosted checkout sends the customer after paying (with `payment_id` added).
    pub callback_url: Option<String>,
}

macro_rules! cols {
    () => {
        "id, merchant_id, amount, currency, receipt, notes, status, created_at, updated_at, \
         payment_link_id, callback_url"
    };
}

table!(Order, "orders", cols, "created_at, id");

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
        .time("updated_at", orders.iter().map(|o| o.updated_at))
        .opt_text(
            "payment_link_id",
            orders.iter().map(|o| o.payment_link_id.clone()),
        )
        .opt_text(
            "callback_url",
            orders.iter().map(|o| o.callback_url.clone()),
        );
    super::table::insert_all::<Order>(tx, input).await
}

/// What explains a refused payment of an order: its owner, status, payment link and amount.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Owner {
    pub id: String,
    pub merchant_id: String,
    pub status: String,
    pub payment_link_id: Option<String>,
    pub amount: i64,
}

/// The owner, status, payment link and amount of each of these orders that exists.
pub async fn owners(tx: &mut Tx, ids: &[String]) -> Result<Vec<Owner>, sqlx::Error> {
    let input = super::rows::Rows::new(ids.len()).text("id", ids.iter().cloned());
    super::rows::fetch(
        tx,
        input,
        "SELECT o.id, o.merchant_id, o.status, o.payment_link_id, o.amount \
         FROM orders o JOIN v ON o.id = v.id",
    )
    .await
}

/// Marks these `created` orders `paid`, in one statement; returns the payment link of each
/// order it marked that has one: `(order id, link id)`.
pub async fn mark_all_paid(
    tx: &mut Tx,
    ids: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let input = super::rows::Rows::new(ids.len())
        .text("id", ids.iter().cloned())
        .time("at", ids.iter().map(|_| now));
    let marked: Vec<(String, Option<String>)> = super::rows::fetch(
        tx,
        input,
        "UPDATE orders SET status = 'paid', updated_at = v.at FROM v \
         WHERE orders.id = v.id AND orders.status = 'created' \
         RETURNING orders.id, orders.payment_link_id",
    )
    .await?;
    Ok(marked
        .into_iter()
        .filter_map(|(id, link)| Some((id, link?)))
        .collect())
}
