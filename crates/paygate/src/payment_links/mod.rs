//! Payment links: a merchant asks for an amount without a website; the customer pays on the
//! link's page on the checkout (`/l/{id}`).
//!
//! Guarantees:
//! - Every status change is a conditional update with its event (and the event's deliveries and
//!   jobs) in the same transaction: `created → partially_paid → paid`, or `expired` /
//!   `cancelled` from either open status. A change attempted twice applies once.
//! - Each attempt on the page is an order of the link (`orders.payment_link_id`) for the amount
//!   chosen; a successful payment adds to `amount_paid` in the transaction that records the
//!   payment's success ([`record_payments`]), once per payment.
//! - Expiry is a chore of the worker ([`Expiry`]): one conditional statement expires the due
//!   links, so however many workers run it, each link expires once.
//! - After paying, the customer is sent to the merchant's `callback_url` with the outcome and
//!   an HMAC-SHA256 signature of it ([`callback_signature`]), keyed by the merchant's webhook
//!   secret.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use paygate_core::{Currency, OrderAmount, PaymentLinkId, webhook::hex_signature};
use serde_json::{Value, json};

use crate::{
    audit::{self, Actor},
    context::Ctx,
    idempotent::{self, Replay},
    orders::{self, NewOrder, Orders},
    queue::worker::Chore,
    store::{
        Store, Tx,
        events::Event,
        is_unique_violation,
        orders::Order,
        payment_links::{self as rows, LinkPayment, PaymentLink},
        payments::Payment,
        table::{self, Page, Window},
    },
    views::{PaymentBody, PaymentLinkBody},
    webhooks,
};

/// Links expired by one statement of the expiry chore.
const EXPIRE_BATCH: i64 = 500;

/// A validated payment link request.
#[derive(Clone, Debug)]
pub struct NewLink {
    pub amount: OrderAmount,
    pub currency: Currency,
    pub description: Option<String>,
    /// `{name, email, contact}`, each optional.
    pub customer: Value,
    pub reference_id: Option<String>,
    pub expire_by: Option<DateTime<Utc>>,
    pub accept_partial: bool,
    pub first_min_partial_amount: Option<i64>,
    pub callback_url: Option<String>,
    /// A JSON object.
    pub notes: Value,
}

