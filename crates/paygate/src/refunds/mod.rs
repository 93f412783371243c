//! Refunds: full or partial, processed asynchronously through the `refunds` queue.
//!
//! Guarantees:
//! - The sum of a payment's pending and processed refunds never exceeds its amount: creating
//!   a refund reserves its amount on the payment row with one conditional update (see
//!   `store::payments::reserve_refund`), in the same transaction as the refund row, its
//!   `refund.created` event and its job. Concurrent refunds serialise on that row (a row lock
//!   on PostgreSQL, the single writer on SQLite).
//! - A refund moves `pending → processed` once: a refund job that runs twice finds it
//!   processed and changes nothing. One run at a time asks the processor (the refund's
//!   processor lease), always with the refund's idempotency key, so nothing is refunded twice.
//! - With an idempotency key, the create response is stored in the transaction of the change.

use paygate_core::{MinorUnit, PaymentStatus, RefundId, RefundStatus};
use serde_json::json;

use std::sync::Arc;

use crate::{
    audit::{self, Actor},
    batch::{Batcher, per_request},
    context::Ctx,
    idempotent::{self, Replay},
    processor::{CallLimits, RefundRequest, refund_key},
    queue::{JobHandler, JobSpec, Queue, REFUNDS},
    store::{
        Store,
        events::Event,
        now,
        payments::{self, Payment},
        refunds::{self, Refund},
        table::{self, Page, Window},
    },
    views::RefundBody,
    webhooks,
};

/// Longest `reason`, characters.
pub const REASON_MAX: usize = 255;

idempotent::service_error! {
    /// Refund errors.
    pub enum Error {
        #[error("payment not found")]
        PaymentNotFound,
        #[error("refund not found")]
        NotFound,
        #[error("payment not in refundable state")]
        NotRefundable,
        #[error("refund amount exceeds available amount")]
        ExceedsAvailable,
    }
}

/// An event of the refund, written as it changed.
fn refund_event(refund: &Refund, event_type: &str) -> Event {
    let data = json!({ "refund": RefundBody::new(refund, true) });
    Event::new(
        &refund.merchant_id,
        event_type,
        &refund.id,
        data,
        refund.updated_at,
    )
}

/// The merchant's payment, as a refund of it sees it: missing (or another merchant's) is
/// `PaymentNotFound`.
async fn payment(store: &Store, merchant_id: &str, id: &str) -> Result<Payment, Error> {
    match crate::payments::service::get(store, Some(merchant_id), id).await {
        Ok(p) => Ok(p),
        Err(crate::payments::service::Error::Store(e)) => Err(e.into()),
        Err(_) => Err(Error::PaymentNotFound),
    }
}

/// A refund to create (of a payment already checked to be the merchant's and successful).
pub struct Create {
    pub merchant_id: String,
    /// Who asks: the audit log's entry is written with the refund.
    pub by: Option<Actor>,
    pub payment_id: String,
    pub amount: Option<MinorUnit>,
    pub reason: Option<String>,
    pub replay: Option<Replay<Refund>>,
}

/// The refunds service.
pub struct Refunds {
    ctx: Ctx,
    writer: Writer,
    limits: CallLimits,
}

impl Refunds {
    /// The service over `ctx`, with its group-committing writer.
    pub fn new(ctx: Ctx, limits: CallLimits) -> Self {
        // One lane: refunds of one payment reserve on its row, and batches taking rows in
        // different orders would deadlock.
        let writer = Writer::new(ctx.store.clone(), ctx.queue.clone(), 1);
        Self {
            ctx,
            writer,
            limits,
        }
    }

    /// The writer (for callers that write a whole batch at once).
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Creates a pending refund of `amount` (default: all that is left) on the payment of the
    /// merchant of `by`, group-committed with the refunds created at the same time.
    pub async fn create(
        &self,
        by: &Actor,
        payment_id: &str,
        amount: Option<MinorUnit>,
        reason: Option<String>,
        replay: Option<Replay<Refund>>,
    ) -> Result<Refund, Error> {
        let payment = payment(&self.ctx.store, &by.merchant_id, payment_id).await?;
        if payment.status != PaymentStatus::Success {
            return Err(Error::NotRefundable);
        }
        let op = Create {
            merchant_id: payment.merchant_id,
            by: Some(by.clone()),
            payment_id: payment.id,
            amount,
            reason,
            replay,
        };
        self.writer.create.call(op).await
    }

