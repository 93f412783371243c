//! The payments service: owns the payment transactions and the events they write.
//!
//! Guarantees:
//! - A payment is created `pending` together with its `payment.created` and `payment.pending`
//!   events and its job, in one transaction; the job is handed to the workers after commit.
//! - At most one payment per order is pending or successful (a unique index), so two
//!   concurrent checkouts of one order cannot both charge.
//! - Processing moves `pending → success | failed` with a conditional update; the event and
//!   the order's `paid` status are written in the same transaction. A job that runs twice
//!   finds the payment final and changes nothing.
//! - The processor is asked about a payment by one run at a time: a run takes the payment's
//!   processor lease (a conditional update) before it calls, and a second run finds the
//!   lease held and waits for it (`Processed::Busy`) instead of calling. Every call carries
//!   the payment's idempotency key, so a call repeated after a crash charges nothing twice.
//! - With an idempotency key, the create and capture responses are stored in the transaction
//!   of the change (see `idempotent`).
//! - A UPI intent or QR payment is charged only once its customer answered (in test mode, the
//!   simulated approval; otherwise the simulated bank answers after its delay), and one left
//!   unanswered at `expires_at` fails with `PAYMENT_EXPIRED` without asking the processor. The
//!   answer is recorded by a conditional update that requires the payment unexpired, and the
//!   expiry needs the expiry passed: one or the other, never both.

use paygate_core::{ForcedOutcome, OrderId, PaymentId, PaymentStatus};

use super::{
    Instrument, NewPayment, UpiFlow, UpiLink,
    writes::{Create, Outcome, Writer},
};
use crate::{
    audit::{self, Actor},
    context::Ctx,
    idempotent::{self, Replay},
    processor::{CallLimits, ChargeOutcome, ChargeRequest, charge_key},
    queue::JobHandler,
    store::{
        Store, merchants,
        orders::Order,
        payments::{self, Payment},
        table::{self, Page, Window},
    },
    webhooks,
};

pub use super::Error;
use super::{event, event_data};

/// How UPI intent and QR payments behave.
#[derive(Clone, Debug)]
pub struct UpiSettings {
    /// How long the customer has to approve (`UPI_INTENT_EXPIRY_SECONDS`).
    pub expiry: chrono::Duration,
    /// The public checkout's base URL, where the QR is served.
    pub base_url: String,
    /// Test mode: the payment waits for the simulated approval or decline
    /// (`POST /api/v1/test/payments/{id}/upi/approve|decline`) until it expires; otherwise
    /// the simulated bank answers after its delay.
    pub awaits_customer: bool,
}

/// The payments service.
pub struct Payments {
    ctx: Ctx,
    writer: Writer,
    limits: CallLimits,
    upi: UpiSettings,
}

impl Payments {
    /// The service over `ctx`, with its group-committing writer.
    pub fn new(ctx: Ctx, limits: CallLimits, upi: UpiSettings) -> Self {
        let (store, queue, owner) = (ctx.store.clone(), ctx.queue.clone(), ctx.owner.clone());
        let writer = Writer::new(store, queue, owner, ctx.write_lanes);
        Self {
            ctx,
            writer,
            limits,
            upi,
        }
    }

    /// The writer (for callers that write a whole batch at once).
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Creates a pending payment for an order. With an actor `by`, the order must be its
    /// merchant's (the authenticated API), and the audit log's entry is written with the
    /// payment; without, the order's merchant is used (checkout). The write is group-committed
    /// with the payments created at the same time (see `writes`).
    pub async fn create(
        &self,
        by: Option<&Actor>,
        new: NewPayment,
        replay: Option<Replay<Payment>>,
    ) -> Result<Payment, Error> {
        let merchant_id = by.map(|by| by.merchant_id.as_str());
        if OrderId::parse(&new.order_id).is_none() {
            return Err(Error::OrderNotFound);
        }
        let upi = match &new.instrument {
            Instrument::UpiApp(flow) => {
                Some(self.upi_link(merchant_id, &new.order_id, *flow).await?)
            }
            _ => None,
        };
        self.writer
            .create(Create {
                merchant_id: merchant_id.map(str::to_owned),
                by: by.cloned(),
                awaits_customer: upi.is_some() && self.upi.awaits_customer,
                new,
                replay,
                upi,
            })
            .await
    }