idempotent::service_error! {
    /// Payment link errors.
    pub enum Error {
        #[error("payment link not found")]
        NotFound,
        #[error("a payment link with this reference_id exists")]
        DuplicateReference,
        #[error("payment link is {0}")]
        NotCancellable(String),
        #[error("payment link is {0}")]
        Closed(String),
        #[error("{0}")]
        AmountNotAllowed(String),
        #[error("{0}")]
        Order(#[from] orders::Error),
    }
}

/// The payment links service.
pub struct PaymentLinks {
    ctx: Ctx,
    orders: Arc<Orders>,
    /// The checkout's public URL: a link's page is `<base>/l/<id>`.
    base_url: String,
}

impl PaymentLinks {
    pub fn new(ctx: Ctx, orders: Arc<Orders>, base_url: &str) -> Self {
        Self {
            ctx,
            orders,
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Creates a link, `created` (with an idempotency key, its response stored in the same
    /// transaction). A `reference_id` the merchant used before is refused.
    pub async fn create(
        &self,
        by: &Actor,
        new: NewLink,
        replay: Option<Replay<PaymentLink>>,
    ) -> Result<PaymentLink, Error> {
        let merchant_id = by.merchant_id.as_str();
        let at = self.ctx.now();
        let id = PaymentLinkId::generate().into_string();
        let link = PaymentLink {
            short_url: format!("{}/l/{id}", self.base_url),
            id,
            merchant_id: merchant_id.to_owned(),
            amount: new.amount.get().get(),
            amount_paid: 0,
            currency: new.currency.code().to_owned(),
            accept_partial: new.accept_partial,
            first_min_partial_amount: new.first_min_partial_amount,
            description: new.description,
            customer: new.customer,
            reference_id: new.reference_id,
            expire_by: new.expire_by,
            callback_url: new.callback_url,
            notes: new.notes,
            status: "created".to_owned(),
            created_at: at,
            updated_at: at,
            paid_at: None,
            expired_at: None,
            cancelled_at: None,
        };
        let mut tx = self.ctx.store.begin().await?;
        match rows::insert(&mut tx, &link).await {
            Ok(()) => {}
            Err(e) if is_unique_violation(&e, rows::REFERENCE_INDEX) => {
                return Err(Error::DuplicateReference);
            }
            Err(e) => return Err(e.into()),
        }
        idempotent::store_in(&mut tx, replay.as_ref(), &link).await?;
        audit::record_in(
            &mut tx,
            by,
            "payment_link.create",
            ("payment_link", link.id.as_str()),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(link)
    }

    /// Cancels the merchant's open link, with its `payment_link.cancelled` event.
    pub async fn cancel(
        &self,
        by: &Actor,
        id: &str,
        replay: Option<Replay<PaymentLink>>,
    ) -> Result<PaymentLink, Error> {
        let merchant_id = by.merchant_id.as_str();
        let link = get(&self.ctx.store, Some(merchant_id), id).await?;
        let mut tx = self.ctx.store.begin().await?;
        let Some(cancelled) = rows::cancel(&mut tx, merchant_id, id, self.ctx.now()).await? else {
            let now = table::get_in::<PaymentLink>(&mut tx, id).await?;
            return Err(Error::NotCancellable(now.unwrap_or(link).status));
        };
        let events = [link_event(&cancelled, "payment_link.cancelled", None)];
        let jobs = webhooks::record(&*self.ctx.queue, &mut tx, &events).await?;
        idempotent::store_in(&mut tx, replay.as_ref(), &cancelled).await?;
        audit::record_in(
            &mut tx,
            by,
            "payment_link.cancel",
            ("payment_link", id),
            self.ctx.now(),
        )
        .await?;
        tx.commit().await?;
        self.ctx.queue.dispatch(&jobs).await;
        Ok(cancelled)
    }

    /// Expires the open links whose `expire_by` has passed, with their `payment_link.expired`
    /// events; returns how many this call expired.
    pub async fn expire_due(&self) -> Result<usize, Error> {
        let mut expired = 0;
        loop {
            let mut tx = self.ctx.store.begin().await?;
            let links = rows::expire_due(&mut tx, self.ctx.now(), EXPIRE_BATCH).await?;
            if links.is_empty() {
                return Ok(expired);
            }
            let events: Vec<Event> = links
                .iter()
                .map(|l| link_event(l, "payment_link.expired", None))
                .collect();
            let jobs = webhooks::record(&*self.ctx.queue, &mut tx, &events).await?;
            tx.commit().await?;
            self.ctx.queue.dispatch(&jobs).await;
            expired += links.len();
            tracing::info!(expired = links.len(), "payment links expired");
        }
    }

    /// Starts an attempt to pay `amount` of the link: an order of the link for that amount.
    /// Refused when the link does not take payments any more (or its `expire_by` passed), or
    /// the amount is not one it takes ([`allowed_amounts`]).
    pub async fn start_payment(&self, id: &str, amount: i64) -> Result<Order, Error> {
        let link = get(&self.ctx.store, None, id).await?;
        if let Some(closed) = closed(&link, self.ctx.now()) {
            return Err(Error::Closed(closed.to_owned()));
        }
        let (min, max) = allowed_amounts(&link);
        let currency = Currency::parse(&link.currency).unwrap_or(Currency::INR);
        let show = |a: i64| paygate_core::display_amount(a, currency.code());
        let refuse = |why: String| Err(Error::AmountNotAllowed(why));
        if amount < min || amount > max {
            return refuse(if min == max {
                format!("The amount to pay is {}", show(max))
            } else {
                format!("Pay at least {} and at most {}", show(min), show(max))
            });
        }
        let left = max - amount;
        if left > 0 && left < OrderAmount::MIN {
            return refuse(format!(
                "Leave at least {} to pay later, or pay all {}",
                show(OrderAmount::MIN),
                show(max)
            ));
        }
        let Some(amount) = OrderAmount::parse(amount) else {
            return refuse(format!("Pay at least {}", show(OrderAmount::MIN)));
        };
        let new = NewOrder {
            amount,
            currency,
            receipt: link.reference_id.clone(),
            notes: json!({ "payment_link_id": link.id }),
            callback_url: None,
        };
        Ok(self
            .orders
            .create_for_link(&link.merchant_id, new, &link.id)
            .await?)
    }
}

/// Why the link takes no payment at `now` (`paid`, `expired`, `cancelled`); `None` while it
/// does. A link past its `expire_by` is expired even before the chore marks it.
pub fn closed(link: &PaymentLink, now: DateTime<Utc>) -> Option<&str> {
    if !link.is_open() {
        Some(link.status.as_str())
    } else if link.expire_by.is_some_and(|t| t <= now) {
        Some("expired")
    } else {
        None
    }
}

/// The least and the most the next payment of an open link may be: all that is due, or with
/// partial payments from the first payment's minimum (or 1.00) up to all that is due.
pub fn allowed_amounts(link: &PaymentLink) -> (i64, i64) {
    let due = link.amount_due();
    if !link.accept_partial {
        return (due, due);
    }
    let least = match link.first_min_partial_amount {
        Some(first) if link.amount_paid == 0 => first,
        _ => OrderAmount::MIN,
    };
    (least.min(due), due)
}

/// The merchant's link (anyone's, for `None`); another merchant's is not found.
pub async fn get(store: &Store, merchant_id: Option<&str>, id: &str) -> Result<PaymentLink, Error> {
    let valid = PaymentLinkId::parse(id).is_some();
    let found = table::owned(store, merchant_id, id, valid).await?;
    found.ok_or(Error::NotFound)
}

/// The successful payments made through the link.
pub async fn payments(store: &Store, id: &str) -> Result<Vec<LinkPayment>, Error> {
    Ok(rows::payments(store, id).await?)
}

/// A page of the merchant's links, newest first.
pub async fn list(
    store: &Store,
    merchant_id: &str,
    page: Window,
) -> Result<Option<Page<PaymentLink>>, Error> {
    Ok(table::page(store, merchant_id, page).await?)
}

/// Whether `order_id` is an order of the link `id` (a payment of it was made through it).
pub async fn is_link_order(store: &Store, id: &str, order_id: &str) -> Result<bool, Error> {
    Ok(rows::has_order(store, id, order_id).await?)
}

/// An event of the link, written as it changed; a payment's event carries the payment too.
fn link_event(link: &PaymentLink, event_type: &str, payment: Option<&Payment>) -> Event {
    let mut data = json!({ "payment_link": PaymentLinkBody::new(link, None) });
    if let Some(p) = payment {
        data["payment"] = json!(PaymentBody::new(p, true));
    }
    Event::new(
        &link.merchant_id,
        event_type,
        &link.id,
        data,
        link.updated_at,
    )
}

/// In the transaction that records these payments' success: adds each to its link
/// (`(link id, payment)`, in link id order so concurrent batches lock links alike), and returns
/// the links' events: `payment_link.partially_paid`, or `payment_link.paid` for the payment
/// that completes a link. A link closed while a payment was under way counts the money and
/// announces nothing.
pub async fn record_payments(
    tx: &mut Tx,
    paid: &[(String, &Payment)],
    at: DateTime<Utc>,
) -> Result<Vec<Event>, sqlx::Error> {
    let mut paid: Vec<&(String, &Payment)> = paid.iter().collect();
    paid.sort_by(|a, b| a.0.cmp(&b.0));
    let mut events = Vec::new();
    for (link_id, payment) in paid {
        let Some(found) = rows::add_paid(tx, link_id, payment.amount.get(), at).await? else {
            continue;
        };
        if !found.is_open() {
            continue;
        }
        let status = if found.amount_paid >= found.amount {
            "paid"
        } else {
            "partially_paid"
        };
        let Some(link) = rows::set_paid_status(tx, link_id, status, at).await? else {
            continue;
        };
        let kind = if status == "paid" {
            "payment_link.paid"
        } else {
            "payment_link.partially_paid"
        };
        events.push(link_event(&link, kind, Some(payment)));
    }
    Ok(events)
}

/// The signature of the outcome a customer is sent back with: lowercase hex HMAC-SHA256 of
/// `payment_link_id|payment_id|status`, keyed by the merchant's webhook secret.
pub fn callback_signature(secret: &str, link_id: &str, payment_id: &str, status: &str) -> String {
    hex_signature(
        secret,
        format!("{link_id}|{payment_id}|{status}").as_bytes(),
    )
}

/// The expiry of payment links, as a worker chore.
pub struct Expiry(pub Arc<PaymentLinks>);

#[async_trait]
impl Chore for Expiry {
    async fn run(&self) -> anyhow::Result<usize> {
        Ok(self.0.expire_due().await?)
    }
}