    /// Processes a pending refund through the connector. Idempotent.
    pub async fn process(&self, refund_id: &str) -> anyhow::Result<Processed> {
        let (store, at) = (&self.ctx.store, self.ctx.now());
        let lease = self.limits.lease;
        let owner = &self.ctx.owner;
        let Some(refund) =
            refunds::begin_processor_call(store, refund_id, at, at + lease, owner).await?
        else {
            return Ok(match refunds::get(store, refund_id).await? {
                Some(r) if r.status == RefundStatus::Pending => {
                    Processed::Busy(r.processor_lease_until.unwrap_or(at + lease))
                }
                _ => Processed::AlreadyProcessed,
            });
        };
        let payment = payments::get(store, &refund.payment_id).await?;
        let request = RefundRequest {
            idempotency_key: refund_key(&refund.id),
            refund_id: refund.id.clone(),
            payment_id: refund.payment_id.clone(),
            amount: refund.amount.get(),
            currency: payment.map(|p| p.currency).unwrap_or_else(|| "INR".into()),
        };
        // A run before this one may have asked and died without the answer: ask first.
        let known = if refund.processor_calls > 1 {
            let status = self.ctx.connector.status(&request.idempotency_key);
            self.limits.call(status).await?
        } else {
            None
        };
        if known.is_none() {
            self.limits
                .call(self.ctx.connector.refund(&request))
                .await?;
        }
        let mut tx = store.begin().await?;
        let Some(done) = refunds::finish(&mut tx, refund_id, self.ctx.now()).await? else {
            return Ok(Processed::AlreadyProcessed);
        };
        let events = [refund_event(&done, "refund.processed")];
        let jobs = webhooks::record(&*self.ctx.queue, &mut tx, &events).await?;
        tx.commit().await?;
        self.ctx.queue.dispatch(&jobs).await;
        tracing::info!(refund = %done.id, "refund processed");
        metrics::counter!("paygate_refunds_total", "status" => "processed").increment(1);
        Ok(Processed::Processed)
    }
}

#[async_trait::async_trait]
impl JobHandler for Refunds {
    async fn run(&self, refund_id: &str) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
        Ok(match self.process(refund_id).await? {
            Processed::Busy(until) => Some(until),
            _ => None,
        })
    }
}

/// What processing a refund job did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Processed {
    /// This run processed the refund.
    Processed,
    /// It was processed already (or is gone): nothing changed.
    AlreadyProcessed,
    /// Another run is asking the processor now (until then): this run asked nothing.
    Busy(chrono::DateTime<chrono::Utc>),
}

/// The refunds' group-committing writer. Refunds of one batch reserve their amounts one after
/// another (each a conditional update of its payment's row: two refunds of one payment in one
/// batch see each other), then are inserted, with their events, deliveries and jobs, by one
/// statement each, in one transaction.
pub struct Writer {
    store: Store,
    queue: Arc<dyn Queue>,
    create: Batcher<Create, Result<Refund, Error>>,
}

impl Writer {
    /// Starts the writer: `lanes` batches in flight at once.
    pub fn new(store: Store, queue: Arc<dyn Queue>, lanes: usize) -> Self {
        let (s, q) = (store.clone(), queue.clone());
        let create = Batcher::new("refund_create", 64, lanes, move |ops: Vec<Create>| {
            let (s, q) = (s.clone(), q.clone());
            async move { per_request(&ops, |chunk| create_all(&s, &*q, chunk)).await }
        });
        Self {
            store,
            queue,
            create,
        }
    }

