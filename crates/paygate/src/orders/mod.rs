//! Orders: what the merchant wants to be paid.

use paygate_core::{Currency, OrderAmount, OrderId, OrderStatus};
use serde_json::Value;

use crate::{
    audit::{self, Actor},
    batch::{Batcher, Stages, per_request},
    context::Ctx,
    idempotent::{self, Replay},
    store::{
        Store,
        orders::{self, Order},
        table::{self, Page, Window},
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
    /// Where the hosted checkout sends the customer after paying (an http(s) URL).
    pub callback_url: Option<String>,
}

idempotent::service_error! {
    /// Order errors.
    pub enum Error {
        #[error("order not found")]
        NotFound,
    }
}

impl Orders {
    /// Creates an order for the merchant (with an idempotency key, its response is stored in
    /// the same transaction, as is the audit log's entry of `by`), group-committed with the
    /// orders created at the same time.
    pub async fn create(
        &self,
        merchant_id: &str,
        by: Option<&Actor>,
        new: NewOrder,
        replay: Option<Replay<Order>>,
    ) -> Result<Order, Error> {
        self.create_with(merchant_id, new, None, (replay, by.cloned()))
            .await
    }

    /// Creates an order that is an attempt to pay the payment link `link_id` (checked open,
    /// and the amount within what it takes, by the caller).
    pub async fn create_for_link(
        &self,
        merchant_id: &str,
        new: NewOrder,
        link_id: &str,
    ) -> Result<Order, Error> {
        self.create_with(merchant_id, new, Some(link_id.to_owned()), (None, None))
            .await
    }

    async fn create_with(
        &self,
        merchant_id: &str,
        new: NewOrder,
        payment_link_id: Option<String>,
        (replay, by): (Option<Replay<Order>>, Option<Actor>),
    ) -> Result<Order, Error> {
        let at = self.ctx.now();
        let order = Order {
            id: OrderId::generate().into_string(),
            merchant_id: merchant_id.to_owned(),
            amount: new.amount.get(),
            currency: new.currency.code().to_owned(),
            receipt: new.receipt,
            notes: new.notes,
            callback_url: new.callback_url,
            status: OrderStatus::Created,
            created_at: at,
            updated_at: at,
            payment_link_id,
        };
        self.create.call((order, replay, by)).await
    }
}

/// The orders service, group-committing: the orders created together are inserted by one
/// statement, their idempotency keys completed by another, in one transaction (see `batch`).
pub struct Orders {
    ctx: Ctx,
    create: Batcher<NewRow, Result<Order, Error>>,
}

/// An order to insert, with its request's idempotency claim and actor.
type NewRow = (Order, Option<Replay<Order>>, Option<Actor>);

impl Orders {
    /// The service over `ctx`, with its group-committing writer.
    pub fn new(ctx: Ctx) -> Self {
        let store = ctx.store.clone();
        let create = Batcher::new(
            "order_create",
            128,
            ctx.write_lanes,
            move |ops: Vec<NewRow>| {
                let store = store.clone();
                async move { per_request(&ops, |chunk| create_all(&store, chunk)).await }
            },
        );
        Self { ctx, create }
    }
}

async fn create_all(
    store: &Store,
    ops: &[NewRow],
) -> Result<Vec<Result<Order, Error>>, sqlx::Error> {
    let mut stages = Stages::start("order_create");
    let orders: Vec<Order> = ops.iter().map(|(o, _, _)| o.clone()).collect();
    let mut tx = store.begin().await?;
    stages.mark("begin");
    orders::insert_all(&mut tx, &orders).await?;
    stages.mark("insert orders");
    let mut answers: Vec<Result<Order, Error>> = orders.into_iter().map(Ok).collect();
    let replays = ops.iter().map(|(_, r, _)| r.as_ref());
    idempotent::store_all_in(&mut tx, replays.zip(&mut answers)).await?;
    stages.mark("idempotency keys");
    let actors = ops.iter().map(|(_, _, by)| by.as_ref());
    let at = ops
        .first()
        .map_or_else(crate::store::now, |(o, _, _)| o.created_at);
    audit::record_all_in(&mut tx, "order.create", "order", actors.zip(&answers), at).await?;
    stages.mark("audit log");
    tx.commit().await?;
    stages.mark("commit");
    Ok(answers)
}

/// The merchant's order; another merchant's order is not found.
pub async fn get(store: &Store, merchant_id: Option<&str>, id: &str) -> Result<Order, Error> {
    let found = table::owned(store, merchant_id, id, OrderId::parse(id).is_some()).await?;
    found.ok_or(Error::NotFound)
}

/// A page of the merchant's orders, newest first.
pub async fn list(
    store: &Store,
    merchant_id: &str,
    page: Window,
) -> Result<Option<Page<Order>>, Error> {
    Ok(table::page(store, merchant_id, page).await?)
}
