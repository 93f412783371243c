//! The payments' writes, group-committed (see `batch`): creating payments (the API), taking
//! processor leases and recording final statuses (the worker). Each kind of write is done once
//! per batch of concurrent requests, with multi-row statements in one transaction, and each
//! request is answered from what its own row did:
//!
//! - create: one `INSERT … SELECT … FROM orders` for the batch (it reads the orders itself; an
//!   order that is missing, another merchant's, paid, or already paying skips its row and fails
//!   only that request, `ON CONFLICT DO NOTHING` on the one-open-payment-per-order index), then
//!   the idempotency keys, the events, the deliveries and the jobs of the rows inserted, one
//!   statement each, then the commit, then the jobs are handed to the queue.
//! - begin: one conditional `UPDATE` takes the processor leases of the batch.
//! - finish: one conditional `UPDATE` moves the batch's payments to their final status, then
//!   the orders paid, the events, the deliveries and their jobs.
//!
//! A batch whose transaction fails as a whole (a fault of the database, not of a request) is
//! retried one request at a time, so only the request at fault fails.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use paygate_core::{Method, OrderStatus, PaymentId, PaymentStatus};

use super::{Error, Instrument, NewPayment, UpiLink, event, event_data};
use crate::{
    audit::{self, Actor},
    batch::{Batcher, Stages, per_request},
    idempotent::{self, Replay},
    payment_links,
    queue::{JobSpec, PAYMENTS, Queue},
    store::{
        Store, dashboard, now,
        orders::{self, Owner},
        payment_links::PaymentLink,
        payments::{self, Finish, NewRow, Payment},
        table,
    },
    webhooks,
};

/// Largest batch of one kind.
const MAX_BATCH: usize = 128;

/// A payment to create.
pub struct Create {
    pub merchant_id: Option<String>,
    /// Who asks (the audit log's entry is written with the payment); none from the checkout.
    pub by: Option<Actor>,
    pub new: NewPayment,
    pub replay: Option<Replay<Payment>>,
    /// For an intent or QR payment: its link, QR and expiry.
    pub upi: Option<UpiLink>,
    /// The payment's job waits for the customer's answer (test mode): it runs at the
    /// payment's expiry unless an answer brings it forward.
    pub awaits_customer: bool,
}

/// A final status to record.
pub struct Outcome {
    pub id: String,
    pub status: PaymentStatus,
    pub error: Option<(String, String)>,
    /// An expiry: recorded only while the customer has not answered.
    pub unanswered_only: bool,
}

type Answer<T> = Result<T, Error>;

/// The payments' group-committing writer.
pub struct Writer {
    store: Store,
    queue: Arc<dyn Queue>,
    create: Batcher<Create, Answer<Payment>>,
    begin: Batcher<(String, DateTime<Utc>), Answer<Option<Payment>>>,
    finish: Batcher<Outcome, Answer<Option<Payment>>>,
}

impl Writer {
    /// Starts the writer's batch loops: `lanes` batches of each kind in flight at once; the
    /// processor leases it takes are held by `owner` (this process).
    pub fn new(store: Store, queue: Arc<dyn Queue>, owner: Arc<str>, lanes: usize) -> Self {
        let (s, q) = (store.clone(), queue.clone());
        let (keep_store, keep_queue) = (store.clone(), queue.clone());
        let create = Batcher::new(
            "payment_create",
            MAX_BATCH,
            lanes,
            move |ops: Vec<Create>| {
                let (s, q) = (s.clone(), q.clone());
                async move { per_request(&ops, |chunk| create_all(&s, &*q, chunk)).await }
            },
        );
        let s = store.clone();
        let begin = Batcher::new(
            "payment_begin",
            MAX_BATCH,
            lanes,
            move |ops: Vec<(String, DateTime<Utc>)>| {
                let (s, owner) = (s.clone(), owner.clone());
                async move { per_request(&ops, |chunk| begin_all(&s, &owner, chunk)).await }
            },
        );
        let (s, q) = (store, queue);
        let finish = Batcher::new(
            "payment_finish",
            MAX_BATCH,
            lanes,
            move |ops: Vec<Outcome>| {
                let (s, q) = (s.clone(), q.clone());
                async move { per_request(&ops, |chunk| finish_all(&s, &*q, chunk)).await }
            },
        );
        Self {
            store: keep_store,
            queue: keep_queue,
            create,
            begin,
            finish,
        }
    }

    /// Creates a pending payment (with its events, deliveries and job), answered once its
    /// batch committed.
    pub async fn create(&self, op: Create) -> Answer<Payment> {
        self.create.call(op).await
    }

    /// Creates these payments as one batch (one transaction), answering each: what concurrent
    /// [`Writer::create`] calls amount to, for a caller that has the whole batch at hand.
    pub async fn create_batch(&self, ops: Vec<Create>) -> Vec<Answer<Payment>> {
        per_request(&ops, |chunk| create_all(&self.store, &*self.queue, chunk)).await
    }

