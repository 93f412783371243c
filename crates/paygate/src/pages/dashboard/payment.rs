//! A payment's page: its figures, capture and refund forms, timeline, refunds and webhook
//! deliveries.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use paygate_core::{
    Currency, DeliveryStatus, Method, MinorUnit, PaymentStatus, RefundStatus, display_amount,
};

use super::{F, Frame, SignedIn, answer_form, back, internal, not_found, refusal};
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
    /// The refund form's amount: all that is left, in major units.
    refund_default: String,
    /// The currency's symbol or code, for the refund form's label.
    currency: String,
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
            refund_default: plain(
                p.amount.checked_sub(p.amount_refunded).unwrap_or_default(),
                Currency::parse(&p.currency).unwrap_or(Currency::INR),
            ),
            currency: if p.currency == "INR" {
                "₹".to_owned()
            } else {
                p.currency.clone()
            },
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
        let captured = app.payments.capture(&s.actor, &id, None, None).await;
        captured.map_or_else(refusal, |_| Ok("Payment captured.".to_owned()))
    })
    .await
}

/// The page that states a refund before it is made.
#[derive(askama::Template)]
#[template(path = "dashboard/refund_confirm.html")]
struct ConfirmRefund {
    frame: Frame,
    id: String,
    /// The amount as typed back into the form (major units, plain).
    typed: String,
    amount: String,
    paid: String,
    left: String,
    reason: String,
}

/// `POST /dashboard/payments/{id}/refund`: an amount in the payment's major unit (`500` is
/// ₹500.00; at most the currency's decimals), at most what is left to refund. Without
/// `confirm=yes` it only answers the page that states the refund; with it, the refund is made.
pub async fn refund(
    State(app): State<PagesState>,
    s: SignedIn,
    Path(id): Path<String>,
    F(f): F,
) -> Response {
    if let Err(r) = s.check_csrf(&f) {
        return r.into_response();
    }
    let path = format!("/dashboard/payments/{id}");
    let p = match payments::get(&app.store, Some(&s.merchant.id), &id).await {
        Ok(p) => p,
        Err(payments::Error::Store(e)) => return internal(&e),
        Err(_) => return not_found(&s, "Payment"),
    };
    let currency = Currency::parse(&p.currency).unwrap_or(Currency::INR);
    let typed = f.get("amount").map(|a| a.trim()).unwrap_or_default();
    let Some(amount) = currency.parse_major(typed).filter(|a| *a > 0) else {
        let decimals = currency.exponent();
        let msg = format!(
            "Enter the refund amount in {currency}, like 500 or 499.50 (at most {decimals} \
             decimals)."
        );
        return back(&app, &s, &path, &msg).await;
    };
    let left = p.amount.checked_sub(p.amount_refunded).unwrap_or_default();
    let reason: String = f
        .get("reason")
        .map(|r| r.trim())
        .unwrap_or_default()
        .chars()
        .take(refunds::REASON_MAX)
        .collect();
    if f.get("confirm").map(String::as_str) != Some("yes") {
        if amount > left.get() {
            let msg = format!(
                "The refund amount exceeds available amount: {} is left to refund.",
                display_amount(left, &p.currency)
            );
            return back(&app, &s, &path, &msg).await;
        }
        let view = ConfirmRefund {
            frame: Frame::new("Confirm the refund", "Transactions", &s),
            typed: plain(MinorUnit::new(amount), currency),
            amount: display_amount(amount, &p.currency),
            paid: display_amount(p.amount, &p.currency),
            left: display_amount(left, &p.currency),
            reason,
            id: p.id,
        };
        return render(StatusCode::OK, &view);
    }
    let reason = Some(reason).filter(|r| !r.is_empty());
    let amount = Some(MinorUnit::new(amount));
    answer_form(&app, &s, &f, &path, async {
        let created = app
            .refunds
            .create(&s.actor, &id, amount, reason, None)
            .await;
        created.map_or_else(refusal, |r| Ok(format!("Refund {} created.", r.id)))
    })
    .await
}

/// `amount` in the currency's major unit as a form field holds it: `1234.50`, no grouping.
fn plain(amount: MinorUnit, currency: Currency) -> String {
    amount.to_grouped_string(currency).replace(',', "")
}
