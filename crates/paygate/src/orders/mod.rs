//! Orders: what the merchant wants to be paid.

use paygate_core::{Currency, OrderAmount, OrderId, OrderStatus};
use serde_json::Value;

use crate::{
    batch::{Batcher, Stopped, per_request},
    context::Ctx,
    idempotent::{self, Replay},
    store::{
        Store, idempotency,
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

impl From<Stopped> for Error {
    fn from(_: Stopped) -> Self {
        Self::Store(sqlx::Error::PoolClosed)
    }
}

impl From<idempotent::StoreError> for Error {
    fn from(e: idempotent::StoreError) -> Self {
        match e {
            idempotent::StoreError::TakenOver(t) => t.into(),
            idempotent::StoreError::Store(s) => s.into(),
        }
    }
}

impl Orders {
    /// Creates an order for the merchant (with an idempotency key, its response is stored in
    /// the same transaction), group-committed with the orders created at the same time.
    pub async fn create(
        &self,
        merchant_id: &str,
        new: NewOrder,
        replay: Option<Replay<Order>>,
    ) -> Result<Order, Error> {
        let at = self.ctx.now();
        let order = Order {
            id: OrderId::generate().into_string(),
            merchant_id: merchant_id.to_owned(),
            amount: new.amount.get(),
            currency: new.currency.code().to_owned(),
            receipt: new.receipt,
            notes: new.notes,
            status: OrderStatus::Created,
            created_at: at,
            updated_at: at,
        };
        self.create
            .submit((order, replay))
            .await
            .unwrap_or(Err(Stopped.into()))
    }
}

/// The orders service, group-committing: the orders created together are inserted by one
/// statement, their idempotency keys completed by another, in one transaction (see `batch`).
pub struct Orders {
    ctx: Ctx,
    create: Batcher<NewRow, Result<Order, Error>>,
}

/// An order to insert, with its request's idempotency claim.
type NewRow = (Order, Option<Replay<Order>>);

impl Orders {
    /// The service over `ctx`, with its group-committing writer.
    pub fn new(ctx: Ctx) -> Self {
        let store = ctx.store.clone();
        let create = Batcher::new(128, 1, move |ops: Vec<NewRow>| {
            let store = store.clone();
            async move { per_request(&ops, |chunk| create_all(&store, chunk)).await }
        });
        Self { ctx, create }
    }
}

async fn create_all(
    store: &Store,
    ops: &[NewRow],
) -> Result<Vec<Result<Order, Error>>, sqlx::Error> {
    let orders: Vec<Order> = ops.iter().map(|(o, _)| o.clone()).collect();
    let mut tx = store.begin().await?;
    orders::insert_all(&mut tx, &orders).await?;
    let stored: Vec<_> = ops
        .iter()
        .filter_map(|(o, r)| r.as_ref().map(|r| (&*r.held, r.response(o))))
        .collect();
    let done: std::collections::HashSet<(String, String)> =
        idempotency::complete_all_in(&mut tx, &stored)
            .await?
            .into_iter()
            .collect();
    let mut answers = Vec::with_capacity(ops.len());
    let mut lost = Vec::new();
    for (order, replay) in ops {
        match replay {
            Some(r) if !done.contains(&(r.held.merchant_id.clone(), r.held.key.clone())) => {
                lost.push(order.id.clone());
                answers.push(Err(idempotent::KeyTakenOver.into()));
            }
            _ => answers.push(Ok(order.clone())),
        }
    }
    orders::delete_in(&mut tx, &lost).await?;
    tx.commit().await?;
    Ok(answers)
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