    /// Takes the payment's processor lease until `until`; `None` when it is final or another
    /// run holds the lease.
    pub async fn begin(&self, id: String, until: DateTime<Utc>) -> Answer<Option<Payment>> {
        self.begin.call((id, until)).await
    }

    /// Records a payment's final status (with its event, delivery and the order paid); `None`
    /// when it was final already.
    pub async fn finish(&self, outcome: Outcome) -> Answer<Option<Payment>> {
        self.finish.call(outcome).await
    }
}

fn new_row(op: &Create, at: DateTime<Utc>) -> NewRow {
    let id = PaymentId::generate().into_string();
    let (mut upi_flow, mut upi_uri, mut upi_qr_url, mut expires_at) = (None, None, None, None);
    let (method, vpa, network, last4, forced) = match &op.new.instrument {
        // Collect keeps the shape it always had (no `upi` object): no flow recorded.
        Instrument::Upi(vpa) => (
            Method::Upi,
            Some(vpa.as_str().to_owned()),
            None,
            None,
            vpa.forced_outcome(),
        ),
        Instrument::UpiApp(flow) => {
            upi_flow = Some(flow.as_str().to_owned());
            if let Some(link) = &op.upi {
                let (uri, qr) = link.for_payment(&id);
                (upi_uri, upi_qr_url, expires_at) = (Some(uri), Some(qr), Some(link.expires_at));
            }
            (Method::Upi, None, None, None, None)
        }
        Instrument::Card(card) => (
            Method::Card,
            None,
            Some(card.network.as_str().to_owned()),
            Some(card.last4.clone()),
            card.forced_outcome,
        ),
    };
    NewRow {
        id,
        order_id: op.new.order_id.clone(),
        merchant_filter: op.merchant_id.clone(),
        method,
        vpa,
        card_network: network,
        card_last4: last4,
        forced_outcome: forced.map(|f| f.as_str().into()),
        upi_flow,
        upi_uri,
        upi_qr_url,
        expires_at,
        at,
    }
}

/// Why a row was not inserted, from its order: missing (or another merchant's), paid, its
/// payment link no longer taking it, or already paying.
fn refusal(
    order: Option<&(Owner, Option<PaymentLink>)>,
    merchant: Option<&str>,
    at: DateTime<Utc>,
) -> Error {
    match order {
        None => Error::OrderNotFound,
        Some((o, _)) if merchant.is_some_and(|m| m != o.merchant_id) => Error::OrderNotFound,
        Some((o, _)) if OrderStatus::Paid == o.status.as_str() => Error::OrderPaid,
        Some((o, Some(link)))
            if payment_links::closed(link, at).is_some() || o.amount > link.amount_due() =>
        {
            Error::PaymentLinkClosed
        }
        Some(_) => Error::OrderHasOpenPayment,
    }
}

async fn create_all(
    store: &Store,
    queue: &dyn Queue,
    ops: &[Create],
) -> Result<Vec<Answer<Payment>>, sqlx::Error> {
    let mut stages = Stages::start("payment_create");
    let at = now();
    let rows: Vec<NewRow> = ops.iter().map(|op| new_row(op, at)).collect();
    let mut tx = store.begin().await?;
    stages.mark("begin");
    let mut inserted = table::by_id(payments::insert_for_orders(&mut tx, &rows).await?);
    stages.mark("insert payments");
    // The (rare) refusals are explained from their orders.
    let refused: Vec<String> = rows
        .iter()
        .filter(|r| !inserted.contains_key(&r.id))
        .map(|r| r.order_id.clone())
        .collect();
    let mut orders: HashMap<String, (Owner, Option<PaymentLink>)> = HashMap::new();
    for o in orders::owners(&mut tx, &refused).await? {
        let link = match &o.payment_link_id {
            Some(l) => table::get_in::<PaymentLink>(&mut tx, l).await?,
            None => None,
        };
        orders.insert(o.id.clone(), (o, link));
    }
    let mut answers: Vec<Answer<Payment>> = ops
        .iter()
        .zip(&rows)
        .map(|(op, row)| match inserted.remove(&row.id) {
            Some(p) => Ok(p),
            None => Err(refusal(
                orders.get(&row.order_id),
                op.merchant_id.as_deref(),
                at,
            )),
        })
        .collect();
    // The answers of requests with an idempotency key, stored with the rows.
    stages.mark("explain refusals");
    let replays = ops.iter().map(|op| op.replay.as_ref());
    idempotent::store_all_in(&mut tx, replays.zip(&mut answers)).await?;
    stages.mark("idempotency keys");
    let actors = ops.iter().map(|op| op.by.as_ref());
    audit::record_all_in(
        &mut tx,
        "payment.create",
        "payment",
        actors.zip(&answers),
        at,
    )
    .await?;
    stages.mark("audit log");
    let kept: Vec<&Payment> = answers.iter().filter_map(|a| a.as_ref().ok()).collect();
    let events: Vec<_> = kept
        .iter()
        .flat_map(|p| {
            let data = event_data(p);
            [
                event(p, "payment.created", data.clone()),
                event(p, PaymentStatus::Pending.event_name(), data),
            ]
        })
        .collect();
    // An intent or QR payment waiting for its customer is processed at its expiry, unless the
    // customer's answer brings its job forward.
    let waiting: HashSet<&str> = ops
        .iter()
        .zip(&rows)
        .filter(|(op, _)| op.awaits_customer)
        .map(|(_, row)| row.id.as_str())
        .collect();
    let mut jobs: Vec<JobSpec> = kept
        .iter()
        .map(|p| {
            let run_at = match p.expires_at {
                Some(expiry) if waiting.contains(p.id.as_str()) => expiry,
                _ => at,
            };
            JobSpec::at(PAYMENTS, p.id.clone(), run_at)
        })
        .collect();
    jobs.extend(webhooks::record_events(&mut tx, &events).await?);
    stages.mark("events and deliveries");
    queue.stage(&mut tx, &jobs).await?;
    stages.mark("jobs");
    // Last: every batch updates the same rollup rows, so their locks are held only through
    // the commit and concurrent batches overlap everything else.
    dashboard::count_payments(&mut tx, &kept, &[]).await?;
    stages.mark("rollups");
    tx.commit().await?;
    stages.mark("commit");
    queue.dispatch(&jobs).await;
    stages.mark("hand-off");
    Ok(answers)
}

