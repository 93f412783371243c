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

use paygate_core::{ForcedOutcome, Method, PaymentId, PaymentStatus};
use serde_json::json;

use super::{Instrument, NewPayment};
use crate::{
    app::App,
    idempotent::{self, Replay},
    processor::{ChargeOutcome, ChargeRequest, charge_key},
    queue::{JobSpec, PAYMENTS},
    store::{
        Store,
        events::Event,
        is_unique_violation, now, orders,
        payments::{self, Payment},
    },
    views::PaymentBody,
    webhooks,
};

/// Payment errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("payment not found")]
    NotFound,
    #[error("order not found")]
    OrderNotFound,
    #[error("order is already paid")]
    OrderPaid,
    #[error("order already has a pending or successful payment")]
    OrderHasOpenPayment,
    #[error("payment not in capturable state")]
    NotCapturable,
    #[error("capture amount differs from the payment amount")]
    CaptureAmountMismatch,
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

/// Creates a pending payment for an order. With `merchant_id`, the order must be that
/// merchant's (the authenticated API); without, the order's merchant is used (checkout).
pub async fn create(
    app: &App,
    merchant_id: Option<&str>,
    new: NewPayment,
    replay: Option<&Replay<'_, Payment>>,
) -> Result<Payment, Error> {
    // Read outside the transaction: the unique index on open payments, not this read, is
    // what keeps an order from being paid twice.
    let order = match orders::get(&app.store, &new.order_id).await? {
        Some(o) if merchant_id.is_none_or(|m| m == o.merchant_id) => o,
        _ => return Err(Error::OrderNotFound),
    };
    if order.status == "paid" {
        return Err(Error::OrderPaid);
    }
    let at = now();
    let (method, vpa, network, last4, forced) = match &new.instrument {
        Instrument::Upi(vpa) => (
            Method::Upi,
            Some(vpa.as_str().to_owned()),
            None,
            None,
            vpa.forced_outcome(),
        ),
        Instrument::Card(card) => (
            Method::Card,
            None,
            Some(card.network.as_str().to_owned()),
            Some(card.last4.clone()),
            card.forced_outcome,
        ),
    };
    let payment = Payment {
        id: PaymentId::generate().into_string(),
        merchant_id: order.merchant_id.clone(),
        order_id: order.id.clone(),
        amount: order.amount,
        currency: order.currency.clone(),
        method: method.as_str().into(),
        vpa,
        card_network: network,
        card_last4: last4,
        status: PaymentStatus::Pending.as_str().into(),
        captured: false,
        error_code: None,
        error_description: None,
        forced_outcome: forced.map(|f| f.as_str().into()),
        captured_at: None,
        amount_refunded: 0,
        processor_lease_until: None,
        created_at: at,
        updated_at: at,
    };
    let mut tx = app.store.begin().await?;
    if let Err(e) = payments::insert(&mut tx, &payment).await {
        return Err(if is_unique_violation(&e, "payments_one_open_per_order") {
            Error::OrderHasOpenPayment
        } else {
            e.into()
        });
    }
    let data = event_data(&payment);
    let events = [
        event(&payment, "payment.created", data.clone()),
        event(&payment, PaymentStatus::Pending.event_name(), data),
    ];
    let mut jobs = webhooks::record_events(&mut tx, &events).await?;
    jobs.insert(0, JobSpec::now(PAYMENTS, payment.id.clone()));
    app.queue.stage(&mut tx, &jobs).await?;
    idempotent::store_in(&mut tx, replay, &payment).await?;
    tx.commit().await?;
    app.queue.dispatch(&jobs).await;
    Ok(payment)
}