    /// Creates these refunds as one batch (one transaction), answering each.
    pub async fn create_batch(&self, ops: Vec<Create>) -> Vec<Result<Refund, Error>> {
        per_request(&ops, |chunk| create_all(&self.store, &*self.queue, chunk)).await
    }
}

async fn create_all(
    store: &Store,
    queue: &dyn Queue,
    ops: &[Create],
) -> Result<Vec<Result<Refund, Error>>, sqlx::Error> {
    let at = now();
    let mut tx = store.begin().await?;
    let mut answers = Vec::with_capacity(ops.len());
    // What each refund made asks back of its payment, for the payment's day's rollup.
    let mut refunded: Vec<(Payment, i64)> = Vec::new();
    for op in ops {
        // Read in the transaction: what is left depends on refunds committed a moment ago.
        let Some(current) = payments::get_in(&mut tx, &op.payment_id).await? else {
            answers.push(Err(Error::PaymentNotFound));
            continue;
        };
        // All that is left by default (checked: a corrupt row reads as nothing left).
        let left = current.amount.checked_sub(current.amount_refunded);
        let amount = op.amount.or(left).unwrap_or(MinorUnit::ZERO);
        if amount <= MinorUnit::ZERO
            || payments::reserve_refund(&mut tx, &op.payment_id, amount, at)
                .await?
                .is_none()
        {
            answers.push(Err(Error::ExceedsAvailable));
            continue;
        }
        let refund = Refund {
            id: RefundId::generate().into_string(),
            merchant_id: op.merchant_id.clone(),
            payment_id: op.payment_id.clone(),
            amount,
            reason: op.reason.clone(),
            status: RefundStatus::Pending,
            created_at: at,
            updated_at: at,
            processed_at: None,
            processor_lease_until: None,
            processor_calls: 0,
        };
        if let Err(e) = idempotent::store_in(&mut tx, op.replay.as_ref(), &refund).await {
            // Taken over: give the amount back, so nothing of this request remains.
            payments::release_refund(&mut tx, &op.payment_id, amount).await?;
            answers.push(Err(e.into()));
            continue;
        }
        refunded.push((current, amount.get()));
        answers.push(Ok(refund));
    }
    let created: Vec<Refund> = answers
        .iter()
        .filter_map(|a| a.as_ref().ok().cloned())
        .collect();
    refunds::insert_all(&mut tx, &created).await?;
    let actors = ops.iter().map(|op| op.by.as_ref());
    audit::record_all_in(&mut tx, "refund.create", "refund", actors.zip(&answers), at).await?;
    let events: Vec<Event> = created
        .iter()
        .map(|r| refund_event(r, "refund.created"))
        .collect();
    let mut jobs = webhooks::record_events(&mut tx, &events).await?;
    jobs.extend(
        created
            .iter()
            .map(|r| JobSpec::at(REFUNDS, r.id.clone(), at)),
    );
    queue.stage(&mut tx, &jobs).await?;
    // Last: the rollup rows are shared with every batch, so their locks are held only
    // through the commit.
    crate::store::dashboard::count_refunds(&mut tx, &refunded).await?;
    tx.commit().await?;
    queue.dispatch(&jobs).await;
    Ok(answers)
}

/// The merchant's refund; another merchant's refund is not found.
pub async fn get(store: &Store, merchant_id: &str, id: &str) -> Result<Refund, Error> {
    let found = table::owned(store, Some(merchant_id), id, RefundId::parse(id).is_some()).await?;
    found.ok_or(Error::NotFound)
}

/// The refunds of the merchant's payment, oldest first.
pub async fn for_payment(
    store: &Store,
    merchant_id: &str,
    payment_id: &str,
) -> Result<Vec<Refund>, Error> {
    payment(store, merchant_id, payment_id).await?;
    Ok(refunds::for_payment(store, payment_id).await?)
}

/// A page of the merchant's refunds, newest first.
pub async fn list(
    store: &Store,
    merchant_id: &str,
    page: Window,
) -> Result<Option<Page<Refund>>, Error> {
    Ok(table::page(store, merchant_id, page).await?)
}