async fn begin_all(
    store: &Store,
    owner: &str,
    ops: &[(String, DateTime<Utc>)],
) -> Result<Vec<Answer<Option<Payment>>>, sqlx::Error> {
    let mut stages = Stages::start("payment_begin");
    let at = now();
    // One lease length for the batch: the longest asked for.
    let until = ops.iter().map(|(_, u)| *u).max().unwrap_or(at);
    let ids: Vec<String> = ops.iter().map(|(id, _)| id.clone()).collect();
    let mut began =
        table::by_id(payments::begin_processor_calls(store, &ids, at, until, owner).await?);
    stages.mark("lease");
    Ok(ids.iter().map(|id| Ok(began.remove(id))).collect())
}

async fn finish_all(
    store: &Store,
    queue: &dyn Queue,
    ops: &[Outcome],
) -> Result<Vec<Answer<Option<Payment>>>, sqlx::Error> {
    let at = now();
    let rows: Vec<Finish> = ops
        .iter()
        .map(|o| Finish {
            id: o.id.clone(),
            status: o.status,
            error_code: o.error.as_ref().map(|e| e.0.clone()),
            error_description: o.error.as_ref().map(|e| e.1.clone()),
            unanswered_only: o.unanswered_only,
            at,
        })
        .collect();
    let mut stages = Stages::start("payment_finish");
    let mut tx = store.begin().await?;
    stages.mark("begin");
    let mut finished = table::by_id(payments::finish_all(&mut tx, &rows).await?);
    stages.mark("final statuses");
    let paid: Vec<String> = finished
        .values()
        .filter(|p| p.status == PaymentStatus::Success)
        .map(|p| p.order_id.clone())
        .collect();
    let of_links = orders::mark_all_paid(&mut tx, &paid, at).await?;
    stages.mark("orders paid");
    let successful: Vec<&Payment> = finished
        .values()
        .filter(|p| p.status == PaymentStatus::Success)
        .collect();

    let mut events: Vec<_> = ops
        .iter()
        .filter_map(|o| finished.get(&o.id))
        .map(|p| event(p, o_status(p).event_name(), event_data(p)))
        .collect();
    // Payments through payment links move their links, after the payments' own events.
    if !of_links.is_empty() {
        let by_order: HashMap<&str, &Payment> = successful
            .iter()
            .map(|p| (p.order_id.as_str(), *p))
            .collect();
        let paid_links: Vec<(String, &Payment)> = of_links
            .into_iter()
            .filter_map(|(order, link)| Some((link, *by_order.get(order.as_str())?)))
            .collect();
        events.extend(payment_links::record_payments(&mut tx, &paid_links, at).await?);
        stages.mark("payment links");
    }
    let jobs = webhooks::record_events(&mut tx, &events).await?;
    stages.mark("events and deliveries");
    queue.stage(&mut tx, &jobs).await?;
    stages.mark("jobs");
    dashboard::count_payments(&mut tx, &[], &successful).await?;
    stages.mark("rollups");
    tx.commit().await?;
    stages.mark("commit");
    queue.dispatch(&jobs).await;
    stages.mark("hand-off");
    Ok(ops.iter().map(|o| Ok(finished.remove(&o.id))).collect())
}

fn o_status(p: &Payment) -> PaymentStatus {
    p.status
}
