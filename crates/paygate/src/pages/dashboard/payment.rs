//! A payment's page: its figures, capture and refund forms, timeline, refunds and webhook
//! deliveries.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use paygate_core::{
    DeliveryStatus, Method, MinorUnit, OrderAmount, PaymentStatus, RefundStatus, display_amount,
};

use super::{F, Frame, SignedIn, answer_form, internal, not_found, refusal};
use crate::{
    pages::{PagesState, Time, page as render},
    payments::service as payments,
    refunds,
    store::{events, refunds as refund_store, webhooks as deliveries},
};

#[derive(askama::Template)]
#[template(path = "dashboard/payment.html")]
struct PaymentPage {
    frame: Frame,
    p: Shown,
    timeline: Vec<Step>,
    refunds: Vec<RefundRow>,
    deliveries: Vec<DeliveryRow>,
}

/// The payment's figures as the page shows them.
struct Shown {
    id: String,
    status: PaymentStatus,
    captured: bool,
    amount: String,
    refunded: String,
    /// The fee and its tax, once the payment succeeded.
    fee: Option<(String, String)>,
    order_id: String,
    method: Method,
    error: Option<String>,
    capturable: bool,
    /// What is left to refund, in paise (0: no refund form).
    refundable: i64,
}

struct Step {
    event: String,
    at: Time,
}

struct RefundRow {
    id: String,
    amount: String,
    status: RefundStatus,
    reason: String,
    at: Time,
}

struct DeliveryRow {
    event: String,
    status: DeliveryStatus,
    attempts: i32,
    code: String,
}

/// `GET /dashboard/payments/{id}`.
pub async fn page(State(app): State<PagesState>, s: SignedIn, Path(id): Path<String>) -> Response {
    let p = match payments::get(&app.store, Some(&s.merchant.id), &id).await {
        Ok(p) => p,
        Err(payments::Error::Store(e)) => return internal(&e),
        Err(_) => return not_found(&s, "Payment"),
    };
    let (evs, refund_rows, delivery_rows) = match (
        events::for_resource(&app.store, &p.id).await,
        refund_store::for_payment(&app.store, &p.id).await,
        deliveries::for_resource(&app.store, &p.id).await,
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return internal(&e),
    };
    let success = p.status == PaymentStatus::Success;
    let view = PaymentPage {
        frame: Frame::new("Payment", "Transactions", &s),
        timeline: evs
            .into_iter()
            .map(|e| Step {
                event: e.event_type,
                at: e.created_at.into(),
            })
            .collect(),
        refunds: refund_rows
            .into_iter()
            .map(|r| RefundRow {
                amount: display_amount(r.amount, &p.currency),
                id: r.id,
                status: r.status,
                reason: r.reason.unwrap_or_default(),
                at: r.created_at.into(),
            })
            .collect(),
        deliveries: delivery_rows
            .into_iter()
            .map(|d| DeliveryRow {
                event: d.event,
                status: d.status,
                attempts: d.attempts,
                code: d.response_code.map(|c| c.to_string()).unwrap_or_default(),
            })
            .collect(),
        p: Shown {
            capturable: success && !p.captured,
            refundable: if success {
                p.amount
                    .checked_sub(p.amount_refunded)
                    .map_or(0, |left| left.get().max(0))
            } else {
                0
            },
            amount: display_amount(p.amount, &p.currency),
            refunded: display_amount(p.amount_refunded, &p.currency),
            fee: p.fee.zip(p.tax).map(|(fee, tax)| {
                (
                    display_amount(fee, &p.currency),
                    display_amount(tax, &p.currency),
                )
            }),
            id: p.id,
            status: p.status,
            captured: p.captured,
            order_id: p.order_id,
            method: p.method,
            error: p.error_description,
        },
    };
    render(StatusCode::OK, &view)
}

/// `POST /dashboard/payments/{id}/capture`.
pub async fn capture(
    State(app): State<PagesState>,
    s: SignedIn,
    Path(id): Path<String>,
    F(f): F,
) -> Response {
    let path = format!("/dashboard/payments/{id}");
    answer_form(&app, &s, &f, &path, async {
        let captured = app.payments.capture(&s.merchant.id, &id, None, None).await;
        captured.map_or_else(refusal, |_| Ok("Payment captured.".to_owned()))
    })
    .await
}

/// `POST /dashboard/payments/{id}/refund`: all that is left, or the amount given.
pub async fn refund(
    State(app): State<PagesState>,
    s: SignedIn,
    Path(id): Path<String>,
    F(f): F,
) -> Response {
    let path = format!("/dashboard/payments/{id}");
    answer_form(&app, &s, &f, &path, async {
        let amount = match f.get("amount").map(|a| a.trim()).filter(|a| !a.is_empty()) {
            None => None,
            Some(a) => match a.parse::<i64>() {
                Ok(n) if (1..=OrderAmount::MAX).contains(&n) => Some(MinorUnit::new(n)),
                _ => {
                    let msg = "The refund amount must be a positive whole number of paise.";
                    return Ok(msg.to_owned());
                }
            },
        };
        let reason = f
            .get("reason")
            .map(|r| r.trim())
            .filter(|r| !r.is_empty())
            .map(|r| r.chars().take(refunds::REASON_MAX).collect());
        let created = app
            .refunds
            .create(&s.merchant.id, &id, amount, reason, None)
            .await;
        created.map_or_else(refusal, |r| Ok(format!("Refund {} created.", r.id)))
    })
    .await
}
