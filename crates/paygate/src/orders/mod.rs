//! Orders: what the merchant wants to be paid.

use paygate_core::{Currency, OrderAmount, OrderId};
use serde_json::Value;

use crate::{
    idempotent::{self, Replay},
    store::{
        Store, now,
        orders::{self, Order},
    },
};

/// A validated order request.
#[derive(Clone, Debug)]
pub struct NewOrder {
    pub amount: OrderAmount,
    pub currency: Currency,
    pub receipt: Option<String>,
    /// A JSON object.
    pub notes: Value,
}

/// Order errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("order not found")]
    NotFound,
    #[error(transparent)]
    KeyTakenOver(#[from] idempotent::KeyTakenOver),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

impl From<idempotent::StoreError> for Error {
    fn from(e: idempotent::StoreError) -> Self {
        match e {
            idempotent::StoreError::TakenOver(t) => t.into(),
            idempotent::StoreError::Store(s) => s.into(),
        }
    }
}

/// Creates an order for the merchant (with an idempotency key, its response is stored in
/// the same transaction).
pub async fn create(
    store: &Store,
    merchant_id: &str,
    new: NewOrder,
    replay: Option<&Replay<'_, Order>>,
) -> Result<Order, Error> {
    let at = now();
    let order = Order {
        id: OrderId::generate().into_string(),
        merchant_id: merchant_id.to_owned(),
        amount: new.amount.get().get(),
        currency: new.currency.code().to_owned(),
        receipt: new.receipt,
        notes: new.notes,
        status: "created".into(),
        created_at: at,
        updated_at: at,
    };
    let mut tx = store.begin().await?;
    orders::insert(&mut tx, &order).await?;
    idempotent::store_in(&mut tx, replay, &order).await?;
    tx.commit().await?;
    Ok(order)
}

/// The merchant's order; another merchant's order is not found.
pub async fn get(store: &Store, merchant_id: Option<&str>, id: &str) -> Result<Order, Error> {
    if OrderId::parse(id).is_none() {
        return Err(Error::NotFound);
    }
    match orders::get(store, id).await? {
        Some(o) if merchant_id.is_none_or(|m| m == o.merchant_id) => Ok(o),
        _ => Err(Error::NotFound),
    }
}

/// A page of the merchant's orders, newest first.
pub async fn list(
    store: &Store,
    merchant_id: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Order>, i64), Error> {
    Ok(orders::list(store, merchant_id, limit, offset).await?)
}