/// Captures a successful payment, in full. `amount`, when given, must equal the payment's
/// amount (partial capture is not offered). A second capture is refused like any payment that
/// is not `success` and uncaptured.
pub async fn capture(
    app: &App,
    merchant_id: &str,
    id: &str,
    amount: Option<i64>,
    replay: Option<&Replay<'_, Payment>>,
) -> Result<Payment, Error> {
    let payment = get(&app.store, Some(merchant_id), id).await?;
    if amount.is_some_and(|a| a != payment.amount) {
        return Err(Error::CaptureAmountMismatch);
    }
    let mut tx = app.store.begin().await?;
    let Some(captured) = payments::capture(&mut tx, id, now()).await? else {
        return Err(Error::NotCapturable);
    };
    let data = event_data(&captured);
    let jobs =
        webhooks::record(app, &mut tx, &[event(&captured, "payment.captured", data)]).await?;
    idempotent::store_in(&mut tx, replay, &captured).await?;
    tx.commit().await?;
    app.queue.dispatch(&jobs).await;
    Ok(captured)
}

/// The `data` of a payment event: the payment as the API shows it.
fn event_data(payment: &Payment) -> serde_json::Value {
    json!({ "payment": PaymentBody::new(payment, true) })
}

fn event(payment: &Payment, event_type: &str, data: serde_json::Value) -> Event {
    Event {
        id: paygate_core::EventId::generate().into_string(),
        merchant_id: payment.merchant_id.clone(),
        event_type: event_type.to_owned(),
        resource_id: payment.id.clone(),
        data,
        created_at: payment.updated_at,
    }
}

/// The payment; another merchant's payment is not found.
pub async fn get(store: &Store, merchant_id: Option<&str>, id: &str) -> Result<Payment, Error> {
    if PaymentId::parse(id).is_none() {
        return Err(Error::NotFound);
    }
    match payments::get(store, id).await? {
        Some(p) if merchant_id.is_none_or(|m| m == p.merchant_id) => Ok(p),
        _ => Err(Error::NotFound),
    }
}

/// A page of the merchant's payments, newest first.
pub async fn list(
    store: &Store,
    merchant_id: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Payment>, i64), Error> {
    Ok(payments::list(store, merchant_id, limit, offset).await?)
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

/// Processes a pending payment through the connector. Idempotent: a payment already final
/// changes nothing, and one another run is processing is left to it.
pub async fn process(app: &App, payment_id: &str) -> anyhow::Result<Processed> {
    let at = now();
    let lease = app.config.processor_call_lease();
    let Some(payment) =
        payments::begin_processor_call(&app.store, payment_id, at, at + lease).await?
    else {
        return Ok(match payments::get(&app.store, payment_id).await? {
            Some(p) if p.status == PaymentStatus::Pending.as_str() => {
                Processed::Busy(p.processor_lease_until.unwrap_or(at + lease))
            }
            _ => Processed::AlreadyFinal,
        });
    };
    let request = ChargeRequest {
        idempotency_key: charge_key(&payment.id),
        payment_id: payment.id.clone(),
        amount: payment.amount,
        currency: payment.currency.clone(),
        method: Method::parse(&payment.method).unwrap_or(Method::Card),
        forced_outcome: payment
            .forced_outcome
            .as_deref()
            .and_then(ForcedOutcome::parse),
    };
    // No connection is held while the processor works; a call that outlives its lease is
    // abandoned (another run will ask again, with the same key).
    let outcome = tokio::time::timeout(
        app.config.processor_call_timeout(),
        app.connector.charge(&request),
    )
    .await
    .map_err(|_| anyhow::anyhow!("the processor did not answer in time"))??;
    let (status, error) = match &outcome {
        ChargeOutcome::Succeeded => (PaymentStatus::Success, None),
        ChargeOutcome::Failed { code, description } => (
            PaymentStatus::Failed,
            Some((code.as_str(), description.as_str())),
        ),
    };
    let mut tx = app.store.begin().await?;
    let Some(updated) =
        payments::finish(&mut tx, payment_id, status.as_str(), error, now()).await?
    else {
        return Ok(Processed::AlreadyFinal);
    };
    if status == PaymentStatus::Success {
        orders::mark_paid(&mut tx, &updated.order_id, updated.updated_at).await?;
    }
    let data = event_data(&updated);
    let jobs =
        webhooks::record(app, &mut tx, &[event(&updated, status.event_name(), data)]).await?;
    tx.commit().await?;
    app.queue.dispatch(&jobs).await;
    tracing::info!(payment = %updated.id, status = %status, "payment processed");
    Ok(Processed::Finished(status))
}