    /// The link an intent or QR payment of this order is created with: the order's amount
    /// (in INR) to its merchant's VPA.
    async fn upi_link(
        &self,
        merchant_id: Option<&str>,
        order_id: &str,
        flow: UpiFlow,
    ) -> Result<UpiLink, Error> {
        let order: Order = table::get(&self.ctx.store, order_id)
            .await?
            .filter(|o: &Order| merchant_id.is_none_or(|m| m == o.merchant_id))
            .ok_or(Error::OrderNotFound)?;
        if order.currency != "INR" {
            return Err(Error::UpiNotInr);
        }
        let merchant = merchants::get(&self.ctx.store, &order.merchant_id)
            .await?
            .ok_or(Error::OrderNotFound)?;
        let payee = merchant.upi_id.ok_or(Error::NoUpiId)?;
        Ok(UpiLink {
            flow,
            payee,
            payee_name: merchant.name,
            amount: order.amount.to_major_string(),
            order_id: order.id,
            base_url: self.upi.base_url.clone(),
            expires_at: self.ctx.now() + self.upi.expiry,
        })
    }

    /// Records the customer's answer to an intent or QR payment (the test endpoints'
    /// simulated approval or decline, with the payer's VPA when given) and brings its job
    /// forward. Refused unless the payment is pending, unanswered and unexpired.
    pub async fn answer_upi(
        &self,
        id: &str,
        approve: bool,
        payer: Option<&str>,
    ) -> Result<Payment, Error> {
        // Outside test mode the simulated bank answers for the customer: nothing waits.
        if !self.upi.awaits_customer {
            return Err(Error::NotAwaitingApproval);
        }
        let outcome = if approve { "success" } else { "failure" };
        let mut tx = self.ctx.store.begin().await?;
        let Some(answered) =
            payments::answer_upi(&mut tx, id, outcome, payer, self.ctx.now()).await?
        else {
            return Err(match payments::get_in(&mut tx, id).await? {
                None => Error::NotFound,
                Some(_) => Error::NotAwaitingApproval,
            });
        };
        // `Again`: a run that started before the answer (and may have read none) runs again.
        let mut job = crate::queue::JobSpec::now(crate::queue::PAYMENTS, id);
        job.existing = crate::store::jobs::Existing::Again;
        let jobs = [job];
        self.ctx.queue.stage(&mut tx, &jobs).await?;
        tx.commit().await?;
        self.ctx.queue.dispatch(&jobs).await;
        Ok(answered)
    }

    /// Captures a successful payment, in full. `amount`, when given, must equal the payment's
    /// amount (partial capture is not offered). A second capture is refused like any payment that
    /// is not `success` and uncaptured.
    pub async fn capture(
        &self,
        by: &Actor,
        id: &str,
        amount: Option<i64>,
        replay: Option<Replay<Payment>>,
    ) -> Result<Payment, Error> {
        let payment = get(&self.ctx.store, Some(&by.merchant_id), id).await?;
        if amount.is_some_and(|a| payment.amount != a) {
            return Err(Error::CaptureAmountMismatch);
        }
        let mut tx = self.ctx.store.begin().await?;
        let Some(captured) = payments::capture(&mut tx, id, self.ctx.now()).await? else {
            let now = payments::get_in(&mut tx, id).await?;
            return Err(match now {
                Some(p) if p.amount_refunded.get() > 0 && !p.captured => Error::HasRefunds,
                _ => Error::NotCapturable,
            });
        };
        let data = event_data(&captured);
        let events = [event(&captured, "payment.captured", data)];
        let jobs = webhooks::record(&*self.ctx.queue, &mut tx, &events).await?;
        let resource = ("payment", captured.id.as_str());
        audit::record_in(&mut tx, by, "payment.capture", resource, self.ctx.now()).await?;
        idempotent::store_in(&mut tx, replay.as_ref(), &captured).await?;
        tx.commit().await?;
        self.ctx.queue.dispatch(&jobs).await;
        Ok(captured)
    }

    /// Processes a pending payment through the connector. Idempotent: a payment already final
    /// changes nothing, and one another run is processing is left to it. Taking the lease and
    /// recording the outcome are group-committed with the other jobs running at the same time.
    pub async fn process(&self, payment_id: &str) -> anyhow::Result<Processed> {
        let at = self.ctx.now();
        let lease = self.limits.lease;
        let Some(payment) = self.writer.begin(payment_id.to_owned(), at + lease).await? else {
            return Ok(match payments::get(&self.ctx.store, payment_id).await? {
                Some(p) if p.status == PaymentStatus::Pending => {
                    Processed::Busy(p.processor_lease_until.unwrap_or(at + lease))
                }
                _ => Processed::AlreadyFinal,
            });
        };
        // Waiting for the customer: unanswered, and the bank never asked (in test mode it is
        // asked only once the customer answered; outside it, a run after the first may have
        // asked, so that one asks the bank what it did instead of expiring).
        let awaiting = payment.expires_at.filter(|_| {
            matches!(payment.upi_flow.as_deref(), Some("intent" | "qr"))
                && payment.forced_outcome.is_none()
                && (self.upi.awaits_customer || payment.processor_calls <= 1)
        });
        if let Some(expiry) = awaiting {
            if at >= expiry {
                // Unanswered at its expiry: failed, the processor never asked.
                return self.expire(payment_id, at).await;
            }
            if self.upi.awaits_customer {
                // Too early (the sweep queued it again): back to waiting for the customer.
                payments::release_lease(&self.ctx.store, payment_id, &self.ctx.owner).await?;
                return Ok(Processed::Busy(expiry));
            }
        }
        let request = ChargeRequest {
            idempotency_key: charge_key(&payment.id),
            payment_id: payment.id.clone(),
            amount: payment.amount.get(),
            currency: payment.currency.clone(),
            method: payment.method,
            forced_outcome: payment
                .forced_outcome
                .as_deref()
                .and_then(ForcedOutcome::parse),
        };
        // A run before this one took the lease: it may have asked the bank and died without the
        // answer. Ask what the bank did with the key first; charge only if it never saw it.
        let known = if payment.processor_calls > 1 {
            let status = self.ctx.connector.status(&request.idempotency_key);
            self.limits.call(status).await?
        } else {
            None
        };
        let outcome = match known {
            Some(outcome) => outcome,
            None => {
                self.limits
                    .call(self.ctx.connector.charge(&request))
                    .await?
            }
        };
        let (status, error) = match outcome {
            ChargeOutcome::Succeeded => (PaymentStatus::Success, None),
            ChargeOutcome::Failed { code, description } => {
                (PaymentStatus::Failed, Some((code, description)))
            }
        };
        let outcome = Outcome {
            id: payment_id.to_owned(),
            status,
            error,
            unanswered_only: false,
        };
        let Some(updated) = self.writer.finish(outcome).await? else {
            return Ok(Processed::AlreadyFinal);
        };
        tracing::info!(payment = %updated.id, status = %status, "payment processed");
        metrics::counter!("paygate_payments_total", "status" => status.as_str()).increment(1);
        Ok(Processed::Finished(status))
    }
}

impl Payments {
    /// Fails an intent or QR payment left unanswered past its expiry.
    async fn expire(
        &self,
        payment_id: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<Processed> {
        let outcome = Outcome {
            id: payment_id.to_owned(),
            status: PaymentStatus::Failed,
            error: Some((
                "PAYMENT_EXPIRED".to_owned(),
                "The customer did not approve the payment in time".to_owned(),
            )),
            unanswered_only: true,
        };
        if self.writer.finish(outcome).await?.is_none() {
            // Final already, or the customer's answer came first: then it is charged now.
            return Ok(match payments::get(&self.ctx.store, payment_id).await? {
                Some(p) if p.status == PaymentStatus::Pending => {
                    payments::release_lease(&self.ctx.store, payment_id, &self.ctx.owner).await?;
                    Processed::Busy(at)
                }
                _ => Processed::AlreadyFinal,
            });
        }
        tracing::info!(payment = %payment_id, "payment expired");
        metrics::counter!("paygate_payments_total", "status" => "failed").increment(1);
        Ok(Processed::Finished(PaymentStatus::Failed))
    }
}

#[async_trait::async_trait]
impl JobHandler for Payments {
    async fn run(&self, payment_id: &str) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
        Ok(match self.process(payment_id).await? {
            Processed::Busy(until) => Some(until),
            _ => None,
        })
    }
}

/// The payment; another merchant's payment is not found.
pub async fn get(store: &Store, merchant_id: Option<&str>, id: &str) -> Result<Payment, Error> {
    let found = table::owned(store, merchant_id, id, PaymentId::parse(id).is_some()).await?;
    found.ok_or(Error::NotFound)
}

/// A page of the merchant's payments, newest first.
pub async fn list(
    store: &Store,
    merchant_id: &str,
    page: Window,
) -> Result<Option<Page<Payment>>, Error> {
    Ok(table::page(store, merchant_id, page).await?)
}

/// A page of the merchant's payments matching `filter`, newest first, with the matching total.
pub async fn search(
    store: &Store,
    merchant_id: &str,
    filter: &payments::Filter,
    page: Window,
) -> Result<Option<Page<Payment>>, Error> {
    Ok(payments::list_filtered(store, merchant_id, filter, page).await?)
}

/// What processing a payment job did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Processed {
    /// This run moved the payment to its final status.
    Finished(PaymentStatus),
    /// The payment was already final (or gone): nothing changed.
    AlreadyFinal,
    /// Another run is asking the processor now (it holds the payment's processor lease until
    /// then): this run asked nothing; try again at that time.
    Busy(chrono::DateTime<chrono::Utc>),
}
